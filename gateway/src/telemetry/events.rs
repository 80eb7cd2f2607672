//! Typed internal events. Each `emit()` logs one structured line and updates the
//! matching metric; call sites never touch `tracing` or `prometheus` for these.

use std::net::{IpAddr, SocketAddr};

use super::metrics::METRICS;

pub trait InternalEvent {
    fn emit(self);
}

pub struct ListenerStarted<'a> {
    pub name: &'a str,
    pub addr: SocketAddr,
}

impl InternalEvent for ListenerStarted<'_> {
    fn emit(self) {
        tracing::info!(listener = self.name, addr = %self.addr, "listening");
    }
}

pub struct TenantsLoaded<'a> {
    pub path: &'a std::path::Path,
    pub tenants: usize,
    pub principals: usize,
    pub reload: bool,
}

impl InternalEvent for TenantsLoaded<'_> {
    fn emit(self) {
        METRICS.tenants_loaded.set(self.tenants as i64);
        if self.reload {
            METRICS.tenants_reloads.with_label_values(&["ok"]).inc();
        }
        tracing::info!(
            path = %self.path.display(),
            tenants = self.tenants,
            principals = self.principals,
            reload = self.reload,
            "tenants loaded"
        );
    }
}

pub struct TenantsReloadFailed<'a> {
    pub error: &'a dyn std::error::Error,
    pub code: &'static str,
}

impl InternalEvent for TenantsReloadFailed<'_> {
    fn emit(self) {
        METRICS.tenants_reloads.with_label_values(&["error"]).inc();
        tracing::error!(code = self.code, error = %self.error, "tenants reload failed; keeping the previous tenants");
    }
}

pub struct SshConnectionAccepted {
    pub peer: SocketAddr,
}

impl InternalEvent for SshConnectionAccepted {
    fn emit(self) {
        METRICS.ssh_connections.inc();
        tracing::debug!(peer = %self.peer, "ssh connection");
    }
}

/// Why an SSH login was refused; the label values of `gateway_ssh_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    UnknownUser,
    IpNotAllowed,
    KeyNotAuthorized,
    MethodNotAllowed,
    TooManySessions,
    Suspended,
    VendorNotAllowed,
}

impl AuthRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthRefusal::UnknownUser => "unknown_user",
            AuthRefusal::IpNotAllowed => "ip_not_allowed",
            AuthRefusal::KeyNotAuthorized => "key_not_authorized",
            AuthRefusal::MethodNotAllowed => "method_not_allowed",
            AuthRefusal::TooManySessions => "too_many_sessions",
            AuthRefusal::Suspended => "suspended",
            AuthRefusal::VendorNotAllowed => "vendor_not_allowed",
        }
    }
}

pub struct SshAuthRefused<'a> {
    pub user: &'a str,
    pub ip: Option<IpAddr>,
    pub reason: AuthRefusal,
}

impl InternalEvent for SshAuthRefused<'_> {
    fn emit(self) {
        METRICS
            .ssh_auth_failures
            .with_label_values(&[self.reason.as_str()])
            .inc();
        tracing::warn!(
            audit = true,
            user = self.user,
            ip = ?self.ip,
            reason = self.reason.as_str(),
            "ssh login refused"
        );
    }
}

pub struct HttpAuthRefused {
    pub ip: IpAddr,
    pub reason: AuthRefusal,
}

impl InternalEvent for HttpAuthRefused {
    fn emit(self) {
        METRICS
            .http_auth_failures
            .with_label_values(&[self.reason.as_str()])
            .inc();
        tracing::warn!(
            audit = true,
            ip = %self.ip,
            reason = self.reason.as_str(),
            "https call refused"
        );
    }
}

pub struct SshConnectionRefused {
    pub ip: IpAddr,
    /// `locked` or `too_many_sessions`.
    pub reason: &'static str,
}

impl InternalEvent for SshConnectionRefused {
    fn emit(self) {
        METRICS
            .ssh_refused_connections
            .with_label_values(&[self.reason])
            .inc();
        tracing::warn!(ip = %self.ip, reason = self.reason, "ssh connection refused");
    }
}

/// An HTTPS connection dropped at accept because the listener holds
/// `https.max_connections` already.
pub struct HttpsConnectionRefused {
    pub reason: &'static str,
}

impl InternalEvent for HttpsConnectionRefused {
    fn emit(self) {
        METRICS
            .https_refused_connections
            .with_label_values(&[self.reason])
            .inc();
        tracing::warn!(reason = self.reason, "https connection refused");
    }
}

/// A request answered before its body was read: the rest was read and discarded
/// (`drained`) or the connection closed after the answer (`closed`, too large or too
/// slow to wait for).
pub struct HttpsUnreadBody {
    pub outcome: &'static str,
}

impl InternalEvent for HttpsUnreadBody {
    fn emit(self) {
        METRICS
            .https_unread_bodies
            .with_label_values(&[self.outcome])
            .inc();
        tracing::debug!(
            outcome = self.outcome,
            "request answered before its body was read"
        );
    }
}

/// A background job started (jobs.rs).
pub struct JobStarted {
    pub job: &'static str,
}

impl InternalEvent for JobStarted {
    fn emit(self) {
        METRICS.jobs_running.with_label_values(&[self.job]).inc();
        tracing::debug!(job = self.job, "job started");
    }
}

/// A background job ended: `stopped` at shutdown, otherwise an error.
pub struct JobEnded {
    pub job: &'static str,
    pub outcome: &'static str,
}

impl InternalEvent for JobEnded {
    fn emit(self) {
        METRICS.jobs_running.with_label_values(&[self.job]).dec();
        METRICS
            .job_ends
            .with_label_values(&[self.job, self.outcome])
            .inc();
        if self.outcome == "stopped" {
            tracing::debug!(job = self.job, "job stopped");
        } else {
            tracing::error!(
                job = self.job,
                outcome = self.outcome,
                "background job ended while the gateway runs"
            );
        }
    }
}

/// A logged-in session, or an HTTPS upload under way, ended because a reload took its
/// access away (rule 18).
pub struct SessionRevoked<'a> {
    pub protocol: &'static str,
    pub tenant: &'a str,
    pub ip: IpAddr,
    pub reason: &'static str,
}

impl InternalEvent for SessionRevoked<'_> {
    fn emit(self) {
        METRICS
            .sessions_revoked
            .with_label_values(&[self.protocol, self.reason])
            .inc();
        tracing::warn!(audit = true, protocol = self.protocol, tenant = self.tenant, ip = %self.ip, reason = self.reason, "access revoked: session ended");
    }
}

pub struct SshLockout {
    pub ip: IpAddr,
    pub seconds: u64,
}

impl InternalEvent for SshLockout {
    fn emit(self) {
        METRICS.ssh_lockouts.inc();
        tracing::warn!(audit = true, ip = %self.ip, seconds = self.seconds, "ssh source locked out after failed logins");
    }
}

pub struct SshLogin<'a> {
    pub tenant: &'a str,
    pub ip: Option<IpAddr>,
    pub key_fingerprint: &'a str,
}

impl InternalEvent for SshLogin<'_> {
    fn emit(self) {
        METRICS.ssh_logins.inc();
        tracing::info!(
            audit = true,
            tenant = self.tenant,
            ip = ?self.ip,
            key = self.key_fingerprint,
            "ssh login"
        );
    }
}

pub struct HttpRequestServed<'a> {
    pub listener: &'static str,
    pub method: &'a str,
    /// The route template (`/v1/uploads/{id}`), or `unmatched`.
    pub route: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub seconds: f64,
}

impl InternalEvent for HttpRequestServed<'_> {
    fn emit(self) {
        let class = match self.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        // Methods outside the known set are one label, so clients cannot add series.
        let method = match self.method {
            m @ ("GET" | "HEAD" | "POST" | "PATCH" | "PUT" | "DELETE" | "OPTIONS") => m,
            _ => "other",
        };
        METRICS
            .http_requests
            .with_label_values(&[self.listener, method, self.route, class])
            .inc();
        METRICS
            .http_duration
            .with_label_values(&[self.listener, self.route])
            .observe(self.seconds);
        tracing::debug!(
            listener = self.listener,
            method = self.method,
            path = self.path,
            status = self.status,
            "http request"
        );
    }
}

pub struct UploadStarted<'a> {
    pub tenant: &'a str,
    pub protocol: &'a str,
    pub resumed: bool,
}

impl InternalEvent for UploadStarted<'_> {
    fn emit(self) {
        let kind = if self.resumed { "resumed" } else { "new" };
        METRICS
            .uploads_started
            .with_label_values(&[self.protocol, kind])
            .inc();
        tracing::debug!(
            tenant = self.tenant,
            protocol = self.protocol,
            resumed = self.resumed,
            "upload opened"
        );
    }
}

pub struct UploadAccepted<'a> {
    pub tenant: &'a str,
    pub protocol: &'a str,
    pub bytes: u64,
    /// Since the upload was opened or resumed.
    pub seconds: f64,
}

impl InternalEvent for UploadAccepted<'_> {
    fn emit(self) {
        METRICS
            .uploads_accepted
            .with_label_values(&[self.protocol])
            .inc();
        METRICS
            .upload_bytes_accepted
            .with_label_values(&[self.protocol])
            .inc_by(self.bytes);
        METRICS
            .time_to_accepted
            .with_label_values(&[self.protocol])
            .observe(self.seconds);
        tracing::info!(
            audit = true,
            tenant = self.tenant,
            protocol = self.protocol,
            bytes = self.bytes,
            "upload accepted"
        );
    }
}

pub struct UploadRejected<'a> {
    pub tenant: &'a str,
    pub protocol: &'a str,
    pub code: &'static str,
}

impl InternalEvent for UploadRejected<'_> {
    fn emit(self) {
        METRICS
            .uploads_rejected
            .with_label_values(&[self.protocol, self.code])
            .inc();
        tracing::warn!(
            audit = true,
            tenant = self.tenant,
            protocol = self.protocol,
            code = self.code,
            "upload rejected"
        );
    }
}

pub struct UploadChecked<'a> {
    pub tenant: &'a str,
    pub upload: &'a str,
    /// The first error code, for a failed check.
    pub failed: Option<&'a str>,
    /// Since acceptance.
    pub seconds: f64,
}

impl InternalEvent for UploadChecked<'_> {
    fn emit(self) {
        let (result, code) = match self.failed {
            Some(code) => ("failed", code),
            None => ("passed", ""),
        };
        METRICS
            .uploads_checked
            .with_label_values(&[result, code])
            .inc();
        METRICS
            .time_to_indexed
            .with_label_values(&[result])
            .observe(self.seconds);
        tracing::info!(
            audit = true,
            tenant = self.tenant,
            upload = self.upload,
            result,
            code,
            "upload checked"
        );
    }
}

/// Housekeeping removed an upload's spooled bytes.
pub struct UploadCleanedUp<'a> {
    pub tenant: &'a str,
    pub upload: &'a str,
    /// `expired` or `purged`.
    pub action: &'static str,
    pub bytes: u64,
}

impl InternalEvent for UploadCleanedUp<'_> {
    fn emit(self) {
        METRICS.housekeeping.with_label_values(&[self.action]).inc();
        METRICS
            .housekeeping_bytes
            .with_label_values(&[self.action])
            .inc_by(self.bytes);
        tracing::info!(
            audit = true,
            tenant = self.tenant,
            upload = self.upload,
            action = self.action,
            bytes = self.bytes,
            "upload cleaned up"
        );
    }
}

/// An inspector worker process failed the upload it was checking (and is replaced).
pub struct InspectWorkerFailed<'a> {
    pub upload: &'a str,
    /// `crashed`, `memory_limit` or `timeout`.
    pub reason: &'static str,
    pub detail: &'a str,
}

impl InternalEvent for InspectWorkerFailed<'_> {
    fn emit(self) {
        METRICS
            .inspect_worker_failures
            .with_label_values(&[self.reason])
            .inc();
        tracing::warn!(
            upload = self.upload,
            reason = self.reason,
            detail = self.detail,
            "inspector worker failed; the upload fails, the worker is replaced"
        );
    }
}

/// An inspector worker process was started.
pub struct InspectWorkerStarted {
    pub pid: Option<u32>,
}

impl InternalEvent for InspectWorkerStarted {
    fn emit(self) {
        METRICS.inspect_worker_starts.inc();
        tracing::debug!(pid = self.pid, "inspector worker started");
    }
}

/// A check did not finish: put back in the queue with a backoff, or given up.
pub struct CheckRetried<'a> {
    pub upload: &'a str,
    pub attempts: u32,
    /// Seconds until the next attempt; `None` when the upload was given up.
    pub backoff_secs: Option<u64>,
    pub error: &'a str,
}

impl InternalEvent for CheckRetried<'_> {
    fn emit(self) {
        let outcome = match self.backoff_secs {
            Some(_) => "requeued",
            None => "exhausted",
        };
        METRICS.check_retries.with_label_values(&[outcome]).inc();
        tracing::warn!(
            upload = self.upload,
            attempts = self.attempts,
            backoff_secs = self.backoff_secs,
            error = self.error,
            outcome,
            "check did not finish"
        );
    }
}
