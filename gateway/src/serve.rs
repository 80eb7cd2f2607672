//! `gateway serve`: bring up keys, catalog, tenants and every listener; reload tenants
//! on SIGHUP; on SIGTERM / Ctrl-C stop accepting, give in-flight work the grace
//! period, flush the catalog and exit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

use crate::backends::catalog::{self, CatalogError, UploadState};
use crate::backends::objects::local::LocalStore;
use crate::backends::objects::s3::S3Store;
use crate::backends::objects::{ObjectError, ObjectStore};
use crate::config::Config;
use crate::frontends::{self, AppState};
use crate::keys::{self, KeysError};
use crate::session::{IngestCore, IngestSettings};
use crate::telemetry::events::{InternalEvent, ListenerStarted};
use crate::tenants::{Registry, TenantsError};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Keys(#[from] KeysError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Tenants(#[from] TenantsError),
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error("cannot listen on {addr} ({name}): {source}")]
    Bind {
        name: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS setup failed: {0}")]
    Tls(std::io::Error),
    #[error(transparent)]
    Webhook(#[from] crate::backends::sinks::webhook::WebhookSetupError),
    #[error(transparent)]
    TlsConfig(#[from] frontends::https::tls::TlsSetupError),
    #[error("signal handling unavailable: {0}")]
    Signals(std::io::Error),
    #[error("cannot find the gateway binary to start inspector workers: {0}")]
    WorkerBinary(std::io::Error),
}

/// The bound addresses, written to `data_dir/run/listeners.json` once listening
/// (ports chosen by the OS when configured as 0 show up here).
#[derive(Debug, Serialize)]
pub struct Listeners {
    pub sftp: SocketAddr,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    pub pid: u32,
}

/// Everything set up before any listener opens.
pub async fn prepare(config: Config) -> Result<AppState, ServeError> {
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| ServeError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let tls = config.https.tls_override();
    let keys = keys::load_or_generate(&config.keys_dir(), tls)?;
    tracing::info!(
        recipient = %keys.age_recipient(),
        ssh_host_key = %keys.ssh_fingerprint(),
        "gateway identity (hospitals seal files to this age recipient)"
    );
    let catalog =
        catalog::open_with(&config.catalog.url, &data_dir, config.catalog.synchronous).await?;
    let tenants = Registry::load(&config.server.tenants_file)?;
    let objects = open_objects(&config, &data_dir)?;
    let mut settings = IngestSettings::from_config(&config);
    if catalog.is_shared() && !config.objects.url.is_empty() {
        // A cluster: partial uploads must be resumable on any node.
        settings.checkpoints = Some(Arc::new(crate::session::checkpoint::Checkpoints::new(
            objects.clone(),
        )));
    } else if catalog.is_shared() {
        tracing::warn!(
            "the catalog is shared but objects are on this node's disk: other nodes \
             cannot read what this one stores (docs/scale-out.md)"
        );
    }
    let ingest = IngestCore::new(
        catalog.clone(),
        tenants.clone(),
        keys.age_identity.clone(),
        settings,
    );
    // Admission counts the backlog itself from here on; what a previous run left
    // accepted or mid-check is counted once, before any listener opens.
    let mut backlog = 0;
    for state in [UploadState::Accepted, UploadState::Checking] {
        backlog += u64::try_from(catalog.count_in_state(state).await?).unwrap_or(0);
    }
    ingest.admission().seed(backlog);
    Ok(AppState {
        config: Arc::new(config),
        catalog,
        tenants,
        keys: Arc::new(keys),
        objects,
        ingest,
    })
}

/// The local directory under the data directory, or the S3 bucket `[objects] url` names.
fn open_objects(config: &Config, data_dir: &Path) -> Result<Arc<dyn ObjectStore>, ServeError> {
    if let Some(s3) = config.objects.s3() {
        let store = S3Store::new(&s3)?;
        tracing::info!(store = store.describe(), "objects are stored in S3");
        return Ok(Arc::new(store));
    }
    let objects_dir = data_dir.join("objects");
    let store = LocalStore::new(&objects_dir).map_err(|source| ServeError::DataDir {
        path: objects_dir,
        source,
    })?;
    Ok(Arc::new(store))
}

async fn bind(name: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { name, addr, source })
}

fn local(
    name: &'static str,
    l: &TcpListener,
    configured: SocketAddr,
) -> Result<SocketAddr, ServeError> {
    l.local_addr().map_err(|source| ServeError::Bind {
        name,
        addr: configured,
        source,
    })
}

/// Runs the gateway until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let state = prepare(config).await?;
    let cfg = state.config.clone();
    let grace = cfg.server.shutdown_grace();

    // Signal streams first, so a signal that arrives during start-up is not lost.
    let mut sigterm = signal(SignalKind::terminate()).map_err(ServeError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(ServeError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(ServeError::Signals)?;

    let sftp_l = bind("sftp", cfg.sftp.listen).await?;
    let https_l = bind("https", cfg.https.listen).await?;
    let admin_l = bind("admin", cfg.admin.listen).await?;
    let listeners = Listeners {
        sftp: local("sftp", &sftp_l, cfg.sftp.listen)?,
        https: local("https", &https_l, cfg.https.listen)?,
        admin: local("admin", &admin_l, cfg.admin.listen)?,
        pid: std::process::id(),
    };

    let mut jobs = crate::jobs::Jobs::new();
    let stop_rx = jobs.stop_signal();

    let ssh_config = Arc::new(frontends::sftp::server_config(
        state.keys.ssh_host_key.clone(),
        &cfg.sftp,
    ));
    let balancers = frontends::proxy::Balancers::new(&cfg.server.proxy_protocol_from);
    let sftp = frontends::sftp::Listener {
        config: ssh_config,
        tenants: state.tenants.clone(),
        core: state.ingest.clone(),
        rules: frontends::sftp::defender::Rules::from_config(&cfg.sftp),
        temp_suffixes: cfg.sftp.temp_suffixes.clone().into(),
        limits: frontends::sftp::ConnectionLimits::of(&cfg.sftp),
        balancers: balancers.clone(),
    };
    let sftp_task = tokio::spawn(frontends::sftp::run(sftp_l, sftp, stop_rx.clone()));

    let tls =
        axum_server::tls_rustls::RustlsConfig::from_config(frontends::https::tls::server_config(
            &state.keys.tls_cert_pem,
            &state.keys.tls_key_pem,
            &cfg.https,
        )?);
    // Slow-drip defence: headers must come in time (bodies have their own idle timeout).
    let header_timeout = Duration::from_secs(cfg.https.header_timeout_secs.max(1));
    let https_handle = axum_server::Handle::new();
    let https_std = https_l.into_std().map_err(ServeError::Tls)?;
    // TLS over a capped acceptor: beyond `https.max_connections` a connection is
    // closed before its handshake.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
        .handshake_timeout(header_timeout)
        .acceptor(frontends::https::proxied::Proxied::new(
            balancers,
            frontends::https::limit::Capped::new(cfg.https.max_connections),
        ));
    let mut https_server = axum_server::from_tcp(https_std)
        .map_err(ServeError::Tls)?
        .acceptor(acceptor);
    https_server
        .http_builder()
        .http1()
        .header_read_timeout(header_timeout);
    // HTTP/2: a connection that stops answering pings is closed, and one connection
    // cannot open streams without bound (each holds a request's state).
    https_server
        .http_builder()
        .http2()
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(100);
    let https_app = frontends::https::router(state.clone());
    let https_task = tokio::spawn(
        https_server
            .first_request_timeout(header_timeout)
            .handle(https_handle.clone())
            .serve(https_app.into_make_service_with_connect_info::<SocketAddr>()),
    );

    let windows = cfg
        .pipeline
        .windows()
        .unwrap_or_else(|_| crate::pipeline::window::Windows::none());
    let pipeline = crate::pipeline::Pipeline::new(
        &state.ingest,
        state.objects.clone(),
        cfg.server.data_dir.join("work"),
        windows,
    );
    // Workers are this same binary in worker mode.
    let exe = std::env::current_exe().map_err(ServeError::WorkerBinary)?;
    let pipeline = pipeline
        .with_inspect_config(cfg.inspect.clone())
        .with_inspector(crate::pipeline::isolation::Inspector::from_config(
            &cfg.inspect,
            exe,
        ))
        .with_retention(cfg.retention.clone())
        .with_max_check_attempts(cfg.pipeline.max_check_attempts)
        .with_set_quiet_secs(cfg.pipeline.set_quiet_secs);
    let lane = (
        cfg.pipeline.small_file_workers,
        cfg.pipeline.small_file_bytes,
    );
    let workers = cfg.pipeline.workers;
    jobs.start("pipeline", move |stop| pipeline.run(workers, lane, stop));
    let policy = crate::housekeeping::Policy::from_config(&cfg.ingest);
    let grounds = crate::housekeeping::Grounds::of(&state.ingest);
    let g = grounds.clone();
    jobs.start("housekeeping", move |stop| {
        crate::housekeeping::run(g, policy, stop)
    });

    let (core, data_dir) = (state.ingest.clone(), cfg.server.data_dir.clone());
    jobs.start("sampler", move |stop| {
        crate::telemetry::sampler::run(core, data_dir, stop)
    });
    let catalog = state.catalog.clone();
    let sinks = crate::pipeline::publish::sinks(&cfg.publish)?;
    let publish = crate::pipeline::publish::Policy::from_config(&cfg.publish);
    // Without sinks the outbox only fills (reviewers read it through /v1/events).
    if !sinks.is_empty() {
        jobs.start("outbox", move |stop| {
            crate::pipeline::publish::run(catalog, sinks, publish, stop)
        });
    }
    let objects = state.objects.clone();
    let every = Duration::from_secs(cfg.retention.sweep_interval_secs);
    jobs.start("retention", move |stop| {
        crate::housekeeping::run_retention(grounds, objects, every, stop)
    });

    let admin_app = frontends::admin::router(state.clone());
    let mut admin_stop = stop_rx.clone();
    let admin_task = tokio::spawn(async move {
        axum::serve(admin_l, admin_app)
            .with_graceful_shutdown(async move {
                let _ = admin_stop.changed().await;
            })
            .await
    });

    ListenerStarted {
        name: "sftp",
        addr: listeners.sftp,
    }
    .emit();
    ListenerStarted {
        name: "https",
        addr: listeners.https,
    }
    .emit();
    ListenerStarted {
        name: "admin",
        addr: listeners.admin,
    }
    .emit();
    write_listeners(&cfg, &listeners);
    audit(
        &state,
        "gateway.started",
        serde_json::json!({ "pid": listeners.pid }),
    )
    .await;

    loop {
        tokio::select! {
            _ = sighup.recv() => {
                // Errors are reported by the registry's own event; the old tenants stay.
                let _ = state.tenants.reload();
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }

    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: no new connections"
    );
    https_handle.graceful_shutdown(Some(grace));
    jobs.signal_stop();
    let within = grace + Duration::from_secs(1);
    let listeners = async {
        let _ = sftp_task.await;
        let _ = https_task.await;
        let _ = admin_task.await;
    };
    let (late, listeners) =
        tokio::join!(jobs.stop(within), tokio::time::timeout(within, listeners));
    if listeners.is_err() {
        tracing::warn!("grace period over: remaining connections are cut");
    }
    if !late.is_empty() {
        tracing::warn!(jobs = ?late, "grace period over: jobs still running are cut");
    }
    audit(&state, "gateway.stopped", serde_json::json!({})).await;
    state.catalog.close().await;
    let _ = std::fs::remove_file(cfg.run_dir().join("listeners.json"));
    tracing::info!("stopped");
    Ok(())
}

async fn audit(state: &AppState, action: &str, detail: serde_json::Value) {
    if let Err(e) = state.catalog.audit("gateway", action, &detail).await {
        tracing::error!(code = e.code(), error = %e, action, "audit record not written");
    }
}

fn write_listeners(cfg: &Config, l: &Listeners) {
    let dir = cfg.run_dir();
    let result = std::fs::create_dir_all(&dir).and_then(|_| {
        let tmp = dir.join("listeners.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(l).unwrap_or_default())?;
        std::fs::rename(&tmp, dir.join("listeners.json"))
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, "cannot write run/listeners.json");
    }
}
