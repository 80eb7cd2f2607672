//! Admission: a new upload waits while the check backlog is full.
//!
//! Accepting is cheap (an fsync and a catalog row) and checking is not, so under a
//! sustained burst the accepted-but-unchecked queue grows without bound and every
//! file's time to indexed grows with it (the standard loadtest, closed loop: a queue of
//! 14,000 and a p99 of 280 s, while each check took milliseconds). Holding new uploads
//! at the door instead keeps the queue short, so a file is checked moments after it is
//! accepted and the hospitals' clients slow down to what the gateway can check — as a
//! tus server's `Retry-After` would, without failing anyone.
//!
//! The wait is bounded (`ingest.admission_wait_secs`): past it an upload goes ahead, so
//! a slow pipeline delays uploads but never refuses them. During a maintenance window
//! checks pause and nobody waits. Resumed uploads were admitted when they started.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify};

pub struct Admission {
    /// Accepted uploads not yet checked before new ones wait (0: never wait).
    limit: u64,
    max_wait: Duration,
    /// Accepted and checking uploads: counted here, re-read from the catalog by the
    /// telemetry sampler so a miscount cannot last.
    backlog: AtomicU64,
    /// Checks are paused (maintenance window).
    paused: AtomicBool,
    checked: Notify,
    /// Waiting uploads go in arrival order.
    turn: Mutex<()>,
}

impl Admission {
    pub fn new(limit: u64, max_wait: Duration) -> Admission {
        Admission {
            limit,
            max_wait,
            backlog: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            checked: Notify::new(),
            turn: Mutex::new(()),
        }
    }

    fn full(&self) -> bool {
        self.limit > 0
            && !self.paused.load(Ordering::Relaxed)
            && self.backlog.load(Ordering::Relaxed) >= self.limit
    }

    /// Waits until the backlog has room (or the bounded wait is over); returns how
    /// long it waited.
    pub async fn admit(&self) -> Duration {
        if !self.full() {
            return Duration::ZERO;
        }
        let start = Instant::now();
        let deadline = start + self.max_wait;
        let _turn = tokio::time::timeout_at(deadline.into(), self.turn.lock()).await;
        while self.full() && Instant::now() < deadline {
            let tick = (Instant::now() + Duration::from_millis(100)).min(deadline);
            let _ = tokio::time::timeout_at(tick.into(), self.checked.notified()).await;
        }
        start.elapsed()
    }

    pub fn accepted(&self) {
        self.backlog.fetch_add(1, Ordering::Relaxed);
    }

    pub fn checked(&self) {
        let _ = self
            .backlog
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        self.checked.notify_waiters();
    }

    /// The catalog's count (accepted + checking), from the telemetry sampler.
    pub fn set_backlog(&self, n: u64) {
        self.backlog.store(n, Ordering::Relaxed);
        self.checked.notify_waiters();
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
        if paused {
            self.checked.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_while_full_and_goes_once_a_check_ends() {
        let a = std::sync::Arc::new(Admission::new(2, Duration::from_secs(5)));
        assert_eq!(a.admit().await, Duration::ZERO);
        a.accepted();
        a.accepted();
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.admit().await }
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!waiting.is_finished(), "a full backlog holds new uploads");
        a.checked();
        let waited = waiting.await.unwrap();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[tokio::test]
    async fn the_wait_is_bounded_and_paused_checks_hold_nobody() {
        let a = Admission::new(1, Duration::from_millis(200));
        a.accepted();
        let waited = a.admit().await;
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(2));
        a.set_paused(true);
        assert_eq!(a.admit().await, Duration::ZERO);
        a.set_paused(false);
        a.set_backlog(0);
        assert_eq!(a.admit().await, Duration::ZERO);
        assert_eq!(
            Admission::new(0, Duration::from_secs(9)).admit().await,
            Duration::ZERO
        );
    }
}
