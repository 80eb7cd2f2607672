//! Which uploads a connection holds open right now. An upload has one writer: a second
//! connection resuming it while the first still holds it (an SFTP client reconnecting
//! after a cut while the gateway is still finishing the cut session's writes) would
//! otherwise reopen the spool file at the catalog's durable offset while the first one
//! appends to it. Found by the loadtest: the resume then failed with
//! `ingest.offset_mismatch`. The second open is refused with `ingest.busy` until the
//! first lets go; clients retry, as tus clients do on `423 Locked`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Default, Clone)]
pub struct LiveUploads(Arc<Mutex<HashSet<String>>>);

/// Held while an [`super::Upload`] is open; lets go when dropped.
#[derive(Debug)]
pub struct Live {
    set: LiveUploads,
    id: String,
}

impl std::fmt::Debug for LiveUploads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveUploads")
    }
}

impl LiveUploads {
    /// Takes upload `id`, or `None` while another connection holds it.
    pub fn take(&self, id: &str) -> Option<Live> {
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(id.to_string()).then(|| Live {
            set: self.clone(),
            id: id.to_string(),
        })
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let mut held = self.set.0.lock().unwrap_or_else(|p| p.into_inner());
        held.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let live = LiveUploads::default();
        let a = live.take("u1").expect("free");
        assert!(live.take("u1").is_none(), "held by a");
        assert!(live.take("u2").is_some(), "others are independent");
        drop(a);
        assert!(live.take("u1").is_some(), "free again once a lets go");
    }
}
