//! The load generator's bounded smoke scenario against a real gateway: several
//! hospitals over tus and SFTP, PDFs, DICOM instances, DICOMDIR sets and larger
//! binaries, half the transfers cut mid-body and resumed; every file it sent is indexed
//! (or rejected with an expected code), none lost. A scrape taken while the load runs
//! passes `promtool check metrics`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gateway_tests::TestGateway;

const SCENARIO: &str = r#"
hospitals = 5
seed = 11
concurrency = 4
max_seconds = 25
max_bytes = 40000000
max_files = 80
interrupt_probability = 0.5

[protocols]
tus = 60
sftp = 40

[[classes]]
name = "pdf"
kind = "pdf"
weight = 70
min_bytes = 65536
max_bytes = 524288

[[classes]]
name = "dicom"
kind = "dicom"
weight = 25
min_bytes = 65536
max_bytes = 1048576

[[classes]]
name = "set"
kind = "dicom-set"
weight = 20
min_bytes = 16384
max_bytes = 49152
min_instances = 3
max_instances = 8

[[classes]]
name = "large"
kind = "video"
weight = 5
min_bytes = 2000000
max_bytes = 4000000
"#;

/// A scrape of `/metrics` taken while the load runs: the loadtest still sending, some
/// uploads already accepted and the backlog gauges sampled (within 60 s).
fn scrape_during_load(gw: &TestGateway, loadtest: &mut std::process::Child) -> String {
    let start = Instant::now();
    loop {
        let (_, m) = gw.admin_get("/metrics").unwrap();
        let running = loadtest.try_wait().unwrap().is_none();
        assert!(running, "the load ended before a scrape under load: {m}");
        if m.contains("gateway_uploads_accepted_total{") && m.contains("gateway_uploads{state=") {
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no scrape under load: {m}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn loadtest_bin() -> std::path::PathBuf {
    gateway_tests::gateway_bin().with_file_name("loadtest")
}

#[test]
fn a_bounded_scenario_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("smoke.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let tenants = Command::new(loadtest_bin())
        .args(["tenants", "--scenario"])
        .arg(&scenario)
        .output()
        .expect("loadtest is built beside the gateway (scripts/test.sh builds both)");
    assert!(
        tenants.status.success(),
        "{}",
        String::from_utf8_lossy(&tenants.stderr)
    );

    let gw = TestGateway::builder().start().unwrap();
    gw.wait_ready().unwrap();
    std::fs::write(&gw.tenants_path, &tenants.stdout).unwrap();
    gw.signal("HUP").unwrap();
    let start = Instant::now();
    loop {
        let (_, m) = gw.admin_get("/metrics").unwrap();
        if m.contains("gateway_tenants_loaded 5") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "tenants not loaded: {m}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let out_dir = std::env::var_os("LOADTEST_SMOKE_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("report"));
    let mut child = Command::new("timeout")
        .arg("120")
        .arg(loadtest_bin())
        .args(["run", "--scenario"])
        .arg(&scenario)
        .args(["--url", &format!("https://{}", gw.https)])
        .args(["--sftp", &gw.sftp.to_string()])
        .arg("--ca-cert")
        .arg(gw.data_dir.join("keys/tls-cert.pem"))
        .args(["--pid", &gw.pid().to_string()])
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let scrape = scrape_during_load(&gw, &mut child);
    let run = child.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&run.stdout);
    eprintln!("{summary}");
    assert!(
        run.status.success(),
        "{summary}\n{}\n{}",
        String::from_utf8_lossy(&run.stderr),
        gw.log()
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    let records = report["records"].as_array().unwrap();
    assert!(records.len() >= 10, "{summary}");
    assert_eq!(report["lost"], 0, "{summary}");
    for r in records {
        assert_eq!(r["outcome"], "indexed", "every file passes: {r}\n{summary}");
        assert!(r["done_s"].as_f64().unwrap() >= r["started_s"].as_f64().unwrap());
    }
    let classes: Vec<&str> = report["groups"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for group in ["tus/pdf", "sftp/pdf"] {
        assert!(classes.contains(&group), "{group} not in {classes:?}");
    }
    // A DICOMDIR set's DICOMDIR record is indexed only when the set's check passed.
    assert!(
        classes.iter().any(|c| c.ends_with("/set:set")),
        "no DICOMDIR set in {classes:?}"
    );
    let resumed = |p: &str| {
        records
            .iter()
            .filter(|r| r["protocol"] == p && r["resumed"] == true)
            .count()
    };
    assert!(resumed("tus") > 0 && resumed("sftp") > 0, "{summary}");
    // Plots are written beside the report.
    for plot in ["throughput.svg", "latency.svg", "gateway.svg"] {
        let svg = std::fs::read_to_string(out_dir.join(plot)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<text"), "{plot}");
    }
    // The scrape taken under load: with uploads in flight, and clean for promtool.
    assert!(
        scrape.contains("gateway_uploads_accepted_total"),
        "{scrape}"
    );
    gateway_tests::assert_promtool_clean(&scrape);
    assert!(report["gateway_peak_rss_mib"].as_f64().unwrap() > 1.0);
    // The gateway agrees: as many files indexed as the run saw.
    let (_, m) = gw.admin_get("/admin/status").unwrap();
    let status: serde_json::Value = serde_json::from_str(&m).unwrap();
    assert_eq!(
        status["stored"]["files"].as_u64(),
        Some(records.len() as u64),
        "{m}"
    );
    // A second report compares against the first.
    let cmp = Command::new(loadtest_bin())
        .arg("compare")
        .arg(out_dir.join("report.json"))
        .arg(out_dir.join("report.json"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&cmp.stdout).contains("1.00×"));
}
