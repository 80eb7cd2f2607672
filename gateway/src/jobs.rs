//! Background work in one registry: the pipeline's workers, the outbox dispatcher,
//! housekeeping, retention and the metrics sampler are jobs of one kind. Each starts
//! with the shared stop signal, counts in `gateway_jobs_running{job}` while it runs,
//! and reports how it ended (`gateway_job_ends_total{job,outcome}`): a job that ends
//! before the gateway stops (or panics) is logged as an error, because a gateway whose
//! checks stopped still accepts uploads and looks healthy from the outside.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::telemetry::events::{InternalEvent, JobEnded, JobStarted};

pub struct Jobs {
    stop: watch::Sender<bool>,
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs::new()
    }
}

impl Jobs {
    pub fn new() -> Jobs {
        Jobs {
            stop: watch::channel(false).0,
            running: Vec::new(),
        }
    }

    /// The stop signal jobs get (listeners that stop with them may share it).
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Starts `job`, handing it the stop signal; it must return once the signal turns
    /// true.
    pub fn start<F, Fut>(&mut self, name: &'static str, job: F)
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let work = tokio::spawn(job(self.stop.subscribe()));
        let stopping = self.stop.subscribe();
        JobStarted { job: name }.emit();
        let watch = tokio::spawn(async move {
            let ended = work.await;
            let outcome = match ended {
                Err(e) if e.is_panic() => "panicked",
                Err(_) => "cancelled",
                Ok(()) if *stopping.borrow() => "stopped",
                Ok(()) => "ended_early",
            };
            JobEnded { job: name, outcome }.emit();
        });
        self.running.push((name, watch));
    }

    /// Turns the stop signal on (jobs and whoever shares it begin to wind down).
    pub fn signal_stop(&self) {
        self.stop.send_replace(true);
    }

    /// Signals stop and waits up to `within` for every job; returns the names of
    /// those still running then (they are left to the runtime's end).
    pub async fn stop(self, within: Duration) -> Vec<&'static str> {
        self.signal_stop();
        let deadline = tokio::time::Instant::now() + within;
        let mut late = Vec::new();
        for (name, handle) in self.running {
            if tokio::time::timeout_at(deadline, handle).await.is_err() {
                late.push(name);
            }
        }
        late
    }
}

/// Records whether this node holds the cluster lease on `job` this round
/// (`gateway_jobs_leased`), logging when that changes: a job moving between nodes is
/// worth a line in each node's log.
pub fn leased(job: &str, held: bool) {
    let gauge = crate::telemetry::metrics::METRICS
        .jobs_leased
        .with_label_values(&[job]);
    let now = i64::from(held);
    if gauge.get() != now {
        tracing::info!(job, held, "cluster job lease");
    }
    gauge.set(now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::METRICS;

    fn ends(job: &str, outcome: &str) -> u64 {
        METRICS.job_ends.with_label_values(&[job, outcome]).get()
    }

    #[test]
    fn a_cluster_job_lease_is_one_where_held_and_zero_elsewhere() {
        let gauge = || {
            crate::telemetry::metrics::METRICS
                .jobs_leased
                .with_label_values(&["test-job"])
                .get()
        };
        super::leased("test-job", true);
        assert_eq!(gauge(), 1);
        super::leased("test-job", false);
        assert_eq!(gauge(), 0);
    }

    #[tokio::test]
    async fn jobs_stop_on_the_signal_and_an_early_end_or_a_panic_is_reported() {
        let mut jobs = Jobs::new();
        jobs.start("test.waits", |mut stop| async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        jobs.start("test.quits", |_| async {});
        jobs.start("test.panics", |_| async { panic!("job failed") });
        jobs.start("test.stuck", |_| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        // The early ones are reported as soon as they end, before any stop.
        for _ in 0..100 {
            if ends("test.quits", "ended_early") == 1 && ends("test.panics", "panicked") == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(ends("test.quits", "ended_early"), 1);
        assert_eq!(ends("test.panics", "panicked"), 1);
        assert_eq!(
            METRICS
                .jobs_running
                .with_label_values(&["test.waits"])
                .get(),
            1
        );
        let late = jobs.stop(Duration::from_millis(200)).await;
        assert_eq!(late, ["test.stuck"]);
        assert_eq!(ends("test.waits", "stopped"), 1);
        assert_eq!(
            METRICS
                .jobs_running
                .with_label_values(&["test.waits"])
                .get(),
            0
        );
    }
}
