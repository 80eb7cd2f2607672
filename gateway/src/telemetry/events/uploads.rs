//! An upload's way: started, accepted or rejected, checked, cleaned up, and the
//! inspector workers and retries on the way.

use super::InternalEvent;
use crate::telemetry::metrics::METRICS;

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
    /// The error's stable code (`catalog.unavailable`, `objects.unavailable`, …).
    pub code: &'a str,
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
            code = self.code,
            outcome,
            "check did not finish"
        );
    }
}
