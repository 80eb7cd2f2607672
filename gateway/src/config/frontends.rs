//! The listeners' sections: `[sftp]`, `[https]` and `[admin]`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SftpConfig {
    pub listen: SocketAddr,
    /// Offer only the post-quantum hybrid key exchange (mlkem768x25519-sha256).
    pub post_quantum_only: bool,
    /// Also offer encrypt-and-MAC (hmac-sha2-256/512) for clients without ETM MACs.
    pub encrypt_and_mac: bool,
    /// Failed logins from one address before it is locked out.
    pub max_auth_failures: u32,
    /// First lockout, in seconds; each further one doubles, up to `max_lockout_secs`.
    pub lockout_secs: u64,
    pub max_lockout_secs: u64,
    /// Sessions one address may hold at once (0 = no limit).
    pub max_sessions_per_ip: u32,
    /// Sessions one tenant may hold at once, from all addresses (0 = no limit).
    pub max_sessions_per_tenant: u32,
    /// Name endings that mark a temporary upload name: such a file is accepted when it
    /// is renamed to its final name, not when it is closed.
    pub temp_suffixes: Vec<String>,
    /// Seconds a connection has to log in before it is closed.
    pub login_timeout_secs: u64,
    /// Connections the listener holds at once, from everyone.
    pub max_connections: usize,
    /// Session channels one connection may hold open at once.
    pub max_channels_per_connection: usize,
    /// Received data waiting for the disk, all sessions together, MiB.
    pub write_buffer_mib: u64,
}

impl Default for SftpConfig {
    fn default() -> Self {
        SftpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 2222)),
            post_quantum_only: false,
            encrypt_and_mac: false,
            max_auth_failures: 5,
            lockout_secs: 60,
            max_lockout_secs: 3600,
            max_sessions_per_ip: 64,
            max_sessions_per_tenant: 32,
            temp_suffixes: [".filepart", ".partial", ".part", ".tmp"]
                .map(String::from)
                .to_vec(),
            login_timeout_secs: 30,
            max_connections: 1024,
            max_channels_per_connection: 8,
            write_buffer_mib: 32,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpsConfig {
    pub listen: SocketAddr,
    /// PEM certificate chain; empty = self-signed certificate under `data_dir/keys`.
    pub cert_file: PathBuf,
    /// PEM private key matching `cert_file`.
    pub key_file: PathBuf,
    /// A client must send a request's headers (and finish its TLS handshake) within
    /// this many seconds.
    pub header_timeout_secs: u64,
    /// Connections the listener holds open at most; beyond, new ones are closed at
    /// accept (`gateway_https_refused_connections_total{reason="listener_full"}`).
    pub max_connections: usize,
    /// An upload body that sends nothing for this many seconds is cut (its bytes so far
    /// are kept and the upload resumes).
    pub body_idle_timeout_secs: u64,
    /// Seconds a download waits for a client to take its next piece before it ends.
    pub download_stall_secs: u64,
    /// Upload bodies being collected into writes, all tus uploads together, in MiB; an
    /// upload beyond its share waits (TCP pushes back), as `sftp.write_buffer_mib` does.
    pub upload_buffer_mib: u64,
    /// Bytes a tus upload collects before handing them to its session as one write, KiB.
    pub upload_write_kib: u64,
    /// Seconds a tus upload may sit between requests before its open state is dropped
    /// (it stays resumable; the next request reopens it).
    pub idle_upload_secs: u64,
    /// A PATCH that carries `Upload-Checksum` is held in memory until its digest is
    /// checked, so it may be at most this large (clients that checksum send chunks).
    pub checksum_max_chunk_bytes: u64,
    /// Origins allowed to call the API from a browser (CORS); empty = none.
    pub cors_origins: Vec<String>,
    /// Ask clients for an (optional) TLS client certificate; a registered one
    /// (`client_cert_sha256` in the tenants file) identifies the tenant without a token.
    pub client_certificates: bool,
    /// PEM CA certificates a client certificate must chain to; empty = certificates are
    /// trusted by their registered fingerprint alone (self-signed ones work).
    pub client_ca_file: PathBuf,
    /// Serve the web console (`/console/`) for hospitals and reviewers.
    pub console: bool,
    /// Minutes a console sign-in lasts without activity (the cookie is renewed while
    /// the page is open, never beyond the API token's own expiry).
    pub console_session_minutes: u64,
}

impl Default for HttpsConfig {
    fn default() -> Self {
        HttpsConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            header_timeout_secs: 10,
            max_connections: 1024,
            body_idle_timeout_secs: 30,
            download_stall_secs: 60,
            idle_upload_secs: 300,
            upload_buffer_mib: 32,
            upload_write_kib: 256,
            checksum_max_chunk_bytes: 64 << 20,
            cors_origins: Vec::new(),
            client_certificates: false,
            client_ca_file: PathBuf::new(),
            console: true,
            console_session_minutes: 30,
        }
    }
}

impl HttpsConfig {
    /// The configured certificate and key, when they replace the self-signed pair.
    pub fn tls_override(&self) -> Option<(&Path, &Path)> {
        (!self.cert_file.as_os_str().is_empty())
            .then_some((self.cert_file.as_path(), self.key_file.as_path()))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Plain HTTP: /metrics, /healthz, /readyz. Keep it on a private interface.
    pub listen: SocketAddr,
    /// Hex SHA-256 of the bearer token `/admin/*` requires; empty = none, allowed only
    /// on a loopback address.
    pub token_sha256: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token_sha256: String::new(),
        }
    }
}
