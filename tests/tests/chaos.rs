//! Chaos: the gateway binary is killed (`kill -9`) at random instants while the load
//! generator sends the mix hospitals send — tus, OpenSSH-style SFTP (russh), STOW-RS,
//! PDFs, DICOM instances, DICOMDIR sets and larger binaries — and restarted on the same
//! ports each time; the clients resume as real ones do (tus `HEAD`, SFTP `stat` +
//! `reput`, STOW sent again). At least 30 kills (`CHAOS_KILLS` for more; `CHAOS_SEED`
//! replays the instants). Afterwards every upload a client saw acknowledged is indexed
//! with the SHA-256 of what was sent, no acknowledged tus offset went backwards, and
//! nothing the clients did not send (a half-written file) is indexed.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gateway_tests::TestGateway;

const SCENARIO: &str = r#"
hospitals = 4
seed = 23
concurrency = 6
max_seconds = 400
max_bytes = 4000000000
max_files = 100000
retry_seconds = 60

[protocols]
tus = 40
sftp = 40
stow = 20

[[classes]]
name = "pdf"
kind = "pdf"
weight = 40
min_bytes = 16384
max_bytes = 262144

[[classes]]
name = "dicom"
kind = "dicom"
weight = 35
min_bytes = 16384
max_bytes = 524288

[[classes]]
name = "set"
kind = "dicom-set"
weight = 10
min_bytes = 8192
max_bytes = 32768
min_instances = 2
max_instances = 5

[[classes]]
name = "large"
kind = "video"
weight = 15
min_bytes = 1000000
max_bytes = 6000000
link_mb_per_s = 6.0
"#;

fn loadtest_bin() -> std::path::PathBuf {
    gateway_tests::gateway_bin().with_file_name("loadtest")
}

struct Rng(u64);
impl Rng {
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

fn start_gateway(tenants: &[u8]) -> TestGateway {
    // Three kills inside one file's check would make it a poison upload
    // (`check.interrupted`, as a file that takes the gateway down is); kills every
    // 150–1,500 ms are far above any real crash rate, so the limit is raised here.
    let gw = TestGateway::builder()
        .config("[pipeline]\nmax_check_attempts = 50\n")
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    std::fs::write(&gw.tenants_path, tenants).unwrap();
    gw.signal("HUP").unwrap();
    let start = Instant::now();
    while !gw
        .admin_get("/metrics")
        .map(|(_, m)| m.contains("gateway_tenants_loaded 4"))
        .unwrap_or(false)
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "tenants not loaded"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    gw
}

#[test]
fn kill_nine_under_the_loadtest_mix_loses_no_acknowledged_upload() {
    let kills_wanted: u32 = std::env::var("CHAOS_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("chaos seed {seed} (CHAOS_SEED to replay), {kills_wanted} kills");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("chaos.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let tenants = Command::new(loadtest_bin())
        .args(["tenants", "--scenario"])
        .arg(&scenario)
        .output()
        .expect("loadtest is built beside the gateway (scripts/test.sh builds both)");
    assert!(tenants.status.success());
    let mut gw = start_gateway(&tenants.stdout);

    let out_dir = dir.path().join("report");
    let mut load = Command::new(loadtest_bin())
        .args(["run", "--scenario"])
        .arg(&scenario)
        .args(["--url", &format!("https://{}", gw.https)])
        .args(["--sftp", &gw.sftp.to_string()])
        .arg("--ca-cert")
        .arg(gw.data_dir.join("keys/tls-cert.pem"))
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Let the load build up, then kill at random instants; each restart is on the
    // same ports and data directory, as a service manager would do it.
    std::thread::sleep(Duration::from_millis(1500));
    let started = Instant::now();
    let mut kills = 0;
    while kills < kills_wanted {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {kills} kills in 300 s"
        );
        assert!(
            load.try_wait().unwrap().is_none(),
            "the load generator ended during the kills: {:?}",
            load.wait_with_output()
        );
        std::thread::sleep(Duration::from_millis(rng.range(150, 1500)));
        gw.kill().unwrap();
        kills += 1;
        gw.restart_on_same_ports().unwrap();
        gw.wait_ready().unwrap();
    }
    let kill_phase = started.elapsed();

    // No new uploads; those under way finish, and the feed reports every outcome.
    let (summary, report) = gateway_tests::end_loadtest(load, &out_dir, Duration::from_secs(240));
    let records = report["records"].as_array().unwrap();
    // Every upload the clients finished is indexed with the digest sent: nothing a
    // client saw acknowledged was lost, and no client gave up.
    for r in records {
        assert_eq!(r["outcome"], "indexed", "{r}\n{summary}");
    }
    assert_eq!(report["lost"], 0, "{summary}");
    let count = |p: &str, resumed: bool| {
        records
            .iter()
            .filter(|r| r["protocol"] == p && (!resumed || r["resumed"] == true))
            .count()
    };
    for p in ["tus", "sftp", "stow"] {
        assert!(count(p, false) > 0, "no {p} upload: {summary}");
    }
    // No cuts are planned (interrupt_probability = 0): every resume follows a kill.
    assert!(
        count("tus", true) > 0 && count("sftp", true) > 0,
        "no kill hit a tus and an SFTP transfer in flight: {summary}"
    );
    assert!(
        records.iter().any(|r| r["class"] == "set:set"),
        "no DICOMDIR set: {summary}"
    );

    // Nothing indexed that no client sent whole: every indexed file's digest is one
    // of the files sent.
    let sent: HashSet<&str> = records
        .iter()
        .filter_map(|r| r["sha256"].as_str())
        .collect();
    gw.kill().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let indexed = rt.block_on(async {
        let catalog = gateway::backends::catalog::open("", &gw.data_dir)
            .await
            .unwrap();
        catalog.all_indexed().await.unwrap()
    });
    for (upload, sha) in &indexed {
        assert!(
            sent.contains(sha.as_str()),
            "{upload} indexed {sha}, never sent"
        );
    }
    assert!(
        !gw.log().contains("panicked"),
        "a panic in the gateway's log"
    );
    println!(
        "chaos: {kills} kills in {:.0} s; {} uploads acknowledged and indexed ({} resumed \
         after a kill: tus {}, sftp {}, stow {}); {} files indexed in all (re-sent ones \
         included); nothing lost",
        kill_phase.as_secs_f64(),
        records.len(),
        records.iter().filter(|r| r["resumed"] == true).count(),
        count("tus", true),
        count("sftp", true),
        count("stow", true),
        indexed.len()
    );
}
