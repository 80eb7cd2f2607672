//! The workers: `pipeline.workers` tasks taking uploads in arrival order, and
//! `pipeline.small_file_workers` more for uploads up to `small_file_bytes` (so a queue
//! of large files does not hold small ones up). Woken by acceptances; a paused window
//! or an empty queue puts them to sleep.

use super::*;

impl Pipeline {
    /// Runs until `stop` turns true: re-queues interrupted checks, then lets `workers`
    /// workers take uploads in arrival order as they are accepted, sleeping through
    /// maintenance windows. Several workers overlap their fsyncs (the file system
    /// commits them together), which is what small files are bound by.
    /// Runs `workers` workers taking uploads in arrival order, plus `lane.0` workers
    /// that take only uploads of at most `lane.1` bytes — so small files are not held
    /// up behind large ones being decrypted and inspected.
    pub async fn run(self, workers: usize, lane: (usize, u64), stop: watch::Receiver<bool>) {
        match self.catalog.requeue_checking().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                uploads = n,
                "re-queued uploads whose checks were interrupted"
            ),
            Err(e) => {
                tracing::error!(code = e.code(), error = %e, "cannot re-queue interrupted checks")
            }
        }
        let this = Arc::new(self);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..workers.max(1) {
            set.spawn(this.clone().work(None, stop.clone()));
        }
        for _ in 0..lane.0 {
            set.spawn(this.clone().work(Some(lane.1), stop.clone()));
        }
        while set.join_next().await.is_some() {}
    }

    async fn work(self: Arc<Self>, max_bytes: Option<u64>, mut stop: watch::Receiver<bool>) {
        let handoff = self.handoff.clone();
        let signal = handoff.signal(max_bytes.is_some());
        loop {
            if *stop.borrow() {
                return;
            }
            let wait = match self.process_next_upto(max_bytes).await {
                Ok(Some(outcome)) => {
                    tracing::debug!(?outcome, "upload checked");
                    // There may be more: wake a sibling too (one stored permit per
                    // burst of acceptances would otherwise leave the others asleep).
                    signal.notify_one();
                    continue;
                }
                Ok(None) => self
                    .paused_for()
                    .map(|s| Duration::from_secs(s.clamp(1, 60)))
                    .unwrap_or(Duration::from_secs(5)),
                Err(e) => {
                    tracing::error!(error = %e, "pipeline step failed; retrying");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = signal.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
