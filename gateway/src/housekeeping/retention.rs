//! Retention (DOMAIN rules 2 and 13): an indexed file is kept for its profile's (or
//! tenant's) retention period, counted from indexing, then expires: the file row stays
//! as a tombstone (`expired`, so listings and cursors stay stable and the review API can
//! answer 410), a `file.expired` event goes out in the same transaction, and its stored
//! object is deleted unless another current file has the same content.
//!
//! Two steps, each safe to repeat: mark due files expired, then deal with the objects
//! of expired files not yet purged. A crash between them leaves work for the next
//! sweep, never an orphaned object. The sweep runs on its own task in small batches,
//! so it never holds up ingest for long.

use crate::backends::catalog::CatalogError;
use crate::backends::objects::{ObjectError, ObjectKey, ObjectStore};
use crate::session::IngestCore;
use crate::telemetry::metrics::METRICS;

const BATCH: i64 = 500;

/// What one retention sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSwept {
    pub files_expired: usize,
    pub objects_deleted: usize,
    pub bytes_deleted: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Objects(#[from] ObjectError),
}

impl RetentionError {
    pub fn code(&self) -> &'static str {
        match self {
            RetentionError::Catalog(e) => e.code(),
            RetentionError::Objects(e) => e.code(),
        }
    }
}

/// Expires every file due by `now` (unix seconds) and deletes unused objects.
pub async fn sweep(
    core: &IngestCore,
    objects: &dyn ObjectStore,
    now: i64,
) -> Result<RetentionSwept, RetentionError> {
    let catalog = core.catalog();
    let mut done = RetentionSwept::default();
    loop {
        let expired = catalog.expire_due(now, BATCH).await?;
        done.files_expired += expired.len();
        METRICS.retention_files.inc_by(expired.len() as u64);
        for f in &expired {
            tracing::info!(audit = true, tenant = %f.tenant, file = %f.file_id, "file expired (retention)");
        }
        if (expired.len() as i64) < BATCH {
            break;
        }
    }
    loop {
        let pending = catalog.expired_unpurged(BATCH).await?;
        for f in &pending {
            if let Some(bytes) = delete_if_unused(core, objects, &f.object_key).await? {
                done.objects_deleted += 1;
                done.bytes_deleted += bytes;
                METRICS.retention_objects.inc();
                METRICS.retention_bytes.inc_by(bytes);
            }
            catalog.mark_file_purged(&f.file_id).await?;
        }
        if (pending.len() as i64) < BATCH {
            break;
        }
    }
    Ok(done)
}

/// Deletes the object unless a current file uses it; its size when deleted.
async fn delete_if_unused(
    core: &IngestCore,
    objects: &dyn ObjectStore,
    key: &str,
) -> Result<Option<u64>, RetentionError> {
    let _exclusive = core.objects_in_use().write().await;
    if core.catalog().object_in_use(key).await? {
        return Ok(None);
    }
    let key = ObjectKey::new(key)?;
    let Some(meta) = objects.head(&key).await? else {
        return Ok(None);
    };
    Ok(objects.delete(&key).await?.then_some(meta.len))
}
