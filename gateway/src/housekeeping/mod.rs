//! Housekeeping: the periodic sweep that ends what nobody will finish.
//!
//! - A partial upload untouched for `ingest.partial_expiry_hours` expires: its state
//!   becomes `expired` (audit record `upload.expired`) and its spool file is removed.
//! - A rejected upload's bytes stay in the spool for inspection (quarantine) for
//!   `ingest.quarantine_days`, then are removed (audit record `upload.purged`). The
//!   check result stays, so a hospital can still read why the upload failed.
//! - A pre-check (rule 21) is removed `ingest.precheck_hours` after its checks
//!   ended: bytes first, then its records (audit record `precheck.removed`) — a crash
//!   in between leaves records that the next sweep removes, never an orphan file.
//!
//! - In a cluster, each node also clears its own spool of finished uploads
//!   ([`node_spool`]): the sweep above runs on one node at a time.
//! - Indexed files whose retention ended expire ([`retention`]), on their own timer
//!   (`retention.sweep_interval_secs`).
//!
//! The catalog is changed first and the file removed after: a crash in between leaves
//! an orphan spool file, never a row pointing at missing bytes that a client could
//! resume. Each removal is a metric (`gateway_housekeeping_*`).

mod node_spool;
pub mod retention;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use std::path::PathBuf;

use crate::backends::catalog::{Catalog, CatalogError, UploadRow};
use crate::session::IngestCore;
use crate::session::spool::spool_path;
use crate::telemetry::events::{InternalEvent, UploadCleanedUp};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub partial_expiry: Duration,
    pub quarantine: Duration,
    pub precheck: Duration,
    pub interval: Duration,
}

impl Policy {
    pub fn from_config(c: &crate::config::IngestConfig) -> Policy {
        Policy {
            partial_expiry: Duration::from_secs(c.partial_expiry_hours.saturating_mul(3600)),
            quarantine: Duration::from_secs(c.quarantine_days.saturating_mul(86_400)),
            precheck: Duration::from_secs(c.precheck_hours.saturating_mul(3600)),
            interval: Duration::from_secs(c.housekeeping_interval_secs),
        }
    }
}

/// What housekeeping and retention work on, taken from the session's core when they
/// are started: the catalog, the spool and the lock retention shares with the
/// pipeline's indexing (see `IngestCore::objects_in_use`) — not the session itself.
#[derive(Clone)]
pub struct Grounds {
    pub catalog: Catalog,
    pub spool_dir: PathBuf,
    pub objects_in_use: Arc<tokio::sync::RwLock<()>>,
    /// In a cluster, partial uploads' checkpoints in the shared store, removed with
    /// the uploads that expire.
    pub checkpoints: Option<Arc<crate::session::checkpoint::Checkpoints>>,
}

impl Grounds {
    pub fn of(core: &IngestCore) -> Grounds {
        Grounds {
            catalog: core.catalog().clone(),
            spool_dir: core.settings().spool_dir.clone(),
            objects_in_use: core.objects_in_use(),
            checkpoints: core.settings().checkpoints.clone(),
        }
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub expired: usize,
    pub purged: usize,
    pub prechecks_removed: usize,
}

/// Runs one sweep as of `now` (unix seconds).
pub async fn sweep(g: &Grounds, policy: &Policy, now: i64) -> Result<Swept, CatalogError> {
    let catalog = &g.catalog;
    catalog.refresh_statistics().await?;
    let expire_before = now - secs(policy.partial_expiry);
    let expired = catalog.expire_receiving(expire_before).await?;
    for up in &expired {
        remove_spool(g, up, "expired");
        remove_checkpoints(g, up).await;
    }
    let quarantine_before = now - secs(policy.quarantine);
    let ended = catalog.quarantine_ended(quarantine_before).await?;
    for up in &ended {
        catalog.mark_purged(up).await?;
        remove_spool(g, up, "purged");
    }
    let prechecks = catalog.prechecks_ended(now - secs(policy.precheck)).await?;
    for up in &prechecks {
        remove_spool(g, up, "precheck_removed");
        catalog.delete_precheck(up).await?;
    }
    Ok(Swept {
        expired: expired.len(),
        purged: ended.len(),
        prechecks_removed: prechecks.len(),
    })
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
}

/// Removes an expired upload's checkpoints; one left behind is logged (the store keeps
/// it, no upload points at it).
async fn remove_checkpoints(g: &Grounds, up: &UploadRow) {
    if let Some(c) = &g.checkpoints
        && let Err(e) = c.remove(&up.tenant, &up.id).await
    {
        tracing::warn!(upload = %up.id, code = e.code(), error = %e, "cannot remove checkpoints");
    }
}

fn remove_spool(g: &Grounds, up: &UploadRow, action: &'static str) {
    let path = spool_path(&g.spool_dir, &up.tenant, &up.id);
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove spool file"),
    }
    UploadCleanedUp {
        tenant: &up.tenant,
        upload: &up.id,
        action,
        bytes,
    }
    .emit();
}

/// Sweeps every `policy.interval` until `stop` turns true.
pub async fn run(g: Grounds, policy: Policy, mut stop: watch::Receiver<bool>) {
    loop {
        // In a cluster one node sweeps at a time (`Leases`); the others skip the round.
        let swept = match g.catalog.hold_job("housekeeping").await {
            Ok(true) => sweep(&g, &policy, crate::util::unix_now())
                .await
                .map(|_| ()),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = swept {
            tracing::error!(code = e.code(), error = %e, "housekeeping sweep failed");
        }
        // In a cluster, every node also clears its own spool of finished uploads.
        if g.catalog.is_shared()
            && let Err(e) = node_spool::sweep(&g, &policy, crate::util::unix_now()).await
        {
            tracing::error!(code = e.code(), error = %e, "node spool sweep failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(policy.interval) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Runs the retention sweep every `interval` until `stop` turns true.
pub async fn run_retention(
    g: Grounds,
    objects: Arc<dyn crate::backends::objects::ObjectStore>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let held = g.catalog.hold_job("retention").await;
        if let Ok(h) = held {
            crate::jobs::leased("retention", h);
        }
        let swept = match held {
            Ok(true) => retention::sweep(&g, objects.as_ref(), crate::util::unix_now()).await,
            Ok(false) => Ok(retention::RetentionSwept::default()),
            Err(e) => Err(e.into()),
        };
        match swept {
            Ok(s) if s.files_expired > 0 || s.objects_deleted > 0 => {
                tracing::info!(
                    files = s.files_expired,
                    objects = s.objects_deleted,
                    bytes = s.bytes_deleted,
                    "retention sweep"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(code = e.code(), error = %e, "retention sweep failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval.max(Duration::from_secs(1))) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::catalog::UploadState;
    use crate::checks::Status;
    use crate::session::testing::{fixture, who};

    #[tokio::test(flavor = "multi_thread")]
    async fn abandoned_partials_expire_and_quarantine_ends_on_time() {
        let f = fixture().await;
        let (sealed, _) = f.seal(300_000);
        // A partial upload, suspended half-way.
        let mut up = f.core.open(&who(), "half.pdf", None).await.unwrap();
        up.write_at(0, sealed[..100_000].to_vec()).await.unwrap();
        let partial_id = up.id().to_owned();
        up.suspend().await.unwrap();
        // A rejected upload: not for us.
        let stranger = crate::sealed::Identity::generate().unwrap();
        let foreign = crate::sealed::seal_to_vec(&[stranger.to_public()], b"%PDF-1.7").unwrap();
        let mut bad = f.core.open(&who(), "bad.pdf", None).await.unwrap();
        let bad_id = bad.id().to_owned();
        assert!(bad.write_at(0, foreign).await.is_err());
        let spool = |id: &str| spool_path(&f.core.settings().spool_dir, "3501200000", id);
        assert!(spool(&partial_id).exists() && spool(&bad_id).exists());

        let policy = Policy {
            partial_expiry: Duration::from_secs(3600),
            quarantine: Duration::from_secs(86_400),
            precheck: Duration::from_secs(86_400),
            interval: Duration::from_secs(1),
        };
        let now = crate::util::unix_now();
        let swept = sweep(&Grounds::of(&f.core), &policy, now).await.unwrap();
        assert_eq!(swept, Swept::default(), "nothing is due yet");
        assert!(spool(&partial_id).exists() && spool(&bad_id).exists());

        let swept = sweep(&Grounds::of(&f.core), &policy, now + 3601)
            .await
            .unwrap();
        assert_eq!(
            swept,
            Swept {
                expired: 1,
                purged: 0,
                prechecks_removed: 0
            }
        );
        assert!(!spool(&partial_id).exists(), "expired bytes are removed");
        assert!(spool(&bad_id).exists(), "quarantine keeps rejected bytes");
        let c = f.core.catalog();
        let r = c.check_result(&partial_id).await.unwrap().unwrap();
        assert_eq!(r.status, Status::Expired);
        assert!(
            f.core.resume(&who(), &partial_id).await.is_err(),
            "an expired upload cannot be resumed"
        );
        let mut again = f.core.open(&who(), "half.pdf", None).await.unwrap();
        assert_eq!(again.offset(), 0, "the name starts over");
        again.write_at(0, sealed.clone()).await.unwrap();
        again.finish().await.unwrap();

        let swept = sweep(&Grounds::of(&f.core), &policy, now + 86_401)
            .await
            .unwrap();
        assert_eq!(
            swept,
            Swept {
                expired: 0,
                purged: 1,
                prechecks_removed: 0
            }
        );
        assert!(!spool(&bad_id).exists(), "quarantine over");
        assert_eq!(
            c.check_result(&bad_id).await.unwrap().unwrap().status,
            Status::Failed
        );
        assert_eq!(c.audit_count("upload.expired").await.unwrap(), 1);
        assert_eq!(c.audit_count("upload.purged").await.unwrap(), 1);
        assert_eq!(c.count_in_state(UploadState::Accepted).await.unwrap(), 1);
        assert_eq!(
            sweep(&Grounds::of(&f.core), &policy, now + 999_999)
                .await
                .unwrap(),
            Swept::default()
        );
    }
}
