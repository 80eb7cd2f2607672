//! The foundation, end to end against the real binary: embedded defaults, health and
//! metrics, real TLS and SSH handshakes, key reuse across restarts, config errors,
//! SIGHUP tenant reload, graceful SIGTERM, and a ring-only dependency tree.

use std::process::Command;
use std::time::Duration;

use gateway_tests::{TestGateway, TestTenant, curl, run_gateway, ssh_keygen, ssh_login};

const CODE: &str = "3501200000";

fn metric(body: &str, name_and_labels: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn starts_with_health_metrics_tls13_and_ssh() {
    let gw = TestGateway::builder().start().unwrap();
    gw.wait_ready().unwrap();
    assert_eq!(gw.admin_get("/healthz").unwrap().0, 200);
    let (status, ready) = gw.admin_get("/readyz").unwrap();
    assert_eq!(status, 200, "{ready}");
    assert!(ready.contains("\"catalog\":\"ok\""), "{ready}");

    let (status, metrics) = gw.admin_get("/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("gateway_build_info{"), "{metrics}");
    assert!(metrics.contains("gateway_uptime_seconds"), "{metrics}");
    // (`outbox` runs when sinks are configured: tests/tests/handoff.rs.)
    for job in ["pipeline", "housekeeping", "retention", "sampler"] {
        let name = format!("gateway_jobs_running{{job=\"{job}\"}}");
        assert_eq!(metric(&metrics, &name), Some(1.0), "{name}: {metrics}");
    }
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is required");
    use std::io::Write;
    promtool
        .stdin
        .as_ref()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // TLS 1.3 only, so the handshake itself proves the version.
    let (status, body) = curl(&[
        "-k",
        "--tlsv1.3",
        "--tls-max",
        "1.3",
        &format!("https://{}/", gw.https),
    ])
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"recipient\":\"age1"),
        "the index announces the recipient: {body}"
    );
    let (status, body) = gw.https_get("/v1/uploads").unwrap();
    assert_eq!(status, 401, "the API wants a token");
    assert!(body.contains("auth.token_missing"), "{body}");

    // A real SSH handshake: ssh-keyscan gets exactly our host key.
    let scanned = Command::new("ssh-keyscan")
        .args([
            "-t",
            "ed25519",
            "-p",
            &gw.sftp.port().to_string(),
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let ours = std::fs::read_to_string(gw.data_dir.join("keys/ssh_host_ed25519_key.pub")).unwrap();
    let ours_b64 = ours.split_whitespace().nth(1).unwrap();
    assert!(
        String::from_utf8_lossy(&scanned.stdout).contains(ours_b64),
        "keyscan: {scanned:?}"
    );
}

#[test]
fn restart_reuses_keys_and_certificate() {
    let mut gw = TestGateway::builder().start().unwrap();
    gw.wait_ready().unwrap();
    let read_all = |gw: &TestGateway| {
        [
            "ssh_host_ed25519_key",
            "tls-cert.pem",
            "tls-key.pem",
            "age-identity.txt",
        ]
        .map(|f| std::fs::read(gw.data_dir.join("keys").join(f)).unwrap())
    };
    let show = |gw: &TestGateway| {
        let o = run_gateway(
            &["keys", "show", "--config", gw.config_path.to_str().unwrap()],
            gw.dir(),
        )
        .unwrap();
        assert!(o.status.success());
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let before = read_all(&gw);
    let shown_before = show(&gw);
    assert!(
        shown_before.contains("age recipient:        age1"),
        "{shown_before}"
    );
    gw.restart().unwrap();
    gw.wait_ready().unwrap();
    assert_eq!(read_all(&gw), before);
    assert_eq!(show(&gw), shown_before);
    // The recipient printed in the log is the same one.
    let recipient = shown_before
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string();
    assert!(gw.log().contains(&recipient));
}

#[test]
fn bad_config_fails_with_the_key_named_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("[sftp]\nlisen = \"127.0.0.1:1\"\n", "lisen"),
        ("[admin]\nlisten = \"nowhere\"\n", "admin.listen"),
        (
            "[server]\nshutdown_grace_secs = \"soon\"\n",
            "server.shutdown_grace_secs",
        ),
        ("[nosuchsection]\n", "nosuchsection"),
        ("[log\n", "line 1"),
    ];
    for (text, named) in cases {
        let p = dir.path().join("bad.toml");
        std::fs::write(&p, text).unwrap();
        for cmd in [
            &["config", "check", "--config"][..],
            &["serve", "--config"][..],
        ] {
            let mut args = cmd.to_vec();
            args.push(p.to_str().unwrap());
            let o = run_gateway(&args, dir.path()).unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?} {text}: {err}");
            assert!(err.contains(named), "{text}: `{named}` not in: {err}");
        }
    }
    // Environment overrides are checked the same way.
    let o = Command::new(gateway_tests::gateway_bin())
        .args(["config", "check"])
        .env("GATEWAY_SFTP__LISTEN", "not-an-address")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sftp.listen"));
}

#[test]
fn config_check_prints_effective_config_with_env_and_redaction() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g.toml");
    std::fs::write(&p, "[catalog]\nurl = \"sqlite://u:topsecret@/tmp/x.db\"\n").unwrap();
    let o = Command::new(gateway_tests::gateway_bin())
        .args(["config", "check", "--config", p.to_str().unwrap()])
        .env("GATEWAY_SFTP__LISTEN", "127.0.0.1:2022")
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("listen = \"127.0.0.1:2022\""), "{out}");
    assert!(!out.contains("topsecret"), "{out}");
}

#[test]
fn sighup_reloads_tenants_and_bad_files_keep_the_old_ones() {
    let keys = tempfile::tempdir().unwrap();
    let (key_a, pub_a) = ssh_keygen(keys.path(), "a").unwrap();
    let (key_b, pub_b) = ssh_keygen(keys.path(), "b").unwrap();
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).ssh_key(&pub_a))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();

    let (code, err) = ssh_login(gw.sftp, CODE, &key_a).unwrap();
    assert!(
        err.contains("Remote working directory: /"),
        "key a: {code} {err}"
    );
    // A session opened before a reload survives it while its key stays.
    let mut held = idle_ssh(&gw, &key_a);
    wait_for_metric(&gw, "gateway_sessions_active{protocol=\"sftp\"}", 1.0);
    let (_, err) = ssh_login(gw.sftp, CODE, &key_b).unwrap();
    assert!(
        err.contains("Permission denied"),
        "key b before reload: {err}"
    );

    gw.write_tenants(&[TestTenant::new(CODE).ssh_key(&pub_a).ssh_key(&pub_b)])
        .unwrap();
    gw.signal("HUP").unwrap();
    wait_for_metric(&gw, "gateway_tenants_reloads_total{result=\"ok\"}", 1.0);
    let (_, err) = ssh_login(gw.sftp, CODE, &key_b).unwrap();
    assert!(
        err.contains("Remote working directory: /"),
        "key b after reload: {err}"
    );
    assert!(
        held.try_wait().unwrap().is_none(),
        "the open session was dropped by a reload that kept its key"
    );
    let (_, m) = gw.admin_get("/metrics").unwrap();
    assert_eq!(
        metric(&m, "gateway_sessions_active{protocol=\"sftp\"}"),
        Some(1.0),
        "{m}"
    );

    // A reload that removes the key ends the session logged in with it, at once
    // (rule 18), and refuses the key from then on.
    gw.write_tenants(&[TestTenant::new(CODE).ssh_key(&pub_b)])
        .unwrap();
    gw.signal("HUP").unwrap();
    wait_for_metric(&gw, "gateway_tenants_reloads_total{result=\"ok\"}", 2.0);
    let (_, err) = ssh_login(gw.sftp, CODE, &key_a).unwrap();
    assert!(
        err.contains("Permission denied"),
        "key a after reload: {err}"
    );
    let ended = std::time::Instant::now();
    while held.try_wait().unwrap().is_none() {
        assert!(
            ended.elapsed() < Duration::from_secs(5),
            "the session of a removed key was not ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for_metric(
        &gw,
        "gateway_sessions_revoked_total{protocol=\"sftp\",reason=\"key_removed\"}",
        1.0,
    );

    std::fs::write(&gw.tenants_path, "[[tenant]]\ncode = \"12\"\n").unwrap();
    gw.signal("HUP").unwrap();
    wait_for_metric(&gw, "gateway_tenants_reloads_total{result=\"error\"}", 1.0);
    let (_, err) = ssh_login(gw.sftp, CODE, &key_b).unwrap();
    assert!(
        err.contains("Remote working directory: /"),
        "old tenants must stay: {err}"
    );
    assert!(gw.log().contains("tenants.invalid"));
}

#[test]
fn ip_allow_list_refuses_a_registered_key_from_elsewhere() {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(keys.path(), "k").unwrap();
    let tenant = TestTenant::new(CODE)
        .ssh_key(&public)
        .allow_ips(&["10.0.0.0/8"]);
    let gw = TestGateway::builder().tenant(tenant).start().unwrap();
    gw.wait_ready().unwrap();
    let (_, err) = ssh_login(gw.sftp, CODE, &key).unwrap();
    assert!(err.contains("Permission denied"), "{err}");
    let (_, metrics) = gw.admin_get("/metrics").unwrap();
    let refused = metric(
        &metrics,
        "gateway_ssh_auth_failures_total{reason=\"ip_not_allowed\"}",
    );
    assert!(refused.unwrap_or(0.0) >= 1.0, "{metrics}");
}

#[test]
fn sigterm_exits_zero_within_the_grace_period() {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(keys.path(), "k").unwrap();
    let mut gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).ssh_key(&public))
        .shutdown_grace_secs(3)
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    // An SSH connection that stays open (no command) must not hold the exit up.
    let mut idle = idle_ssh(&gw, &key);
    wait_for_metric(&gw, "gateway_sessions_active{protocol=\"sftp\"}", 1.0);
    let (status, took) = gw.stop(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "exit status {status}\n{}", gw.log());
    assert!(took < Duration::from_secs(4), "took {took:?}");
    let log = gw.log();
    assert!(log.contains("\"stopped\""), "{log}");
    // Every background job wound down within the grace period, none ended before.
    assert!(
        !log.contains("jobs still running") && !log.contains("ended while the gateway runs"),
        "{log}"
    );
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
    let _ = idle.kill();
    let _ = idle.wait();
}

#[test]
fn tenants_token_stores_only_a_hash() {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE))
        .start()
        .unwrap();
    let o = run_gateway(
        &[
            "tenants",
            "token",
            CODE,
            "--config",
            gw.config_path.to_str().unwrap(),
        ],
        gw.dir(),
    )
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let token = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(token.starts_with("gw_") && token.len() > 40);
    let file = std::fs::read_to_string(&gw.tenants_path).unwrap();
    assert!(!file.contains(&token));
    assert!(file.contains("sha256:"));
    gw.signal("HUP").unwrap();
    wait_for_metric(&gw, "gateway_tenants_reloads_total{result=\"ok\"}", 1.0);
}

#[test]
fn dependency_tree_is_ring_only() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(cargo)
        .args([
            "tree",
            "--workspace",
            "--edges",
            "normal,build,dev",
            "--prefix",
            "none",
            "--locked",
        ])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("ring v0.17"), "ring must be there");
    assert!(
        !tree.contains("aws-lc"),
        "aws-lc found in the dependency tree"
    );
}

/// An authenticated SSH connection with no command (`ssh -N`), kept open.
fn idle_ssh(gw: &TestGateway, key: &std::path::Path) -> std::process::Child {
    gateway_tests::ssh_command(gw.sftp, CODE, key)
        .arg("-N")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn readyz_fails_when_storage_cannot_be_written() {
    let gw = TestGateway::builder().start().unwrap();
    gw.wait_ready().unwrap();
    let objects = gw.data_dir.join("objects");
    std::fs::remove_dir_all(&objects).unwrap();
    std::fs::write(&objects, b"not a directory").unwrap();
    let (status, body) = gw.admin_get("/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"catalog\":\"ok\""), "{body}");
    assert_eq!(
        gw.admin_get("/healthz").unwrap().0,
        200,
        "alive even when not ready"
    );
    std::fs::remove_file(&objects).unwrap();
    assert_eq!(gw.admin_get("/readyz").unwrap().0, 200);
}

fn wait_for_metric(gw: &TestGateway, name: &str, at_least: f64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, m) = gw.admin_get("/metrics").unwrap();
        if metric(&m, name).unwrap_or(0.0) >= at_least {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never reached {at_least}:\n{m}\n{}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The HTTPS listener holds at most `https.max_connections`: idle connections that
/// never start TLS fill it, the next client is turned away (and counted), and once
/// they are gone the listener serves again.
#[test]
fn the_https_listener_holds_a_bounded_number_of_connections() {
    let gw = TestGateway::builder()
        .https_config("max_connections = 4")
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    assert_eq!(gw.https_get("/").unwrap().0, 200);
    let idle: Vec<std::net::TcpStream> = (0..4)
        .map(|_| std::net::TcpStream::connect(gw.https).unwrap())
        .collect();
    wait_for_metric(&gw, "gateway_https_connections", 4.0);
    let (status, _) = gw.https_get("/").unwrap();
    assert_eq!(status, 0, "a fifth connection is closed at accept");
    let (_, m) = gw.admin_get("/metrics").unwrap();
    assert!(
        metric(
            &m,
            "gateway_https_refused_connections_total{reason=\"listener_full\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{m}"
    );
    drop(idle);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while metric(
        &gw.admin_get("/metrics").unwrap().1,
        "gateway_https_connections",
    ) != Some(0.0)
    {
        assert!(std::time::Instant::now() < deadline, "slots not released");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(gw.https_get("/").unwrap().0, 200);
}
