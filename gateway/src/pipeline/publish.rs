//! Publish stage: the outbox dispatcher. One task per configured sink reads the outbox
//! in order from that sink's cursor and delivers each event at least once:
//!
//! - **Order.** A sink gets events in outbox order (so in order per tenant too); an
//!   event is not sent before the one ahead of it was delivered or dead-lettered.
//! - **Retries.** A failed attempt is retried after `backoff_initial_ms`, doubling
//!   up to `backoff_max_secs`, each delay with jitter (50–100 %), so receivers that
//!   come back are not stampeded.
//! - **Dead letters.** After `max_attempts` the event is recorded as a dead letter and
//!   the cursor moves on; `POST /admin/outbox/retry` on the admin listener asks for
//!   another round, delivered ahead of new events.
//! - **Crash safety.** The cursor is saved after each batch; after a crash the batch
//!   in flight is sent again. Event ids are stable, so receivers (and JetStream)
//!   can drop repeats.
//!
//! Metrics per sink: delivered, failed attempts, dead letters, backlog and lag.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::backends::catalog::{Catalog, CatalogError, OutboxEvent};
use crate::backends::sinks::Sink;
use crate::config::PublishConfig;
use crate::telemetry::metrics::METRICS;

const BATCH: i64 = 100;

/// How one sink's deliveries are paced.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_attempts: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Policy {
    pub fn from_config(c: &PublishConfig) -> Policy {
        Policy {
            max_attempts: c.max_attempts.max(1),
            backoff_initial: Duration::from_millis(c.backoff_initial_ms.max(1)),
            backoff_max: Duration::from_secs(c.backoff_max_secs.max(1)),
        }
    }

    /// The delay before attempt `n + 1` (n ≥ 1), with jitter.
    fn delay(&self, n: u32) -> Duration {
        let base = self
            .backoff_initial
            .saturating_mul(1u32 << (n - 1).min(20))
            .min(self.backoff_max);
        let mut b = [0u8; 1];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
        base.mul_f64(0.5 + f64::from(b[0]) / 510.0)
    }
}

/// Why a delivery round ended.
enum Stop {
    Shutdown,
    Catalog(CatalogError),
}

impl From<CatalogError> for Stop {
    fn from(e: CatalogError) -> Stop {
        Stop::Catalog(e)
    }
}

struct Dispatcher {
    /// The outbox, and the lease that keeps this sink's dispatch on one node of a
    /// cluster at a time (another node takes over once this one stops renewing).
    catalog: Catalog,
    sink: Arc<dyn Sink>,
    policy: Policy,
    stop: watch::Receiver<bool>,
}

impl Dispatcher {
    fn name(&self) -> &str {
        self.sink.name()
    }

    async fn sleep(&mut self, d: Duration) -> Result<(), Stop> {
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.stop.changed() => Err(Stop::Shutdown),
        }
    }

    /// Delivers `event`, retrying; `Err(last error)` once the attempts are used up.
    async fn attempt(&mut self, event: &OutboxEvent) -> Result<Result<(), String>, Stop> {
        let mut n = 0;
        loop {
            n += 1;
            let res = tokio::select! {
                r = self.sink.deliver(event) => r,
                _ = self.stop.changed() => return Err(Stop::Shutdown),
            };
            match res {
                Ok(()) => {
                    METRICS
                        .outbox_delivered
                        .with_label_values(&[self.name()])
                        .inc();
                    return Ok(Ok(()));
                }
                Err(e) => {
                    METRICS
                        .outbox_failures
                        .with_label_values(&[self.name()])
                        .inc();
                    tracing::warn!(sink = self.name(), event = %event.event_id, attempt = n, error = %e, "delivery failed");
                    if n >= self.policy.max_attempts {
                        return Ok(Err(e.0));
                    }
                    self.sleep(self.policy.delay(n)).await?;
                }
            }
        }
    }

    /// Dead letters an operator asked to retry go first.
    async fn retries(&mut self) -> Result<(), Stop> {
        let due = self.catalog.retries_due(self.name(), BATCH).await?;
        for event in &due {
            match self.attempt(event).await? {
                Ok(()) => {
                    self.catalog
                        .clear_dead_letter(self.name(), event.seq)
                        .await?
                }
                Err(e) => {
                    let attempts = i64::from(self.policy.max_attempts);
                    self.catalog
                        .dead_letter(self.name(), event.seq, attempts, &e, false)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Delivers the next batch after the cursor; `false` when there was none.
    async fn batch(&mut self) -> Result<bool, Stop> {
        let cursor = self.catalog.sink_cursor(self.name()).await?;
        let events = self.catalog.outbox_after(cursor, None, BATCH).await?;
        self.gauges(cursor, events.first()).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(false);
        };
        for event in &events {
            match self.attempt(event).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let attempts = i64::from(self.policy.max_attempts);
                    self.catalog
                        .dead_letter(self.name(), event.seq, attempts, &e, true)
                        .await?;
                    tracing::error!(sink = self.name(), event = %event.event_id, error = %e, "event dead-lettered");
                }
                Err(stop) => {
                    // Keep what was delivered before stopping.
                    if event.seq > cursor + 1 {
                        self.catalog
                            .advance_sink(self.name(), event.seq - 1)
                            .await?;
                    }
                    return Err(stop);
                }
            }
            if event.seq % 10 == 0 {
                self.catalog.advance_sink(self.name(), event.seq).await?;
            }
        }
        self.catalog.advance_sink(self.name(), last).await?;
        Ok(true)
    }

    async fn gauges(&self, cursor: i64, first: Option<&OutboxEvent>) -> Result<(), Stop> {
        let name = self.name();
        let head = self.catalog.outbox_head().await?;
        METRICS
            .outbox_backlog
            .with_label_values(&[name])
            .set((head - cursor).max(0));
        let lag = first.map_or(0, |e| (crate::util::unix_now() - e.created_at).max(0));
        METRICS
            .outbox_lag_seconds
            .with_label_values(&[name])
            .set(lag);
        let dead = self.catalog.dead_letters(Some(name)).await?.len();
        METRICS
            .outbox_dead_letters
            .with_label_values(&[name])
            .set(dead as i64);
        Ok(())
    }

    async fn run(mut self) {
        let mut changes = self.catalog.outbox_watch();
        loop {
            changes.borrow_and_update();
            let job = format!("dispatch:{}", self.name());
            let round = async {
                let held = self.catalog.hold_job(&job).await?;
                crate::jobs::leased(&job, held);
                if !held {
                    // Another node dispatches this sink; look again after a while.
                    return Ok(false);
                }
                self.retries().await?;
                self.batch().await
            }
            .await;
            match round {
                Ok(true) => continue,
                Ok(false) => {}
                Err(Stop::Shutdown) => return,
                Err(Stop::Catalog(e)) => {
                    tracing::error!(sink = self.name(), code = e.code(), error = %e, "outbox read failed");
                    if self.sleep(Duration::from_secs(1)).await.is_err() {
                        return;
                    }
                    continue;
                }
            }
            tokio::select! {
                _ = changes.changed() => {}
                // A slow tick keeps the lag gauge honest even when nothing is written.
                _ = tokio::time::sleep(Duration::from_secs(15)) => {}
                _ = self.stop.changed() => return,
            }
        }
    }
}

/// Runs one dispatcher per sink until `stop` turns true.
pub async fn run(
    catalog: Catalog,
    sinks: Vec<Arc<dyn Sink>>,
    policy: Policy,
    stop: watch::Receiver<bool>,
) {
    let tasks: Vec<_> = sinks
        .into_iter()
        .map(|sink| {
            let mut policy = policy;
            if let Some(n) = sink.max_attempts() {
                policy.max_attempts = n.max(1);
            }
            tokio::spawn(
                Dispatcher {
                    catalog: catalog.clone(),
                    sink,
                    policy,
                    stop: stop.clone(),
                }
                .run(),
            )
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

/// The sinks `[publish]` configures.
pub fn sinks(
    c: &PublishConfig,
) -> Result<Vec<Arc<dyn Sink>>, crate::backends::sinks::webhook::WebhookSetupError> {
    let mut out: Vec<Arc<dyn Sink>> = Vec::new();
    for w in &c.webhooks {
        out.push(Arc::new(crate::backends::sinks::webhook::Webhook::new(w)?));
    }
    if !c.nats.url.is_empty() {
        out.push(Arc::new(crate::backends::sinks::nats::Nats::new(&c.nats)));
    }
    Ok(out)
}
