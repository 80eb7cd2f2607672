//! tus uploads kept open between requests. Reopening an upload from the spool means
//! re-reading (and re-verifying) every byte received so far, so a client that sends a
//! large file in many PATCH chunks would pay for its file again with every chunk.
//! Instead the live [`Upload`] stays here between requests, one slot per upload id,
//! whose lock also makes sure only one request at a time writes to an upload.
//!
//! Nothing here is needed for durability: every PATCH makes its bytes durable before
//! it answers, so a slot dropped (eviction, restart) only costs a reopen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::session::Upload;

/// Open uploads kept at most; beyond that, idle ones are dropped.
const MAX_OPEN: usize = 4096;

type Slot = Arc<AsyncMutex<Option<Upload>>>;

#[derive(Default)]
pub struct OpenUploads {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Exclusive use of one upload's slot for the length of a request.
pub type Held = OwnedMutexGuard<Option<Upload>>;

impl OpenUploads {
    /// Takes the slot of upload `id`, or `None` while another request holds it.
    pub fn hold(&self, id: &str) -> Option<Held> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            if slots.len() >= MAX_OPEN && !slots.contains_key(id) {
                evict_idle(&mut slots);
            }
            slots.entry(id.to_string()).or_default().clone()
        };
        slot.try_lock_owned().ok()
    }

    /// Forgets upload `id` (accepted, rejected or terminated).
    pub fn forget(&self, id: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(id);
    }
}

/// Drops every slot no request holds (their uploads are durable already).
fn evict_idle(slots: &mut HashMap<String, Slot>) {
    slots.retain(|_, slot| Arc::strong_count(slot) > 1 || slot.try_lock().is_err());
}

#[cfg(test)]
mod tests {
    use super::*;

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
