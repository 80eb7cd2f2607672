//! SFTP with more real clients and habits: `rclone` copying a folder tree (sealed PDFs
//! and a DICOMDIR set, the DICOMDIR last) and reading the results back, OpenSSH
//! `put -r` of a set with a missing file, and uploads under a temporary name that a
//! `rename` completes. The catalog's audit log records what was done and refused.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gateway_tests::dicom::make_set;
use gateway_tests::sftp::*;

/// pydicom's DICOMDIR set copied into `dir` (see interop/dicomdir_tree.py).
fn dicomdir_tree(dir: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/dicomdir_tree.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir)
        .output()
        .expect("python3 runs (scripts/test-setup.sh installs pydicom)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Seals every file under `plain` into the same place under `sealed`.
fn seal_tree(s: &Setup, plain: &Path, sealed: &Path) {
    for entry in std::fs::read_dir(plain).unwrap() {
        let path = entry.unwrap().path();
        let to = sealed.join(path.file_name().unwrap());
        if path.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            seal_tree(s, &path, &to);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            let sealed_bytes =
                gateway::sealed::seal_to_vec(std::slice::from_ref(&s.recipient), &bytes).unwrap();
            std::fs::write(&to, sealed_bytes).unwrap();
        }
    }
}

/// Runs rclone against the gateway; returns success, stdout and both outputs.
fn rclone(s: &Setup, args: &[&str]) -> (bool, String) {
    let (ok, _, all) = rclone_out(s, args);
    (ok, all)
}

fn rclone_out(s: &Setup, args: &[&str]) -> (bool, String, String) {
    let config = s.files.path().join("rclone.conf");
    if !config.exists() {
        std::fs::write(&config, "").unwrap();
    }
    let out = Command::new("rclone")
        .arg("--config")
        .arg(&config)
        .args([
            "--sftp-host",
            "127.0.0.1",
            "--sftp-port",
            &s.gw.sftp.port().to_string(),
            "--sftp-user",
            CODE,
            "--sftp-key-file",
        ])
        .arg(&s.key)
        .args(["--sftp-disable-hashcheck", "--low-level-retries", "1"])
        .args(args)
        .output()
        .expect("rclone runs (scripts/test-setup.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.success(), stdout, text)
}

/// Reads `/results/<name>.json` with rclone, waiting for the checks to finish.
fn rclone_result(s: &Setup, name: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, json, out) = rclone_out(s, &["cat", &format!(":sftp:/results/{name}.json")]);
        if ok
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&json)
            && v["status"] != "checking"
        {
            return v;
        }
        assert!(Instant::now() < deadline, "no result for {name}: {out}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn codes(result: &serde_json::Value) -> Vec<String> {
    result["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["code"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn sealed_pdf(s: &Setup, name: &str, body: &str) -> (PathBuf, String) {
    s.sealed(name, &gateway_fixtures::pdf::sample(body, true, false))
}

#[test]
fn rclone_copies_pdfs_and_a_dicomdir_set_and_reads_the_results() {
    let s = setup();
    let plain = s.files.path().join("plain");
    let facts = dicomdir_tree(&plain.join("ct-set"));
    let (pdf, pdf_sha) = sealed_pdf(&s, "summary.pdf", "BT (discharge) ET");
    let tree = s.files.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    seal_tree(&s, &plain, &tree);
    std::fs::copy(&pdf, tree.join("summary.pdf")).unwrap();

    // The set's rule: its files first, the DICOMDIR last.
    let local = tree.display().to_string();
    let (ok, out) = rclone(
        &s,
        &["copy", &local, ":sftp:/inbox/rc", "--exclude", "DICOMDIR"],
    );
    assert!(ok, "rclone copy: {out}");
    let (ok, out) = rclone(
        &s,
        &[
            "copy",
            &local,
            ":sftp:/inbox/rc",
            "--include",
            "/ct-set/DICOMDIR",
        ],
    );
    assert!(ok, "rclone copy of the DICOMDIR: {out}");

    let r = rclone_result(&s, "rc/summary.pdf");
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(pdf_sha.as_str())),
        "{r}"
    );
    let r = rclone_result(&s, "rc/ct-set/DICOMDIR");
    assert_eq!(r["status"], "passed", "{r}");
    assert!(codes(&r).contains(&"dicomdir.valid".to_string()), "{r}");
    // The counts agree with what pydicom reads of the same set.
    let counts = format!(
        "{} patient(s), {} study(ies), {} series, {} instance(s)",
        facts["patients"], facts["studies"], facts["series"], facts["instances"]
    );
    assert!(r.to_string().contains(&counts), "{counts}: {r}");
    let first = facts["members"][0].as_str().unwrap();
    let r = rclone_result(&s, &format!("rc/ct-set/{first}"));
    assert_eq!(
        r["status"], "passed",
        "each member is indexed on its own: {r}"
    );

    // rclone lists both trees; the set's files show in /inbox with their sizes.
    let (ok, out) = rclone(&s, &["lsf", "-R", ":sftp:/results/rc"]);
    assert!(
        ok && out.contains("ct-set/DICOMDIR.json") && out.contains("summary.pdf.txt"),
        "{out}"
    );
    let (ok, out) = rclone(&s, &["size", ":sftp:/inbox/rc"]);
    let files = facts["instances"].as_u64().unwrap() + 2;
    assert!(
        ok && out.contains(&format!("Total objects: {files}")),
        "{out}"
    );
}

#[test]
fn a_folder_set_missing_a_file_is_named_in_the_result() {
    // What is missing fails once the folder has been quiet this long.
    let s = setup_config("", "[pipeline]\nset_quiet_secs = 3\n", "generic");
    let plain = s.files.path().join("plain");
    let facts = dicomdir_tree(&plain);
    let missing = facts["members"][3].as_str().unwrap();
    std::fs::remove_file(plain.join(missing)).unwrap();
    let tree = s.files.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    seal_tree(&s, &plain, &tree);
    let dicomdir = tree.join("DICOMDIR");
    let dicomdir_away = s.files.path().join("DICOMDIR");
    std::fs::rename(&dicomdir, &dicomdir_away).unwrap();

    let (code, out) = s.sftp(&format!(
        "mkdir /inbox/case-9\nput -r {}/* /inbox/case-9/\nput {} /inbox/case-9/DICOMDIR\n",
        tree.display(),
        dicomdir_away.display()
    ));
    assert_eq!(code, 0, "{out}");
    let r = s.result("case-9/DICOMDIR");
    assert_eq!(r["status"], "failed", "{r}");
    let check = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "dicomdir.missing_file")
        .unwrap_or_else(|| panic!("{r}"));
    assert!(check.to_string().contains(missing), "{check}");
}

/// The status of `/results/<name>.json` now (`None` before it is accepted).
fn status_now(s: &Setup, name: &str) -> Option<String> {
    let local = s.files.path().join("now.json");
    let _ = std::fs::remove_file(&local);
    let (code, _) = s.sftp(&format!("get /results/{name}.json {}\n", local.display()));
    if code != 0 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&local).ok()?).ok()?;
    v["status"].as_str().map(String::from)
}

/// Real clients send a set's DICOMDIR whenever they like. OpenSSH `sftp` sends it
/// first, then some images; a large image is cut mid-transfer (the client killed) and
/// `reput` resumes it with the rest: the DICOMDIR waits (`checking`) while files it
/// references are missing and passes once the last one is accepted.
#[test]
fn a_folder_set_sent_dicomdir_first_and_resumed_completes_by_its_references() {
    let s = setup_config("", "[pipeline]\nset_quiet_secs = 60\n", "generic");
    let plain = s.files.path().join("plain");
    let set = make_set(&plain, 4, 24_000_000);
    let tree = s.files.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    seal_tree(&s, &plain, &tree);
    let members: Vec<&str> = set["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let big = *members
        .iter()
        .max_by_key(|m| set["sizes"][**m].as_u64().unwrap())
        .unwrap();
    let small: Vec<&str> = members.iter().copied().filter(|m| *m != big).collect();
    let mkdirs: String = [
        "PT000000",
        "PT000000/ST000000",
        "PT000000/ST000000/SE000000",
    ]
    .iter()
    .map(|d| format!("mkdir /inbox/set/{d}\n"))
    .collect();
    let put = |m: &str| format!("put {} /inbox/set/{m}\n", tree.join(m).display());

    // The DICOMDIR first, then two images.
    let (code, out) = s.sftp(&format!(
        "mkdir /inbox/set\n{mkdirs}put {} /inbox/set/DICOMDIR\n{}{}",
        tree.join("DICOMDIR").display(),
        put(small[0]),
        put(small[1])
    ));
    assert_eq!(code, 0, "{out}");
    let r = s.result(&format!("set/{}", small[1]));
    assert_eq!(
        r["status"], "passed",
        "each member is checked on its own: {r}"
    );
    assert_eq!(
        status_now(&s, "set/DICOMDIR").as_deref(),
        Some("checking"),
        "the DICOMDIR waits for the files it references"
    );

    // The big image, cut mid-transfer; then `reput` and the rest.
    let remote = format!("/inbox/set/{big}");
    let mut child = put_in_background(&s, &tree.join(big), &remote);
    wait_for_bytes(&s, &remote, 4 << 20);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        status_now(&s, "set/DICOMDIR").as_deref(),
        Some("checking"),
        "still waiting"
    );
    let (code, out) = s.sftp(&format!(
        "reput {} {remote}\n{}{}",
        tree.join(big).display(),
        put(small[2]),
        put(small[3])
    ));
    assert_eq!(code, 0, "{out}");
    let r = s.result("set/DICOMDIR");
    assert_eq!(r["status"], "passed", "{r}");
    assert!(
        r.to_string().contains("5 instance(s)"),
        "every member counted: {r}"
    );
}

/// rclone, told to send the DICOMDIR first, then interrupted by its own transfer limit
/// (`--max-transfer`, a hard cut-off), and run again — its resume sends what is missing.
#[test]
fn rclone_sends_the_dicomdir_first_and_its_rerun_completes_the_set() {
    let s = setup_config("", "[pipeline]\nset_quiet_secs = 60\n", "generic");
    let plain = s.files.path().join("plain");
    let facts = dicomdir_tree(&plain.join("ct-set"));
    let tree = s.files.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    seal_tree(&s, &plain, &tree);
    let local = tree.display().to_string();
    let (ok, out) = rclone(
        &s,
        &[
            "copy",
            &local,
            ":sftp:/inbox/rc",
            "--include",
            "/ct-set/DICOMDIR",
        ],
    );
    assert!(ok, "rclone copy of the DICOMDIR: {out}");
    // Interrupted part-way through the images.
    let (ok, out) = rclone(
        &s,
        &[
            "copy",
            &local,
            ":sftp:/inbox/rc",
            "--max-transfer",
            "60K",
            "--cutoff-mode",
            "hard",
            "--transfers",
            "4",
        ],
    );
    assert!(!ok, "the transfer limit interrupts the copy: {out}");
    assert_eq!(
        status_now(&s, "rc/ct-set/DICOMDIR").as_deref(),
        Some("checking"),
        "still waiting"
    );
    // Accepted files cannot be replaced (rule 10): the rerun compares sizes only, so it
    // skips what arrived whole and sends again what was cut.
    let (ok, out) = rclone(
        &s,
        &[
            "copy",
            &local,
            ":sftp:/inbox/rc",
            "--transfers",
            "4",
            "--size-only",
        ],
    );
    assert!(ok, "rclone's rerun: {out}");
    let r = rclone_result(&s, "rc/ct-set/DICOMDIR");
    assert_eq!(r["status"], "passed", "{r}");
    let counts = format!("{} instance(s)", facts["instances"]);
    assert!(r.to_string().contains(&counts), "{counts}: {r}");
}

fn audit_actions(s: &Setup) -> Vec<String> {
    let db = s.gw.data_dir.join("catalog.db");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys\nfor (a,) in sqlite3.connect(sys.argv[1]).execute(\"SELECT action FROM audit_log WHERE actor = ? ORDER BY id\", (sys.argv[2],)): print(a)",
        ])
        .arg(&db)
        .arg(CODE)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn a_temporary_name_is_accepted_when_renamed() {
    let s = setup();
    let (local, sha) = s.sealed("t.txt", &text_record(500_000, 9));
    let (code, out) = s.sftp(&format!(
        "put {} /inbox/report.txt.filepart\nls -l /inbox\nls /results\n",
        local.display()
    ));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("report.txt.filepart"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    let (_, out) = s.sftp("ls /results\n");
    assert!(
        !out.contains("report.txt"),
        "closed under a temporary name, not accepted: {out}"
    );

    let (code, out) = s.sftp("rename /inbox/report.txt.filepart /inbox/report.txt\nls /inbox\n");
    assert_eq!(code, 0, "{out}");
    let listed: Vec<&str> = out.lines().filter(|l| !l.starts_with("sftp>")).collect();
    assert!(listed.iter().all(|l| !l.contains("filepart")), "{out}");
    let r = s.result("report.txt");
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(sha.as_str())),
        "{r}"
    );

    // An accepted file is neither renamed nor replaced by a rename; a second session
    // that finds a parked temporary upload still completes it.
    let (code, out) = s.sftp(&format!(
        "put {} /inbox/second.txt.partial\n",
        local.display()
    ));
    assert_eq!(code, 0, "{out}");
    let (code, out) = s.sftp("rename /inbox/second.txt.partial /inbox/report.txt\n");
    assert_ne!(code, 0, "{out}");
    assert!(out.to_lowercase().contains("permission denied"), "{out}");
    let (code, out) = s.sftp("rename /inbox/report.txt /inbox/other.txt\n");
    assert_ne!(code, 0, "{out}");
    let (code, out) = s.sftp("rename /inbox/second.txt.partial /inbox/second.txt\n");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        s.result("second.txt")["checks"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["code"],
        "duplicate.same_content"
    );

    let actions = audit_actions(&s);
    for a in [
        "ssh.login",
        "sftp.open",
        "upload.renamed",
        "sftp.rename",
        "upload.accepted",
        "sftp.denied",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
}
