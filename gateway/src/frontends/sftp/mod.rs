//! The SSH/SFTP listener (russh, ring backend). Hospitals log in as their 10-digit
//! code with a registered key, from a registered address, and get the SFTP subsystem:
//! [`vfs`] is the tree they see, [`server`] the request loop, [`protocol`] the wire
//! format. Uploads go through the same ingest session as every other front end.

mod connection;
pub mod defender;
pub mod protocol;
mod revoke;
mod server;
mod upload;
pub mod vfs;
mod window;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use russh::{MethodKind, MethodSet};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::frontends::proxy::Balancers;
use crate::session::IngestCore;
use crate::telemetry::events::{
    InternalEvent, ProxyHeaderRead, SessionRevoked, SshConnectionAccepted, SshConnectionRefused,
};
use crate::tenants::Registry;
use connection::Connection;

pub fn server_config(
    host_key: russh::keys::PrivateKey,
    cfg: &crate::config::SftpConfig,
) -> russh::server::Config {
    russh::server::Config {
        server_id: russh::SshId::Standard(
            concat!("SSH-2.0-gateway_", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        keys: vec![host_key],
        auth_rejection_time: std::time::Duration::from_millis(300),
        auth_rejection_time_initial: Some(std::time::Duration::ZERO),
        // Sized by measurement (../shared/STACK.md): the defaults (2 MiB window, 32 KiB
        // packets) cap a loopback upload near OpenSSH's own speed. russh tops the window
        // up as data arrives, not as it is consumed, so the channel queue is what bounds
        // a session's memory: 64 messages of at most 256 KiB, 16 MiB (1,024 allowed a
        // client to park up to 256 MiB in a session whose uploads the disk could not
        // take as fast as they came). Then 64 were measured at 19 MiB per upload with 50
        // uploads at once (955 MiB): now 8 messages (2 MiB) per session, and the data
        // queued for the disk is held against one pool for the whole listener
        // (`write_buffer_mib`), so memory no longer grows with the session count. The
        // window is then narrowed to each session's share of that pool (window.rs).
        window_size: window::Windows::WIDEST,
        maximum_packet_size: 256 << 10,
        channel_buffer_size: 8,
        preferred: algorithms(cfg),
        ..Default::default()
    }
}

/// Modern algorithms only: no SHA-1, no CBC, no finite-field Diffie-Hellman, Ed25519
/// host keys; see the `[sftp]` keys for the two compatibility choices.
fn algorithms(cfg: &crate::config::SftpConfig) -> russh::Preferred {
    use russh::{cipher, kex, mac};
    let mut kexes = vec![kex::MLKEM768X25519_SHA256];
    if !cfg.post_quantum_only {
        kexes.extend([kex::CURVE25519, kex::CURVE25519_PRE_RFC_8731]);
    }
    kexes.extend([
        kex::EXTENSION_SUPPORT_AS_SERVER,
        kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
    ]);
    let mut macs = vec![mac::HMAC_SHA256_ETM, mac::HMAC_SHA512_ETM];
    if cfg.encrypt_and_mac {
        macs.extend([mac::HMAC_SHA256, mac::HMAC_SHA512]);
    }
    russh::Preferred {
        kex: kexes.into(),
        key: vec![russh::keys::Algorithm::Ed25519].into(),
        cipher: vec![
            cipher::AES_256_GCM,
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_CTR,
            cipher::AES_128_CTR,
        ]
        .into(),
        mac: macs.into(),
        ..russh::Preferred::DEFAULT
    }
}

/// What the SFTP listener shares with every connection.
pub struct Listener {
    pub config: Arc<russh::server::Config>,
    pub tenants: Registry,
    pub core: Arc<IngestCore>,
    pub rules: defender::Rules,
    /// `[sftp] temp_suffixes`.
    pub temp_suffixes: Arc<[String]>,
    pub limits: ConnectionLimits,
    /// `[server] proxy_protocol_from`.
    pub balancers: Balancers,
}

/// `[sftp] login_timeout_secs`, `max_connections`, `max_channels_per_connection`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub login_timeout_secs: u64,
    pub max_connections: usize,
    pub max_channels_per_connection: usize,
    pub write_buffer_mib: u64,
}

impl ConnectionLimits {
    pub fn of(cfg: &crate::config::SftpConfig) -> ConnectionLimits {
        ConnectionLimits {
            login_timeout_secs: cfg.login_timeout_secs,
            max_connections: cfg.max_connections,
            max_channels_per_connection: cfg.max_channels_per_connection,
            write_buffer_mib: cfg.write_buffer_mib,
        }
    }
}

/// What every connection of the listener shares.
struct Shared {
    config: Arc<russh::server::Config>,
    tenants: Registry,
    core: Arc<IngestCore>,
    temp_suffixes: Arc<[String]>,
    limits: ConnectionLimits,
    defender: Arc<defender::Defender>,
    balancers: Balancers,
    /// Data queued for the disk, held against one pool for the whole listener.
    pool: Arc<tokio::sync::Semaphore>,
    windows: Arc<window::Windows>,
}

/// Accepts connections until `shutdown` turns true. Then each session ends as soon as
/// it has no upload in flight (no new uploads start), so a file being closed at that
/// moment is still accepted; sessions still open after the grace period are dropped by
/// the caller's timeout, and their partial uploads resume from their durable offset.
pub async fn run(listener: TcpListener, l: Listener, mut shutdown: watch::Receiver<bool>) {
    let max_connections = l.limits.max_connections.max(1);
    let shared = Arc::new(Shared {
        pool: Arc::new(tokio::sync::Semaphore::new(
            usize::try_from(l.limits.write_buffer_mib.max(1) * 1024).unwrap_or(usize::MAX),
        )),
        windows: window::Windows::new(l.limits.write_buffer_mib),
        defender: Arc::new(defender::Defender::new(l.rules)),
        config: l.config,
        tenants: l.tenants,
        core: l.core,
        temp_suffixes: l.temp_suffixes,
        limits: l.limits,
        balancers: l.balancers,
    });
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let (socket, tcp_peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "ssh accept failed");
                        continue;
                    }
                };
                if sessions.len() >= max_connections {
                    SshConnectionRefused { ip: tcp_peer.ip(), reason: "listener_full" }.emit();
                    drop(socket);
                    continue;
                }
                sessions.spawn(admit(shared.clone(), socket, tcp_peer, shutdown.clone()));
            }
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    while sessions.join_next().await.is_some() {}
}

/// Learns who is calling (through a balancer: from its PROXY header), lets the
/// defender judge that address, then serves the connection.
async fn admit(
    shared: Arc<Shared>,
    mut socket: tokio::net::TcpStream,
    tcp_peer: std::net::SocketAddr,
    stop: watch::Receiver<bool>,
) {
    let peer = if shared.balancers.trusts(tcp_peer.ip()) {
        let read = shared.balancers.client_of(&mut socket, tcp_peer).await;
        ProxyHeaderRead {
            protocol: "sftp",
            balancer: tcp_peer,
            outcome: read.as_ref().copied(),
        }
        .emit();
        match read {
            Ok(client) => client,
            Err(_) => return,
        }
    } else {
        tcp_peer
    };
    if let Err(refusal) = shared.defender.admit(peer.ip(), std::time::Instant::now()) {
        let reason = match refusal {
            defender::Refusal::Locked(_) => "locked",
            defender::Refusal::TooManySessions => "too_many_sessions",
        };
        SshConnectionRefused {
            ip: peer.ip(),
            reason,
        }
        .emit();
        return;
    }
    SshConnectionAccepted { peer }.emit();
    let in_flight = upload::InFlight::new();
    let handler = Connection {
        defender: shared.defender.clone(),
        refused: false,
        peer,
        tenants: shared.tenants.clone(),
        core: shared.core.clone(),
        tenant: None,
        channels: HashMap::new(),
        serving: Arc::new(AtomicUsize::new(0)),
        max_channels: shared.limits.max_channels_per_connection.max(1),
        logged_in: Arc::new(AtomicBool::new(false)),
        temp_suffixes: shared.temp_suffixes.clone(),
        stop: stop.clone(),
        in_flight: in_flight.clone(),
        pool: shared.pool.clone(),
        windows: shared.windows.clone(),
        counted: shared.windows.join(),
        login_key: revoke::LoginKey::default(),
    };
    let config = Arc::new(window::config_with_window(
        &shared.config,
        shared.windows.target(),
    ));
    let login = Login {
        done: handler.logged_in.clone(),
        within: std::time::Duration::from_secs(shared.limits.login_timeout_secs.max(1)),
    };
    serve_connection(config, socket, handler, stop, in_flight, login).await;
}

/// The login deadline of one connection.
struct Login {
    done: Arc<AtomicBool>,
    within: std::time::Duration,
}

/// Runs one SSH connection; at shutdown, ends it once its uploads are done. A
/// connection that has not logged in within the login deadline is closed.
async fn serve_connection(
    config: Arc<russh::server::Config>,
    socket: tokio::net::TcpStream,
    handler: Connection,
    mut stop: watch::Receiver<bool>,
    in_flight: upload::InFlight,
    login: Login,
) {
    let peer = handler.peer;
    let (tenants, login_key) = (handler.tenants.clone(), handler.login_key.clone());
    let mut changes = tenants.changes();
    let mut watching = true;
    let deadline = tokio::time::Instant::now() + login.within;
    let started =
        tokio::time::timeout_at(deadline, russh::server::run_stream(config, socket, handler)).await;
    let session = match started {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(peer = %peer, error = %e, "ssh handshake failed");
            return;
        }
        Err(_) => {
            SshConnectionRefused {
                ip: peer.ip(),
                reason: "login_timeout",
            }
            .emit();
            return;
        }
    };
    let handle = session.handle();
    tokio::pin!(session);
    let late = tokio::time::sleep_until(deadline);
    tokio::pin!(late);
    let mut deadline_passed = false;
    let ended = loop {
        tokio::select! {
            r = &mut session => break Some(r),
            _ = stop.changed() => break None,
            changed = changes.changed(), if watching => {
                if changed.is_err() {
                    watching = false;
                    continue;
                }
                let Some((tenant, reason)) = revoke::revoked(&tenants, &login_key, peer.ip()) else {
                    continue;
                };
                SessionRevoked { protocol: "sftp", tenant: &tenant, ip: peer.ip(), reason }.emit();
                let _ = handle
                    .disconnect(russh::Disconnect::ByApplication, "access revoked".into(), "".into())
                    .await;
                break Some((&mut session).await);
            }
            _ = &mut late, if !deadline_passed => {
                deadline_passed = true;
                // Checked now, not when the wait began: the login may have come since.
                if login.done.load(Ordering::Relaxed) {
                    continue;
                }
                SshConnectionRefused { ip: peer.ip(), reason: "login_timeout" }.emit();
                let _ = handle
                    .disconnect(russh::Disconnect::ByApplication, "login timed out".into(), "".into())
                    .await;
                break Some((&mut session).await);
            }
        }
    };
    let result = match ended {
        Some(r) => r,
        None => {
            tokio::select! {
                r = &mut session => r,
                _ = in_flight.settled(std::time::Duration::from_millis(300)) => {
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "gateway shutting down".into(), "".into())
                        .await;
                    session.await
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "ssh session ended with error");
    }
}

/// Appends to the audit log in the background (a login or a reply never waits for it).
pub(super) fn audit(
    core: &Arc<IngestCore>,
    actor: &str,
    action: &'static str,
    detail: serde_json::Value,
) {
    let (core, actor) = (core.clone(), actor.to_string());
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            if let Err(e) = core.catalog().audit(&actor, action, &detail).await {
                tracing::error!(code = e.code(), error = %e, action, "audit record not written");
            }
        });
    }
}
