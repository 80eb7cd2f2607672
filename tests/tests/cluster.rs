//! Scale-out: three gateway nodes behind a real HAProxy, sharing a real PostgreSQL
//! catalog, an S3-compatible store (moto) and a NATS JetStream sink, with one identity
//! (the first node's keys copied to the others). The load generator sends the mix
//! hospitals send (tus, SFTP, STOW-RS; PDFs, DICOM, DICOMDIR sets, large files) through
//! the balancer while, in turn:
//! 1. one node is killed (`kill -9`) mid-upload and mid-check, and started again later;
//! 2. PostgreSQL is killed and started again;
//! 3. the object store stops answering for a while.
//!
//! Clients resume through the balancer on the nodes that remain (tus `HEAD` + `PATCH`,
//! SFTP `stat` + `reput`, STOW sent again). Afterwards: every upload a client saw
//! acknowledged is indexed, with the digest it sent; no upload is left unchecked or
//! indexed twice; every outbox event reached JetStream once per id; the refusals during
//! the outages carried their codes; and no gateway was restarted for them.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gateway_fixtures::engines::{NatsServer, Postgres, S3Server, free_port};
use gateway_tests::TestGateway;
use gateway_tests::balancer::{Haproxy, Node};

const SCENARIO: &str = r#"
hospitals = 3
seed = 31
concurrency = 6
max_seconds = 400
max_bytes = 4000000000
max_files = 100000
retry_seconds = 90

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
weight = 30
min_bytes = 16384
max_bytes = 524288

[[classes]]
name = "set"
kind = "dicom-set"
weight = 10
min_bytes = 8192
max_bytes = 32768
min_instances = 2
max_instances = 4

[[classes]]
name = "large"
kind = "video"
weight = 20
min_bytes = 2000000
max_bytes = 6000000
link_mb_per_s = 4.0
"#;

const BALANCER_SOURCE: &str = "127.0.0.9";

fn loadtest_bin() -> std::path::PathBuf {
    gateway_tests::gateway_bin().with_file_name("loadtest")
}

struct Engines {
    pg: Postgres,
    s3: S3Server,
    nats: NatsServer,
    _nats_dir: tempfile::TempDir,
}

/// A node's config: the shared engines, the balancer's address, and a check limit
/// raised as in the chaos test (kills are far more frequent here than in life).
fn node(engines: &Engines, data_dir: &Path) -> TestGateway {
    TestGateway::builder()
        .data_dir(data_dir)
        .env("AWS_ACCESS_KEY_ID", "gateway-test")
        .env("AWS_SECRET_ACCESS_KEY", "gateway-test-secret")
        .server_config(&format!("proxy_protocol_from = [\"{BALANCER_SOURCE}/32\"]"))
        .config(&format!(
            "[catalog]\nurl = \"{}\"\n\
             [objects]\nurl = \"s3://gateway\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\nretry_secs = 5\n\
             [publish.nats]\nurl = \"nats://{}\"\n\
             [pipeline]\nmax_check_attempts = 50\n",
            engines.pg.url(),
            engines.s3.endpoint,
            engines.nats.addr
        ))
        .start()
        .unwrap()
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn load_tenants(gw: &TestGateway, tenants: &[u8]) {
    std::fs::write(&gw.tenants_path, tenants).unwrap();
    gw.signal("HUP").unwrap();
    wait_for("tenants", Duration::from_secs(15), || {
        gw.admin_get("/metrics")
            .map(|(_, m)| m.contains("gateway_tenants_loaded 3"))
            .unwrap_or(false)
    });
}

fn psql_count(pg: &Postgres, sql: &str) -> i64 {
    let out = pg.psql("gateway", sql);
    out.lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("{sql}: {out}"))
}

fn start_load(scenario: &Path, lb: &Haproxy, ca: &Path, out: &Path) -> Child {
    Command::new("timeout")
        .arg("600")
        .arg(loadtest_bin())
        .args(["run", "--scenario"])
        .arg(scenario)
        .args(["--url", &format!("https://{}", lb.https)])
        .args(["--sftp", &lb.sftp.to_string()])
        .arg("--ca-cert")
        .arg(ca)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn logs(nodes: &[TestGateway]) -> String {
    nodes.iter().map(TestGateway::log).collect()
}

#[test]
fn three_nodes_lose_nothing_to_a_dead_node_a_database_restart_or_a_store_outage() {
    let dir = tempfile::tempdir().unwrap();
    let nats_dir = tempfile::tempdir().unwrap();
    let mut engines = Engines {
        pg: Postgres::start(),
        s3: S3Server::start("gateway"),
        nats: NatsServer::start(free_port(), nats_dir.path()),
        _nats_dir: nats_dir,
    };
    let scenario = dir.path().join("cluster.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let tenants = Command::new(loadtest_bin())
        .args(["tenants", "--scenario"])
        .arg(&scenario)
        .output()
        .expect("loadtest is built beside the gateway (scripts/test.sh builds both)");
    assert!(tenants.status.success());

    // One identity for the cluster: the first node makes it, the others get a copy.
    let data = |i: usize| dir.path().join(format!("node{i}"));
    let first = node(&engines, &data(0));
    first.wait_ready().unwrap();
    for i in 1..3 {
        let keys = data(i).join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        for f in std::fs::read_dir(data(0).join("keys")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), keys.join(f.file_name())).unwrap();
        }
    }
    let mut nodes = vec![first, node(&engines, &data(1)), node(&engines, &data(2))];
    for gw in &nodes {
        gw.wait_ready().unwrap();
        load_tenants(gw, &tenants.stdout);
    }
    assert_eq!(
        nodes[1].age_recipient().unwrap().to_string(),
        nodes[0].age_recipient().unwrap().to_string()
    );
    let addrs: Vec<Node> = nodes.iter().map(Node::from).collect();
    let lb = Haproxy::start(dir.path(), &addrs, BALANCER_SOURCE).unwrap();
    let out_dir = dir.path().join("report");
    let ca = data(0).join("keys/tls-cert.pem");
    let mut load = start_load(&scenario, &lb, &ca, &out_dir);
    let alive = |load: &mut Child| assert!(load.try_wait().unwrap().is_none(), "the load ended");

    // 1. A node dies with transfers and checks in flight; it comes back later.
    //    The kill waits (up to 30 s) for an instant when node 1 holds both a partial
    //    upload and a check (a node's leases name its process id).
    std::thread::sleep(Duration::from_secs(5));
    alive(&mut load);
    let held = format!(
        "SELECT id FROM uploads WHERE lease_holder LIKE '%/{}/%' AND state = ",
        nodes[1].pid()
    );
    let ids = |out: String| -> Vec<String> {
        out.lines()
            .map(str::trim)
            .filter(|l| l.len() == 28 && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(String::from)
            .collect()
    };
    // A large file's check lasts long enough to be caught by the kill.
    let large = " AND plaintext_len > 1000000";
    let started = Instant::now();
    loop {
        let r = ids(engines.pg.psql("gateway", &format!("{held}'receiving'")));
        let c = ids(engines
            .pg
            .psql("gateway", &format!("{held}'checking'{large}")));
        if (!r.is_empty() && !c.is_empty()) || started.elapsed() > Duration::from_secs(30) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    nodes[1].kill().unwrap();
    // What the dead node still holds was caught by the kill: nothing can finish it
    // there any more. (Which of a transfer and a check it catches depends on the
    // instant; the catches are printed.)
    let receiving = ids(engines.pg.psql("gateway", &format!("{held}'receiving'")));
    let checking = ids(engines.pg.psql("gateway", &format!("{held}'checking'")));
    println!(
        "cluster: the kill caught {} partial upload(s) and {} check(s) on node 1",
        receiving.len(),
        checking.len()
    );
    assert!(
        !receiving.is_empty() || !checking.is_empty(),
        "the kill caught nothing in flight"
    );
    std::thread::sleep(Duration::from_secs(20));
    alive(&mut load);
    nodes[1].restart_on_same_ports().unwrap();
    nodes[1].wait_ready().unwrap();

    // 2. PostgreSQL is killed and started again.
    std::thread::sleep(Duration::from_secs(4));
    alive(&mut load);
    // Down for longer than a call waits for a connection (5 s): calls are refused.
    engines.pg.kill();
    std::thread::sleep(Duration::from_secs(9));
    engines.pg.restart();
    std::thread::sleep(Duration::from_secs(8));
    alive(&mut load);

    // 3. The object store stops answering (longer than a request may take, 5 s here),
    //    then answers again.
    engines.s3.pause();
    std::thread::sleep(Duration::from_secs(12));
    engines.s3.resume();
    std::thread::sleep(Duration::from_secs(6));
    alive(&mut load);

    // No new uploads; those under way finish.
    let (summary, report) = gateway_tests::end_loadtest(load, &out_dir, Duration::from_secs(300));
    // The nodes' logs outlive the test's directory, for a failure's post-mortem.
    let kept = std::env::temp_dir().join("gateway-cluster-test-logs");
    let _ = std::fs::create_dir_all(&kept);
    for (i, gw) in nodes.iter().enumerate() {
        let _ = std::fs::write(kept.join(format!("node{i}.log")), gw.log());
    }
    let records = report["records"].as_array().unwrap();
    assert_eq!(report["lost"], 0, "{summary}");
    for r in records {
        assert_eq!(r["outcome"], "indexed", "{r}\n{summary}");
    }
    let count = |p: &str, resumed: bool| {
        records
            .iter()
            .filter(|r| r["protocol"] == p && (!resumed || r["resumed"] == true))
            .count()
    };
    for p in ["tus", "sftp", "stow"] {
        assert!(count(p, false) > 0, "no {p} upload: {summary}");
    }
    assert!(
        count("tus", true) + count("sftp", true) > 0,
        "no transfer was resumed after the kill: {summary}"
    );
    // Every check the kill caught was claimed again by another node and finished
    // (its partial uploads are covered above: every upload a client finished is
    // indexed; one whose client started over instead expires as given up).
    let states = |id: &str, state: &str| {
        psql_count(
            &engines.pg,
            &format!(
                "SELECT COUNT(*) FROM upload_states WHERE upload_id = '{id}' AND state = '{state}'"
            ),
        )
    };
    for id in &checking {
        assert!(
            states(id, "checking") >= 2,
            "check {id} was not claimed again"
        );
        assert_eq!(
            states(id, "indexed") + states(id, "rejected"),
            1,
            "check {id} did not end once"
        );
    }

    // Every check ran once to its end: nothing left accepted or being checked, no
    // upload indexed twice, nothing indexed that no client sent.
    wait_for("the checks to drain", Duration::from_secs(180), || {
        psql_count(
            &engines.pg,
            "SELECT COUNT(*) FROM uploads WHERE state IN ('accepted', 'checking')",
        ) == 0
    });
    let dup = "SELECT COUNT(*) FROM (SELECT upload_id, name FROM files GROUP BY upload_id, name HAVING COUNT(*) > 1) d";
    assert_eq!(psql_count(&engines.pg, dup), 0);
    let sent: HashSet<&str> = records
        .iter()
        .filter_map(|r| r["sha256"].as_str())
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let indexed = rt.block_on(async {
        let catalog = gateway::backends::catalog::open(&engines.pg.url(), dir.path())
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

    // Every event reached JetStream once per id, whichever node dispatched it.
    let events = psql_count(&engines.pg, "SELECT COUNT(*) FROM outbox");
    let mut delivered = Vec::new();
    wait_for("every event in JetStream", Duration::from_secs(120), || {
        delivered = gateway_tests::jetstream_messages(engines.nats.addr, "GATEWAY_EVENTS");
        delivered.len() as i64 >= events
    });
    let ids: HashSet<&str> = delivered.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids.len(),
        delivered.len(),
        "an event id twice in the stream"
    );
    assert_eq!(delivered.len() as i64, events);

    // The outages were refused with their codes, and no gateway restarted for them.
    let all_logs = logs(&nodes);
    let errors: Vec<&str> = all_logs
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .take(40)
        .collect();
    assert!(
        all_logs.contains("catalog.unavailable"),
        "no catalog.unavailable logged:\n{}",
        errors.join("\n")
    );
    assert!(
        all_logs.contains("objects.unavailable"),
        "no objects.unavailable logged:\n{}",
        errors.join("\n")
    );
    assert!(!all_logs.contains("panicked"), "a panic in a gateway's log");
    for gw in &mut nodes {
        assert!(
            gw.wait_exit(Duration::from_millis(1)).is_err(),
            "a node exited"
        );
    }
    // The re-send bound after a node loss (or any cut): what was not yet durable, at
    // most `fsync_interval_bytes` (8 MiB), plus what the client had in flight — per
    // resume; a transfer cut by several of the outages pays it for each.
    let resumed: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["resumed"] == true).collect();
    let worst = resumed
        .iter()
        .filter_map(|r| r["max_resend"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(
        worst <= 9 << 20,
        "one resume re-sent {worst} bytes, more than the bound"
    );
    println!(
        "cluster: re-sent after resumes: {} bytes over {} resumed transfers, at most {} bytes \
         after one resume",
        resumed
            .iter()
            .filter_map(|r| r["retransmitted"].as_u64())
            .sum::<u64>(),
        resumed.len(),
        worst
    );
    println!(
        "cluster: {} uploads acknowledged and indexed ({} resumed: tus {}, sftp {}, stow {}); \
         {} files indexed; {} events, each once in JetStream; nothing lost",
        records.len(),
        records.iter().filter(|r| r["resumed"] == true).count(),
        count("tus", true),
        count("sftp", true),
        count("stow", true),
        indexed.len(),
        events
    );
}
