//! tus with clients nobody here wrote: tuspy (Python) and tus-js-client (under Node)
//! upload sealed files and a ZIP batch, resume after the client is killed mid-upload,
//! and resume after the gateway is killed (`kill -9`) and restarted.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use gateway::sealed::seal_to_vec;
use gateway_tests::http::Client;
use gateway_tests::{TestGateway, TestTenant};

const CODE: &str = "3501200000";
const TOKEN: &str = "tok-3501200000-tus-clients-test-token";

struct Setup {
    gw: TestGateway,
    files: tempfile::TempDir,
    recipient: gateway::sealed::Recipient,
}

fn setup() -> Setup {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let recipient = gw.age_recipient().unwrap();
    Setup {
        gw,
        files: tempfile::tempdir().unwrap(),
        recipient,
    }
}

impl Setup {
    fn endpoint(&self) -> String {
        format!("https://{}/v1/uploads", self.gw.https)
    }

    /// Seals `plain` into a local file; returns it and the plaintext SHA-256.
    fn sealed(&self, name: &str, plain: &[u8]) -> (PathBuf, String) {
        let path = self.files.path().join(name);
        let sealed = seal_to_vec(std::slice::from_ref(&self.recipient), plain).unwrap();
        std::fs::write(&path, sealed).unwrap();
        let d = ring::digest::digest(&ring::digest::SHA256, plain);
        (
            path,
            d.as_ref().iter().map(|b| format!("{b:02x}")).collect(),
        )
    }

    fn result(&self, url: &str) -> serde_json::Value {
        let c = Client::new(self.gw.https, Some(TOKEN));
        let path = &url[url.find("/v1/").unwrap()..];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = c.call("GET", &format!("{path}/result"), &[], None).json();
            if v["status"] == "passed" || v["status"] == "failed" {
                return v;
            }
            assert!(Instant::now() < deadline, "no result: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Durable offset of the upload at `url`, as HEAD reports it.
    fn offset(&self, url: &str) -> u64 {
        let c = Client::new(self.gw.https, Some(TOKEN));
        let path = &url[url.find("/v1/").unwrap()..];
        let r = c.call("HEAD", path, &[("Tus-Resumable", "1.0.0")], None);
        r.header("upload-offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

fn record(len: usize, seed: u8) -> Vec<u8> {
    let mut v = format!("record {seed}\n").into_bytes();
    v.extend((0..len).map(|i| b'a' + ((i * 7 + seed as usize) % 26) as u8));
    v
}

enum Tool {
    Tuspy,
    TusJs,
}

/// Starts a client upload; `pace` slows it so that it can be interrupted.
fn start(s: &Setup, tool: &Tool, file: &Path, name: &str, store: &Path, pace: bool) -> Child {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop");
    let mut c = match tool {
        Tool::Tuspy => {
            let mut c = Command::new("python3");
            c.arg(interop.join("tuspy_upload.py"));
            c
        }
        Tool::TusJs => {
            let mut c = Command::new("node");
            c.arg(interop.join("js/tus_upload.mjs"))
                .env("NODE_TLS_REJECT_UNAUTHORIZED", "0");
            c
        }
    };
    c.arg(s.endpoint())
        .arg(TOKEN)
        .arg(file)
        .arg(name)
        .arg(store);
    match (tool, pace) {
        (Tool::Tuspy, true) => {
            c.args(["--chunk", "524288", "--pace", "0.05"]);
        }
        (Tool::Tuspy, false) => {
            c.args(["--chunk", "4194304", "--checksum"]);
        }
        (Tool::TusJs, true) => {
            c.args(["524288", "50"]);
        }
        (Tool::TusJs, false) => {}
    }
    c.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("client starts (scripts/test-setup.sh installs tuspy and tus-js-client)")
}

/// Reads the client's JSON lines until the upload URL shows.
fn url_of(child: &mut Child, out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the client ended before its upload began: {err}");
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
            && let Some(u) = v["url"].as_str()
        {
            return u.to_string();
        }
    }
}

/// Runs a client to the end; returns the URL it used.
fn run_to_end(s: &Setup, tool: &Tool, file: &Path, name: &str, store: &Path) -> String {
    let mut child = start(s, tool, file, name, store, false);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let url = url_of(&mut child, &mut out);
    let status = child.wait().unwrap();
    let mut err = String::new();
    use std::io::Read;
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    assert!(status.success(), "client failed: {err}");
    url
}

fn wait_for_offset(s: &Setup, url: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = s.offset(url);
        if o >= at_least {
            return o;
        }
        assert!(
            Instant::now() < deadline,
            "the upload made no progress ({o})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The client is killed mid-upload; run again, it resumes the same upload.
fn resumes_after_a_client_kill(tool: Tool) {
    let s = setup();
    let (file, sha) = s.sealed("scan.txt", &record(6_000_000, 1));
    let store = s.files.path().join("urls.json");
    let mut first = start(&s, &tool, &file, "scan.txt", &store, true);
    let mut out = BufReader::new(first.stdout.take().unwrap());
    let url = url_of(&mut first, &mut out);
    let seen = wait_for_offset(&s, &url, 1 << 20);
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(seen < 6_000_000, "killed mid-upload");
    let again = run_to_end(&s, &tool, &file, "scan.txt", &store);
    assert_eq!(again, url, "the second run resumed the first run's upload");
    let r = s.result(&url);
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(sha.as_str())),
        "{r}"
    );
}

#[test]
fn tuspy_resumes_after_it_is_killed() {
    resumes_after_a_client_kill(Tool::Tuspy);
}

#[test]
fn tus_js_client_resumes_after_it_is_killed() {
    resumes_after_a_client_kill(Tool::TusJs);
}

#[test]
fn tuspy_resumes_after_the_gateway_is_killed_and_a_zip_batch_passes() {
    let mut s = setup();
    let (file, sha) = s.sealed("long.txt", &record(6_000_000, 2));
    let store = s.files.path().join("urls.json");
    let mut first = start(&s, &Tool::Tuspy, &file, "long.txt", &store, true);
    let mut out = BufReader::new(first.stdout.take().unwrap());
    let url = url_of(&mut first, &mut out);
    let before = wait_for_offset(&s, &url, 1 << 20);
    s.gw.kill().unwrap();
    let _ = first.wait();
    s.gw.restart_on_same_ports().unwrap();
    s.gw.wait_ready().unwrap();
    assert!(
        s.offset(&url) >= before,
        "every acknowledged byte survived the kill"
    );
    let again = run_to_end(&s, &Tool::Tuspy, &file, "long.txt", &store);
    assert_eq!(again, url, "resumed, not started over");
    let r = s.result(&url);
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(sha.as_str())),
        "{r}"
    );

    // A ZIP batch, sealed, through tus-js-client.
    let zip = s.files.path().join("batch.zip");
    let made = Command::new("python3")
        .args([
            "-c",
            "import sys,zipfile\nwith zipfile.ZipFile(sys.argv[1],'w',zipfile.ZIP_DEFLATED) as z:\n z.writestr('case-1/a.txt','first record\\n'*100)\n z.writestr('case-1/b.txt','second record\\n'*100)",
        ])
        .arg(&zip)
        .status()
        .unwrap();
    assert!(made.success());
    let (sealed_zip, zip_sha) = s.sealed("batch.sealed", &std::fs::read(&zip).unwrap());
    let js_store = s.files.path().join("js-urls.json");
    let url = run_to_end(&s, &Tool::TusJs, &sealed_zip, "batch-1.zip", &js_store);
    let r = s.result(&url);
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(zip_sha.as_str())),
        "{r}"
    );
}
