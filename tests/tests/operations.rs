//! What SREs run the gateway with: the metrics set (checked by `promtool check metrics`
//! on a scrape taken after real traffic), the alert rules (`promtool check rules` and
//! their unit tests), the Grafana dashboard (every metric it charts exists), `gateway
//! status` (text and JSON), and the example production configuration.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gateway::sealed::seal_to_vec;
use gateway_tests::http::Client;
use gateway_tests::sftp::text_record;
use gateway_tests::{TestGateway, TestReviewer, TestTenant, run_gateway};

const A: &str = "3501200000";
const TOKEN: &str = "tok-3501200000-aaaaaaaaaaaaaaaaaaaaaaaa";
const REVIEWER: &str = "rev-ops-cccccccccccccccccccccccccccccc";

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool (Debian package prometheus) is required");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

#[test]
fn alert_rules_check_and_pass_their_unit_tests() {
    let dir = config_dir().join("prometheus");
    let checked = promtool(&["check", "rules", "alerts.yml"], &dir);
    assert!(checked.contains("SUCCESS: 7 rules found"), "{checked}");
    let tested = promtool(&["test", "rules", "alerts.test.yml"], &dir);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

/// Traffic of every kind the metrics describe: an accepted and indexed upload, a
/// rejected one, a download.
fn traffic(gw: &TestGateway) {
    let c = Client::new(gw.https, Some(TOKEN));
    let recipient = gw.age_recipient().unwrap();
    let sealed = seal_to_vec(&[recipient], &text_record(5000, 1)).unwrap();
    let url = c.upload("ok.txt", &sealed);
    assert_eq!(c.wait_result(&url)["status"], "passed");
    let stranger = gateway::sealed::Identity::generate().unwrap().to_public();
    let foreign = seal_to_vec(&[stranger], b"not for us").unwrap();
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Length", &foreign.len().to_string()),
            ("Upload-Metadata", "filename YmFkLnR4dA=="),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        Some(&foreign),
    );
    assert!(r.status >= 400);
    let review = Client::new(gw.https, Some(REVIEWER));
    let files = review.call("GET", "/v1/files", &[], None).json();
    let id = files["files"][0]["id"].as_str().unwrap().to_string();
    let got = review.call("GET", &format!("/v1/files/{id}/content"), &[], None);
    assert_eq!(got.status, 200);
}

fn metric_value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_dashboard_and_status_after_real_traffic() {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(TOKEN))
        .reviewer(TestReviewer::new("ops-viewer", &[A], REVIEWER))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    traffic(&gw);

    // The sampled gauges catch up within their period.
    let start = Instant::now();
    let scrape = loop {
        let (_, s) = gw.admin_get("/metrics").unwrap();
        if metric_value(&s, "gateway_stored_bytes").is_some_and(|v| v > 0.0) {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "stored bytes never sampled: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for series in [
        "gateway_time_to_accepted_seconds_count{protocol=\"tus\"}",
        "gateway_time_to_indexed_seconds_count{result=\"passed\"}",
        "gateway_pipeline_stage_seconds_count{stage=\"inspect\"}",
        "gateway_pipeline_stage_seconds_count{stage=\"store\"}",
        "gateway_pipeline_stage_seconds_count{stage=\"index\"}",
        "gateway_downloads_total{kind=\"plain\"}",
        "gateway_http_requests_total{listener=\"https\",method=\"POST\",route=\"/v1/uploads\",status=\"2xx\"}",
        "gateway_http_requests_total{listener=\"https\",method=\"GET\",route=\"/v1/files/{id}/content\",status=\"2xx\"}",
    ] {
        assert!(
            metric_value(&scrape, series).is_some_and(|v| v >= 1.0),
            "{series} missing or zero in:\n{scrape}"
        );
    }
    assert!(metric_value(&scrape, "gateway_data_dir_free_bytes").is_some_and(|v| v > 0.0));
    assert_eq!(
        metric_value(&scrape, "gateway_uploads{state=\"accepted\"}"),
        Some(0.0)
    );
    // Label values come from routes, never from paths with ids in them.
    assert!(!scrape.contains("route=\"/v1/uploads/0"), "{scrape}");
    gateway_tests::assert_promtool_clean(&scrape);

    // Every metric the dashboard charts is one the gateway registers (labelled series
    // appear in a scrape only once used, so the registry's source is the reference).
    let registered = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../gateway/src/telemetry/metrics.rs"),
    )
    .unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(config_dir().join("grafana/gateway.json")).unwrap(),
    )
    .unwrap();
    let mut charted = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for (i, _) in expr.match_indices("gateway_") {
                let name: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                charted.insert(name);
            }
        }
    }
    assert!(charted.len() >= 15, "{charted:?}");
    for name in &charted {
        // A histogram's series: name_bucket, name_count, name_sum.
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|b| registered.contains(&format!("\"{b}\"")))
            .unwrap_or(name);
        assert!(
            registered.contains(&format!("\"{base}\"")),
            "the dashboard charts {name}, which the gateway does not register"
        );
    }

    // gateway status, as an operator runs it on the host.
    let config = gw.config_path.display().to_string();
    let out = run_gateway(&["status", "--config", &config], gw.dir()).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("READY") && text.contains("backlog"), "{text}");
    assert!(
        text.contains("sealed.") || text.contains("ingest."),
        "the rejection is listed: {text}"
    );
    let out = run_gateway(&["status", "--config", &config, "--json"], gw.dir()).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ready"], true);
    assert_eq!(doc["backlog"]["accepted"], 0);
    assert_eq!(doc["stored"]["files"], 1);
    assert_eq!(doc["recent_rejections"][0]["name"], "bad.txt", "{doc}");
}

#[test]
fn the_example_production_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_dir().join("production.toml");
    let out = run_gateway(
        &["config", "check", "--config", &path.display().to_string()],
        dir.path(),
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = std::fs::read_to_string(config_dir().join("systemd/gateway.service")).unwrap();
    assert!(
        unit.contains("ExecStart=/usr/local/bin/gateway serve --config /etc/gateway/gateway.toml")
    );
    // The flags the unit passes exist.
    let help = run_gateway(&["serve", "--help"], dir.path()).unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--log-format"));
}

/// `/admin/*` takes a bearer token when one is configured (and one must be, off
/// loopback); its POSTs refuse browser requests from other sites; metrics and health
/// stay open for scrapers and load balancers.
#[test]
fn the_admin_listener_wants_its_token_and_no_cross_site_posts() {
    let token = "adm-0123456789abcdef";
    let digest = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ));
    let gw = TestGateway::builder()
        .tenant(TestTenant::new("3501200000"))
        .admin_config(&format!("token_sha256 = \"{digest}\""))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        let out = Command::new("curl").args(&all).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let base = format!("http://{}", gw.admin);
    let status = format!("{base}/admin/status");
    let bearer = format!("Authorization: Bearer {token}");
    assert_eq!(admin(&[&status]), "401");
    assert_eq!(
        admin(&["-H", "Authorization: Bearer wrong", &status]),
        "401"
    );
    assert_eq!(admin(&["-H", &bearer, &status]), "200");
    assert_eq!(admin(&[&format!("{base}/metrics")]), "200");
    assert_eq!(admin(&[&format!("{base}/healthz")]), "200");
    let retry = format!("{base}/admin/outbox/retry");
    assert_eq!(admin(&["-X", "POST", "-H", &bearer, &retry]), "200");
    // A page elsewhere making the operator's browser post here.
    for header in ["Origin: https://evil.example", "Sec-Fetch-Site: cross-site"] {
        assert_eq!(
            admin(&["-X", "POST", "-H", &bearer, "-H", header, &retry]),
            "403",
            "{header}"
        );
    }
    // `gateway status` sends the token it is given.
    let out = Command::new(gateway_tests::gateway_bin())
        .args(["status", "--admin", &base])
        .env("GATEWAY_ADMIN_TOKEN", token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Off loopback without a token, the gateway does not start.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("open.toml");
    std::fs::write(&cfg, "[admin]\nlisten = \"0.0.0.0:9999\"\n").unwrap();
    let out = run_gateway(
        &["config", "check", "--config", &cfg.display().to_string()],
        dir.path(),
    )
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin.token_sha256"));
}
