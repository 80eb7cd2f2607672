//! SFTP end to end with the OpenSSH `sftp` client against the real gateway binary:
//! uploads of sealed files, results read back over SFTP, resume after the client or the
//! gateway is killed mid-transfer, and what a tenant may not do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gateway::sealed::{Identity, seal_to_vec};
use gateway_tests::{TestGateway, TestTenant, sftp_batch, ssh_keygen};

const CODE: &str = "3501200000";
const OTHER: &str = "1101020018";

struct Setup {
    gw: TestGateway,
    key: PathBuf,
    other_key: PathBuf,
    files: tempfile::TempDir,
    recipient: gateway::sealed::Recipient,
}

fn setup() -> Setup {
    setup_with("")
}

/// A gateway with two tenants; `sftp` adds keys to its `[sftp]` section.
fn setup_with(sftp: &str) -> Setup {
    let files = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(files.path(), "k").unwrap();
    let (other_key, other_public) = ssh_keygen(files.path(), "o").unwrap();
    let gw = TestGateway::builder()
        .sftp_config(sftp)
        .tenant(TestTenant::new(CODE).ssh_key(&public))
        .tenant(TestTenant::new(OTHER).ssh_key(&other_public))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let text = std::fs::read_to_string(gw.data_dir.join("keys/age-identity.txt")).unwrap();
    let recipient = Identity::from_file_text(&text).unwrap().to_public();
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
    fn sealed(&self, name: &str, plain: &[u8]) -> (PathBuf, String) {
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

    fn sftp(&self, script: &str) -> (i32, String) {
        sftp_batch(self.gw.sftp, CODE, &self.key, script).unwrap()
    }

    /// Waits until `/results/<name>.json` can be fetched; returns it parsed.
    fn result(&self, name: &str) -> serde_json::Value {
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
                return v;
            }
            assert!(Instant::now() < deadline, "no result for {name}: {out}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn hex(d: &ring::digest::Digest) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn text_record(len: usize, seed: u8) -> Vec<u8> {
    let mut v = format!("record {seed}\n").into_bytes();
    v.extend((0..len).map(|i| b'a' + ((i * 7 + seed as usize) % 26) as u8));
    v
}

#[test]
fn put_then_results_over_sftp() {
    let s = setup();
    let (local, sha) = s.sealed("note.txt", &text_record(3_000_000, 1));
    let (exe, _) = s.sealed(
        "12A03123345.pdf",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00",
    );
    let (code, out) = s.sftp(&format!(
        "cd /inbox\nput {} note.txt\nput {} program.pdf\nmkdir case-7\nput {} case-7/again.txt\nls -l\n",
        local.display(),
        exe.display(),
        local.display()
    ));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("note.txt") && out.contains("case-7"), "{out}");

    let r = s.result("note.txt");
    assert_eq!(r["status"], "passed", "{r}");
    assert_eq!(r["sha256"], sha.as_str());
    let r = s.result("program.pdf");
    assert_eq!(r["status"], "failed");
    assert_eq!(r["checks"][0]["code"], "type.not_allowed");
    let r = s.result("case-7/again.txt");
    assert_eq!(
        r["checks"].as_array().unwrap().last().unwrap()["code"],
        "duplicate.same_content"
    );

    // The human-readable report sits beside the JSON; /results lists both.
    let txt = s.files.path().join("program.txt");
    let (code, out) = s.sftp(&format!(
        "get /results/program.pdf.txt {}\nls /results\n",
        txt.display()
    ));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("note.txt.json") && out.contains("program.pdf.txt"),
        "{out}"
    );
    let report = std::fs::read_to_string(&txt).unwrap();
    assert!(
        report.contains("FAILED") && report.contains("type.not_allowed"),
        "{report}"
    );

    // Another tenant sees none of it.
    let (code, out) =
        sftp_batch(s.gw.sftp, OTHER, &s.other_key, "ls /inbox\nls /results\n").unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("note.txt") && !out.contains("program"),
        "{out}"
    );
}

#[test]
fn what_a_tenant_may_not_do() {
    let s = setup();
    let (local, _) = s.sealed("a.txt", &text_record(10_000, 2));
    assert_eq!(
        s.sftp(&format!("put {} /inbox/a.txt\n", local.display())).0,
        0
    );
    s.result("a.txt");
    for (script, why) in [
        (
            format!("put {} /inbox/a.txt\n", local.display()),
            "overwrite an accepted file",
        ),
        ("rm /inbox/a.txt\n".to_string(), "remove an accepted file"),
        (
            format!("put {} /results/x.json\n", local.display()),
            "write in /results",
        ),
        (
            format!("put {} /etc/passwd\n", local.display()),
            "write outside the tree",
        ),
        (
            format!("put {} /inbox/../../tmp/x\n", local.display()),
            "escape with ..",
        ),
        (
            "get /inbox/a.txt /dev/null\n".to_string(),
            "read an upload back",
        ),
        (
            "symlink /inbox/a.txt /inbox/b.txt\n".to_string(),
            "make a link",
        ),
        (
            format!("put {} /inbox/病歷.txt\n", local.display()),
            "a non-ASCII name",
        ),
    ] {
        let (code, out) = s.sftp(&script);
        assert_ne!(code, 0, "{why} must fail: {out}");
    }
    let (code, out) = s.sftp("ls /\ncd ..\npwd\nls /inbox/../..\n");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("inbox") && out.contains("results") && !out.contains("etc"),
        "{out}"
    );
}

/// An `sftp put` of `local` as `remote`, running in the background at about 10 MB/s
/// (`-l`, in Kbit/s) so that it can be interrupted mid-file.
fn put_in_background(s: &Setup, local: &Path, remote: &str) -> Child {
    let mut c = Command::new("sftp");
    c.arg("-l").arg("80000");
    for opt in gateway_tests::SSH_OPTIONS {
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
fn wait_for_bytes(s: &Setup, remote: &str, bytes: u64) -> u64 {
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

#[test]
fn reput_resumes_after_the_client_or_the_gateway_is_killed() {
    let mut s = setup();
    let plain = text_record(60_000_000, 3);
    let (local, sha) = s.sealed("big.txt", &plain);

    // The client dies mid-transfer: what the gateway made durable stays, and reput
    // continues from there.
    let mut child = put_in_background(&s, &local, "/inbox/big.txt");
    let seen = wait_for_bytes(&s, "/inbox/big.txt", 10 << 20);
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen < plain.len() as u64, "killed mid-file");
    let (code, out) = s.sftp(&format!("reput {} /inbox/big.txt\n", local.display()));
    assert_eq!(code, 0, "reput after a client kill: {out}");
    let r = s.result("big.txt");
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(sha.as_str())),
        "{r}"
    );
    assert!(seen >= 10 << 20);

    // The gateway dies (kill -9) mid-transfer and restarts: reput continues.
    let (local2, sha2) = s.sealed("big2.txt", &text_record(60_000_000, 4));
    let mut child = put_in_background(&s, &local2, "/inbox/big2.txt");
    let before = wait_for_bytes(&s, "/inbox/big2.txt", 10 << 20);
    s.gw.signal("KILL").unwrap();
    let _ = child.wait();
    s.gw.restart().unwrap();
    s.gw.wait_ready().unwrap();
    let (_, out) = s.sftp("ls -l /inbox/big2.txt\n");
    assert!(
        out.contains("big2.txt"),
        "the partial upload survives the kill: {out}"
    );
    let (code, out) = s.sftp(&format!("reput {} /inbox/big2.txt\n", local2.display()));
    assert_eq!(code, 0, "reput after a gateway kill: {out}");
    let r = s.result("big2.txt");
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(sha2.as_str())),
        "{r} (had {before} before the kill)"
    );
}

#[test]
fn paramiko_uploads_and_reads_its_result() {
    let s = setup();
    let (local, sha) = s.sealed("p.txt", &text_record(2_000_000, 5));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/paramiko_sftp.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &s.gw.sftp.port().to_string(), CODE])
        .arg(&s.key)
        .arg(&local)
        .arg("from-paramiko.txt")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "paramiko: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(sha.as_str())),
        "{r}"
    );
}

fn curl_sftp(s: &Setup, args: &[&str], url_path: &str) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "-k", "--key"])
        .arg(&s.key)
        .arg("--pubkey")
        .arg(s.key.with_extension("pub"))
        .args(args)
        .arg(format!(
            "sftp://{CODE}@127.0.0.1:{}{url_path}",
            s.gw.sftp.port()
        ))
        .output()
        .unwrap()
}

#[test]
fn curl_uploads_and_resumes_with_continue_at() {
    // Debian 12's curl links libssh2 1.10, which has no encrypt-then-MAC MACs.
    let s = setup_with("encrypt_and_mac = true");
    let (local, sha) = s.sealed("c.txt", &text_record(5_000_000, 6));
    // A first attempt that stops part-way: the gateway keeps what arrived.
    let part = s.files.path().join("c.part");
    let all = std::fs::read(&local).unwrap();
    std::fs::write(&part, &all[..all.len() / 3]).unwrap();
    // (curl does not report the failed close of an incomplete file; the size shows it.)
    curl_sftp(&s, &["-T", part.to_str().unwrap()], "/inbox/c.txt");
    let (_, out) = s.sftp("ls -l /inbox/c.txt\n");
    assert!(
        out.contains(&(all.len() / 3).to_string()),
        "the partial upload stays: {out}"
    );
    let (_, out) = s.sftp("ls /results\n");
    assert!(
        !out.contains("c.txt"),
        "nothing was accepted or checked: {out}"
    );
    // `-C -` asks the server how much it has and sends the rest.
    let rest = curl_sftp(
        &s,
        &["-C", "-", "-T", local.to_str().unwrap()],
        "/inbox/c.txt",
    );
    assert!(
        rest.status.success(),
        "curl -C -: {}",
        String::from_utf8_lossy(&rest.stderr)
    );
    let r = s.result("c.txt");
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(sha.as_str())),
        "{r}"
    );
    // And reads results back.
    let got = curl_sftp(&s, &[], "/results/c.txt.json");
    assert!(got.status.success());
    assert!(String::from_utf8_lossy(&got.stdout).contains("\"passed\""));
}

/// ssh-audit's verdict lines for the algorithm sections.
fn ssh_audit(s: &Setup) -> Vec<String> {
    let out = Command::new("python3")
        .args([
            "-m",
            "ssh_audit",
            "-n",
            "-p",
            &s.gw.sftp.port().to_string(),
            "127.0.0.1",
        ])
        .output()
        .expect("ssh-audit (pip) is installed by scripts/test-setup.sh");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("(kex)"), "ssh-audit ran: {text}");
    text.lines()
        .filter(|l| {
            ["(kex)", "(key)", "(enc)", "(mac)"]
                .iter()
                .any(|p| l.starts_with(p))
                || l.trim_start().starts_with("`-")
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn ssh_audit_finds_nothing_to_fail_or_warn() {
    // With the post-quantum key exchange only: no failure and no warning at all.
    let s = setup_with("post_quantum_only = true");
    let lines = ssh_audit(&s);
    let flagged: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("[fail]") || l.contains("[warn]"))
        .collect();
    assert!(flagged.is_empty(), "{flagged:#?}");
    assert!(
        lines.iter().any(|l| l.contains("mlkem768x25519-sha256")),
        "{lines:#?}"
    );
    // The default adds curve25519 for clients without the hybrid: ssh-audit's only
    // remark is that it is not post-quantum; nothing fails.
    let s = setup();
    let lines = ssh_audit(&s);
    assert!(!lines.iter().any(|l| l.contains("[fail]")), "{lines:#?}");
    for l in lines.iter().filter(|l| l.contains("[warn]")) {
        assert!(l.contains("post-quantum"), "unexpected warning: {l}");
    }
}

#[test]
fn repeated_failures_lock_the_address_out() {
    let s = setup_with("max_auth_failures = 2\nlockout_secs = 30");
    let (stranger, _) = ssh_keygen(s.files.path(), "stranger").unwrap();
    for _ in 0..2 {
        let (code, out) = sftp_batch(s.gw.sftp, CODE, &stranger, "pwd\n").unwrap();
        assert_ne!(code, 0, "{out}");
    }
    // Now even the right key is turned away, before the handshake.
    let (code, out) = s.sftp("pwd\n");
    assert_ne!(code, 0, "locked out: {out}");
    let (_, m) = s.gw.admin_get("/metrics").unwrap();
    assert!(m.contains("gateway_ssh_lockouts_total 1"), "{m}");
    assert!(
        m.contains("gateway_ssh_refused_connections_total{reason=\"locked\"} 1"),
        "{m}"
    );
    // The other tenant, from the same address, is locked out too: it is the address.
    let (code, _) = sftp_batch(s.gw.sftp, OTHER, &s.other_key, "pwd\n").unwrap();
    assert_ne!(code, 0);
}
