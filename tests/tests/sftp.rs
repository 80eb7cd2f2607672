//! SFTP end to end with the OpenSSH `sftp` client against the real gateway binary:
//! uploads of sealed files, results read back over SFTP, resume after the client or the
//! gateway is killed mid-transfer, and what a tenant may not do.

use std::path::Path;
use std::process::Command;

use gateway_tests::sftp::*;
use gateway_tests::{sftp_batch, ssh_keygen};

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
    let pdf = gateway_fixtures::pdf::sample("BT (from paramiko) ET", true, false);
    let (local, sha) = s.sealed("p.pdf", &pdf);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/paramiko_sftp.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &s.gw.sftp.port().to_string(), CODE])
        .arg(&s.key)
        .arg(&local)
        .arg("from-paramiko.pdf")
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

#[test]
fn a_tenant_holds_at_most_its_session_limit() {
    let s = setup_with("max_sessions_per_tenant = 1");
    // One session held open: sftp reads its batch from a pipe that stays open.
    let mut held = Command::new("sftp");
    for opt in gateway_tests::SSH_OPTIONS {
        held.arg("-o").arg(opt);
    }
    let mut held = held
        .args(["-b", "-", "-P", &s.gw.sftp.port().to_string(), "-i"])
        .arg(&s.key)
        .arg(format!("{CODE}@127.0.0.1"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Logged in once it answers a command (only then is the limit reached).
    let mut stdin = held.stdin.take().unwrap();
    {
        use std::io::{BufRead, Write};
        stdin.write_all(b"pwd\n").unwrap();
        let mut lines = std::io::BufReader::new(held.stdout.take().unwrap()).lines();
        assert!(
            lines.any(|l| l.is_ok_and(|l| l.contains("Remote working directory"))),
            "the first session did not log in"
        );
    }
    let (code, refused) = s.sftp("pwd\n");
    assert_ne!(code, 0, "a second session was let in: {refused}");
    assert!(refused.contains("Permission denied"), "{refused}");
    let (_, metrics) = s.gw.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("gateway_ssh_auth_failures_total{reason=\"too_many_sessions\"} "),
        "{metrics}"
    );
    // The other tenant is not affected; the limit frees up when the session ends.
    let (code, out) = sftp_batch(s.gw.sftp, OTHER, &s.other_key, "pwd\n").unwrap();
    assert_eq!(code, 0, "{out}");
    drop(stdin);
    held.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while s.sftp("pwd\n").0 != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the ended session still counts"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish() {
    let mut s = setup();
    let plain = text_record(20_000_000, 8);
    let (local, sha) = s.sealed("long.txt", &plain);
    let mut put = put_in_background(&s, &local, "/inbox/long.txt");
    let held = wait_for_bytes(&s, "/inbox/long.txt", 1);
    assert!(held < 20_000_000, "the upload finished before the signal");
    let (status, took) = s.gw.stop(std::time::Duration::from_secs(30)).unwrap();
    assert!(status.success(), "{status:?}");
    assert!(
        put.wait().unwrap().success(),
        "the upload in flight was finished, not cut (gateway stopped after {took:?})\n{}",
        s.gw.log()
    );
    s.gw.restart_stopped().unwrap();
    let r = s.result("long.txt");
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(sha.as_str())),
        "{r}"
    );
}

/// The limits a connection lives under, probed with paramiko: open handles per session
/// (the 1,024 `limits@openssh.com` advertises), session channels per connection, and
/// the login deadline for a connection that never logs in.
#[test]
fn a_connection_holds_bounded_handles_channels_and_time() {
    let s = setup_with("login_timeout_secs = 3\nmax_channels_per_connection = 3\n");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/sftp_limits.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &s.gw.sftp.port().to_string(), CODE])
        .arg(&s.key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.gw.log()
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["handles"], 1024, "{r}");
    assert!(
        r["handle_refusal"]
            .as_str()
            .unwrap()
            .contains("sftp.too_many_handles"),
        "{r}"
    );
    assert_eq!(r["channels"], 3, "{r}");
    assert_eq!(r["alive_after_deadline"], true, "{r}");
    let closed = r["login_closed_after"].as_f64().unwrap();
    assert!((2.5..12.0).contains(&closed), "{r}");
    assert!(s.gw.admin_get("/healthz").unwrap().0 == 200);
}
