//! What the session hands the pipeline at its one commit point: a wake-up per accepted
//! upload (the small-file lane has its own, so it is not slept through while the main
//! workers are busy) and the instant of acceptance, for
//! `gateway_time_to_indexed_seconds` (the catalog's `accepted_at` has only seconds).
//! The pipeline holds this, not the session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use tokio::sync::Notify;

use crate::backends::catalog::UploadRow;

#[derive(Default)]
pub struct Handoff {
    accepted: Notify,
    accepted_small: Notify,
    accepted_at: Mutex<HashMap<String, Instant>>,
}

impl Handoff {
    /// Upload `id` was accepted: wake a worker of each lane.
    pub fn accepted(&self, id: &str) {
        if let Ok(mut m) = self.accepted_at.lock() {
            m.insert(id.to_string(), Instant::now());
        }
        self.accepted.notify_one();
        self.accepted_small.notify_one();
    }

    /// The wake-up of the small-file lane (`small`) or of the main workers.
    pub fn signal(&self, small: bool) -> &Notify {
        if small {
            &self.accepted_small
        } else {
            &self.accepted
        }
    }

    /// Seconds since `upload` was accepted (forgetting it): precise for uploads accepted
    /// by this process, else from the catalog's `accepted_at`.
    pub fn since_accepted(&self, upload: &UploadRow) -> f64 {
        let mine = self
            .accepted_at
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&upload.id));
        match (mine, upload.accepted_at) {
            (Some(at), _) => at.elapsed().as_secs_f64(),
            (None, Some(secs)) => (crate::util::unix_now() - secs).max(0) as f64,
            (None, None) => 0.0,
        }
    }
}
