//! rules 20 and 21 through real clients against the real binary: request ids
//! (tus metadata, file names, batch manifests; validated per profile, indexed,
//! filterable, in events, and the request window counted from the request's date) and
//! pre-checks (SFTP `/precheck/`, tus metadata `precheck`: the full check, never
//! indexed, handed on or counted against the quota, removed after their time).

use std::time::{Duration, Instant};

use gateway::sealed::seal_to_vec;
use gateway::util::{civil_from_days, months_before, unix_now};
use gateway_tests::http::Client;
use gateway_tests::{TestGateway, TestReviewer, TestTenant, sftp_batch, ssh_keygen};

const CODE: &str = "3501200000";
const TOKEN: &str = "tok-3501200000-requests-aaaaaaaaaaaaaaa";
const REVIEWER: &str = "rev-requests-bbbbbbbbbbbbbbbbbbbbbbbbbbb";

struct Hospital {
    gw: TestGateway,
    key: std::path::PathBuf,
    dir: tempfile::TempDir,
    http: Client,
    review: Client,
}

fn hospital(profile: &str, max_bytes: u64, config: &str) -> Hospital {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), "k").unwrap();
    let gw = TestGateway::builder()
        .tenant(
            TestTenant::new(CODE)
                .profile(profile)
                .token(TOKEN)
                .ssh_key(&public)
                .max_bytes(max_bytes),
        )
        .reviewer(TestReviewer::new("review", &[CODE], REVIEWER))
        .config(config)
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

    /// Runs an OpenSSH `sftp` batch; (exit code, output).
    fn sftp(&self, script: &str) -> (i32, String) {
        sftp_batch(self.gw.sftp, CODE, &self.key, script).unwrap()
    }

    fn put(&self, remote: &str, bytes: &[u8]) -> (i32, String) {
        let local = self.dir.path().join(remote.replace('/', "_"));
        std::fs::write(&local, bytes).unwrap();
        self.sftp(&format!("put {} {remote}\n", local.display()))
    }

    /// `/results/<rel>.json` over SFTP once final.
    fn sftp_result(&self, rel: &str) -> serde_json::Value {
        let local = self.dir.path().join("result.json");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let _ = std::fs::remove_file(&local);
            let (code, out) = self.sftp(&format!("get /results/{rel}.json {}\n", local.display()));
            if code == 0 {
                let v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&local).unwrap()).unwrap();
                if v["status"] == "passed" || v["status"] == "failed" {
                    return v;
                }
            }
            assert!(Instant::now() < deadline, "no result for {rel}: {out}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn files(&self, query: &str) -> Vec<serde_json::Value> {
        let r = self
            .review
            .call("GET", &format!("/v1/files?{query}"), &[], None);
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["files"].as_array().cloned().unwrap_or_default()
    }
}

/// Uploads `bytes` as `name` with tuspy (the tus project's Python client), with more
/// `Upload-Metadata` pairs; returns the upload's URL.
fn tuspy(h: &Hospital, name: &str, bytes: &[u8], meta: &[&str]) -> String {
    let file = h
        .dir
        .path()
        .join(format!("tuspy-{}", name.replace('/', "_")));
    std::fs::write(&file, bytes).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/tuspy_upload.py");
    let mut c = std::process::Command::new("python3");
    c.arg(script)
        .arg(format!("https://{}/v1/uploads", h.gw.https))
        .arg(TOKEN)
        .arg(&file)
        .arg(name)
        .arg(h.dir.path().join(format!("{name}.store").replace('/', "_")));
    for m in meta {
        c.args(["--meta", m]);
    }
    let out = c.output().expect("tuspy (scripts/test-setup.sh)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["url"].as_str().map(String::from))
        .expect("tuspy reports its upload URL")
}

fn codes(r: &serde_json::Value, severity: &str) -> Vec<String> {
    r["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["severity"] == severity)
        .map(|c| c["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `YYYYMMDD` of a day number.
fn ymd(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}{m:02}{d:02}")
}

/// An `emr-download` record: a PDF dated `day`, encrypted with AES-256 and an empty
/// user password by qpdf (the profile takes encrypted records only), sealed.
fn record(h: &Hospital, day: i64, n: u32) -> Vec<u8> {
    h.seal(&record_plain(h, day, n))
}

fn record_plain(h: &Hospital, day: i64, n: u32) -> Vec<u8> {
    let plain = h.dir.path().join(format!("plain-{n}.pdf"));
    let date = format!("D:{}090000+08'00'", ymd(day));
    let pdf = gateway_fixtures::pdf::sample_dated(&format!("record {n}"), false, false, &date);
    std::fs::write(&plain, pdf).unwrap();
    let out = h.dir.path().join(format!("enc-{n}.pdf"));
    let ok = std::process::Command::new("qpdf")
        .args(["--encrypt", "", "owner", "256", "--"])
        .arg(&plain)
        .arg(&out)
        .status()
        .expect("qpdf (scripts/test-setup.sh)");
    assert!(ok.success());
    std::fs::read(&out).unwrap()
}

/// Rule 20 with rule 3: a record eight months old answers a request made three months
/// ago — within six calendar months of the request, so it passes with the request id
/// from tus metadata, and fails without one (counted from the upload). The id from a
/// file name and from a batch manifest is indexed too; bad ids are refused at once.
#[test]
fn request_ids_are_validated_indexed_and_date_the_window() {
    let h = hospital("emr-download", 0, "");
    let today = unix_now().div_euclid(86_400);
    let request_day = months_before(today, 3);
    let record_day = months_before(today, 8);
    let id = format!("{CODE}{}00001", ymd(request_day));

    let request_meta = format!("request_id={id}");
    let with = tuspy(
        &h,
        "answer.pdf",
        &record(&h, record_day, 1),
        &[&request_meta],
    );
    let without = h.http.upload("unrequested.pdf", &record(&h, record_day, 2));
    let r = h.http.wait_result(&with);
    assert_eq!(r["status"], "passed", "{r}");
    let r = h.http.wait_result(&without);
    assert_eq!(codes(&r, "error"), ["pdf.record_too_old"], "{r}");

    let found = h.files(&format!("request_id={id}"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["name"], "answer.pdf");
    assert_eq!(found[0]["request_id"], id.as_str());
    assert_eq!(found[0]["metadata"]["request"]["source"], "upload");
    assert_eq!(
        found[0]["metadata"]["request"]["date"],
        gateway::pipeline::request::day_string(request_day)
    );
    let feed = h
        .http
        .call("GET", "/v1/hospital/events?wait=1", &[], None)
        .json();
    let indexed: Vec<&serde_json::Value> = feed["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "file.indexed")
        .collect();
    assert!(
        indexed.iter().any(|e| e["request_id"] == id.as_str()),
        "the event carries the request: {feed}"
    );

    // Refused before anything is created: a malformed id, another hospital's request.
    let bad = h
        .http
        .upload_with("x.pdf", b"-", &[("request_id", Some("12345"))]);
    assert_eq!(
        (bad.status, bad.code()),
        (400, "request.invalid_id".to_string()),
        "{bad:?}"
    );
    let other = format!("1101020018{}00001", ymd(request_day));
    let bad = h
        .http
        .upload_with("x.pdf", b"-", &[("request_id", Some(&other))]);
    assert_eq!(
        (bad.status, bad.code()),
        (400, "request.wrong_hospital".to_string())
    );

    // The file name carries it (OpenSSH sftp).
    let named = format!("{CODE}{}00002", ymd(request_day));
    let (code, out) = h.put(&format!("/inbox/{named}.pdf"), &record(&h, record_day, 3));
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.sftp_result(&format!("{named}.pdf"))["status"], "passed");
    let found = h.files(&format!("request_id={named}"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["metadata"]["request"]["source"], "name");

    // A batch manifest names the request of each file; a bad one fails the manifest.
    let listed = format!("{CODE}{}00003", ymd(today));
    let plain = record_plain(&h, today - 1, 4);
    let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &plain));
    let (code, out) = h.sftp("mkdir /inbox/batch-1\n");
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.put("/inbox/batch-1/r.pdf", &h.seal(&plain)).0, 0);
    let manifest = format!(
        r#"{{"files":[{{"name":"r.pdf","size":{},"sha256":"{sha}","request_id":"{listed}"}}]}}"#,
        plain.len()
    );
    assert_eq!(
        h.put("/inbox/batch-1.manifest.json", &h.seal(manifest.as_bytes()))
            .0,
        0
    );
    let r = h.sftp_result("batch-1.manifest.json");
    assert_eq!(r["status"], "passed", "{r}");
    let found = h.files(&format!("request_id={listed}"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["name"], "batch-1/r.pdf");
    assert_eq!(found[0]["metadata"]["request"]["source"], "manifest");
    let wrong = manifest.replace(&listed, "not-a-request");
    assert_eq!(
        h.put("/inbox/batch-2.manifest.json", &h.seal(wrong.as_bytes()))
            .0,
        0
    );
    let r = h.sftp_result("batch-2.manifest.json");
    assert!(
        codes(&r, "error").contains(&"request.invalid_id".to_string()),
        "{r}"
    );
}

/// Rule 21: pre-checks over SFTP and tus get the full check and a result, are never
/// indexed or handed on, pass even when the quota is full, and `/inbox/precheck` is
/// no back door into them.
#[test]
fn prechecks_are_checked_in_full_but_never_submitted_or_counted() {
    let pdf = gateway_fixtures::pdf::sample("report", true, false);
    // Room for one real upload only (a sealed file's length depends on the plaintext's
    // alone, so any recipient's tells it).
    let any = gateway::sealed::Identity::generate().unwrap().to_public();
    let quota = seal_to_vec(&[any], &pdf).unwrap().len() as u64 + 100;
    let h = hospital("nhi-review", quota, "");
    let sealed = h.seal(&pdf);

    let (code, out) = h.put("/inbox/12A03123345.pdf", &sealed);
    assert_eq!(code, 0, "{out}");
    assert_eq!(h.sftp_result("12A03123345.pdf")["status"], "passed");
    let (code, _) = h.put("/inbox/12A03123346.pdf", &h.seal(&pdf));
    assert_ne!(code, 0, "the quota is full");

    let (code, out) = h.put("/precheck/12A03123347.pdf", &h.seal(&pdf));
    assert_eq!(code, 0, "a pre-check is not held to the quota: {out}");
    let exe = h.seal(b"MZ\x90\x00\x03\x00\x00\x00 not a pdf");
    assert_eq!(h.put("/precheck/12A03123348.pdf", &exe).0, 0);
    let good = h.sftp_result("precheck/12A03123347.pdf");
    assert_eq!(
        (good["status"].as_str(), good["precheck"].as_bool()),
        (Some("passed"), Some(true)),
        "{good}"
    );
    let bad = h.sftp_result("precheck/12A03123348.pdf");
    assert_eq!(codes(&bad, "error"), ["type.not_allowed"], "{bad}");

    let tus = tuspy(&h, "12A03123349.pdf", &h.seal(&pdf), &["precheck=yes"]);
    let r = h.http.wait_result(&tus);
    assert_eq!(
        (r["status"].as_str(), r["precheck"].as_bool()),
        (Some("passed"), Some(true)),
        "{r}"
    );
    assert_eq!(r["name"], "precheck/12A03123349.pdf");

    // Nothing indexed or handed on but the one real file.
    let files = h.files("status=any");
    let names: Vec<&str> = files.iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, ["12A03123345.pdf"]);
    let feed = h
        .http
        .call("GET", "/v1/hospital/events?wait=1", &[], None)
        .json();
    assert!(!feed.to_string().contains("precheck/"), "{feed}");

    // The folders as a client sees them.
    let (_, out) = h.sftp("ls /\nls /inbox\nls /precheck\n");
    assert!(
        out.contains("precheck") && out.contains("12A03123347.pdf"),
        "{out}"
    );
    let (_, inbox) = h.sftp("ls /inbox\n");
    assert!(!inbox.contains("precheck"), "{inbox}");
    let (code, out) = h.put("/inbox/precheck/12A03123350.pdf", &h.seal(&pdf));
    // OpenSSH shows the status code only; the message (`/inbox/precheck is reserved`)
    // is in the gateway's audit record. Nothing was created in either folder.
    assert_ne!(code, 0);
    assert!(out.contains("Permission denied"), "{out}");
    let (_, out) = h.sftp(
        "ls -R /precheck
ls -R /inbox
",
    );
    assert!(!out.contains("12A03123350"), "{out}");
    let r = h.http.upload_with("precheck/12A03123350.pdf", b"-", &[]);
    assert_eq!(
        (r.status, r.code()),
        (400, "ingest.name_not_allowed".to_string())
    );
}

/// Rule 21's "removed after a day", with the day shortened to nothing: once the sweep
/// runs, the pre-check's result and bytes are gone, and its removal is counted.
#[test]
fn a_precheck_is_removed_after_its_time() {
    let h = hospital(
        "generic",
        0,
        "[ingest]\nprecheck_hours = 0\nhousekeeping_interval_secs = 1\n",
    );
    let up = h
        .http
        .upload_with("a.pdf", &h.seal(b"%PDF-1.4 plain"), &[("precheck", None)]);
    assert_eq!(up.status, 201, "{up:?}");
    let url = up.header("location").unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = h.http.call("GET", &format!("{url}/result"), &[], None);
        if r.status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "still there: {r:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let spool = h.gw.data_dir.join("spool").join(CODE);
    let left = std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "no bytes left in {}", spool.display());
    let (_, m) = h.gw.admin_get("/metrics").unwrap();
    assert!(
        m.lines()
            .any(|l| l
                .starts_with("gateway_housekeeping_uploads_total{action=\"precheck_removed\"} ")),
        "{m}"
    );
}
