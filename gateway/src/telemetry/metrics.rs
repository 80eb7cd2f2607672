//! The one Prometheus registry of the process and the metrics registered in it.
//!
//! Names follow Prometheus conventions: `gateway_` prefix, base units, `_total` for
//! counters. Labels are bounded by code (reasons, protocols), never by client input.

use std::sync::LazyLock;
use std::time::Instant;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    started: Instant,
    pub uptime_seconds: IntGauge,
    pub tenants_loaded: IntGauge,
    pub tenants_reloads: IntCounterVec,
    pub ssh_connections: IntCounter,
    pub ssh_auth_failures: IntCounterVec,
    pub http_auth_failures: IntCounterVec,
    pub console_sessions: IntCounterVec,
    pub ssh_refused_connections: IntCounterVec,
    pub https_refused_connections: IntCounterVec,
    pub proxy_headers: IntCounterVec,
    pub https_unread_bodies: IntCounterVec,
    pub jobs_running: IntGaugeVec,
    pub jobs_leased: IntGaugeVec,
    pub job_ends: IntCounterVec,
    pub https_connections: IntGauge,
    pub ssh_lockouts: IntCounter,
    pub sessions_revoked: IntCounterVec,
    pub ssh_logins: IntCounter,
    pub sessions_active: IntGaugeVec,
    pub http_requests: IntCounterVec,
    pub uploads_started: IntCounterVec,
    pub uploads_accepted: IntCounterVec,
    pub uploads_rejected: IntCounterVec,
    pub upload_bytes_accepted: IntCounterVec,
    pub uploads_checked: IntCounterVec,
    pub housekeeping: IntCounterVec,
    pub housekeeping_bytes: IntCounterVec,
    pub retention_files: IntCounter,
    pub retention_objects: IntCounter,
    pub catalog_writes: IntCounter,
    pub catalog_commits: IntCounter,
    pub retention_bytes: IntCounter,
    pub outbox_delivered: IntCounterVec,
    pub outbox_failures: IntCounterVec,
    pub outbox_dead_letters: IntGaugeVec,
    pub outbox_backlog: IntGaugeVec,
    pub outbox_lag_seconds: IntGaugeVec,
    pub downloads: IntCounterVec,
    pub download_bytes: IntCounterVec,
    pub http_duration: HistogramVec,
    pub time_to_accepted: HistogramVec,
    pub time_to_indexed: HistogramVec,
    pub admission_wait: HistogramVec,
    pub stage_seconds: HistogramVec,
    pub inspect_worker_failures: IntCounterVec,
    pub inspect_worker_starts: IntCounter,
    pub check_retries: IntCounterVec,
    pub checks_paused: IntGauge,
    pub admission_backlog: IntGauge,
    pub uploads_in_state: IntGaugeVec,
    pub received_bytes: IntCounterVec,
    pub spool_bytes: IntGauge,
    pub stored_bytes: IntGauge,
    pub data_dir_free_bytes: IntGauge,
    pub data_dir_size_bytes: IntGauge,
}

/// Latency buckets from 1 ms to 5 minutes (uploads of large files take minutes).
const SECONDS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(SECONDS.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(h.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    h
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(g.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

impl Metrics {
    // Registration can only fail on a programming error (duplicate or malformed
    // name), which every test run would reveal, hence the panics above.
    fn new() -> Metrics {
        let registry = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new(
                "gateway_build_info",
                "Build of the running gateway; value is 1.",
            ),
            &["version", "rustc"],
        )
        .expect("build_info metric");
        registry
            .register(Box::new(build.clone()))
            .expect("register build_info");
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), rustc_version()])
            .set(1);
        let sessions_active = IntGaugeVec::new(
            Opts::new(
                "gateway_sessions_active",
                "Authenticated sessions now open, by protocol.",
            ),
            &["protocol"],
        )
        .expect("sessions_active metric");
        registry
            .register(Box::new(sessions_active.clone()))
            .expect("register sessions_active");
        Metrics {
            started: Instant::now(),
            uptime_seconds: gauge(
                &registry,
                "gateway_uptime_seconds",
                "Seconds since this gateway process started.",
            ),
            tenants_loaded: gauge(
                &registry,
                "gateway_tenants_loaded",
                "Institutions in the currently loaded tenants file.",
            ),
            tenants_reloads: counter_vec(
                &registry,
                "gateway_tenants_reloads_total",
                "Tenants file reloads (SIGHUP), by result.",
                &["result"],
            ),
            ssh_connections: counter(
                &registry,
                "gateway_ssh_connections_total",
                "TCP connections accepted on the SFTP listener.",
            ),
            ssh_refused_connections: counter_vec(
                &registry,
                "gateway_ssh_refused_connections_total",
                "SSH connections turned away before the handshake, by reason (locked, too_many_sessions).",
                &["reason"],
            ),
            https_refused_connections: counter_vec(
                &registry,
                "gateway_https_refused_connections_total",
                "HTTPS connections turned away before the TLS handshake, by reason (listener_full).",
                &["reason"],
            ),
            proxy_headers: counter_vec(
                &registry,
                "gateway_proxy_headers_total",
                "Connections from a configured load balancer, by listener (sftp, https) and outcome of their PROXY v2 header (client, local, proxy.bad_header, proxy.timeout, proxy.io).",
                &["protocol", "outcome"],
            ),
            https_unread_bodies: counter_vec(
                &registry,
                "gateway_https_unread_bodies_total",
                "HTTP/1.1 requests answered before their body was read, by what happened to the rest (drained, closed).",
                &["outcome"],
            ),
            jobs_running: gauge_vec(
                &registry,
                "gateway_jobs_running",
                "Background jobs running, by job (pipeline, outbox, housekeeping, retention, sampler): each should be 1.",
                &["job"],
            ),
            jobs_leased: gauge_vec(
                &registry,
                "gateway_jobs_leased",
                "Cluster jobs (housekeeping, retention, dispatch:<sink>) by whether this node holds their lease and runs them (1) or another node does (0): across the nodes each job sums to 1.",
                &["job"],
            ),
            job_ends: counter_vec(
                &registry,
                "gateway_job_ends_total",
                "Background jobs that ended, by job and outcome (stopped at shutdown; ended_early or panicked: the job is gone, restart the gateway).",
                &["job", "outcome"],
            ),
            checks_paused: gauge(
                &registry,
                "gateway_checks_paused",
                "1 while checks wait for a maintenance window or an announced outage to end (uploads are still received).",
            ),
            admission_backlog: gauge(
                &registry,
                "gateway_admission_backlog_uploads",
                "Accepted and checking uploads as admission counts them (what ingest.max_backlog is compared with).",
            ),
            https_connections: gauge(
                &registry,
                "gateway_https_connections",
                "HTTPS connections open now (at most https.max_connections).",
            ),
            sessions_revoked: counter_vec(
                &registry,
                "gateway_sessions_revoked_total",
                "Open sessions and uploads ended by a tenants reload that took their access away, by protocol and reason (key_removed, token_removed, suspended, tenant_removed, ip_not_allowed).",
                &["protocol", "reason"],
            ),
            ssh_lockouts: counter(
                &registry,
                "gateway_ssh_lockouts_total",
                "Source addresses locked out after repeated failed logins.",
            ),
            ssh_auth_failures: counter_vec(
                &registry,
                "gateway_ssh_auth_failures_total",
                "Refused SSH authentication attempts, by reason.",
                &["reason"],
            ),
            http_auth_failures: counter_vec(
                &registry,
                "gateway_http_auth_failures_total",
                "Refused HTTPS API calls (token missing or invalid, address not allowed), by reason.",
                &["reason"],
            ),
            console_sessions: counter_vec(
                &registry,
                "gateway_console_sessions_total",
                "Web console sign-ins and sign-outs, by role (hospital, reviewer), how (token, certificate) and action (sign_in, sign_out).",
                &["role", "via", "action"],
            ),
            ssh_logins: counter(
                &registry,
                "gateway_ssh_logins_total",
                "Successful SSH logins.",
            ),
            sessions_active,
            http_requests: counter_vec(
                &registry,
                "gateway_http_requests_total",
                "HTTP requests answered, by listener, method, route template and status \
                 class (route, not path: ids in paths would make the series unbounded).",
                &["listener", "method", "route", "status"],
            ),
            uploads_started: counter_vec(
                &registry,
                "gateway_uploads_started_total",
                "Uploads opened, by protocol and whether new or resumed.",
                &["protocol", "kind"],
            ),
            uploads_accepted: counter_vec(
                &registry,
                "gateway_uploads_accepted_total",
                "Uploads accepted (complete, verified, durable), by protocol.",
                &["protocol"],
            ),
            uploads_rejected: counter_vec(
                &registry,
                "gateway_uploads_rejected_total",
                "Uploads rejected, by protocol and stable error code.",
                &["protocol", "code"],
            ),
            upload_bytes_accepted: counter_vec(
                &registry,
                "gateway_upload_accepted_bytes_total",
                "Sealed bytes of accepted uploads, by protocol.",
                &["protocol"],
            ),
            uploads_checked: counter_vec(
                &registry,
                "gateway_uploads_checked_total",
                "Accepted uploads whose checks finished, by result (passed, failed) and, \
                 for failures, the first error code.",
                &["result", "code"],
            ),
            housekeeping: counter_vec(
                &registry,
                "gateway_housekeeping_uploads_total",
                "Uploads cleaned up: `expired` (partial, abandoned) and `purged` \
                 (rejected, quarantine over).",
                &["action"],
            ),
            housekeeping_bytes: counter_vec(
                &registry,
                "gateway_housekeeping_bytes_total",
                "Spooled bytes removed by housekeeping, by action.",
                &["action"],
            ),
            retention_files: counter(
                &registry,
                "gateway_retention_files_expired_total",
                "Indexed files whose retention ended (marked expired, event file.expired).",
            ),
            retention_objects: counter(
                &registry,
                "gateway_retention_objects_deleted_total",
                "Stored objects deleted because no current file used them any more.",
            ),
            catalog_writes: counter(
                &registry,
                "gateway_catalog_writes_total",
                "Catalog write transactions committed; writers queued together share one commit.",
            ),
            catalog_commits: counter(
                &registry,
                "gateway_catalog_commits_total",
                "Catalog commits (one WAL sync each); writes / commits is the mean group size.",
            ),
            retention_bytes: counter(
                &registry,
                "gateway_retention_bytes_deleted_total",
                "Stored (sealed) bytes deleted by retention.",
            ),
            outbox_delivered: counter_vec(
                &registry,
                "gateway_outbox_delivered_total",
                "Events delivered, by sink (configured names; bounded by config).",
                &["sink"],
            ),
            outbox_failures: counter_vec(
                &registry,
                "gateway_outbox_delivery_failures_total",
                "Failed delivery attempts (each retry counts), by sink.",
                &["sink"],
            ),
            outbox_dead_letters: gauge_vec(
                &registry,
                "gateway_outbox_dead_letters",
                "Events a sink gave up on and that wait for an operator, by sink.",
                &["sink"],
            ),
            outbox_backlog: gauge_vec(
                &registry,
                "gateway_outbox_backlog_events",
                "Events not yet delivered to a sink, by sink.",
                &["sink"],
            ),
            outbox_lag_seconds: gauge_vec(
                &registry,
                "gateway_outbox_lag_seconds",
                "Age of the oldest event a sink has not delivered yet (0 when caught up).",
                &["sink"],
            ),
            downloads: counter_vec(
                &registry,
                "gateway_downloads_total",
                "File content requests answered, by kind (plain, range, sealed).",
                &["kind"],
            ),
            download_bytes: counter_vec(
                &registry,
                "gateway_download_bytes_total",
                "Plaintext bytes requested by downloads, by kind.",
                &["kind"],
            ),
            http_duration: histogram_vec(
                &registry,
                "gateway_http_request_duration_seconds",
                "Time to answer an HTTP request (to the response head; bodies stream on), by \
                 listener and route template.",
                &["listener", "route"],
            ),
            time_to_accepted: histogram_vec(
                &registry,
                "gateway_time_to_accepted_seconds",
                "From opening (or resuming) an upload to its acceptance, by protocol.",
                &["protocol"],
            ),
            admission_wait: histogram_vec(
                &registry,
                "gateway_admission_wait_seconds",
                "How long new uploads waited at the door for the check backlog to have \
                 room (ingest.max_backlog), by protocol; only uploads that waited.",
                &["protocol"],
            ),
            time_to_indexed: histogram_vec(
                &registry,
                "gateway_time_to_indexed_seconds",
                "From acceptance to the end of the checks, by result (passed = indexed, \
                 failed). Includes time waiting in a maintenance window.",
                &["result"],
            ),
            stage_seconds: histogram_vec(
                &registry,
                "gateway_pipeline_stage_seconds",
                "Time spent in each pipeline stage (inspect, store, index).",
                &["stage"],
            ),
            inspect_worker_failures: counter_vec(
                &registry,
                "gateway_inspect_worker_failures_total",
                "Inspector worker processes that failed the upload they were checking, by \
                 reason (crashed, memory_limit, timeout); each is replaced.",
                &["reason"],
            ),
            inspect_worker_starts: counter(
                &registry,
                "gateway_inspect_worker_starts_total",
                "Inspector worker processes started (the first ones and every replacement).",
            ),
            check_retries: counter_vec(
                &registry,
                "gateway_check_retries_total",
                "Checks put back in the queue after an error (requeued, with backoff) or \
                 given up after too many interrupted attempts (exhausted).",
                &["outcome"],
            ),
            uploads_in_state: gauge_vec(
                &registry,
                "gateway_uploads",
                "Uploads by state: receiving (partial), accepted (queued for checks), \
                 checking (being checked) — the backlog.",
                &["state"],
            ),
            received_bytes: counter_vec(
                &registry,
                "gateway_received_bytes_total",
                "Sealed bytes received into the spool, by protocol, accepted or not (bytes \
                 sent again after a resume count again).",
                &["protocol"],
            ),
            spool_bytes: gauge(
                &registry,
                "gateway_spool_bytes",
                "Bytes held durably for uploads still receiving (partial uploads).",
            ),
            stored_bytes: gauge(
                &registry,
                "gateway_stored_bytes",
                "Sealed bytes of accepted uploads held, all tenants.",
            ),
            data_dir_free_bytes: gauge(
                &registry,
                "gateway_data_dir_free_bytes",
                "Free bytes on the file system of server.data_dir (spool, objects, catalog).",
            ),
            data_dir_size_bytes: gauge(
                &registry,
                "gateway_data_dir_size_bytes",
                "Size of the file system of server.data_dir.",
            ),
            registry,
        }
    }

    /// Seconds since the process started.
    pub fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Renders the registry in the Prometheus text format.
    pub fn render(&self) -> String {
        self.uptime_seconds.set(
            self.started
                .elapsed()
                .as_secs()
                .try_into()
                .unwrap_or(i64::MAX),
        );
        let mut out = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

fn rustc_version() -> &'static str {
    option_env!("GATEWAY_RUSTC_VERSION").unwrap_or("unknown")
}
