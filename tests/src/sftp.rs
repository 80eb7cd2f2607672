//! The SFTP test fixture: a gateway with two tenants and their keys, sealed test
//! files, OpenSSH `sftp` batches, and waiting for results read back over SFTP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gateway::sealed::seal_to_vec;

use crate::{TestGateway, TestTenant, sftp_batch, ssh_keygen};

pub const CODE: &str = "3501200000";
pub const OTHER: &str = "1101020018";

pub struct Setup {
    pub gw: TestGateway,
    pub key: PathBuf,
    pub other_key: PathBuf,
    pub files: tempfile::TempDir,
    pub recipient: gateway::sealed::Recipient,
}

pub fn setup() -> Setup {
    setup_with("")
}

/// A gateway with two tenants; `sftp` adds keys to its `[sftp]` section.
pub fn setup_with(sftp: &str) -> Setup {
    setup_config(sftp, "", "generic")
}

/// [`setup_with`], `config` appended as raw TOML sections, the first tenant on `profile`.
pub fn setup_config(sftp: &str, config: &str, profile: &str) -> Setup {
    let files = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(files.path(), "k").unwrap();
    let (other_key, other_public) = ssh_keygen(files.path(), "o").unwrap();
    let gw = TestGateway::builder()
        .sftp_config(sftp)
        .config(config)
        .tenant(TestTenant::new(CODE).profile(profile).ssh_key(&public))
        .tenant(TestTenant::new(OTHER).ssh_key(&other_public))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let recipient = gw.age_recipient().unwrap();
    Setup {
        gw,
        key,
        other_key,
        files,
        recipient,
    }
}

impl Setup {
    /// Seals `plain` to the gateway into a local file named `name`; returns its path
    /// and the plaintext SHA-256.
    pub fn sealed(&self, name: &str, plain: &[u8]) -> (PathBuf, String) {
        let path = self.files.path().join(name);
        std::fs::write(
            &path,
            seal_to_vec(std::slice::from_ref(&self.recipient), plain).unwrap(),
        )
        .unwrap();
        (
            path,
            hex(&ring::digest::digest(&ring::digest::SHA256, plain)),
        )
    }

    pub fn sftp(&self, script: &str) -> (i32, String) {
        sftp_batch(self.gw.sftp, CODE, &self.key, script).unwrap()
    }

    /// Waits until `/results/<name>.json` can be fetched with a final status (passed or
    /// failed); returns it parsed.
    pub fn result(&self, name: &str) -> serde_json::Value {
        let local = self
            .files
            .path()
            .join(format!("{}.result.json", name.replace('/', "_")));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let _ = std::fs::remove_file(&local);
            let (code, out) = self.sftp(&format!("get /results/{name}.json {}\n", local.display()));
            if code == 0 {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&local).unwrap()).unwrap();
                if v["status"] != "checking" {
                    return v;
                }
            }
            assert!(Instant::now() < deadline, "no result for {name}: {out}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

pub fn hex(d: &ring::digest::Digest) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn text_record(len: usize, seed: u8) -> Vec<u8> {
    let mut v = format!("record {seed}\n").into_bytes();
    v.extend((0..len).map(|i| b'a' + ((i * 7 + seed as usize) % 26) as u8));
    v
}

/// An `sftp put` of `local` as `remote`, running in the background at about 10 MB/s
/// (`-l`, in Kbit/s) so that it can be interrupted mid-file.
pub fn put_in_background(s: &Setup, local: &Path, remote: &str) -> Child {
    let mut c = Command::new("sftp");
    c.arg("-l").arg("80000");
    for opt in crate::SSH_OPTIONS {
        c.arg("-o").arg(opt);
    }
    c.arg("-b")
        .arg("-")
        .arg("-P")
        .arg(s.gw.sftp.port().to_string())
        .arg("-i")
        .arg(&s.key);
    c.arg(format!("{CODE}@127.0.0.1"));
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("put {} {remote}\n", local.display()).as_bytes())
        .unwrap();
    child
}

/// Waits until the gateway holds at least `bytes` of `remote` durably (as `ls -l`
/// shows a partial upload); returns what it holds.
pub fn wait_for_bytes(s: &Setup, remote: &str, bytes: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, out) = s.sftp(&format!("ls -l {remote}\n"));
        let size = out
            .lines()
            .find(|l| !l.starts_with("sftp>") && l.ends_with(remote.rsplit('/').next().unwrap()))
            .and_then(|l| l.split_whitespace().nth(4))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if size >= bytes {
            return size;
        }
        assert!(Instant::now() < deadline, "upload made no progress: {out}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
