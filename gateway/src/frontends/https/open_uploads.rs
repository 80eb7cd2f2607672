//! tus uploads kept open between requests. Reopening an upload from the spool means
//! re-reading (and re-verifying) every byte received so far, so a client that sends a
//! large file in many PATCH chunks would pay for its file again with every chunk.
//! Instead the live [`Upload`] stays here between requests, one slot per upload id,
//! whose lock also makes sure only one request at a time writes to an upload.
//!
//! Nothing here is needed for durability: every PATCH makes its bytes durable before
//! it answers, so a slot dropped (eviction, restart) only costs a reopen. An upload
//! nobody has written to for `https.idle_upload_secs` is dropped: its buffers go back
//! and it is no longer held open, so memory does not grow with clients that left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::session::Upload;

/// Open uploads kept at most; beyond that, idle ones are dropped.
const MAX_OPEN: usize = 4096;

type Slot = Arc<AsyncMutex<Option<Upload>>>;

pub struct OpenUploads {
    slots: Mutex<Slots>,
    idle_after: Duration,
}

#[derive(Default)]
struct Slots {
    by_id: HashMap<String, (Slot, Instant)>,
    swept: Option<Instant>,
}

impl Default for OpenUploads {
    fn default() -> Self {
        OpenUploads::new(Duration::from_secs(300))
    }
}

/// Exclusive use of one upload's slot for the length of a request.
pub type Held = OwnedMutexGuard<Option<Upload>>;

impl OpenUploads {
    pub fn new(idle_after: Duration) -> OpenUploads {
        OpenUploads {
            slots: Mutex::new(Slots::default()),
            idle_after,
        }
    }

    /// Takes the slot of upload `id`, or `None` while another request holds it.
    pub fn hold(&self, id: &str) -> Option<Held> {
        self.hold_at(id, Instant::now())
    }

    fn hold_at(&self, id: &str, now: Instant) -> Option<Held> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let sweep_due = slots
                .swept
                .is_none_or(|t| now.duration_since(t) >= self.idle_after / 4);
            if sweep_due {
                slots.swept = Some(now);
                evict(&mut slots.by_id, |used| {
                    now.duration_since(used) >= self.idle_after
                });
            }
            if slots.by_id.len() >= MAX_OPEN && !slots.by_id.contains_key(id) {
                evict(&mut slots.by_id, |_| true);
            }
            let entry = slots
                .by_id
                .entry(id.to_string())
                .or_insert_with(|| (Slot::default(), now));
            entry.1 = now;
            entry.0.clone()
        };
        slot.try_lock_owned().ok()
    }

    /// Forgets upload `id` (accepted, rejected or terminated).
    pub fn forget(&self, id: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.by_id.remove(id);
    }

    /// Uploads kept open between requests now.
    #[cfg(test)]
    fn len(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.by_id.len()
    }
}

/// Drops every slot no request holds whose last use `stale` says is old (their
/// uploads are durable already).
fn evict(slots: &mut HashMap<String, (Slot, Instant)>, stale: impl Fn(Instant) -> bool) {
    slots.retain(|_, (slot, used)| {
        Arc::strong_count(slot) > 1 || slot.try_lock().is_err() || !stale(*used)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_left_idle_are_dropped() {
        let open = OpenUploads::new(Duration::from_secs(60));
        let t0 = Instant::now();
        drop(open.hold_at("idle", t0).unwrap());
        drop(open.hold_at("busy", t0).unwrap());
        let held = open.hold_at("held", t0).unwrap();
        assert_eq!(open.len(), 3);
        drop(open.hold_at("busy", t0 + Duration::from_secs(50)).unwrap());
        drop(open.hold_at("other", t0 + Duration::from_secs(70)).unwrap());
        assert_eq!(
            open.len(),
            3,
            "the idle one went; busy, held and other stay"
        );
        assert!(open.hold_at("idle", t0 + Duration::from_secs(71)).is_some());
        drop(held);
    }

    #[test]
    fn one_request_at_a_time_per_upload() {
        let open = OpenUploads::default();
        let held = open.hold("a").unwrap();
        assert!(open.hold("a").is_none(), "a second request is turned away");
        assert!(open.hold("b").is_some(), "other uploads are not affected");
        drop(held);
        assert!(open.hold("a").is_some());
    }
}
