//! `TestGateway`: starts the real `gateway` binary on ephemeral loopback ports with a
//! temporary data directory and the tenants a test declares, and tears it down.
//! Later end-to-end tests (SFTP, tus, review API) build on it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod balancer;
pub mod dicom;
pub mod http;
pub mod sftp;

/// The gateway binary: `$GATEWAY_BIN`, or the one cargo built beside this test.
pub fn gateway_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GATEWAY_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/<test-binary> → target/<profile>/gateway
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    profile_dir.join("gateway")
}

/// Runs the gateway binary with `args` to completion.
pub fn run_gateway(args: &[&str], cwd: &Path) -> Result<Output> {
    Command::new(gateway_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .context("cannot run the gateway binary (build it with `cargo build --bin gateway`)")
}

/// An institution for the tenants file.
#[derive(Clone, Debug)]
pub struct TestTenant {
    pub code: String,
    pub profile: String,
    pub ssh_keys: Vec<String>,
    pub allow_ips: Vec<String>,
    pub tokens: Vec<String>,
    pub max_bytes: u64,
    pub requests_per_second: u32,
    pub suspended: Option<(String, String)>,
    pub raw: String,
}

impl TestTenant {
    pub fn new(code: &str) -> TestTenant {
        TestTenant {
            code: code.into(),
            profile: "generic".into(),
            ssh_keys: Vec::new(),
            allow_ips: vec!["127.0.0.0/8".into(), "::1".into()],
            tokens: Vec::new(),
            max_bytes: 0,
            requests_per_second: 0,
            suspended: None,
            raw: String::new(),
        }
    }

    /// Appends raw `key = value` lines to the tenant's entry.
    pub fn raw(mut self, lines: &str) -> Self {
        self.raw.push_str(lines);
        self.raw.push('\n');
        self
    }

    /// Suspended until `until` (`"indefinite"`, a date or an instant) for `reason`.
    pub fn suspended(mut self, until: &str, reason: &str) -> Self {
        self.suspended = Some((until.into(), reason.into()));
        self
    }

    /// An API token for the tenant (its hash goes into the tenants file).
    pub fn token(mut self, token: &str) -> Self {
        self.tokens.push(token.to_string());
        self
    }

    /// A storage quota in bytes.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// A limit on HTTPS API calls per second.
    pub fn requests_per_second(mut self, n: u32) -> Self {
        self.requests_per_second = n;
        self
    }

    pub fn profile(mut self, profile: &str) -> Self {
        self.profile = profile.to_string();
        self
    }

    pub fn ssh_key(mut self, openssh_public: &str) -> Self {
        self.ssh_keys.push(openssh_public.trim().to_string());
        self
    }

    pub fn allow_ips(mut self, ips: &[&str]) -> Self {
        self.allow_ips = ips.iter().map(|s| s.to_string()).collect();
        self
    }

    fn to_toml(&self) -> String {
        let list = |v: &[String]| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let hashes: Vec<String> = self
            .tokens
            .iter()
            .map(|t| gateway::tenants::TokenHash::of(t).to_string())
            .collect();
        let suspended = self
            .suspended
            .as_ref()
            .map(|(u, r)| format!("suspended_until = {u:?}\nsuspended_reason = {r:?}\n"))
            .unwrap_or_default();
        format!(
            "[[tenant]]\ncode = \"{}\"\nname = \"Test hospital {}\"\nprofile = \"{}\"\nssh_keys = [{}]\nallow_ips = [{}]\ntoken_hashes = [{}]\n{suspended}{}quota = {{ max_bytes = {}, requests_per_second = {} }}\n\n",
            self.code,
            self.code,
            self.profile,
            list(&self.ssh_keys),
            list(&self.allow_ips),
            list(&hashes),
            self.raw,
            self.max_bytes,
            self.requests_per_second
        )
    }
}

pub fn tenants_toml(tenants: &[TestTenant]) -> String {
    tenants.iter().map(TestTenant::to_toml).collect()
}

/// A reviewer (`[[principal]]`, role reviewer) for the tenants file.
#[derive(Clone, Debug)]
pub struct TestReviewer {
    pub name: String,
    pub tenants: Vec<String>,
    pub token: String,
    pub age_recipient: Option<String>,
}

impl TestReviewer {
    /// A reviewer granted `tenants` (codes, or `*`) with API token `token`.
    pub fn new(name: &str, tenants: &[&str], token: &str) -> TestReviewer {
        TestReviewer {
            name: name.into(),
            tenants: tenants.iter().map(|t| t.to_string()).collect(),
            token: token.into(),
            age_recipient: None,
        }
    }

    /// Every download by this reviewer is sealed to `recipient`.
    pub fn age_recipient(mut self, recipient: &str) -> Self {
        self.age_recipient = Some(recipient.into());
        self
    }

    fn to_toml(&self) -> String {
        let tenants: Vec<String> = self.tenants.iter().map(|t| format!("{t:?}")).collect();
        let recipient = self
            .age_recipient
            .as_ref()
            .map(|r| format!("age_recipient = {r:?}\n"))
            .unwrap_or_default();
        format!(
            "[[principal]]\nname = {:?}\nrole = \"reviewer\"\ntenants = [{}]\ntoken_hashes = [{:?}]\nallow_ips = [\"127.0.0.0/8\", \"::1\"]\n{recipient}\n",
            self.name,
            tenants.join(", "),
            gateway::tenants::TokenHash::of(&self.token).to_string(),
        )
    }
}

#[derive(Default)]
pub struct TestGatewayBuilder {
    tenants: Vec<TestTenant>,
    reviewers: Vec<TestReviewer>,
    extra_config: String,
    server_config: String,
    sftp_config: String,
    https_config: String,
    admin_config: String,
    grace_secs: u64,
    data_dir: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl TestGatewayBuilder {
    pub fn tenant(mut self, t: TestTenant) -> Self {
        self.tenants.push(t);
        self
    }

    pub fn reviewer(mut self, r: TestReviewer) -> Self {
        self.reviewers.push(r);
        self
    }

    /// Appends raw TOML to the generated config (sections not already present).
    pub fn config(mut self, toml: &str) -> Self {
        self.extra_config.push_str(toml);
        self
    }

    /// Adds keys to the `[server]` section (one `key = value` per line).
    pub fn server_config(mut self, toml: &str) -> Self {
        self.server_config.push_str(toml);
        self.server_config.push('\n');
        self
    }

    /// Adds keys to the `[https]` section (one `key = value` per line).
    pub fn https_config(mut self, toml: &str) -> Self {
        self.https_config.push_str(toml);
        self.https_config.push('\n');
        self
    }

    /// Keeps the data directory here (a small file system, say) instead of in the
    /// gateway's temporary directory.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_owned());
        self
    }

    /// Adds keys to the `[admin]` section (one `key = value` per line).
    pub fn admin_config(mut self, toml: &str) -> Self {
        self.admin_config.push_str(toml);
        self.admin_config.push('\n');
        self
    }

    /// Adds keys to the `[sftp]` section (one `key = value` per line).
    pub fn sftp_config(mut self, toml: &str) -> Self {
        self.sftp_config.push_str(toml);
        self.sftp_config.push('\n');
        self
    }

    /// Sets an environment variable for the gateway process (credentials, say).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn shutdown_grace_secs(mut self, secs: u64) -> Self {
        self.grace_secs = secs;
        self
    }

    pub fn start(self) -> Result<TestGateway> {
        let dir = tempfile::tempdir()?;
        let data_dir = self
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let tenants_path = dir.path().join("tenants.toml");
        let reviewers: String = self.reviewers.iter().map(TestReviewer::to_toml).collect();
        std::fs::write(&tenants_path, tenants_toml(&self.tenants) + &reviewers)?;
        let config_path = dir.path().join("gateway.toml");
        let grace = if self.grace_secs == 0 {
            5
        } else {
            self.grace_secs
        };
        let config = format!(
            "[server]\ndata_dir = {:?}\ntenants_file = {:?}\nshutdown_grace_secs = {grace}\n{}\n\
             [sftp]\nlisten = \"127.0.0.1:0\"\n{}[https]\nlisten = \"127.0.0.1:0\"\n{}[admin]\nlisten = \"127.0.0.1:0\"\n{}\
             [log]\nformat = \"json\"\nlevel = \"info\"\n{}",
            data_dir,
            tenants_path,
            self.server_config,
            self.sftp_config,
            self.https_config,
            self.admin_config,
            self.extra_config
        );
        std::fs::write(&config_path, config)?;
        let mut gw = TestGateway {
            dir,
            data_dir,
            config_path,
            tenants_path,
            child: None,
            env: self.env,
            sftp: unspecified(),
            https: unspecified(),
            admin: unspecified(),
        };
        gw.launch()?;
        Ok(gw)
    }
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// A running gateway process. Dropping it kills the process.
pub struct TestGateway {
    dir: tempfile::TempDir,
    pub data_dir: PathBuf,
    pub config_path: PathBuf,
    pub tenants_path: PathBuf,
    child: Option<Child>,
    env: Vec<(String, String)>,
    pub sftp: SocketAddr,
    pub https: SocketAddr,
    pub admin: SocketAddr,
}

impl TestGateway {
    pub fn builder() -> TestGatewayBuilder {
        TestGatewayBuilder::default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("gateway.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn launch(&mut self) -> Result<()> {
        let listeners = self.data_dir.join("run/listeners.json");
        let _ = std::fs::remove_file(&listeners);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let child = Command::new(gateway_bin())
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", gateway_bin().display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(text) = std::fs::read_to_string(&listeners) {
                let v: serde_json::Value = serde_json::from_str(&text)?;
                let addr = |k: &str| -> Result<SocketAddr> {
                    Ok(v[k].as_str().context("listener address")?.parse()?)
                };
                self.sftp = addr("sftp")?;
                self.https = addr("https")?;
                self.admin = addr("admin")?;
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!("gateway exited during start-up ({status}):\n{}", self.log());
            }
            if Instant::now() > deadline {
                bail!("gateway did not start within 30 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Sends a signal by name (`HUP`, `TERM`, `INT`) with the system `kill`.
    pub fn signal(&self, name: &str) -> Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -{name} failed");
        }
        Ok(())
    }

    /// SIGTERM, then waits up to `limit` for the exit status.
    pub fn stop(&mut self, limit: Duration) -> Result<(ExitStatus, Duration)> {
        let started = Instant::now();
        self.signal("TERM")?;
        let child = self.child.as_mut().context("not running")?;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok((status, started.elapsed()));
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                bail!(
                    "gateway still running {limit:?} after SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops and starts again on the same data directory (new ports).
    pub fn restart(&mut self) -> Result<()> {
        self.stop(Duration::from_secs(30))?;
        self.launch()
    }

    /// Starts again after a `stop` (same data directory, new ports).
    pub fn restart_stopped(&mut self) -> Result<()> {
        self.launch()
    }

    /// Waits up to `limit` for the process to end on its own; its exit status.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<ExitStatus> {
        let started = Instant::now();
        let child = self.child.as_mut().context("not running")?;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if started.elapsed() > limit {
                bail!("gateway still running after {limit:?}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process at once (`kill -9`) and waits for it to be gone.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts again on the same data directory *and the same ports*, so that clients
    /// holding upload URLs (tus) reach the new process.
    pub fn restart_on_same_ports(&mut self) -> Result<()> {
        let config = std::fs::read_to_string(&self.config_path)?;
        let mut pinned = String::new();
        let mut addrs = [self.sftp, self.https, self.admin].into_iter();
        for line in config.lines() {
            if line == "listen = \"127.0.0.1:0\"" {
                let a = addrs.next().context("more listeners than addresses")?;
                pinned.push_str(&format!("listen = \"{a}\"\n"));
            } else {
                pinned.push_str(line);
                pinned.push('\n');
            }
        }
        std::fs::write(&self.config_path, pinned)?;
        self.launch()
    }

    /// The age recipient the gateway's files are sealed to (its identity under `data_dir`).
    pub fn age_recipient(&self) -> Result<gateway::sealed::Recipient> {
        let text = std::fs::read_to_string(self.data_dir.join("keys/age-identity.txt"))?;
        Ok(gateway::sealed::Identity::from_file_text(&text)?.to_public())
    }

    /// `curl` against the admin listener; returns (status, body).
    pub fn admin_get(&self, path: &str) -> Result<(u16, String)> {
        curl(&[&format!("http://{}{path}", self.admin)])
    }

    /// `curl -k` against the HTTPS listener; returns (status, body).
    /// A series' value from `/metrics`, e.g. `gateway_x_total{a="b"}` (0 when absent).
    pub fn metric(&self, series: &str) -> f64 {
        let Ok((_, m)) = self.admin_get("/metrics") else {
            return 0.0;
        };
        m.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    pub fn https_get(&self, path: &str) -> Result<(u16, String)> {
        curl(&["-k", &format!("https://{}{path}", self.https)])
    }

    /// Waits until `/readyz` answers 200.
    pub fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if matches!(self.admin_get("/readyz"), Ok((200, _))) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("gateway never became ready:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes a new tenants file (the gateway sees it after SIGHUP).
    pub fn write_tenants(&self, tenants: &[TestTenant]) -> Result<()> {
        std::fs::write(&self.tenants_path, tenants_toml(tenants))?;
        Ok(())
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs curl with `-s -w '\n%{http_code}'`, returning (status, body).
pub fn curl(args: &[&str]) -> Result<(u16, String)> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .context("curl is required for the end-to-end tests")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Ok((code.trim().parse().unwrap_or(0), body.to_string()))
}

/// The `age` CLI's opening of the sealed file at `sealed` with `identity` (an identity
/// file); panics with age's own words when it refuses.
pub fn age_decrypt_file(identity: &Path, sealed: &Path) -> Vec<u8> {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(sealed)
        .output()
        .expect("the age CLI (scripts/test-setup.sh installs it)");
    assert!(
        out.status.success(),
        "age -d: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An Ed25519 key pair made by the real `ssh-keygen`; returns (private path, public line).
pub fn ssh_keygen(dir: &Path, name: &str) -> Result<(PathBuf, String)> {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .context("ssh-keygen is required")?;
    if !status.success() {
        bail!("ssh-keygen failed");
    }
    let public = std::fs::read_to_string(path.with_extension("pub"))?;
    Ok((path, public.trim().to_string()))
}

/// The OpenSSH client set up for a test login as `user` with `key`: no prompts, no
/// known-hosts file, only that key. Add the command (`-s sftp`, `-N`, …) and run it.
/// OpenSSH client options for tests: no prompts, no known-hosts file, only the given key.
pub const SSH_OPTIONS: [&str; 6] = [
    "BatchMode=yes",
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/dev/null",
    "IdentitiesOnly=yes",
    "ConnectTimeout=10",
    "LogLevel=ERROR",
];

pub fn ssh_command(addr: SocketAddr, user: &str, key: &Path) -> Command {
    let mut c = Command::new("ssh");
    for opt in SSH_OPTIONS {
        c.arg("-o").arg(opt);
    }
    c.arg("-p").arg(addr.port().to_string()).arg("-i").arg(key);
    c.arg(format!("{user}@{}", addr.ip()));
    c
}

/// Logs in with the OpenSSH `sftp` client and asks where it is.
/// Returns (exit code, stdout and stderr); a login that worked shows
/// "Remote working directory: /".
pub fn ssh_login(addr: SocketAddr, user: &str, key: &Path) -> Result<(i32, String)> {
    sftp_batch(addr, user, key, "pwd\n")
}

/// Runs the OpenSSH `sftp` client in batch mode (`-b -`) with `script` on stdin, as
/// `user` with `key`, no prompts and no known-hosts file. Returns (exit code, stdout and
/// stderr together).
pub fn sftp_batch(addr: SocketAddr, user: &str, key: &Path, script: &str) -> Result<(i32, String)> {
    sftp_batch_with(addr, user, key, &[], script)
}

/// [`sftp_batch`] with further `-o` options (e.g. `BindAddress=127.0.0.5`).
pub fn sftp_batch_with(
    addr: SocketAddr,
    user: &str,
    key: &Path,
    options: &[&str],
    script: &str,
) -> Result<(i32, String)> {
    let mut c = Command::new("sftp");
    for opt in SSH_OPTIONS.iter().chain(options) {
        c.arg("-o").arg(opt);
    }
    c.arg("-b")
        .arg("-")
        .arg("-P")
        .arg(addr.port().to_string())
        .arg("-i")
        .arg(key);
    c.arg(format!("{user}@{}", addr.ip()));
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("the OpenSSH client `sftp` is required")?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(script.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// Panics with promtool's findings unless `scrape` (a `/metrics` text) passes
/// `promtool check metrics`.
pub fn assert_promtool_clean(scrape: &str) {
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is required");
    if let Some(stdin) = check.stdin.as_mut() {
        std::io::Write::write_all(stdin, scrape.as_bytes()).expect("promtool stdin");
    }
    let out = check.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every message in JetStream stream `stream`: (Nats-Msg-Id, the payload's event_id);
/// each message's subject is checked to be `gateway.events.<kind>`.
pub fn jetstream_messages(addr: SocketAddr, stream: &str) -> Vec<(String, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_nats::connect(addr.to_string()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream(stream).await.unwrap();
        let n = stream.info().await.unwrap().state.messages;
        let mut out = Vec::new();
        for seq in 1..=n {
            let m = stream.get_raw_message(seq).await.unwrap();
            let id = m
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.to_string())
                .unwrap_or_default();
            let v: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            assert_eq!(
                m.subject.as_str(),
                format!("gateway.events.{}", v["kind"].as_str().unwrap())
            );
            out.push((id, v["event_id"].as_str().unwrap().to_string()));
        }
        out
    })
}

/// Ends a running `loadtest run` the way an operator does (SIGTERM: no new uploads,
/// those under way finish and the report is written), waits up to `within`, and returns
/// its printed summary and `report.json` from `out_dir`; a failed run fails the test.
pub fn end_loadtest(load: Child, out_dir: &Path, within: Duration) -> (String, serde_json::Value) {
    let mut load = load;
    let status = Command::new("kill")
        .args(["-TERM", &load.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + within;
    while load.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the load generator did not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = load.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&run.stdout).into_owned();
    println!("{summary}");
    assert!(
        run.status.success(),
        "{summary}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report =
        serde_json::from_slice(&std::fs::read(out_dir.join("report.json")).unwrap()).unwrap();
    (summary, report)
}
