//! Background jobs started and ended (jobs.rs).

use super::InternalEvent;
use crate::telemetry::metrics::METRICS;

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
