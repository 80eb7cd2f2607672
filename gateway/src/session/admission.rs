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
//! What counts against `ingest.max_backlog`: accepted and checking uploads, plus uploads
//! let in and still arriving (each holds a [`Ticket`] until it is accepted or dropped),
//! so a crowd at the door cannot all pass on one free place. A ticket stops counting
//! after `ingest.admission_wait_secs`, so a client that vanished mid-upload cannot hold
//! the door shut. The wait itself is bounded the same way: past it an upload goes
//! ahead, so a slow pipeline delays uploads but never refuses them. During a maintenance
//! window checks pause and nobody waits. Resumed uploads were admitted when they began.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, Notify};

pub struct Admission {
    /// What may be in the system (0: never wait).
    limit: u64,
    max_wait: Duration,
    /// Accepted and checking uploads: seeded from the catalog at start-up, then moved
    /// by acceptances ([`Admission::accepted`]) and ended checks ([`Admission::checked`])
    /// only — a deferred or retried check stays in it. The sampler only reads it.
    backlog: AtomicU64,
    /// Tickets out (uploads let in, not yet accepted): id → when issued.
    admitted: std::sync::Mutex<HashMap<u64, Instant>>,
    next_ticket: AtomicU64,
    /// Checks are paused (maintenance window).
    paused: AtomicBool,
    /// Something left the system: a check ended or a ticket was given back.
    freed: Notify,
    /// Waiting uploads go in arrival order.
    turn: Mutex<()>,
}

/// An upload's place between the door and its acceptance.
pub struct Ticket {
    admission: Arc<Admission>,
    id: Option<u64>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ticket({:?})", self.id)
    }
}

impl Admission {
    pub fn new(limit: u64, max_wait: Duration) -> Arc<Admission> {
        Arc::new(Admission {
            limit,
            max_wait,
            backlog: AtomicU64::new(0),
            admitted: std::sync::Mutex::default(),
            next_ticket: AtomicU64::new(1),
            paused: AtomicBool::new(false),
            freed: Notify::new(),
            turn: Mutex::new(()),
        })
    }

    fn tickets(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Instant>> {
        self.admitted.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn full(&self) -> bool {
        if self.limit == 0 || self.paused.load(Ordering::Relaxed) {
            return false;
        }
        let mut tickets = self.tickets();
        tickets.retain(|_, at| at.elapsed() < self.max_wait);
        self.backlog.load(Ordering::Relaxed) + tickets.len() as u64 >= self.limit
    }

    fn issue(self: &Arc<Self>) -> Ticket {
        let id = (self.limit > 0).then(|| {
            let id = self.next_ticket.fetch_add(1, Ordering::Relaxed);
            self.tickets().insert(id, Instant::now());
            id
        });
        Ticket {
            admission: self.clone(),
            id,
        }
    }

    /// Waits until there is room (or the bounded wait is over); returns the upload's
    /// ticket and how long it waited.
    pub async fn admit(self: &Arc<Self>) -> (Ticket, Duration) {
        if !self.full() {
            return (self.issue(), Duration::ZERO);
        }
        let start = Instant::now();
        let deadline = start + self.max_wait;
        let _turn = tokio::time::timeout_at(deadline.into(), self.turn.lock()).await;
        loop {
            // Registered before looking, so a place freed in between is not missed.
            let mut freed = pin!(self.freed.notified());
            freed.as_mut().enable();
            if !self.full() || Instant::now() >= deadline {
                break;
            }
            let _ = tokio::time::timeout_at(deadline.into(), freed).await;
        }
        (self.issue(), start.elapsed())
    }

    /// An upload accepted without a ticket (resumed after a restart).
    pub fn accepted(&self) {
        self.backlog.fetch_add(1, Ordering::Relaxed);
    }

    pub fn checked(&self) {
        let _ = self
            .backlog
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        self.freed.notify_waiters();
    }

    /// What the catalog held accepted or checking at start-up, before any upload.
    pub fn seed(&self, n: u64) {
        self.backlog.store(n, Ordering::Relaxed);
        self.freed.notify_waiters();
    }

    /// Accepted and checking uploads, as counted here.
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::Relaxed);
        crate::telemetry::metrics::METRICS
            .checks_paused
            .set(i64::from(paused));
        if paused {
            self.freed.notify_waiters();
        }
    }
}

impl Ticket {
    /// The upload was accepted: its place moves from the door to the backlog.
    pub fn accepted(mut self) {
        self.admission.accepted();
        if let Some(id) = self.id.take() {
            self.admission.tickets().remove(&id);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.admission.tickets().remove(&id);
            self.admission.freed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_while_full_and_goes_once_a_check_ends() {
        let a = Admission::new(2, Duration::from_secs(5));
        let (first, waited) = a.admit().await;
        assert_eq!(waited, Duration::ZERO);
        first.accepted();
        let (second, _) = a.admit().await;
        // One accepted, one arriving: full.
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.admit().await.1 }
        });
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!waiting.is_finished(), "a full backlog holds new uploads");
        second.accepted();
        assert!(
            !waiting.is_finished(),
            "accepting moves a place, frees none"
        );
        a.checked();
        let waited = waiting.await.unwrap();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    #[tokio::test]
    async fn a_dropped_upload_gives_its_place_back() {
        let a = Admission::new(1, Duration::from_secs(5));
        let (ticket, _) = a.admit().await;
        let waiting = tokio::spawn({
            let a = a.clone();
            async move { a.admit().await.1 }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        drop(ticket);
        assert!(waiting.await.unwrap() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_wait_is_bounded_and_paused_checks_hold_nobody() {
        let a = Admission::new(1, Duration::from_millis(200));
        a.accepted();
        let (_t, waited) = a.admit().await;
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(2));
        a.set_paused(true);
        assert_eq!(a.admit().await.1, Duration::ZERO);
        a.set_paused(false);
        a.checked();
        assert_eq!(a.backlog(), 0);
        // The ticket above is older than the wait: it no longer counts.
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(a.admit().await.1, Duration::ZERO);
        let off = Admission::new(0, Duration::from_secs(9));
        off.accepted();
        assert_eq!(off.admit().await.1, Duration::ZERO);
    }
}
