//! The HTTPS listener against tools nobody here wrote: `schemathesis` fuzzes every
//! operation of `/v1/openapi.json` (bounded) and finds no server error and no response
//! that breaks the document; `sslyze` finds TLS 1.2+ only and no weak cipher suite; a
//! client still sending its body when it is answered gets the answer.

use std::process::Command;

use gateway_tests::http::Client;
use gateway_tests::{TestGateway, TestReviewer, TestTenant};

const TOKEN: &str = "tok-3501200000-conformance-test-token";
const REVIEWER: &str = "rev-conformance-test-token-0123456789";

fn gateway() -> TestGateway {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new("3501200000").token(TOKEN))
        .reviewer(TestReviewer::new("review-system", &["*"], REVIEWER))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    gw
}

/// The number after `label` in schemathesis's summary (`Tested: 9`, `Selected: 9/9`).
fn summary_count(text: &str, label: &str) -> Option<u32> {
    let rest = &text[text.find(label)? + label.len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Runs schemathesis over every operation with `token`; asserts it finds nothing.
fn schemathesis(gw: &TestGateway, token: &str) {
    let base = format!("https://{}", gw.https);
    let interop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop");
    // Bounded by count (--max-examples per operation) and by time (`timeout`):
    // --max-time would instead make fuzzing repeat until the budget is spent.
    let out = Command::new("timeout")
        .arg("240")
        .arg("schemathesis")
        .env("PYTHONPATH", &interop)
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .args(["run", &format!("{base}/v1/openapi.json"), "--url", &base])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        ])
        // Bounded: three phases (the stateful one takes minutes), 50 examples each.
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "50", "--seed", "7"])
        .args(["--tls-verify", "false", "--warnings", "off"])
        .output()
        .expect("schemathesis runs (scripts/test-setup.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("No issues found"),
        "{text}\n{}",
        gw.log()
    );
    let selected = summary_count(&text, "Operations:");
    assert!(
        selected.is_some_and(|n| n >= 28) && selected == summary_count(&text, "Tested:"),
        "every operation is exercised: {text}"
    );
    let log = gw.log();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let gw = gateway();
    schemathesis(&gw, TOKEN);
}

#[test]
fn schemathesis_as_a_reviewer_with_files_indexed() {
    let gw = gateway();
    let c = Client::new(gw.https, Some(TOKEN));
    let recipient = gw.age_recipient().unwrap();
    for (name, body) in [("a.txt", &b"record a\n"[..]), ("b.txt", b"record b\n")] {
        let sealed = gateway::sealed::seal_to_vec(std::slice::from_ref(&recipient), body).unwrap();
        let url = c.upload(name, &sealed);
        assert_eq!(c.wait_result(&url)["status"], "passed");
    }
    schemathesis(&gw, REVIEWER);
}

#[test]
fn sslyze_finds_modern_tls_only() {
    let gw = gateway();
    let report = gw.dir().join("sslyze.json");
    let out = Command::new("python3")
        .args(["-m", "sslyze", "--quiet"])
        .arg(format!("--json_out={}", report.display()))
        .args([
            "--tlsv1",
            "--tlsv1_1",
            "--sslv2",
            "--sslv3",
            "--tlsv1_2",
            "--tlsv1_3",
        ])
        .arg(gw.https.to_string())
        .output()
        .expect("sslyze runs (scripts/test-setup.sh installs it)");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let result = &json["server_scan_results"][0]["scan_result"];
    let accepted = |suite: &str| -> Vec<String> {
        result[suite]["result"]["accepted_cipher_suites"]
            .as_array()
            .unwrap_or_else(|| panic!("{suite} missing: {json}"))
            .iter()
            .map(|c| c["cipher_suite"]["name"].as_str().unwrap_or("").to_string())
            .collect()
    };
    for old in [
        "ssl_2_0_cipher_suites",
        "ssl_3_0_cipher_suites",
        "tls_1_0_cipher_suites",
        "tls_1_1_cipher_suites",
    ] {
        assert!(
            accepted(old).is_empty(),
            "{old} accepted: {:?}",
            accepted(old)
        );
    }
    assert!(
        !accepted("tls_1_3_cipher_suites").is_empty(),
        "TLS 1.3 is offered"
    );
    for suite in accepted("tls_1_2_cipher_suites") {
        assert!(
            suite.contains("ECDHE") && (suite.contains("GCM") || suite.contains("CHACHA20")),
            "a weak TLS 1.2 suite: {suite}"
        );
    }
}

fn early_answer(gw: &TestGateway, mode: &str) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/early_answer.py");
    let out = Command::new("python3")
        .arg(script)
        .args([
            "127.0.0.1",
            &gw.https.port().to_string(),
            "/v1/uploads/x",
            mode,
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Refused before its body was read (schemathesis met this as an EOF under load): the
/// answer arrives and the connection stays usable for the next request.
#[test]
fn an_answer_given_before_the_body_arrived_reaches_the_client() {
    let gw = gateway();
    let out = early_answer(&gw, "late");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["HTTP/1.1 401 Unauthorized", "HTTP/1.1 401 Unauthorized"],
        "{out}"
    );
    // A body that never comes is not waited for long, and the answer says so.
    let out = early_answer(&gw, "never");
    assert!(
        out.starts_with("http/1.1 401") && out.contains("connection: close"),
        "{out}"
    );
    let (_, metrics) = gw.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("gateway_https_unread_bodies_total{outcome=\"drained\"} 2"),
        "{metrics}"
    );
}
