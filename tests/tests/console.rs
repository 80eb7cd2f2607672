//! The web console in a real browser (headless Debian chromium driven by puppeteer-core,
//! `tests/browser/console.mjs`) against the real gateway binary: sign-in, a folder with
//! a DICOMDIR set and PDFs sealed in the page, statuses changing live, the error
//! report, resuming after the page is closed, language switch, axe-core, a reviewer
//! filtering, downloading and listing studies; another hospital's files never appear.
//! Here the gateway's side is checked: the bytes the browser sent open with the `age`
//! CLI to the very files chosen, the reviewer's download is the original, and the
//! console's cookie, CSRF and headers hold for clients that are not browsers too.

use std::path::{Path, PathBuf};
use std::process::Command;

use gateway_tests::http::Client;
use gateway_tests::{TestGateway, TestReviewer, TestTenant, age_decrypt_file, curl};

const CODE_A: &str = "3501200000";
const CODE_B: &str = "3501209999";
const TOKEN_A: &str = "tok-console-hospital-a-0123456789abcdef";
const TOKEN_B: &str = "tok-console-hospital-b-0123456789abcdef";
const TOKEN_R: &str = "tok-console-reviewer-0123456789abcdefgh";
const OTHER_NAME: &str = "only-hospital-b-sees-this.pdf";

fn start() -> TestGateway {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE_A).token(TOKEN_A))
        .tenant(TestTenant::new(CODE_B).token(TOKEN_B))
        .reviewer(TestReviewer::new("console-reviewer", &[CODE_A], TOKEN_R))
        .config("[pipeline]\nset_quiet_secs = 2\n")
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    gw
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// The stored object named by a plaintext digest: the sealed bytes the client sent.
fn stored_object(data: &Path, sha: &str) -> PathBuf {
    let mut stack = vec![data.join("objects")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains(sha))
            {
                return p;
            }
        }
    }
    panic!("no stored object for {sha} under {}", data.display());
}

/// A DICOMDIR set of `images` CT instances made by pydicom under `dir/<name>/`.
fn dicom_set(dir: &Path, name: &str, images: u32) -> PathBuf {
    let set = dir.join(name);
    gateway_tests::dicom::make_set(&set, images, 0);
    set
}

#[test]
fn hospitals_and_reviewers_use_the_console_in_a_real_browser() {
    let gw = start();
    let files = tempfile::tempdir().unwrap();
    let set = dicom_set(files.path(), "case-7", 3);
    let dropped = dicom_set(files.path(), "case-8", 2);
    let good = files.path().join("12A03123345.pdf");
    let bad = files.path().join("broken-report.pdf");
    let big = files.path().join("large-scan.pdf");
    let good_plain = gateway_fixtures::pdf::sample("BT /F1 12 Tf (console) Tj ET", false, false);
    std::fs::write(&good, &good_plain).unwrap();
    std::fs::write(&bad, b"%PDF-1.7\nthis is not a PDF body at all\n").unwrap();
    let pre = files.path().join("precheck-me.pdf");
    std::fs::write(
        &pre,
        gateway_fixtures::pdf::sample("BT (pre-check) Tj ET", false, false),
    )
    .unwrap();
    // Large enough that the page is closed mid-transfer (the browser sends at 3 MiB/s).
    let filler = "q 1 0 0 1 0 0 cm Q\n".repeat(24 << 20 >> 4);
    let big_plain = gateway_fixtures::pdf::sample(&filler, false, false);
    std::fs::write(&big, &big_plain).unwrap();

    // Hospital B's file: on the same gateway, never visible to A or A's reviewer.
    let b = Client::new(gw.https, Some(TOKEN_B));
    let recipient = gw.age_recipient().unwrap();
    let sealed = gateway::sealed::seal_to_vec(&[recipient], &good_plain).unwrap();
    let up = b.upload(OTHER_NAME, &sealed);
    assert_eq!(b.wait_result(&up)["status"], "passed");

    let out = files.path().join("downloads");
    let shots = match std::env::var("CONSOLE_SCREENSHOTS") {
        Ok(dir) => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(dir),
        Err(_) => files.path().join("shots"),
    };
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&shots).unwrap();
    // The reviewer's own age key, for the encrypted download.
    let reviewer_key = files.path().join("reviewer.key");
    let keygen = Command::new("age-keygen")
        .arg("-o")
        .arg(&reviewer_key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let reviewer_recipient = std::fs::read_to_string(&reviewer_key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let run = Command::new("node")
        .arg(browser_dir.join("console.mjs"))
        .current_dir(&browser_dir)
        .env("GW", format!("https://{}", gw.https))
        .env("TOKEN_A", TOKEN_A)
        .env("TOKEN_R", TOKEN_R)
        .env("CODE_A", CODE_A)
        .env("OTHER_NAME", OTHER_NAME)
        .env("SET_DIR", &set)
        .env("DROP_DIR", &dropped)
        .env("GOOD", &good)
        .env("BAD", &bad)
        .env("BIG", &big)
        .env("PRE", &pre)
        .env("REVIEWER_RECIPIENT", &reviewer_recipient)
        .env("OUT", &out)
        .env("SHOTS", &shots)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "browser test failed:\n{stderr}\n{}",
        gw.log()
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    eprintln!(
        "console: resume {} · axe {}",
        report["resume"], report["axe"]
    );

    // The bytes the browser sent are the stored object: sealed in the page to the
    // gateway's recipient, they open with the age CLI to the files chosen.
    let identity = gw.data_dir.join("keys/age-identity.txt");
    for (plain, name) in [(&good_plain, "the PDF"), (&big_plain, "the resumed PDF")] {
        let object = stored_object(&gw.data_dir, &sha256_hex(plain));
        assert_eq!(&age_decrypt_file(&identity, &object), plain, "{name}");
    }
    let image = std::fs::read_dir(set.join("PT000000/ST000000/SE000000"))
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let image_plain = std::fs::read(&image).unwrap();
    let object = stored_object(&gw.data_dir, &sha256_hex(&image_plain));
    assert_eq!(
        age_decrypt_file(&identity, &object),
        image_plain,
        "a DICOM image"
    );

    // The reviewer's download is the original file.
    let dl = report["reviewer_download"].as_str().unwrap();
    assert_eq!(std::fs::read(dl).unwrap(), good_plain);
    let sealed_dl = PathBuf::from(report["reviewer_sealed_download"].as_str().unwrap());
    assert_eq!(
        age_decrypt_file(&reviewer_key, &sealed_dl),
        good_plain,
        "the encrypted download opens with the reviewer's key"
    );
    // The two sets' studies (the chosen folder's and the dropped one's), with their
    // series and instances counted.
    let mut counts: Vec<(u64, u64)> = report["studies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["series"].as_u64().unwrap(),
                s["instances"].as_u64().unwrap(),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(counts, [(1, 2), (1, 3)], "{report}");
    // The upload really resumed: one upload for the big file, past its first part.
    assert!(report["resume"]["resumed_from"].as_u64().unwrap() > 0);
    let a = Client::new(gw.https, Some(TOKEN_A));
    let uploads = a.call("GET", "/v1/uploads?limit=500", &[], None).json();
    let big_uploads: Vec<_> = uploads["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["name"] == "large-scan.pdf")
        .collect();
    assert_eq!(big_uploads.len(), 1, "{uploads}");
    assert_eq!(big_uploads[0]["status"], "indexed");

    // Sign-ins are audited and counted.
    assert!(
        gw.metric(
            "gateway_console_sessions_total{action=\"sign_in\",role=\"hospital\",via=\"token\"}"
        ) >= 1.0
    );
    assert!(
        gw.metric(
            "gateway_console_sessions_total{action=\"sign_in\",role=\"reviewer\",via=\"token\"}"
        ) >= 1.0
    );
}

/// The session as any client sees it: the cookie's flags, CSRF, a forged cookie, a
/// token removed while signed in, and the console's security headers.
#[test]
fn the_console_session_holds_for_any_client() {
    let gw = start();
    let base = format!("https://{}", gw.https);
    let jar = tempfile::tempdir().unwrap();
    let cookies = jar.path().join("jar");
    let cookies = cookies.to_str().unwrap();

    // The page: strict CSP, no inline script, and nothing from another origin.
    let (status, headers) = curl(&[
        "-sk",
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{base}/console/"),
    ])
    .unwrap();
    assert_eq!(status, 200);
    let csp = headers
        .lines()
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-security-policy:")
        })
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{headers}"
    );
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // A browser asking for `/` is sent to the console; an API client gets the index.
    let (status, h) = curl(&[
        "-sk",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "Accept: text/html",
        &format!("{base}/"),
    ])
    .unwrap();
    assert_eq!(status, 303, "{h}");
    assert!(
        h.to_ascii_lowercase().contains("location: /console/"),
        "{h}"
    );

    // Sign in: the token is exchanged for an HttpOnly, Secure, SameSite=Strict cookie.
    let (status, body) = curl(&[
        "-sk",
        "-D",
        "-",
        "-c",
        cookies,
        "-X",
        "POST",
        "-H",
        &format!("Authorization: Bearer {TOKEN_A}"),
        &format!("{base}/console/api/session"),
    ])
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let set_cookie = body
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{flag}: {set_cookie}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&body[body.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    let csrf = json["csrf"].as_str().unwrap().to_string();
    assert_eq!(json["role"], "hospital");
    assert_eq!(json["subject"], CODE_A);

    // With the cookie: reading works; changing needs the CSRF token.
    let (status, _) = curl(&["-sk", "-b", cookies, &format!("{base}/v1/uploads")]).unwrap();
    assert_eq!(status, 200);
    let create = |extra: &[&str]| {
        let mut args = vec![
            "-sk",
            "-b",
            cookies,
            "-X",
            "POST",
            "-H",
            "Tus-Resumable: 1.0.0",
            "-H",
            "Upload-Length: 100",
            "-H",
            "Upload-Metadata: filename eC5wZGY=",
        ];
        args.extend_from_slice(extra);
        let url = format!("{base}/v1/uploads");
        args.push(&url);
        curl(&args).unwrap()
    };
    let (status, body) = create(&[]);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("auth.csrf"), "{body}");
    let wrong = "X-CSRF-Token: not-the-token".to_string();
    assert_eq!(create(&["-H", &wrong]).0, 403);
    let right = format!("X-CSRF-Token: {csrf}");
    assert_eq!(create(&["-H", &right]).0, 201);

    // A forged cookie (another hospital's code under the same signature) is refused.
    let jar_text = std::fs::read_to_string(cookies).unwrap();
    let value = jar_text
        .lines()
        .find_map(|l| l.split('\t').nth(6).filter(|_| l.contains("gw_console")))
        .unwrap()
        .to_string();
    let (body64, tag) = value.split_once('.').unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = String::from_utf8(b64.decode(body64).unwrap()).unwrap();
    let forged = b64.encode(claims.replace(CODE_A, CODE_B));
    let (status, body) = curl(&[
        "-sk",
        "-H",
        &format!("Cookie: gw_console={forged}.{tag}"),
        &format!("{base}/v1/uploads"),
    ])
    .unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("auth.session_invalid"), "{body}");

    // Removing the token ends the session at once (rule 18), as it ends an API caller.
    gw.write_tenants(&[
        TestTenant::new(CODE_A).token("tok-a-replacement-0123456789abcdef"),
        TestTenant::new(CODE_B).token(TOKEN_B),
    ])
    .unwrap();
    gw.signal("HUP").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, _) = curl(&["-sk", "-b", cookies, &format!("{base}/v1/uploads")]).unwrap();
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the session outlived its token"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, body) =
        curl(&["-sk", "-b", cookies, &format!("{base}/console/api/session")]).unwrap();
    assert_eq!(status, 401, "{body}");
}
