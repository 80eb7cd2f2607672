//! Gateway configuration: one serde struct per TOML section, unknown keys refused.
//!
//! Sources, later ones winning: built-in defaults, the TOML file (optional), and
//! environment variables `GATEWAY_<SECTION>__<KEY>` (see [`env`]).  Every key and its
//! default is documented in `config/gateway.toml`; a test keeps the two in step.

mod dicomweb;
mod env;
mod frontends;
mod handoff;
mod objects;

pub use dicomweb::DicomwebConfig;
pub use frontends::{AdminConfig, HttpsConfig, SftpConfig};
pub use handoff::{NatsConfig, PublishConfig, RetentionConfig, WebhookConfig};
pub use objects::ObjectsConfig;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Why a configuration could not be used. Exit code 2 in the binary.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Key { key: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

impl ConfigError {
    /// Stable machine code, as used everywhere else in the gateway.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config.unreadable",
            ConfigError::Syntax { .. } => "config.syntax",
            ConfigError::Key { .. } => "config.invalid_key",
            ConfigError::Env { .. } => "config.invalid_env",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub sftp: SftpConfig,
    pub https: HttpsConfig,
    pub admin: AdminConfig,
    pub catalog: CatalogConfig,
    pub objects: ObjectsConfig,
    pub ingest: IngestConfig,
    pub pipeline: PipelineConfig,
    pub inspect: InspectConfig,
    pub requests: crate::pipeline::request::RequestsConfig,
    pub retention: RetentionConfig,
    pub publish: PublishConfig,
    pub dicomweb: DicomwebConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Every piece of state lives below this directory.
    pub data_dir: PathBuf,
    /// Institutions, reviewers and admins; reloaded on SIGHUP.
    pub tenants_file: PathBuf,
    /// Seconds in-flight requests and sessions get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Load balancers (addresses or networks) whose connections start with a PROXY v2
    /// header naming the client; see `frontends::proxy`.
    pub proxy_protocol_from: Vec<ipnet::IpNet>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./data"),
            tenants_file: PathBuf::from("config/tenants.toml"),
            shutdown_grace_secs: 30,
            proxy_protocol_from: Vec::new(),
        }
    }
}

impl ServerConfig {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter directive, e.g. `info` or `gateway=debug,info`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// Database URL; empty = embedded SQLite at `data_dir/catalog.db`.
    pub url: String,
    /// When an embedded catalog's commits reach the disk.
    pub synchronous: Synchronous,
}

/// SQLite's `synchronous` setting for the embedded catalog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit is on disk before it returns: what a client was told survives
    /// power loss.
    #[default]
    Full,
    /// Commits survive a crash of the process, not of the machine.
    Normal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest sealed file accepted, in bytes.
    pub max_file_bytes: u64,
    /// Received bytes allowed to sit unsynced before an fsync and a durable-offset update.
    pub fsync_interval_bytes: u64,
    /// … or once this many seconds passed since the last sync (slow lines, rule 24).
    pub fsync_interval_secs: u64,
    /// Accept files sealed to other recipients besides the gateway.
    pub allow_other_recipients: bool,
    /// Hours a partial upload may sit untouched before it expires and its bytes go.
    pub partial_expiry_hours: u64,
    /// Days a rejected upload's bytes are kept for inspection (quarantine).
    pub quarantine_days: u64,
    /// Hours a pre-check (rule 21) and its result are kept after its checks.
    pub precheck_hours: u64,
    /// Seconds between housekeeping sweeps (expiry and the end of quarantine).
    pub housekeeping_interval_secs: u64,
    /// Accepted uploads waiting for their checks before new uploads wait at the door
    /// (0: never).
    pub max_backlog: u64,
    /// The longest a new upload waits for room in the backlog.
    pub admission_wait_secs: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_file_bytes: 16 << 30,
            fsync_interval_bytes: 8 << 20,
            fsync_interval_secs: 10,
            allow_other_recipients: false,
            partial_expiry_hours: 48,
            quarantine_days: 14,
            precheck_hours: 24,
            housekeeping_interval_secs: 300,
            max_backlog: 32,
            admission_wait_secs: 30,
        }
    }
}

/// Limits of the inspectors and the profile rules that take a figure.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InspectConfig {
    /// Largest PDF inspected (lopdf parses from memory).
    pub pdf_max_bytes: u64,
    /// Largest DICOM header (everything before the pixel data) read.
    pub dicom_max_header_bytes: u64,
    pub zip_max_entries: usize,
    pub zip_max_total_bytes: u64,
    pub zip_max_ratio: u64,
    /// `nhi-review`: review-record categories whose PDFs need an outline.
    pub nhi_outline_categories: Vec<String>,
    /// Where parsers of hospital files run: `process` (worker processes under limits)
    /// or `in-process` (no isolation; for comparison only).
    pub isolation: crate::pipeline::isolation::Isolation,
    /// Heap a worker may hold (RLIMIT_DATA), MiB.
    pub worker_memory_mib: u64,
    /// CPU seconds a worker may spend on one upload (RLIMIT_CPU).
    pub worker_cpu_secs: u64,
    /// Wall-clock time one upload's inspection may take, milliseconds.
    pub worker_timeout_ms: u64,
    /// Deepest DICOM sequence nesting read (items inside sequences inside items…).
    pub dicom_max_depth: u32,
    /// Deepest nesting of PDF arrays and dictionaries read.
    pub pdf_max_depth: u32,
}

impl Default for InspectConfig {
    fn default() -> Self {
        InspectConfig {
            pdf_max_bytes: 512 << 20,
            dicom_max_header_bytes: 64 << 20,
            zip_max_entries: 100_000,
            zip_max_total_bytes: 64 << 30,
            zip_max_ratio: 200,
            nhi_outline_categories: vec!["A".into()],
            isolation: crate::pipeline::isolation::Isolation::Process,
            worker_memory_mib: 2048,
            worker_cpu_secs: 120,
            worker_timeout_ms: 300_000,
            dicom_max_depth: 32,
            pdf_max_depth: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineConfig {
    /// Daily `HH:MM-HH:MM` periods (local time at `utc_offset`) during which checks wait.
    pub maintenance_windows: Vec<String>,
    /// The local time of the maintenance windows, as a fixed offset from UTC.
    pub utc_offset: String,
    /// Announced outages (rule 26), checks wait as in a maintenance window:
    /// `YYYY-MM-DD HH:MM-HH:MM` or `YYYY-MM-DDTHH:MM/YYYY-MM-DDTHH:MM`, local time.
    pub outages: Vec<String>,
    /// Uploads checked at once (taken in arrival order).
    pub workers: usize,
    /// Extra workers that check only uploads of at most `small_file_bytes`.
    pub small_file_workers: usize,
    pub small_file_bytes: u64,
    /// Checks of one upload started before it is given up (`check.interrupted`).
    pub max_check_attempts: u32,
    /// A DICOMDIR set sent as a folder tree may arrive in any order: what it still
    /// misses (files for its DICOMDIR, a DICOMDIR for a loose DICOM file of
    /// `nhi-review`) fails only once nothing has arrived in the folder for this long.
    pub set_quiet_secs: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            maintenance_windows: Vec::new(),
            utc_offset: "+08:00".into(),
            outages: Vec::new(),
            workers: 4,
            small_file_workers: 16,
            small_file_bytes: 8 << 20,
            max_check_attempts: 3,
            set_quiet_secs: 600,
        }
    }
}

impl PipelineConfig {
    pub fn windows(&self) -> Result<crate::pipeline::window::Windows, String> {
        crate::pipeline::window::Windows::parse(&self.maintenance_windows, &self.utc_offset)?
            .with_outages(&self.outages)
    }
}

impl Config {
    /// Loads defaults, then `path` if given, then `GATEWAY_*` environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// As [`Config::load`] with an explicit environment (tests stay hermetic).
    pub fn load_with_env(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(p) => read_table(p)?,
            None => toml::Table::new(),
        };
        env::apply(&mut table, vars)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                ConfigError::Key {
                    key: key_path(e.path()),
                    message: e.into_inner().message().to_string(),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, message: &str| {
            Err(ConfigError::Key {
                key: key.into(),
                message: message.into(),
            })
        };
        if self.server.data_dir.as_os_str().is_empty() {
            return bad("server.data_dir", "must not be empty");
        }
        if self.https.cert_file.as_os_str().is_empty() != self.https.key_file.as_os_str().is_empty()
        {
            return bad(
                "https.cert_file",
                "cert_file and key_file must be given together",
            );
        }
        if let Err(e) = self.pipeline.windows() {
            return bad("pipeline.maintenance_windows", &e);
        }
        if let Err(e) = crate::pipeline::request::RequestRules::compile(&self.requests) {
            return bad("requests", &e);
        }
        let token = &self.admin.token_sha256;
        if !token.is_empty() && (token.len() != 64 || hex::decode(token).is_err()) {
            return bad("admin.token_sha256", "must be 64 hex digits (a SHA-256)");
        }
        if token.is_empty() && !self.admin.listen.ip().is_loopback() {
            return bad(
                "admin.token_sha256",
                "an admin listener on a non-loopback address needs a token: set the SHA-256 of one here",
            );
        }
        if self.ingest.fsync_interval_bytes == 0 {
            return bad("ingest.fsync_interval_bytes", "must be at least 1");
        }
        if self.ingest.partial_expiry_hours == 0 {
            return bad("ingest.partial_expiry_hours", "must be at least 1");
        }
        if self.ingest.housekeeping_interval_secs == 0 {
            return bad("ingest.housekeeping_interval_secs", "must be at least 1");
        }
        if let Err((key, message)) = self.objects.check() {
            return bad(key, &message);
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return bad("log.level", &e.to_string());
        }
        Ok(())
    }

    /// The effective configuration as TOML, with secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        if !shown.catalog.url.is_empty() {
            shown.catalog.url = redact_url(&shown.catalog.url);
        }
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.server.data_dir.join("keys")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.server.data_dir.join("run")
    }
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

fn key_path(path: &serde_path_to_error::Path) -> String {
    let s = path.to_string();
    if s == "." { "(top level)".into() } else { s }
}

/// Keeps scheme and host of a database URL, hides credentials.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://<redacted>{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.toml");
        std::fs::write(&p, text).unwrap();
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load_with_env(Some(&p), vars)
    }

    #[test]
    fn defaults_without_file() {
        let c = Config::load_with_env(None, Vec::new()).unwrap();
        assert_eq!(c.sftp.listen.port(), 2222);
        assert_eq!(c.https.listen.port(), 8443);
        assert_eq!(c.admin.listen.port(), 9090);
        assert_eq!(c.server.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = load_str("[sftp]\nlisen = \"127.0.0.1:1\"\n", &[]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("lisen"), "{msg}");
        assert!(msg.contains("sftp"), "{msg}");
        assert_eq!(e.code(), "config.invalid_key");
    }

    #[test]
    fn malformed_value_is_named() {
        let e = load_str("[admin]\nlisten = \"not an address\"\n", &[]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("admin.listen"), "{msg}");
    }

    #[test]
    fn syntax_error_says_where() {
        let e = load_str("[admin\n", &[]).unwrap_err();
        assert_eq!(e.code(), "config.syntax");
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn env_overrides_file() {
        let c = load_str(
            "[sftp]\nlisten = \"127.0.0.1:1\"\n",
            &[
                ("GATEWAY_SFTP__LISTEN", "127.0.0.1:2"),
                ("GATEWAY_SERVER__SHUTDOWN_GRACE_SECS", "5"),
                ("UNRELATED", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.sftp.listen.port(), 2);
        assert_eq!(c.server.shutdown_grace_secs, 5);
    }

    #[test]
    fn env_unknown_key_is_named() {
        let e = load_str("", &[("GATEWAY_SFTP__NOPE", "1")]).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn redacts_database_credentials() {
        let mut c = Config::default();
        c.catalog.url = "postgres://user:secret@db:5432/gw".into();
        let shown = c.to_redacted_toml();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("@db:5432/gw"), "{shown}");
    }

    /// The documented example must be exactly the defaults, key for key.
    #[test]
    fn documented_file_matches_defaults() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/gateway.toml");
        let documented = Config::load_with_env(Some(&p), Vec::new()).unwrap();
        let a = toml::to_string(&documented).unwrap();
        let b = toml::to_string(&Config::default()).unwrap();
        assert_eq!(a, b);
        let text = std::fs::read_to_string(&p).unwrap();
        let table: toml::Table = text.parse().unwrap();
        let defaults: toml::Table = b.parse().unwrap();
        for (section, keys) in &defaults {
            let keys = keys.as_table().unwrap();
            let doc = table.get(section).and_then(|v| v.as_table());
            for key in keys.keys() {
                assert!(
                    doc.is_some_and(|d| d.contains_key(key)),
                    "config/gateway.toml does not document {section}.{key}"
                );
            }
        }
    }
}
