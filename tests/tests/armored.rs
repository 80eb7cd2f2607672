//! ASCII-armored age files (`age -a`, DOMAIN-side: "sealed-file formats people actually
//! send") made by the real `age` CLI, through OpenSSH `sftp` and tus against the real
//! binary: accepted, checked, indexed and downloaded as the plaintext; a tus upload cut
//! in the middle of a base64 line resumes; a broken armor fails with its code.

use std::process::Command;

use gateway_tests::http::Client;
use gateway_tests::{TestGateway, TestReviewer, TestTenant, sftp_batch, ssh_keygen};

const CODE: &str = "3501200000";
const TOKEN: &str = "tok-3501200000-armored-aaaaaaaaaaaaaaaa";
const REVIEWER: &str = "rev-armored-bbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b))
}

#[test]
fn age_armored_files_are_accepted_over_sftp_and_tus_and_resume_mid_line() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), "k").unwrap();
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN).ssh_key(&public))
        .reviewer(TestReviewer::new("review", &[CODE], REVIEWER))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let http = Client::new(gw.https, Some(TOKEN));
    let review = Client::new(gw.https, Some(REVIEWER));
    let recipient = gw.age_recipient().unwrap().to_string();
    // Several chunks, so the armor spans many lines and chunk boundaries.
    let plain = gateway_fixtures::pdf::sample(&"x".repeat(150_000), false, false);
    let plain_path = dir.path().join("record.pdf");
    std::fs::write(&plain_path, &plain).unwrap();
    let armored_path = dir.path().join("record.pdf.age");
    let ok = Command::new("age")
        .args(["-a", "-r", &recipient, "-o"])
        .arg(&armored_path)
        .arg(&plain_path)
        .status()
        .expect("age (scripts/test-setup.sh)");
    assert!(ok.success());
    let armored = std::fs::read(&armored_path).unwrap();
    assert!(armored.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));

    // OpenSSH sftp.
    let script = format!("put {} /inbox/sftp.pdf\n", armored_path.display());
    let (code, out) = sftp_batch(gw.sftp, CODE, &key, &script).unwrap();
    assert_eq!(code, 0, "{out}");

    // tus, cut in the middle of a base64 line, then resumed with HEAD + PATCH.
    let cut = armored.len() / 2 + 17;
    assert_ne!(armored[cut - 1], b'\n');
    use base64::Engine;
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode("tus.pdf")
    );
    let len = armored.len().to_string();
    let r = http.call(
        "POST",
        "/v1/uploads",
        &[
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Length", &len),
            ("Upload-Metadata", &meta),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        Some(&armored[..cut]),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let url = r.header("location").unwrap().to_string();
    let head = http.call("HEAD", &url, &[("Tus-Resumable", "1.0.0")], None);
    let offset: usize = head.header("upload-offset").unwrap().parse().unwrap();
    assert!(offset <= cut);
    let r = http.call(
        "PATCH",
        &url,
        &[
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Offset", &offset.to_string()),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        Some(&armored[offset..]),
    );
    assert_eq!(r.status, 204, "{r:?}");
    let result = http.wait_result(&url);
    assert_eq!(result["status"], "passed", "{result}");
    assert_eq!(result["sha256"], sha256_hex(&plain), "{result}");

    // Both indexed, and downloaded as the plaintext.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let files = loop {
        let f = review.call("GET", "/v1/files?status=any", &[], None).json();
        let files = f["files"].as_array().cloned().unwrap_or_default();
        if files.len() == 2 || std::time::Instant::now() > deadline {
            break files;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        let id = f["id"].as_str().unwrap();
        let body = review.call("GET", &format!("/v1/files/{id}/content"), &[], None);
        assert_eq!(body.status, 200);
        assert_eq!(sha256_hex(&body.raw), sha256_hex(&plain), "{}", f["name"]);
    }

    // A character outside base64 in the armor: refused at that write, with its code.
    let mut broken = armored.clone();
    let at = broken.iter().position(|&b| b == b'\n').unwrap() + 70;
    broken[at] = b'*';
    let r = http.call(
        "POST",
        "/v1/uploads",
        &[
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Length", &broken.len().to_string()),
            (
                "Upload-Metadata",
                &format!(
                    "filename {}",
                    base64::engine::general_purpose::STANDARD.encode("bad.pdf")
                ),
            ),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        Some(&broken),
    );
    assert!(r.status >= 400, "{r:?}");
    assert_eq!(r.code(), "sealed.bad_armor", "{r:?}");
}
