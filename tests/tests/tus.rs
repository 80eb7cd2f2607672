//! tus 1.0 driven by hand with `curl`: every header of the core protocol and of the
//! creation, creation-with-upload, creation-defer-length, checksum, expiration and
//! termination extensions, and every refusal with its status and stable code.

use base64::Engine;
use gateway::sealed::seal_to_vec;
use gateway_tests::http::{Client, Reply};
use gateway_tests::{TestGateway, TestTenant};

const CODE: &str = "3501200000";
const OTHER: &str = "1101020018";
const FAR: &str = "1317040011";
const TOKEN: &str = "tok-3501200000-aaaaaaaaaaaaaaaaaaaaaaaa";
const OTHER_TOKEN: &str = "tok-1101020018-bbbbbbbbbbbbbbbbbbbbbbbb";
const FAR_TOKEN: &str = "tok-1317040011-cccccccccccccccccccccccc";
const SLOW: &str = "1501010010";
const SLOW_TOKEN: &str = "tok-1501010010-dddddddddddddddddddddddd";
const V: (&str, &str) = ("Tus-Resumable", "1.0.0");
const BODY: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

struct Setup {
    gw: TestGateway,
    tus: Client,
    recipient: gateway::sealed::Recipient,
}

fn setup() -> Setup {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN))
        .tenant(TestTenant::new(OTHER).token(OTHER_TOKEN).max_bytes(10_000))
        .tenant(
            TestTenant::new(FAR)
                .token(FAR_TOKEN)
                .allow_ips(&["10.0.0.0/8"]),
        )
        .tenant(
            TestTenant::new(SLOW)
                .token(SLOW_TOKEN)
                .requests_per_second(1),
        )
        .config("[ingest]\nmax_file_bytes = 50000000\n")
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let recipient = gw.age_recipient().unwrap();
    let tus = Client::new(gw.https, Some(TOKEN));
    Setup { gw, tus, recipient }
}

fn meta(name: &str) -> String {
    format!(
        "filename {},filetype dGV4dC9wbGFpbg==",
        base64::engine::general_purpose::STANDARD.encode(name)
    )
}

fn sealed(s: &Setup, plain: &[u8]) -> Vec<u8> {
    seal_to_vec(std::slice::from_ref(&s.recipient), plain).unwrap()
}

fn record(len: usize) -> Vec<u8> {
    let mut v = b"record\n".to_vec();
    v.extend((0..len).map(|i| b'a' + (i % 26) as u8));
    v
}

fn sha256_hex(b: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn b64_sha256(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
}

/// POST with Upload-Length; returns the upload's path.
fn create(c: &Client, name: &str, len: usize) -> String {
    let len = len.to_string();
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[V, ("Upload-Length", &len), ("Upload-Metadata", &meta(name))],
        None,
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert!(r.header("upload-expires").is_some(), "{r:?}");
    r.header("location").unwrap().to_string()
}

fn patch(c: &Client, url: &str, offset: usize, body: &[u8], extra: &[(&str, &str)]) -> Reply {
    let off = offset.to_string();
    let mut h = vec![V, BODY, ("Upload-Offset", off.as_str())];
    h.extend_from_slice(extra);
    c.call("PATCH", url, &h, Some(body))
}

fn result(c: &Client, url: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = c.call("GET", &format!("{url}/result"), &[], None);
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json();
        if v["status"] == "passed" || v["status"] == "failed" {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "no result: {v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn the_raw_protocol_with_curl() {
    let s = setup();
    let c = &s.tus;
    let r = c.call("OPTIONS", "/v1/uploads", &[], None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("tus-version"), Some("1.0.0"));
    assert_eq!(r.header("tus-max-size"), Some("50000000"));
    let ext = r.header("tus-extension").unwrap();
    for e in [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "checksum",
        "expiration",
        "termination",
    ] {
        assert!(ext.split(',').any(|x| x == e), "{e} in {ext}");
    }
    assert!(
        r.header("tus-checksum-algorithm")
            .unwrap()
            .contains("sha256")
    );

    let plain = record(300_000);
    let file = sealed(&s, &plain);
    let url = create(c, "note.txt", file.len());
    let half = file.len() / 2;
    let r = patch(c, &url, 0, &file[..half], &[]);
    assert_eq!(
        (r.status, r.header("upload-offset")),
        (204, Some(half.to_string().as_str())),
        "{r:?}"
    );
    assert_eq!(r.header("tus-resumable"), Some("1.0.0"));

    let r = c.call("HEAD", &url, &[V], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("upload-offset"), Some(half.to_string().as_str()));
    assert_eq!(
        r.header("upload-length"),
        Some(file.len().to_string().as_str())
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));

    // Wrong offset: 409 with the right one; a checksum mismatch: 460, nothing appended.
    let r = patch(c, &url, 10, &file[10..20], &[]);
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "ingest.offset_mismatch"),
        "{r:?}"
    );
    assert_eq!(r.header("upload-offset"), Some(half.to_string().as_str()));
    let wrong = format!("sha256 {}", b64_sha256(b"something else"));
    let r = patch(c, &url, half, &file[half..], &[("Upload-Checksum", &wrong)]);
    assert_eq!(
        (r.status, r.code().as_str()),
        (460, "tus.checksum_mismatch"),
        "{r:?}"
    );
    let r = c.call("HEAD", &url, &[V], None);
    assert_eq!(
        r.header("upload-offset"),
        Some(half.to_string().as_str()),
        "nothing appended"
    );

    let right = format!("sha256 {}", b64_sha256(&file[half..]));
    let r = patch(c, &url, half, &file[half..], &[("Upload-Checksum", &right)]);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        r.header("upload-offset"),
        Some(file.len().to_string().as_str())
    );
    let v = result(c, &url);
    assert_eq!(
        (v["status"].as_str(), v["sha256"].as_str()),
        (Some("passed"), Some(sha256_hex(&plain).as_str())),
        "{v}"
    );

    // Accepted: never deleted, never appended to.
    let r = c.call("DELETE", &url, &[V], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "ingest.not_receiving"),
        "{r:?}"
    );
    let r = patch(c, &url, file.len(), b"x", &[]);
    assert_eq!(r.status, 403, "{r:?}");

    // Listed, newest first, with a cursor.
    let r = c.call("GET", "/v1/uploads?status=indexed&limit=1", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["uploads"][0]["name"], "note.txt", "{v}");
}

#[test]
fn creation_with_upload_defer_length_and_termination() {
    let s = setup();
    let c = &s.tus;
    let plain = record(100_000);
    let file = sealed(&s, &plain);

    // creation-with-upload: the whole file in the POST.
    let len = file.len().to_string();
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[
            V,
            BODY,
            ("Upload-Length", &len),
            ("Upload-Metadata", &meta("with-body.txt")),
        ],
        Some(&file),
    );
    assert_eq!(
        (r.status, r.header("upload-offset")),
        (201, Some(len.as_str())),
        "{r:?}"
    );
    let url = r.header("location").unwrap().to_string();
    assert_eq!(result(c, &url)["status"], "passed");

    // creation-defer-length: the length comes with the last PATCH.
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[
            V,
            ("Upload-Defer-Length", "1"),
            ("Upload-Metadata", &meta("deferred.txt")),
        ],
        None,
    );
    assert_eq!(r.status, 201, "{r:?}");
    let url = r.header("location").unwrap().to_string();
    let r = c.call("HEAD", &url, &[V], None);
    assert_eq!(r.header("upload-defer-length"), Some("1"), "{r:?}");
    let r = patch(c, &url, 0, &file[..1000], &[]);
    assert_eq!(r.status, 204, "{r:?}");
    let r = patch(c, &url, 1000, &file[1000..], &[("Upload-Length", &len)]);
    assert_eq!(r.status, 204, "{r:?}");
    let v = result(c, &url);
    assert_eq!(
        v["checks"].as_array().unwrap().last().unwrap()["code"],
        "duplicate.same_content",
        "{v}"
    );

    // termination: a partial upload goes; afterwards it is gone (410).
    let url = create(c, "abandoned.txt", file.len());
    assert_eq!(patch(c, &url, 0, &file[..500], &[]).status, 204);
    let r = c.call("DELETE", &url, &[V], None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(c.call("HEAD", &url, &[V], None).status, 410);
    let r = patch(c, &url, 500, &file[500..], &[]);
    assert_eq!(
        (r.status, r.code().as_str()),
        (410, "ingest.expired"),
        "{r:?}"
    );
}

#[test]
fn refusals_have_their_codes() {
    let s = setup();
    let c = &s.tus;
    let file = sealed(&s, &record(1000));
    let url = create(c, "mine.txt", file.len());

    let anon = Client::new(s.gw.https, None);
    let r = anon.call("HEAD", &url, &[V], None);
    assert_eq!(r.status, 401);
    let r = anon.call("GET", "/v1/uploads", &[], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "auth.token_missing"),
        "{r:?}"
    );
    let wrong = Client::new(s.gw.https, Some("tok-not-a-real-one"));
    let r = wrong.call("GET", "/v1/uploads", &[], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "auth.token_invalid"),
        "{r:?}"
    );
    assert_eq!(r.header("content-type"), Some("application/problem+json"));

    // Another tenant's upload does not exist for it.
    let other = Client::new(s.gw.https, Some(OTHER_TOKEN));
    let r = other.call("GET", &format!("{url}/result"), &[], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (404, "ingest.not_found"),
        "{r:?}"
    );
    let r = patch(&other, &url, 0, &file, &[]);
    assert_eq!(r.status, 404, "{r:?}");

    // A tenant whose allow-list does not hold 127.0.0.1: answered exactly as a token
    // nobody has (no oracle for a stolen token), told apart only in the metrics.
    let far = Client::new(s.gw.https, Some(FAR_TOKEN));
    let r = far.call("GET", "/v1/uploads", &[], None);
    let unknown = Client::new(s.gw.https, Some("tok-nobody-has-this-xxxxxxxxxxxxxxxx"));
    let u = unknown.call("GET", "/v1/uploads", &[], None);
    assert_eq!(
        (r.status, r.code(), r.body.clone()),
        (u.status, u.code(), u.body.clone()),
        "{r:?} / {u:?}"
    );
    assert_eq!((r.status, r.code().as_str()), (401, "auth.token_invalid"));

    // Size and quota, name, protocol version, media type.
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[
            V,
            ("Upload-Length", "60000000"),
            ("Upload-Metadata", &meta("big.txt")),
        ],
        None,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (413, "ingest.too_large"),
        "{r:?}"
    );
    let r = other.call(
        "POST",
        "/v1/uploads",
        &[
            V,
            ("Upload-Length", "20000"),
            ("Upload-Metadata", &meta("q.txt")),
        ],
        None,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (507, "ingest.quota_bytes"),
        "{r:?}"
    );
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[
            V,
            ("Upload-Length", "10"),
            ("Upload-Metadata", &meta("病歷.pdf")),
        ],
        None,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "ingest.name_not_allowed"),
        "{r:?}"
    );
    let r = c.call("POST", "/v1/uploads", &[V, ("Upload-Length", "10")], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "tus.bad_metadata"),
        "{r:?}"
    );
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[("Upload-Length", "10"), ("Upload-Metadata", &meta("a.txt"))],
        None,
    );
    assert_eq!(
        (r.status, r.header("tus-version")),
        (412, Some("1.0.0")),
        "{r:?}"
    );
    let r = c.call("PATCH", &url, &[V, ("Upload-Offset", "0")], Some(b"x"));
    assert_eq!(
        (r.status, r.code().as_str()),
        (415, "tus.content_type"),
        "{r:?}"
    );
    let r = c.call("GET", "/v1/uploads/nope/result", &[], None);
    assert_eq!(r.status, 404);

    // Bytes that are not sealed to the gateway are refused at once, with the code.
    let r = patch(c, &url, 0, &[b'x'; 1000], &[]);
    assert_eq!(
        (r.status, r.code().as_str()),
        (422, "sealed.not_age_file"),
        "{r:?}"
    );
    let v = result(c, &url);
    assert_eq!(v["status"], "failed", "{v}");
    let (_, metrics) = s.gw.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("gateway_http_auth_failures_total{reason=\"ip_not_allowed\"} 1"),
        "{metrics}"
    );

    // A hospital limited to one call per second (bursts of two) is slowed down.
    let slow = Client::new(s.gw.https, Some(SLOW_TOKEN));
    let first: Vec<u16> = (0..2)
        .map(|_| slow.call("GET", "/v1/uploads", &[], None).status)
        .collect();
    assert_eq!(first, [200, 200]);
    let r = slow.call("GET", "/v1/uploads", &[], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "http.rate_limited"),
        "{r:?}"
    );
    assert_eq!(r.header("retry-after"), Some("1"));
}

/// A gateway whose bodies idle out after 1 s, and an upload of `len` bytes created for
/// a hand-driven client: (gateway, client, sealed file, its local copy, upload path).
fn slow_client_setup(
    name: &str,
    len: usize,
) -> (TestGateway, Client, Vec<u8>, std::path::PathBuf, String) {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN))
        .https_config("body_idle_timeout_secs = 1")
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let recipient = gw.age_recipient().unwrap();
    let c = Client::new(gw.https, Some(TOKEN));
    let file = seal_to_vec(&[recipient], &record(len)).unwrap();
    let local = gw.dir().join(format!("{name}.age"));
    std::fs::write(&local, &file).unwrap();
    let url = create(&c, &format!("{name}.txt"), file.len());
    (gw, c, file, local, url)
}

#[test]
fn a_stalled_body_is_cut_and_what_arrived_is_kept() {
    let (gw, c, file, local, url) = slow_client_setup("slow", 500_000);

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/slow_patch.py");
    let mut slow = std::process::Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &gw.https.port().to_string(), &url, TOKEN])
        .arg(&local)
        .arg("200000")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(slow.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "stalled");
    // While the slow request holds the upload, another writer is turned away.
    let r = patch(&c, &url, 0, &file, &[]);
    assert_eq!((r.status, r.code().as_str()), (423, "tus.busy"), "{r:?}");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut out, &mut answer).unwrap();
    slow.wait().unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("http.body_idle"),
        "{answer}"
    );
    // What arrived before the stall is kept: the upload continues from there.
    let r = c.call("HEAD", &url, &[V], None);
    assert_eq!(r.header("upload-offset"), Some("200000"), "{r:?}");
    let r = patch(&c, &url, 200_000, &file[200_000..], &[]);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(result(&c, &url)["status"], "passed");
}

/// Every byte arrives, then the request breaks before it ends (the client claimed more
/// than it sent, or went away): nothing is left to resume, so the upload is completed
/// there and then instead of waiting as a partial upload until it expires.
#[test]
fn a_body_that_breaks_after_its_last_byte_still_completes() {
    let (gw, c, file, local, url) = slow_client_setup("whole", 300_000);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/slow_patch.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &gw.https.port().to_string(), &url, TOKEN])
        .arg(&local)
        .arg(file.len().to_string())
        .arg("10")
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("HTTP/1.1 204"), "{answer}");
    assert_eq!(result(&c, &url)["status"], "passed");
    let r = c.call("HEAD", &url, &[V], None);
    let len = file.len().to_string();
    assert_eq!(r.header("upload-offset"), Some(len.as_str()), "{r:?}");
}

#[test]
fn browsers_on_configured_origins_may_upload() {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN))
        .https_config("cors_origins = [\"https://his.example.tw\"]")
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let c = Client::new(gw.https, None);
    let preflight = |origin: &str| {
        c.call(
            "OPTIONS",
            "/v1/uploads/x",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "PATCH"),
                (
                    "Access-Control-Request-Headers",
                    "upload-offset,tus-resumable,authorization",
                ),
            ],
            None,
        )
    };
    let r = preflight("https://his.example.tw");
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://his.example.tw"),
        "{r:?}"
    );
    assert!(
        r.header("access-control-allow-methods")
            .unwrap()
            .contains("PATCH"),
        "{r:?}"
    );
    assert!(
        r.header("access-control-allow-headers")
            .unwrap()
            .contains("upload-offset"),
        "{r:?}"
    );
    let r = preflight("https://elsewhere.example");
    assert_eq!(r.header("access-control-allow-origin"), None, "{r:?}");
    // An actual call from the page exposes the tus headers to its script.
    let authed = Client::new(gw.https, Some(TOKEN));
    let r = authed.call(
        "POST",
        "/v1/uploads",
        &[
            V,
            ("Origin", "https://his.example.tw"),
            ("Upload-Length", "10"),
            ("Upload-Metadata", &meta("b.txt")),
        ],
        None,
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .contains("location"),
        "{r:?}"
    );
    // tus's own OPTIONS (no preflight headers) still answers with its capabilities.
    let r = c.call("OPTIONS", "/v1/uploads", &[], None);
    assert_eq!(r.header("tus-version"), Some("1.0.0"), "{r:?}");
}
