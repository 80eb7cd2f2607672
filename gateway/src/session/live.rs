//! Which uploads a connection holds open right now. An upload has one writer: a second
//! connection resuming it while the first still holds it (an SFTP client reconnecting
//! after a cut while the gateway is still finishing the cut session's writes) would
//! otherwise reopen the spool file at the catalog's durable offset while the first one
//! appends to it. Found by the loadtest: the resume then failed with
//! `ingest.offset_mismatch`. The second open is refused with `ingest.busy` until the
//! first lets go; clients retry, as tus clients do on `423 Locked`.
//!
//! In a cluster the same holds across nodes: the catalog's writer lease
//! (`Leases::hold_upload`) is taken after this process's own hold, and given back when
//! the hold ends, so a client resuming through the balancer on another node is answered
//! `ingest.busy` only while this node still writes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Default, Clone)]
pub struct LiveUploads(Arc<Mutex<HashSet<String>>>);

/// Held while an [`super::Upload`] is open; lets go when dropped.
pub struct Live {
    set: LiveUploads,
    id: String,
    /// The shared catalog whose writer lease this hold also took.
    lease: Option<crate::backends::catalog::Catalog>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("id", &self.id).finish()
    }
}

impl Live {
    /// Records that the catalog's writer lease was taken too, to be given back with
    /// this hold.
    pub fn with_lease(mut self, catalog: crate::backends::catalog::Catalog) -> Live {
        self.lease = Some(catalog);
        self
    }
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
            lease: None,
        })
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(catalog) = self.lease.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let id = self.id.clone();
            runtime.spawn(async move {
                // Not given back (the catalog unreachable): it lapses by itself.
                if let Err(e) = catalog.release_upload(&id).await {
                    tracing::warn!(upload = %id, code = e.code(), "cannot give the writer lease back");
                }
            });
        }
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
