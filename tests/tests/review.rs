//! The review side over HTTPS, driven with curl as a reviewer would: filtered and
//! paginated file listings (DICOM filters checked against pydicom's reading of the
//! same files), metadata with check results, content with ranges, validators and
//! digests, the encrypted download opened with the `age` CLI, the long-poll event
//! feed, and tenant isolation between reviewers.

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use gateway::sealed::seal_to_vec;
use gateway_tests::http::Client;
use gateway_tests::sftp::text_record;
use gateway_tests::{TestGateway, TestReviewer, TestTenant};
use serde_json::Value;

const A: &str = "3501200000";
const B: &str = "1101020018";
const A_TOKEN: &str = "tok-3501200000-aaaaaaaaaaaaaaaaaaaaaaaa";
const B_TOKEN: &str = "tok-1101020018-bbbbbbbbbbbbbbbbbbbbbbbb";
const REV_A: &str = "rev-a-cccccccccccccccccccccccccccccc";
const REV_ALL: &str = "rev-all-dddddddddddddddddddddddddddd";
const REV_SEALED: &str = "rev-sealed-eeeeeeeeeeeeeeeeeeeeeeeee";

/// What pydicom reads from one of its bundled files.
struct Dicom {
    path: String,
    patient_id: String,
    study_uid: String,
    modality: String,
    study_date: String,
}

fn pydicom(name: &str) -> Dicom {
    let script = format!(
        "from pydicom.data import get_testdata_file as g\nimport pydicom\np = g({name:?})\n\
         d = pydicom.dcmread(p)\nprint(p); print(d.PatientID); print(d.StudyInstanceUID); \
         print(d.Modality); print(d.StudyDate)"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs (scripts/test-setup.sh installs pydicom)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let l: Vec<&str> = text.lines().collect();
    Dicom {
        path: l[0].into(),
        patient_id: l[1].into(),
        study_uid: l[2].into(),
        modality: l[3].into(),
        study_date: l[4].into(),
    }
}

/// An age identity made by `age-keygen`: (key file, recipient).
fn age_identity(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let key = dir.join("reviewer.key");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("age-keygen runs (scripts/test-setup.sh installs age)");
    assert!(out.status.success());
    let text = std::fs::read_to_string(&key).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (key, recipient)
}

fn age_decrypt(key: &std::path::Path, sealed: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.age");
    std::fs::write(&input, sealed).unwrap();
    gateway_tests::age_decrypt_file(key, &input)
}

struct Setup {
    gw: TestGateway,
    a: Client,
    b: Client,
    rev_a: Client,
    rev_all: Client,
    recipient: gateway::sealed::Recipient,
    _dir: tempfile::TempDir,
    age_key: std::path::PathBuf,
    age_recipient: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (age_key, age_recipient) = age_identity(dir.path());
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(A_TOKEN))
        .tenant(TestTenant::new(B).token(B_TOKEN))
        .reviewer(TestReviewer::new("rev-a", &[A], REV_A))
        .reviewer(TestReviewer::new("rev-all", &["*"], REV_ALL))
        .reviewer(TestReviewer::new("rev-sealed", &[A], REV_SEALED).age_recipient(&age_recipient))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let recipient = gw.age_recipient().unwrap();
    Setup {
        a: Client::new(gw.https, Some(A_TOKEN)),
        b: Client::new(gw.https, Some(B_TOKEN)),
        rev_a: Client::new(gw.https, Some(REV_A)),
        rev_all: Client::new(gw.https, Some(REV_ALL)),
        gw,
        recipient,
        _dir: dir,
        age_key,
        age_recipient,
    }
}

impl Setup {
    /// Uploads `plain` sealed as `name` for the tenant behind `c`; waits for its result.
    fn put(&self, c: &Client, name: &str, plain: &[u8]) -> Value {
        let sealed = seal_to_vec(std::slice::from_ref(&self.recipient), plain).unwrap();
        let url = c.upload(name, &sealed);
        c.wait_result(&url)
    }
}

fn files(c: &Client, query: &str) -> Vec<Value> {
    let r = c.call("GET", &format!("/v1/files{query}"), &[], None);
    assert_eq!(r.status, 200, "{query}: {r:?}");
    r.json()["files"].as_array().unwrap().clone()
}

fn names(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
}

#[test]
fn reviewers_list_filter_and_page_only_their_tenants_files() {
    let s = setup();
    let ct = pydicom("CT_small.dcm");
    let mr = pydicom("MR_small.dcm");
    for i in 1..=3u8 {
        let v = s.put(&s.a, &format!("r{i}.txt"), &text_record(1000, i));
        assert_eq!(v["status"], "passed", "{v}");
    }
    for (name, d) in [("ct.dcm", &ct), ("mr.dcm", &mr)] {
        let v = s.put(&s.a, name, &std::fs::read(&d.path).unwrap());
        assert_eq!(v["status"], "passed", "{v}");
    }
    assert_eq!(
        s.put(&s.b, "b1.txt", &text_record(500, 9))["status"],
        "passed"
    );

    let all = files(&s.rev_all, "");
    assert_eq!(all.len(), 6);
    let mine = files(&s.rev_a, "");
    assert_eq!(
        names(&mine),
        ["r1.txt", "r2.txt", "r3.txt", "ct.dcm", "mr.dcm"]
    );
    assert!(
        mine.iter()
            .all(|f| f["tenant"] == A && f["status"] == "ready")
    );

    // Not granted: B's file does not exist for rev-a, in any form.
    let theirs = files(&s.rev_all, &format!("?tenant={B}"));
    assert_eq!(names(&theirs), ["b1.txt"]);
    let id = theirs[0]["id"].as_str().unwrap();
    for path in [format!("/v1/files/{id}"), format!("/v1/files/{id}/content")] {
        let r = s.rev_a.call("GET", &path, &[], None);
        assert_eq!(
            (r.status, r.code().as_str()),
            (404, "file.not_found"),
            "{path}"
        );
    }
    assert!(files(&s.rev_a, &format!("?tenant={B}")).is_empty());

    // DICOM filters agree with pydicom.
    assert_eq!(names(&files(&s.rev_a, "?type=dicom")), ["ct.dcm", "mr.dcm"]);
    assert_eq!(
        names(&files(&s.rev_a, &format!("?modality={}", ct.modality))),
        ["ct.dcm"]
    );
    assert_eq!(
        names(&files(&s.rev_a, &format!("?patient_id={}", mr.patient_id))),
        ["mr.dcm"]
    );
    assert_eq!(
        names(&files(&s.rev_a, &format!("?study_uid={}", ct.study_uid))),
        ["ct.dcm"]
    );
    let d = &ct.study_date;
    assert_eq!(
        names(&files(&s.rev_a, &format!("?study_date={d}-{d}"))),
        ["ct.dcm"]
    );
    assert_eq!(
        names(&files(&s.rev_a, &format!("?study_date={}-", mr.study_date))),
        ["mr.dcm"]
    );
    assert_eq!(files(&s.rev_a, "?study_date=-20000101").len(), 0);
    assert_eq!(files(&s.rev_a, "?type=pdf").len(), 0);
    assert_eq!(files(&s.rev_a, "?indexed_from=2999-01-01").len(), 0);
    assert_eq!(
        files(&s.rev_a, "?uploaded_since=2000-01-01T00:00:00Z").len(),
        5
    );
    for bad in [
        "?status=lost",
        "?study_date=2004",
        "?indexed_from=soon",
        "?colour=red",
    ] {
        let r = s.rev_a.call("GET", &format!("/v1/files{bad}"), &[], None);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "http.bad_query"),
            "{bad}"
        );
    }

    // Pages of two while ingest continues: every file once, in order, none missed.
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    let mut extra = 0;
    loop {
        let r = s.rev_a.call(
            "GET",
            &format!("/v1/files?limit=2&cursor={cursor}"),
            &[],
            None,
        );
        let page = r.json();
        seen.extend(names(page["files"].as_array().unwrap()));
        cursor = page["next"].as_str().unwrap().to_string();
        if extra < 2 {
            extra += 1;
            s.put(
                &s.a,
                &format!("late{extra}.txt"),
                &text_record(100, 40 + extra),
            );
        }
        if page["more"] == false {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            "r1.txt",
            "r2.txt",
            "r3.txt",
            "ct.dcm",
            "mr.dcm",
            "late1.txt",
            "late2.txt"
        ]
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), seen.len());

    // One file: metadata and its check result.
    let ct_id = mine[3]["id"].as_str().unwrap();
    let r = s
        .rev_a
        .call("GET", &format!("/v1/files/{ct_id}"), &[], None);
    let f = r.json();
    assert_eq!(f["result"]["status"], "passed", "{f}");
    assert_eq!(
        f["metadata"]["dicom"]["patient_id"],
        ct.patient_id.as_str(),
        "{f}"
    );
    assert_eq!(
        f["sha256"],
        sha256_hex(&std::fs::read(&ct.path).unwrap()).as_str()
    );
    // Hospitals' tokens are not reviewers'.
    let r = s.a.call("GET", "/v1/files", &[], None);
    assert_eq!((r.status, r.code().as_str()), (401, "auth.token_invalid"));
}

#[test]
fn content_ranges_validators_digests_and_encrypted_download() {
    let s = setup();
    let plain = text_record(300_000, 7); // several 64 KiB chunks
    assert_eq!(s.put(&s.a, "big.txt", &plain)["status"], "passed");
    let f = &files(&s.rev_a, "")[0];
    let url = format!("/v1/files/{}/content", f["id"].as_str().unwrap());
    let sha = sha256_hex(&plain);
    let digest = format!(
        "sha-256=:{}:",
        base64::engine::general_purpose::STANDARD
            .encode(ring::digest::digest(&ring::digest::SHA256, &plain).as_ref())
    );

    let full = s.rev_a.call("GET", &url, &[], None);
    assert_eq!(full.status, 200);
    assert_eq!(full.raw, plain);
    assert_eq!(full.header("etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(full.header("content-digest"), Some(digest.as_str()));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));

    let n = plain.len();
    for (range, lo, hi) in [
        ("bytes=0-9", 0, 9),
        ("bytes=65530-131080", 65_530, 131_080), // across chunk boundaries
        ("bytes=-10", n - 10, n - 1),
        ("bytes=299990-", 299_990, n - 1),
    ] {
        let r = s.rev_a.call("GET", &url, &[("Range", range)], None);
        assert_eq!(r.status, 206, "{range}: {r:?}");
        assert_eq!(r.raw, &plain[lo..=hi], "{range}");
        let want = format!("bytes {lo}-{hi}/{n}");
        assert_eq!(r.header("content-range"), Some(want.as_str()), "{range}");
        assert_eq!(r.header("repr-digest"), Some(digest.as_str()));
        assert!(
            r.header("content-digest").is_none(),
            "a part is not the whole"
        );
    }
    let r = s
        .rev_a
        .call("GET", &url, &[("Range", "bytes=0-1,5-6")], None);
    assert_eq!((r.status, r.code().as_str()), (416, "range.multiple"));
    let r = s
        .rev_a
        .call("GET", &url, &[("Range", &format!("bytes={n}-"))], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (416, "range.not_satisfiable")
    );
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{n}").as_str())
    );
    let etag = format!("\"{sha}\"");
    let r = s.rev_a.call("GET", &url, &[("If-None-Match", &etag)], None);
    assert_eq!(r.status, 304);
    let r = s.rev_a.call(
        "GET",
        &url,
        &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
        None,
    );
    assert_eq!(
        (r.status, r.raw.len()),
        (200, n),
        "a stale If-Range gets the whole file"
    );

    // Downloads counted: the full GET, the ranges from byte 0 (bytes=0-9, the
    // stale-If-Range full answer), not the others.
    let f = &files(&s.rev_a, "")[0];
    assert_eq!(
        (f["status"].as_str(), f["downloads"].as_i64()),
        (Some("downloaded"), Some(3))
    );

    // Encrypted download: sealed to a recipient the request names, opened by `age`.
    let r = s.rev_a.call(
        "GET",
        &format!("{url}?recipient={}", s.age_recipient),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.raw.starts_with(b"age-encryption.org/v1\n"));
    assert_eq!(age_decrypt(&s.age_key, &r.raw), plain);
    // A reviewer with a registered recipient always gets sealed content.
    let sealed_rev = Client::new(s.gw.https, Some(REV_SEALED));
    let r = sealed_rev.call("GET", &url, &[], None);
    assert_eq!(r.status, 200);
    assert_ne!(r.raw, plain);
    assert_eq!(age_decrypt(&s.age_key, &r.raw), plain);
    let r = s
        .rev_a
        .call("GET", &format!("{url}?recipient=age1nope"), &[], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "download.bad_recipient")
    );
}

#[test]
fn the_event_feed_long_polls_and_shows_only_granted_tenants() {
    let s = setup();
    s.put(&s.a, "one.txt", &text_record(100, 1));
    s.put(&s.b, "theirs.txt", &text_record(100, 2));
    let r = s.rev_a.call("GET", "/v1/events?after=0", &[], None);
    let page = r.json();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    let e = &events[0];
    assert_eq!(
        (e["kind"].as_str(), e["tenant"].as_str()),
        (Some("file.indexed"), Some(A))
    );
    assert_eq!(e["schema"], 1);
    assert_eq!(e["sha256"], sha256_hex(&text_record(100, 1)).as_str());
    assert_eq!(e["checks"]["status"], "passed");
    assert!(e["event_id"].as_str().unwrap().starts_with("file.indexed:"));
    let next = page["next"].as_str().unwrap().to_string();

    // Nothing new: an immediate empty answer without wait, a long poll with it.
    let r = s
        .rev_a
        .call("GET", &format!("/v1/events?after={next}"), &[], None);
    assert_eq!(r.json()["events"].as_array().map(Vec::len), Some(0));
    let https = s.gw.https;
    let poll = std::thread::spawn(move || {
        let c = Client::new(https, Some(REV_A));
        let t = Instant::now();
        let r = c.call(
            "GET",
            &format!("/v1/events?after={next}&wait=20s"),
            &[],
            None,
        );
        (r.json(), t.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    // A new version of one.txt supersedes the old; a file sealed to someone else is
    // rejected; a download is an event too.
    s.put(&s.a, "one.txt", &text_record(100, 3));
    let (page, waited) = poll.join().unwrap();
    assert!(
        waited < Duration::from_secs(15),
        "the long poll answered on the event"
    );
    assert!(!page["events"].as_array().unwrap().is_empty(), "{page}");

    let stranger = gateway::sealed::Identity::generate().unwrap().to_public();
    let foreign = seal_to_vec(&[stranger], b"not for the gateway").unwrap();
    let r = s.a.call(
        "POST",
        "/v1/uploads",
        &[
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Length", &foreign.len().to_string()),
            ("Upload-Metadata", "filename Zm9yZWlnbi50eHQ="),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        Some(&foreign),
    );
    assert!(r.status >= 400, "{r:?}");
    let current = files(&s.rev_a, "?status=current");
    let id = current[0]["id"].as_str().unwrap();
    assert_eq!(
        s.rev_a
            .call("GET", &format!("/v1/files/{id}/content"), &[], None)
            .status,
        200
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let kinds = loop {
        let r = s
            .rev_a
            .call("GET", "/v1/events?after=0&limit=100", &[], None);
        let kinds: Vec<String> = r.json()["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect();
        if kinds.len() >= 5 || Instant::now() > deadline {
            break kinds;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        kinds,
        [
            "file.indexed",
            "file.superseded",
            "file.indexed",
            "upload.rejected",
            "file.downloaded"
        ]
    );
    // rev-all sees B's event as well.
    let r = s.rev_all.call("GET", "/v1/events?after=0", &[], None);
    let tenants: HashSet<String> = r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tenant"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tenants, HashSet::from([A.to_string(), B.to_string()]));
}
