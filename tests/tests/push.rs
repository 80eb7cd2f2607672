//! `gateway push` end to end against a real gateway: a folder with plain and sealed
//! files and a DICOMDIR set (sealed on the fly, DICOMDIR last), `--wait` with the exit
//! code, and a push killed mid-file then run again, which resumes the same upload.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gateway::sealed::seal_to_vec;
use gateway_tests::http::Client;
use gateway_tests::{TestGateway, TestTenant, gateway_bin};

const TOKEN: &str = "tok-3501200000-push-test-token";

fn gateway() -> TestGateway {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new("3501200000").token(TOKEN))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    gw
}

fn push_cmd(gw: &TestGateway, dir: &Path) -> Command {
    let mut c = Command::new(gateway_bin());
    c.current_dir(dir)
        .arg("push")
        .args(["--url", &format!("https://{}", gw.https)])
        .args(["--token", TOKEN, "--insecure", "--json"]);
    c
}

fn events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn sha256(b: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, b);
    d.as_ref().iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn a_folder_with_a_dicomdir_set_is_pushed_and_checked() {
    let gw = gateway();
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("case-3");
    let set = root.join("ct");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/dicomdir_tree.py");
    let made = Command::new("python3")
        .arg(script)
        .arg(&set)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let facts: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    let note = b"discharge note\n".repeat(5000);
    std::fs::write(root.join("note.txt"), &note).unwrap();
    // One file sealed beforehand (with the gateway's recipient) goes as it is.
    let recipient = gw.age_recipient().unwrap();
    let pdf = gateway_fixtures::pdf::sample("BT (summary) ET", true, false);
    std::fs::write(
        root.join("summary.pdf"),
        seal_to_vec(&[recipient], &pdf).unwrap(),
    )
    .unwrap();

    let out = push_cmd(&gw, work.path())
        .args(["--wait", "60", "--parallel", "3"])
        .arg(&root)
        .output()
        .unwrap();
    let ev = events(&out);
    assert!(
        out.status.success(),
        "{ev:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<&serde_json::Value> = ev.iter().filter(|e| e["event"] == "result").collect();
    let files = facts["instances"].as_u64().unwrap() as usize + 3;
    assert_eq!(results.len(), files, "{ev:?}");
    assert!(
        results.iter().all(|r| r["status"] == "passed"),
        "{results:?}"
    );
    // The DICOMDIR went last, after every file of its set was accepted.
    let accepted: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "accepted")
        .filter_map(|e| e["file"].as_str())
        .collect();
    assert_eq!(accepted.last(), Some(&"case-3/ct/DICOMDIR"), "{accepted:?}");

    let c = Client::new(gw.https, Some(TOKEN));
    let list = c.call("GET", "/v1/uploads?limit=500", &[], None).json();
    let find = |name: &str| {
        list["uploads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {list}"))
    };
    assert_eq!(find("case-3/note.txt")["sha256"], sha256(&note).as_str());
    assert_eq!(find("case-3/summary.pdf")["sha256"], sha256(&pdf).as_str());
    let dicomdir = find("case-3/ct/DICOMDIR");
    let r = c
        .call("GET", dicomdir["result"].as_str().unwrap(), &[], None)
        .json();
    assert!(r.to_string().contains("dicomdir.valid"), "{r}");
    assert!(
        !work.path().join(".gateway-push.json").exists()
            || std::fs::read_to_string(work.path().join(".gateway-push.json"))
                .unwrap()
                .contains("{}"),
        "finished uploads leave no secrets behind"
    );

    // A file the profile refuses: pushed, but the exit code says a check failed.
    let bad = work.path().join("program.pdf");
    std::fs::write(&bad, b"MZ\x90\x00\x03\x00\x00\x00\x04\x00").unwrap();
    let out = push_cmd(&gw, work.path())
        .args(["--wait", "60"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let ev = events(&out);
    let r = ev.iter().find(|e| e["event"] == "result").unwrap();
    assert_eq!(r["status"], "failed");
    assert_eq!(r["errors"][0], "type.not_allowed", "{r}");
}

#[test]
fn a_killed_push_resumes_where_the_gateway_has_it() {
    let gw = gateway();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("scan.txt");
    let plain: Vec<u8> = (0..12_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&file, &plain).unwrap();

    let mut first = push_cmd(&gw, work.path())
        .args(["--chunk-mib", "1", "--limit-rate", "4000000"])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    let started: serde_json::Value = loop {
        let line = lines.next().expect("push started").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "started" {
            break v;
        }
    };
    let url = started["upload"].as_str().unwrap().to_string();
    let path = &url[url.find("/v1/").unwrap()..];
    let c = Client::new(gw.https, Some(TOKEN));
    let deadline = Instant::now() + Duration::from_secs(30);
    let held = loop {
        let r = c.call("HEAD", path, &[("Tus-Resumable", "1.0.0")], None);
        let o: u64 = r
            .header("upload-offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if o >= 3 << 20 {
            break o;
        }
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(50));
    };
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(held < 12_000_000, "killed mid-file");

    let out = push_cmd(&gw, work.path())
        .args(["--wait", "60"])
        .arg(&file)
        .output()
        .unwrap();
    let ev = events(&out);
    assert!(
        out.status.success(),
        "{ev:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = ev.iter().find(|e| e["event"] == "started").unwrap();
    assert_eq!(again["upload"], url.as_str(), "the same upload: {again}");
    assert!(
        again["offset"].as_u64().unwrap() >= held,
        "continued at the gateway's offset: {again}"
    );
    let r = c.call("GET", &format!("{path}/result"), &[], None).json();
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(sha256(&plain).as_str())),
        "{r}"
    );
}
