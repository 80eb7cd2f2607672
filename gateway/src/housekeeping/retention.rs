//! Retention (rules 2 and 13): an indexed file is kept for its profile's (or
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
    g: &super::Grounds,
    objects: &dyn ObjectStore,
    now: i64,
) -> Result<RetentionSwept, RetentionError> {
    let catalog = &g.catalog;
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
            if let Some(bytes) = delete_if_unused(g, objects, &f.object_key).await? {
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
    g: &super::Grounds,
    objects: &dyn ObjectStore,
    key: &str,
) -> Result<Option<u64>, RetentionError> {
    let _exclusive = g.objects_in_use.write().await;
    if g.catalog.object_in_use(key).await? {
        return Ok(None);
    }
    let key = ObjectKey::new(key)?;
    let Some(meta) = objects.head(&key).await? else {
        return Ok(None);
    };
    Ok(objects.delete(&key).await?.then_some(meta.len))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backends::catalog::FileQuery;
    use crate::backends::objects::local::LocalStore;
    use crate::config::RetentionConfig;
    use crate::pipeline::{Pipeline, window::Windows};
    use crate::session::testing::fixture;

    /// The clock is the `now` each sweep is given: days pass in a test.
    #[tokio::test(flavor = "multi_thread")]
    async fn files_expire_on_time_and_only_unused_objects_go() {
        let f = fixture().await;
        let objects = Arc::new(LocalStore::new(f.dir.path().join("objects")).unwrap());
        let days = |n| RetentionConfig {
            generic_days: n,
            ..RetentionConfig::default()
        };
        let work = f.dir.path().join("work");
        let p14 = Pipeline::new(&f.core, objects.clone(), work.clone(), Windows::none())
            .with_retention(days(14));
        let p30 =
            Pipeline::new(&f.core, objects.clone(), work, Windows::none()).with_retention(days(30));
        let a = f.upload("a.txt", b"record a\n").await;
        p14.process_next().await.unwrap().unwrap();
        let b = f.upload("b.txt", b"record b\n").await;
        p14.process_next().await.unwrap().unwrap();
        // The same content as a.txt, kept longer: the object is shared and must
        // outlive a.txt.
        f.upload("a-copy.txt", b"record a\n").await;
        p30.process_next().await.unwrap().unwrap();
        let catalog = f.core.catalog();
        let stored = |sha: &str| {
            let key = ObjectKey::for_sha256(sha).unwrap();
            let objects = objects.clone();
            async move { objects.head(&key).await.unwrap().is_some() }
        };
        let now = crate::util::unix_now();
        let day = 86_400;
        let query = |status: Option<&str>| FileQuery {
            status: status.map(String::from),
            limit: 10,
            ..FileQuery::default()
        };
        assert_eq!(catalog.list_files(&query(None)).await.unwrap().len(), 3);

        let nothing = RetentionSwept::default();
        assert_eq!(
            sweep(
                &super::super::Grounds::of(&f.core),
                objects.as_ref(),
                now + 13 * day
            )
            .await
            .unwrap(),
            nothing
        );
        assert!(stored(&a.plaintext_sha256).await && stored(&b.plaintext_sha256).await);

        let swept = sweep(
            &super::super::Grounds::of(&f.core),
            objects.as_ref(),
            now + 15 * day,
        )
        .await
        .unwrap();
        assert_eq!((swept.files_expired, swept.objects_deleted), (2, 1));
        assert!(!stored(&b.plaintext_sha256).await, "b.txt's object is gone");
        assert!(
            stored(&a.plaintext_sha256).await,
            "a-copy.txt still uses a.txt's object"
        );
        let live = catalog.list_files(&query(Some("live"))).await.unwrap();
        assert_eq!(
            live.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["a-copy.txt"]
        );
        assert_eq!(catalog.outbox_count("file.expired").await.unwrap(), 2);

        let swept = sweep(
            &super::super::Grounds::of(&f.core),
            objects.as_ref(),
            now + 31 * day,
        )
        .await
        .unwrap();
        assert_eq!((swept.files_expired, swept.objects_deleted), (1, 1));
        assert!(!stored(&a.plaintext_sha256).await);
        assert_eq!(
            sweep(
                &super::super::Grounds::of(&f.core),
                objects.as_ref(),
                now + 99 * day
            )
            .await
            .unwrap(),
            nothing
        );
    }
}
