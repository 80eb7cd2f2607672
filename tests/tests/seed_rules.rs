//! The seeds' rules as written (docs/domain.md), through real clients against the
//! real binary: OpenSSH `sftp` and tus (the gateway's HTTP API as curl drives it).

use gateway::sealed::seal_to_vec;
use gateway_tests::http::Client;
use gateway_tests::{TestGateway, TestReviewer, TestTenant, sftp_batch, ssh_keygen};

const CODE: &str = "3501200000";
const TOKEN: &str = "tok-3501200000-seed-rules-aaaaaaaaaaaaaa";
const REVIEWER: &str = "rev-seed-rules-bbbbbbbbbbbbbbbbbbbbbbbbb";

struct Hospital {
    gw: TestGateway,
    key: std::path::PathBuf,
    dir: tempfile::TempDir,
    http: Client,
    review: Client,
}

fn nhi_review() -> Hospital {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), "k").unwrap();
    let gw = TestGateway::builder()
        .tenant(
            TestTenant::new(CODE)
                .profile("nhi-review")
                .token(TOKEN)
                .ssh_key(&public),
        )
        .reviewer(TestReviewer::new("review", &[CODE], REVIEWER))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let http = Client::new(gw.https, Some(TOKEN));
    let review = Client::new(gw.https, Some(REVIEWER));
    Hospital {
        gw,
        key,
        dir,
        http,
        review,
    }
}

impl Hospital {
    fn seal(&self, plain: &[u8]) -> Vec<u8> {
        seal_to_vec(&[self.gw.age_recipient().unwrap()], plain).unwrap()
    }

    /// `put`s each (local name, sealed bytes) under `/inbox` with OpenSSH `sftp`.
    fn sftp_put(&self, files: &[(&str, Vec<u8>)]) {
        let mut script = String::from("cd /inbox\n");
        for (name, bytes) in files {
            let local = self.dir.path().join(name.replace('/', "_"));
            std::fs::write(&local, bytes).unwrap();
            script += &format!("put {} {name}\n", local.display());
        }
        let (code, out) = sftp_batch(self.gw.sftp, CODE, &self.key, &script).unwrap();
        assert_eq!(code, 0, "{out}");
    }

    /// The result of `name` read back over SFTP (`/results/<name>.json`) once final.
    fn result_of(&self, name: &str) -> serde_json::Value {
        let local = self.dir.path().join("result.json");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let _ = std::fs::remove_file(&local);
            let get = format!("get /results/{name}.json {}\n", local.display());
            let (code, out) = sftp_batch(self.gw.sftp, CODE, &self.key, &get).unwrap();
            if code == 0 {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&local).unwrap()).unwrap();
                if v["status"] == "passed" || v["status"] == "failed" {
                    return v;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no result for {name}: {out}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

/// Rule 7: inpatient names (level-1 21 and 22) have a one-character case class, every
/// other code two; the case class is a character, not only a digit. The names are the
/// seeds' own examples, sent over SFTP and tus, and indexed part by part.
#[test]
fn inpatient_and_outpatient_case_names_from_the_seeds_pass_and_are_indexed_alike() {
    let h = nhi_review();
    let pdf = |n: u32| gateway_fixtures::pdf::sample(&format!("case {n}"), true, false);
    h.sftp_put(&[
        ("22A1123456.pdf", h.seal(&pdf(1))),
        ("21C3000123-2.pdf", h.seal(&pdf(2))),
        ("12A03123345.pdf", h.seal(&pdf(3))),
    ]);
    h.http.upload("11B09001352.pdf", &h.seal(&pdf(4)));
    h.http.upload("13B19012345_1.pdf", &h.seal(&pdf(5)));
    h.http.upload("22BA1123457.pdf", &h.seal(&pdf(6)));
    let mut seen = 0;
    for (name, l1, class, serial) in [
        ("22A1123456.pdf", "22", "1", "123456"),
        ("21C3000123-2.pdf", "21", "3", "000123"),
        ("12A03123345.pdf", "12", "03", "123345"),
        ("11B09001352.pdf", "11", "09", "001352"),
        ("13B19012345_1.pdf", "13", "19", "012345"),
    ] {
        let r = h.result_of(name);
        assert_eq!(r["status"], "passed", "{name}: {r}");
        // The review side finds it by its parts, whatever the form.
        let q = format!("/v1/files?tenant={CODE}&case_class={class}&serial={serial}");
        let files = h.review.call("GET", &q, &[], None).json();
        let found = files["files"].as_array().unwrap();
        assert_eq!(found.len(), 1, "{name}: {files}");
        let case = &found[0]["metadata"]["case"];
        assert_eq!(
            (case["level1"].as_str(), found[0]["name"].as_str()),
            (Some(l1), Some(name)),
            "{files}"
        );
        seen += 1;
    }
    assert_eq!(seen, 5);
    // 11 characters for an inpatient code is one too many.
    let r = h.result_of("22BA1123457.pdf");
    assert_eq!(r["status"], "failed", "{r}");
    let codes: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["severity"] == "error")
        .filter_map(|c| c["code"].as_str())
        .collect();
    assert_eq!(codes, ["naming.case_invalid"], "{r}");
}

/// An `nhi-review` hospital whose folders go quiet after `quiet` seconds.
fn nhi_review_quiet(quiet: u64) -> Hospital {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), "k").unwrap();
    let gw = TestGateway::builder()
        .tenant(
            TestTenant::new(CODE)
                .profile("nhi-review")
                .token(TOKEN)
                .ssh_key(&public),
        )
        .reviewer(TestReviewer::new("review", &[CODE], REVIEWER))
        .config(&format!("[pipeline]\nset_quiet_secs = {quiet}\n"))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let http = Client::new(gw.https, Some(TOKEN));
    let review = Client::new(gw.https, Some(REVIEWER));
    Hospital {
        gw,
        key,
        dir,
        http,
        review,
    }
}

fn error_codes(r: &serde_json::Value) -> Vec<String> {
    r["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["severity"] == "error")
        .filter_map(|c| c["code"].as_str().map(String::from))
        .collect()
}

/// Rules 6 and 16: DICOM reaches the review channel only as a DICOMDIR set. A loose
/// DICOM file (SFTP or tus) fails with `dicom.not_in_set` once its folder is quiet; a
/// STOW-RS instance fails at once; the same instances sent as a folder set with its
/// DICOMDIR pass.
#[test]
fn loose_dicom_is_refused_for_review_and_a_folder_set_passes() {
    let h = nhi_review_quiet(3);
    let plain = gateway_tests::dicom::instance("1.2.826.0.1.3680043.10.1.901");
    h.sftp_put(&[("loose.dcm", h.seal(&plain))]);
    let tus = h.http.upload(
        "case-1/IM0001",
        &h.seal(&gateway_tests::dicom::instance(
            "1.2.826.0.1.3680043.10.1.902",
        )),
    );
    let r = h.result_of("loose.dcm");
    assert_eq!(error_codes(&r), ["dicom.not_in_set"], "{r}");
    let r = h.http.wait_result(&tus);
    assert_eq!(error_codes(&r), ["dicom.not_in_set"], "{r}");

    // STOW-RS: a single instance is no set; refused without waiting.
    let boundary = "b0undary";
    let mut body = format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
    body.extend(gateway_tests::dicom::instance(
        "1.2.826.0.1.3680043.10.1.903",
    ));
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
    let started = std::time::Instant::now();
    let r = h.http.call(
        "POST",
        "/dicomweb/studies",
        &[("Content-Type", &ct), ("Accept", "application/dicom+json")],
        Some(&body),
    );
    assert_eq!(r.status, 409, "{r:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "refused at once"
    );
    let failed = &r.json()["00081198"]["Value"];
    assert_eq!(failed.as_array().map(Vec::len), Some(1), "{r:?}");

    // The same kind of files as a folder set (pydicom's FileSet), DICOMDIR last.
    let set = h.dir.path().join("set");
    let facts = gateway_tests::dicom::make_set(&set, 3, 0);
    let mut files: Vec<(String, Vec<u8>)> = facts["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let m = m.as_str().unwrap();
            (
                format!("ct/{m}"),
                h.seal(&std::fs::read(set.join(m)).unwrap()),
            )
        })
        .collect();
    files.push((
        "ct/DICOMDIR".into(),
        h.seal(&std::fs::read(set.join("DICOMDIR")).unwrap()),
    ));
    let mut script = String::from(
        "mkdir /inbox/ct\nmkdir /inbox/ct/PT000000\nmkdir /inbox/ct/PT000000/ST000000\nmkdir /inbox/ct/PT000000/ST000000/SE000000\n",
    );
    for (name, bytes) in &files {
        let local = h.dir.path().join(name.replace('/', "_"));
        std::fs::write(&local, bytes).unwrap();
        script += &format!("put {} /inbox/{name}\n", local.display());
    }
    let (code, out) = sftp_batch(h.gw.sftp, CODE, &h.key, &script).unwrap();
    assert_eq!(code, 0, "{out}");
    for (name, _) in &files {
        let r = h.result_of(name);
        assert_eq!(r["status"], "passed", "{name}: {r}");
    }
}

/// Rule 16: the review channel's packaging for DICOM, a CAB archive of a DICOMDIR set,
/// packed by gcab (checked with cabextract), sent over OpenSSH `sftp` and tus: both
/// pass with the set validated; a CAB missing a referenced image fails naming it.
#[test]
fn a_dicomdir_set_in_a_cab_passes_over_sftp_and_tus() {
    let h = nhi_review_quiet(600);
    let set = h.dir.path().join("set");
    let facts = gateway_tests::dicom::make_set(&set, 6, 0);
    let members: Vec<String> = facts["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    let pack = |name: &str, files: &[String]| -> Vec<u8> {
        let cab = h.dir.path().join(name);
        let ok = std::process::Command::new("gcab")
            .current_dir(&set)
            .arg("-cz")
            .arg(&cab)
            .arg("DICOMDIR")
            .args(files)
            .status()
            .expect("gcab (scripts/test-setup.sh)");
        assert!(ok.success());
        let t = std::process::Command::new("cabextract")
            .arg("-t")
            .arg(&cab)
            .output()
            .unwrap();
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stdout));
        h.seal(&std::fs::read(&cab).unwrap())
    };
    h.sftp_put(&[("ct-sftp.cab", pack("a.cab", &members))]);
    let up = h.http.upload("ct-tus.cab", &pack("b.cab", &members));
    h.http.upload(
        "ct-missing.cab",
        &pack("c.cab", &members[..members.len() - 1]),
    );
    for name in ["ct-sftp.cab", "ct-tus.cab"] {
        let r = h.result_of(name);
        assert_eq!(r["status"], "passed", "{name}: {r}");
        let text = r.to_string();
        assert!(
            text.contains("dicomdir.valid") && text.contains("cab.valid"),
            "{r}"
        );
        assert!(text.contains("6 instance(s)"), "{r}");
    }
    assert_eq!(h.http.wait_result(&up)["status"], "passed");
    let r = h.result_of("ct-missing.cab");
    assert_eq!(error_codes(&r), ["dicomdir.missing_file"], "{r}");
    assert!(
        r.to_string().contains(members.last().unwrap().as_str()),
        "{r}"
    );
}

/// Sealed-file formats people actually send: a PDF encrypted with AES-128 (qpdf, as
/// Acrobat 7–9 write them) passes with a warning; RC4 stays refused.
#[test]
fn an_aes128_pdf_passes_with_a_warning_and_rc4_is_refused() {
    let h = nhi_review();
    let plain = h.dir.path().join("plain.pdf");
    std::fs::write(&plain, gateway_fixtures::pdf::sample("report", true, false)).unwrap();
    let qpdf = |out: &str, aes: &str| {
        let path = h.dir.path().join(out);
        let mut c = std::process::Command::new("qpdf");
        if aes == "n" {
            c.arg("--allow-weak-crypto");
        }
        let ok = c
            .args(["--encrypt", "", "owner", "128"])
            .arg(format!("--use-aes={aes}"))
            .arg("--")
            .arg(&plain)
            .arg(&path)
            .status()
            .expect("qpdf (scripts/test-setup.sh)");
        assert!(ok.success());
        h.seal(&std::fs::read(&path).unwrap())
    };
    let aes = h.http.upload("12B03123345.pdf", &qpdf("aes.pdf", "y"));
    let rc4 = h.http.upload("12B03123346.pdf", &qpdf("rc4.pdf", "n"));
    let r = h.http.wait_result(&aes);
    assert_eq!(r["status"], "passed", "{r}");
    assert!(
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "pdf.aes128" && c["severity"] == "warning"),
        "{r}"
    );
    let r = h.http.wait_result(&rc4);
    assert_eq!(error_codes(&r), ["pdf.weak_encryption"], "{r}");
}

/// A gateway metric's value from `/metrics` (0 when absent).
fn metric(gw: &TestGateway, name_and_labels: &str) -> f64 {
    let (_, m) = gw.admin_get("/metrics").unwrap();
    m.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Writes `tenants`, sends SIGHUP and waits until the reload is counted.
fn reload(gw: &TestGateway, tenants: &[TestTenant], reloads: f64) {
    gw.write_tenants(tenants).unwrap();
    gw.signal("HUP").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(gw, "gateway_tenants_reloads_total{result=\"ok\"}") < reloads {
        assert!(std::time::Instant::now() < deadline, "no reload");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Rule 18: a suspension refuses every path with its reason (`auth.suspended`), and the
/// reload that suspends ends an OpenSSH transfer under way at once; what it sent stays
/// and `reput` finishes it once the suspension is lifted.
#[test]
fn a_suspension_ends_open_sessions_at_once_and_refuses_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), "k").unwrap();
    let hospital = TestTenant::new(CODE).token(TOKEN).ssh_key(&public);
    let gw = TestGateway::builder()
        .tenant(hospital.clone())
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let plain = gateway_tests::sftp::text_record(30_000_000, 5);
    let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &plain));
    let local = dir.path().join("big.txt");
    std::fs::write(
        &local,
        seal_to_vec(&[gw.age_recipient().unwrap()], &plain).unwrap(),
    )
    .unwrap();
    // About 2 MB/s, so the suspension lands mid-file.
    let mut sftp = std::process::Command::new("sftp");
    sftp.args([
        "-l",
        "16000",
        "-b",
        "-",
        "-P",
        &gw.sftp.port().to_string(),
        "-i",
    ])
    .arg(&key)
    .args([
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    ])
    .arg(format!("{CODE}@127.0.0.1"))
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = sftp.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "put {} /inbox/big.txt", local.display()).unwrap();
    }
    let held = |gw: &TestGateway| -> u64 {
        let (_, out) = sftp_batch(gw.sftp, CODE, &key, "ls -l /inbox/big.txt\n").unwrap();
        out.lines()
            .find(|l| l.ends_with("big.txt") && !l.starts_with("sftp>"))
            .and_then(|l| l.split_whitespace().nth(4))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while held(&gw) < 2 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the transfer made no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let suspended = hospital
        .clone()
        .suspended("indefinite", "quality review: records incomplete");
    reload(&gw, std::slice::from_ref(&suspended), 1.0);
    let ended = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            ended.elapsed() < std::time::Duration::from_secs(5),
            "the open session was not ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!child.wait().unwrap().success(), "the transfer was cut");
    assert_eq!(
        metric(
            &gw,
            "gateway_sessions_revoked_total{protocol=\"sftp\",reason=\"suspended\"}"
        ),
        1.0
    );
    let (code, out) = sftp_batch(gw.sftp, CODE, &key, "ls /inbox\n").unwrap();
    assert_ne!(code, 0, "a suspended hospital cannot log in: {out}");
    let r = Client::new(gw.https, Some(TOKEN)).call("GET", "/v1/uploads", &[], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "auth.suspended"),
        "{r:?}"
    );
    assert!(
        String::from_utf8_lossy(&r.raw).contains("quality review"),
        "{r:?}"
    );

    // Lifted: the partial upload is still there and `reput` finishes it.
    reload(&gw, std::slice::from_ref(&hospital), 2.0);
    let kept = held(&gw);
    assert!(kept >= 2 << 20, "what was sent is kept: {kept}");
    let (code, out) = sftp_batch(
        gw.sftp,
        CODE,
        &key,
        &format!("reput {} /inbox/big.txt\n", local.display()),
    )
    .unwrap();
    assert_eq!(code, 0, "{out}");
    let h = Hospital {
        key,
        http: Client::new(gw.https, Some(TOKEN)),
        review: Client::new(gw.https, Some(REVIEWER)),
        gw,
        dir,
    };
    let r = h.result_of("big.txt");
    assert_eq!(
        (r["status"].as_str(), r["sha256"].as_str()),
        (Some("passed"), Some(sha.as_str()))
    );
}

/// Rule 18 over HTTPS: a reload that removes the token a tus upload is streaming
/// with ends that PATCH at once (`403 auth.revoked`); the bytes that arrived are kept
/// for the hospital's other token, and the removed one is refused from then on.
#[test]
fn a_removed_token_ends_its_upload_under_way() {
    const OLD: &str = "tok-3501200000-old-cccccccccccccccccccccc";
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(OLD).token(TOKEN))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let file = seal_to_vec(
        &[gw.age_recipient().unwrap()],
        &gateway_tests::sftp::text_record(20_000_000, 6),
    )
    .unwrap();
    let old = Client::new(gw.https, Some(OLD));
    let len = file.len().to_string();
    let r = old.call(
        "POST",
        "/v1/uploads",
        &[
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Length", &len),
            ("Upload-Metadata", "filename YS50eHQ="),
        ],
        None,
    );
    assert_eq!(r.status, 201, "{r:?}");
    let url = r.header("location").unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    std::fs::write(&body, &file).unwrap();
    // curl streams the body at 2 MB/s.
    let curl = std::process::Command::new("curl")
        .args([
            "-sk",
            "--limit-rate",
            "2M",
            "-X",
            "PATCH",
            "-w",
            "\n%{http_code}",
        ])
        .args(["-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0"])
        .args(["-H", "Content-Type: application/offset+octet-stream"])
        .args(["-H", &format!("Authorization: Bearer {OLD}")])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(format!("https://{}{url}", gw.https))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    reload(&gw, &[TestTenant::new(CODE).token(TOKEN)], 1.0);
    let started = std::time::Instant::now();
    let out = curl.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // The answer (403 auth.revoked) comes while curl is still sending, so curl may
    // see the connection close first: either way the PATCH ends now, not in 8 s.
    assert!(
        (text.ends_with("403") && text.contains("auth.revoked")) || text.ends_with("000"),
        "{text}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "{text}"
    );
    let now = Client::new(gw.https, Some(TOKEN));
    let head = now.call("HEAD", &url, &[("Tus-Resumable", "1.0.0")], None);
    let kept: u64 = head.header("upload-offset").unwrap().parse().unwrap();
    assert!(kept > 0 && kept < file.len() as u64, "kept {kept}");
    let again = old.call("HEAD", &url, &[("Tus-Resumable", "1.0.0")], None);
    assert_eq!(again.status, 401);
    assert_eq!(
        metric(
            &gw,
            "gateway_sessions_revoked_total{protocol=\"tus\",reason=\"token_removed\"}"
        ),
        1.0
    );
}

/// Rule 17: a vendor acts for a hospital only when both consent — the vendor names the
/// hospital (`tenants`) and the hospital admits the vendor (`allow_vendors`). Over SFTP
/// (the vendor's own key, logged in as the hospital's code) and HTTPS (the vendor's
/// token and `X-Hospital-Code`); either side alone is `auth.vendor_not_allowed`; the
/// audit actor names both.
#[test]
fn a_vendor_acts_only_for_hospitals_that_admit_it() {
    const A: &str = "3501200000";
    const B: &str = "1101020018";
    const C: &str = "1201030003";
    const VENDOR_TOKEN: &str = "tok-vendor-his-co-dddddddddddddddddddd";
    let dir = tempfile::tempdir().unwrap();
    let (vkey, vpub) = ssh_keygen(dir.path(), "vendor").unwrap();
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(TOKEN))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let hash = |t: &str| gateway::tenants::TokenHash::of(t).to_string();
    let hospital = |code: &str, vendors: &str| {
        format!(
            "[[tenant]]\ncode = \"{code}\"\nname = \"H{code}\"\nprofile = \"generic\"\n\
             allow_ips = [\"127.0.0.0/8\"]\nallow_vendors = [{vendors}]\n\n"
        )
    };
    let tenants = format!(
        "{}{}{}[[principal]]\nname = \"his-co\"\nrole = \"vendor\"\ntenants = [\"{A}\", \"{B}\"]\n\
         token_hashes = [\"{}\"]\nssh_keys = [\"{}\"]\nallow_ips = [\"127.0.0.0/8\"]\n",
        hospital(A, "\"his-co\""),
        hospital(B, ""),
        hospital(C, "\"his-co\""),
        hash(VENDOR_TOKEN),
        vpub.trim(),
    );
    std::fs::write(&gw.tenants_path, tenants).unwrap();
    gw.signal("HUP").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&gw, "gateway_tenants_reloads_total{result=\"ok\"}") < 1.0 {
        assert!(std::time::Instant::now() < deadline, "no reload");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let sealed = seal_to_vec(
        &[gw.age_recipient().unwrap()],
        &gateway_tests::sftp::text_record(10_000, 8),
    )
    .unwrap();
    let local = dir.path().join("r.txt");
    std::fs::write(&local, &sealed).unwrap();

    // SFTP: admitted by A; B does not admit it; C is not one the vendor names.
    let put = format!("put {} /inbox/by-vendor.txt\n", local.display());
    let (code, out) = sftp_batch(gw.sftp, A, &vkey, &put).unwrap();
    assert_eq!(code, 0, "{out}");
    for other in [B, C] {
        let (code, out) = sftp_batch(gw.sftp, other, &vkey, "ls /inbox\n").unwrap();
        assert_ne!(code, 0, "{other}: {out}");
    }
    assert!(
        metric(
            &gw,
            "gateway_ssh_auth_failures_total{reason=\"vendor_not_allowed\"}"
        ) >= 2.0
    );

    // HTTPS: the vendor's token names the hospital.
    let vendor = Client::new(gw.https, Some(VENDOR_TOKEN));
    let r = vendor.call("GET", "/v1/uploads", &[], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "auth.hospital_missing"),
        "{r:?}"
    );
    let listed = String::from_utf8_lossy(&r.raw).to_string();
    assert!(
        listed.contains(A) && !listed.contains(B) && !listed.contains(C),
        "{listed}"
    );
    for other in [B, C] {
        let r = vendor.call("GET", "/v1/uploads", &[("X-Hospital-Code", other)], None);
        assert_eq!(
            (r.status, r.code().as_str()),
            (403, "auth.vendor_not_allowed"),
            "{other}"
        );
    }
    let len = sealed.len().to_string();
    let r = vendor.call(
        "POST",
        "/v1/uploads",
        &[
            ("X-Hospital-Code", A),
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Length", &len),
            ("Upload-Metadata", "filename dmlhLWh0dHBzLnR4dA=="),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        Some(&sealed),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let url = r.header("location").unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = vendor.call(
            "GET",
            &format!("{url}/result"),
            &[("X-Hospital-Code", A)],
            None,
        );
        assert_eq!(r.status, 200, "{r:?}");
        if r.json()["status"] == "passed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // A vendor is no reviewer.
    let r = vendor.call("GET", &format!("/v1/files?tenant={A}"), &[], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "auth.token_invalid"),
        "{r:?}"
    );

    // The audit log names the hospital and its vendor together.
    let db = gw.data_dir.join("catalog.db");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys\nfor (a,x) in sqlite3.connect(sys.argv[1]).execute(\"SELECT actor, action FROM audit_log\"): print(a, x)",
        ])
        .arg(&db)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains(&format!("{A} via vendor his-co ssh.login")),
        "{log}"
    );
    assert!(
        log.contains(&format!("{A} via vendor his-co vendor.upload")),
        "{log}"
    );
}

/// Rule 18: tokens can carry an expiry. `gateway tenants token CODE --days N` mints one
/// whose hash says until when; it works until then and is refused after with
/// `auth.token_expired` (the test moves the date back instead of waiting).
#[test]
fn a_token_minted_with_days_expires() {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let config = gw.config_path.to_str().unwrap().to_string();
    let out = gateway_tests::run_gateway(
        &[
            "tenants", "token", CODE, "--days", "30", "--config", &config,
        ],
        gw.dir(),
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let text = std::fs::read_to_string(&gw.tenants_path).unwrap();
    assert!(text.contains(";expires="), "{text}");
    gw.signal("HUP").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&gw, "gateway_tenants_reloads_total{result=\"ok\"}") < 1.0 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let c = Client::new(gw.https, Some(&token));
    assert_eq!(c.call("GET", "/v1/uploads", &[], None).status, 200);

    // Thirty days later, as far as the gateway can tell.
    let at = text.find(";expires=").unwrap() + ";expires=".len();
    let past = format!("{}2020-01-01T00:00:00Z{}", &text[..at], &text[at + 20..]);
    std::fs::write(&gw.tenants_path, past).unwrap();
    gw.signal("HUP").unwrap();
    while metric(&gw, "gateway_tenants_reloads_total{result=\"ok\"}") < 2.0 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = c.call("GET", "/v1/uploads", &[], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "auth.token_expired"),
        "{r:?}"
    );
    let other = Client::new(gw.https, Some(TOKEN)).call("GET", "/v1/uploads", &[], None);
    assert_eq!(other.status, 200, "the hospital's other token still works");
}

/// Rule 22: after a batch the hospital prints its upload result list — every file of the
/// folder with its status and codes — over SFTP (`/results/<batch>/SUMMARY.{json,csv,txt}`)
/// and HTTPS (`/v1/results/summary`).
#[test]
fn a_batch_folder_has_a_printable_result_list() {
    let h = nhi_review();
    let pdf = |n: u32| gateway_fixtures::pdf::sample(&format!("case {n}"), true, false);
    h.sftp_put(&[("12A03123345.pdf", h.seal(&pdf(1)))]);
    let (code, out) = sftp_batch(h.gw.sftp, CODE, &h.key, "mkdir /inbox/batch-7\n").unwrap();
    assert_eq!(code, 0, "{out}");
    h.sftp_put(&[
        ("batch-7/12A03123346.pdf", h.seal(&pdf(2))),
        ("batch-7/12B03123347.pdf", h.seal(&pdf(3))),
        (
            "batch-7/setup.pdf",
            h.seal(b"MZ\x90\x00\x03\x00\x00\x00 not a pdf"),
        ),
    ]);
    for n in [
        "batch-7/12A03123346.pdf",
        "batch-7/12B03123347.pdf",
        "batch-7/setup.pdf",
    ] {
        h.result_of(n);
    }
    let local = h.dir.path().join("summary");
    let mut got = std::collections::HashMap::new();
    for format in ["json", "csv", "txt"] {
        let _ = std::fs::remove_file(&local);
        let (code, out) = sftp_batch(
            h.gw.sftp,
            CODE,
            &h.key,
            &format!(
                "get /results/batch-7/SUMMARY.{format} {}\n",
                local.display()
            ),
        )
        .unwrap();
        assert_eq!(code, 0, "{out}");
        got.insert(format, std::fs::read_to_string(&local).unwrap());
    }
    let json: serde_json::Value = serde_json::from_str(&got["json"]).unwrap();
    assert_eq!(
        (
            json["files"].as_u64(),
            json["passed"].as_u64(),
            json["failed"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{json}"
    );
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows[2]["name"], "setup.pdf");
    assert_eq!(rows[2]["errors"][0], "type.not_allowed");
    assert!(
        !got["json"].contains("12A03123345"),
        "only the batch's own files"
    );
    let csv = &got["csv"];
    assert!(
        csv.starts_with("name,status,bytes,sha256,errors,warnings\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains("\"setup.pdf\",failed,") && csv.contains("\"type.not_allowed\""),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4);
    let txt = &got["txt"];
    assert!(
        txt.contains("3 file(s): 2 passed, 1 failed") && txt.contains("type.not_allowed"),
        "{txt}"
    );
    // The same list over HTTPS.
    let r = h.http.call(
        "GET",
        "/v1/results/summary?folder=batch-7&format=csv",
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(String::from_utf8_lossy(&r.raw).lines().count(), 4);
    let (_, out) = sftp_batch(h.gw.sftp, CODE, &h.key, "ls -l /results/batch-7\n").unwrap();
    assert!(
        out.contains("SUMMARY.csv") && out.contains("SUMMARY.txt"),
        "{out}"
    );
}

/// Rule 23: a hospital registers its SFTP host and its system (API) host separately;
/// each list governs its own channel.
#[test]
fn the_sftp_and_the_api_host_are_allowed_separately() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), "k").unwrap();
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN).ssh_key(&public))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let base = TestTenant::new(CODE).token(TOKEN).ssh_key(&public);
    let write = |extra: &str| {
        let text = gateway_tests::tenants_toml(std::slice::from_ref(&base))
            .replace("quota = ", &format!("{extra}\nquota = "));
        std::fs::write(&gw.tenants_path, text).unwrap();
    };
    let api = || {
        Client::new(gw.https, Some(TOKEN))
            .call("GET", "/v1/uploads", &[], None)
            .status
    };
    let sftp = || sftp_batch(gw.sftp, CODE, &key, "ls /inbox\n").unwrap().0;

    write("api_allow_ips = [\"10.0.0.0/8\"]");
    gw.signal("HUP").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&gw, "gateway_tenants_reloads_total{result=\"ok\"}") < 1.0 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        (sftp(), api()),
        (0, 401),
        "the SFTP host is this one, the API host is not"
    );

    write("sftp_allow_ips = [\"10.0.0.0/8\"]");
    gw.signal("HUP").unwrap();
    while metric(&gw, "gateway_tenants_reloads_total{result=\"ok\"}") < 2.0 {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_ne!(sftp(), 0, "the SFTP host is elsewhere now");
    assert_eq!(api(), 200);
}

/// Rule 26: an announced outage (dated, besides the daily window) holds the checks —
/// files are still received and wait as `checking` — and they run once it is over.
#[test]
fn an_announced_outage_holds_checks_and_they_run_after_it() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (from, to) = (now - 3600, now + 3600);
    let fmt = |t: i64| {
        // Local time at +00:00, so the outage is written in UTC here.
        let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
        let date = gateway::util::rfc3339(days * 86_400);
        format!("{}T{:02}:{:02}", &date[..10], secs / 3600, secs % 3600 / 60)
    };
    let outage = format!("{}/{}", fmt(from), fmt(to));
    let mut gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN))
        .config(&format!(
            "[pipeline]\nutc_offset = \"+00:00\"\noutages = [{outage:?}]\n"
        ))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let c = Client::new(gw.https, Some(TOKEN));
    let up = c.upload(
        "during.txt",
        &seal_to_vec(
            &[gw.age_recipient().unwrap()],
            b"received during the outage\n",
        )
        .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let r = c.call("GET", &format!("{up}/result"), &[], None).json();
    assert_eq!(r["status"], "checking", "{r}");
    assert_eq!(metric(&gw, "gateway_checks_paused"), 1.0);

    // The outage is over (the announcement withdrawn): the check runs.
    let config = std::fs::read_to_string(&gw.config_path).unwrap();
    std::fs::write(
        &gw.config_path,
        config.replace(&format!("outages = [{outage:?}]"), "outages = []"),
    )
    .unwrap();
    gw.restart().unwrap();
    gw.wait_ready().unwrap();
    let c = Client::new(gw.https, Some(TOKEN));
    assert_eq!(c.wait_result(&up)["status"], "passed");
}

/// Rule 19: the hospital learns what became of its files — its result says whether the
/// review side downloaded it, and a feed of its own files' events (checked, indexed,
/// downloaded, expired) shows the same over HTTPS; another hospital's never appear.
#[test]
fn a_hospital_sees_its_files_downloaded_in_its_results_and_its_own_feed() {
    const OTHER: &str = "1101020018";
    const OTHER_TOKEN: &str = "tok-1101020018-eeeeeeeeeeeeeeeeeeeeeeee";
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), "k").unwrap();
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN).ssh_key(&public))
        .tenant(TestTenant::new(OTHER).token(OTHER_TOKEN))
        .reviewer(TestReviewer::new("review", &[CODE, OTHER], REVIEWER))
        .config("[retention]\ngeneric_days = 14\nsweep_interval_secs = 1\n")
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let h = Hospital {
        http: Client::new(gw.https, Some(TOKEN)),
        review: Client::new(gw.https, Some(REVIEWER)),
        key,
        dir,
        gw,
    };
    let up = h
        .http
        .upload("record.txt", &h.seal(b"a record for the review side\n"));
    let unread = h
        .http
        .upload("unread.txt", &h.seal(b"a record nobody fetches\n"));
    let other = Client::new(h.gw.https, Some(OTHER_TOKEN));
    other.upload("theirs.txt", &h.seal(b"another hospital's record\n"));
    assert_eq!(h.http.wait_result(&up)["status"], "passed");
    assert_eq!(h.http.wait_result(&unread)["status"], "passed");
    let r = h.result_of("record.txt");
    assert_eq!(r["download"]["state"], "ready", "{r}");

    let files = h
        .review
        .call("GET", &format!("/v1/files?tenant={CODE}"), &[], None)
        .json();
    let id = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "record.txt")
        .and_then(|f| f["id"].as_str())
        .unwrap()
        .to_string();
    let got = h
        .review
        .call("GET", &format!("/v1/files/{id}/content"), &[], None);
    assert_eq!(got.status, 200);
    let r = h.result_of("record.txt");
    assert_eq!(
        (
            r["download"]["state"].as_str(),
            r["download"]["downloads"].as_u64()
        ),
        (Some("downloaded"), Some(1)),
        "{r}"
    );
    let r = h
        .http
        .call("GET", &format!("{up}/result"), &[], None)
        .json();
    assert_eq!(r["download"]["state"], "downloaded", "{r}");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let kinds = loop {
        let feed = h
            .http
            .call("GET", "/v1/hospital/events?wait=1", &[], None)
            .json();
        let events = feed["events"].as_array().unwrap().clone();
        assert!(
            events.iter().all(|e| e["tenant"] == CODE),
            "own files only: {feed}"
        );
        let kinds: Vec<String> = events
            .iter()
            .filter_map(|e| e["kind"].as_str().map(String::from))
            .collect();
        if kinds.iter().any(|k| k == "file.downloaded") {
            break kinds;
        }
        assert!(std::time::Instant::now() < deadline, "{feed}");
    };
    assert!(kinds.iter().any(|k| k == "file.indexed"), "{kinds:?}");

    // Rule 19's other outcome: the 14 days pass (the catalog's clock is moved, as the
    // test cannot wait two weeks); the file never fetched expired unread, the other
    // expired after its download — in the results and in the hospital's feed.
    let db = h.gw.data_dir.join("catalog.db");
    let moved = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=30); c.execute('UPDATE files SET expires_at = 1 WHERE tenant = ?', (sys.argv[2],)); c.commit()"])
        .arg(&db)
        .arg(CODE)
        .status()
        .unwrap();
    assert!(moved.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (a, b) = (h.result_of("unread.txt"), h.result_of("record.txt"));
        if a["download"]["state"] == "expired_unread" && b["download"]["state"] == "expired" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{a}\n{b}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let r = h
        .http
        .call("GET", &format!("{unread}/result"), &[], None)
        .json();
    assert_eq!(r["download"]["state"], "expired_unread", "{r}");
    let feed = h
        .http
        .call("GET", "/v1/hospital/events?wait=1", &[], None)
        .json();
    let expired = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "file.expired")
        .count();
    assert_eq!(expired, 2, "{feed}");
}

/// Rule 24: on a slow line what is durable after a break is measured in seconds, not
/// megabytes — a hospital's `durable_interval_secs` makes received bytes resumable
/// from within a second or so, long before `fsync_interval_bytes` (8 MiB) is reached.
#[test]
fn a_slow_line_keeps_what_it_sent_every_few_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), "k").unwrap();
    let gw = TestGateway::builder()
        .tenant(
            TestTenant::new(CODE)
                .ssh_key(&public)
                .raw("durable_interval_secs = 1"),
        )
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let local = dir.path().join("slow.txt");
    std::fs::write(
        &local,
        seal_to_vec(
            &[gw.age_recipient().unwrap()],
            &gateway_tests::sftp::text_record(4_000_000, 9),
        )
        .unwrap(),
    )
    .unwrap();
    // 800 kbit/s: 8 MiB would take 80 s.
    let mut sftp = std::process::Command::new("sftp");
    sftp.args([
        "-l",
        "800",
        "-b",
        "-",
        "-P",
        &gw.sftp.port().to_string(),
        "-i",
    ])
    .arg(&key)
    .args([
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
    ])
    .arg(format!("{CODE}@127.0.0.1"))
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let mut child = sftp.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "put {} /inbox/slow.txt", local.display()).unwrap();
    }
    let held = || -> u64 {
        let (_, out) = sftp_batch(gw.sftp, CODE, &key, "ls -l /inbox/slow.txt\n").unwrap();
        out.lines()
            .find(|l| l.ends_with("slow.txt") && !l.starts_with("sftp>"))
            .and_then(|l| l.split_whitespace().nth(4))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut seen = 0;
    while seen < 200_000 {
        assert!(
            std::time::Instant::now() < deadline,
            "only {seen} bytes durable after 15 s at 100 KB/s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        seen = held();
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(held() >= seen, "what was durable stays after the break");
}
