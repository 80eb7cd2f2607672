//! The embedded catalog: SQLite in WAL mode under `data_dir`, reads through `sqlx`,
//! writes through one writer thread (`writer.rs`). Its records are decoded by the same
//! code as the PostgreSQL catalog's (`../rows.rs`).

mod dicom;

mod handoff;
mod housekeeping;
mod queue;
mod results;
mod review;
mod sets;
mod uploads;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::CatalogError;

/// How long a write waits for SQLite's lock (and for its turn among our own writers)
/// before it is refused as `catalog.unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Clone)]
pub struct SqliteCatalog {
    pool: SqlitePool,
    /// Read-only connections for the reviewers' searches (file listings, QIDO, WADO),
    /// reading through a memory map. Kept apart from `pool`: while ingest grows the
    /// catalog, a mapped connection remaps it at the start of every transaction, which
    /// cost the ingest path 13 % of its CPU; searches are rarer and gain more (QIDO p99
    /// over 100,000 instances: 57 ms with a 16 MiB page cache alone; bench/RESULTS.md).
    reads: SqlitePool,
    /// The one writer: a thread with its own connection that runs whole write
    /// commands and commits those queued together at once (writer.rs says why).
    writer: writer::Writer,
    /// Bumped after every commit that adds outbox events (or asks for retries), so
    /// the dispatcher and long-polling feeds wake without polling.
    outbox: Arc<tokio::sync::watch::Sender<u64>>,
}

/// Binds `tenant` and `prefix` to a query whose next parameters are `tenant = ?` and the
/// name-prefix predicate `substr(name, 1, ?) = ? AND name >= ? AND name < ? ||
/// char(1114111)` (the range lets SQLite seek the `(tenant, name)` index).
pub(super) fn bind_tenant_prefix<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, <sqlx::Sqlite as sqlx::Database>::Arguments>,
    tenant: &'q str,
    prefix: &'q str,
) -> sqlx::query::Query<'q, sqlx::Sqlite, <sqlx::Sqlite as sqlx::Database>::Arguments> {
    q.bind(tenant)
        .bind(prefix.len() as i64)
        .bind(prefix)
        .bind(prefix)
        .bind(prefix)
}

impl SqliteCatalog {
    /// Opens the catalog named by `url`, or the embedded one in `data_dir` when empty,
    /// and brings its schema up to date.
    pub async fn open(url: &str, data_dir: &Path) -> Result<SqliteCatalog, CatalogError> {
        Self::open_with(url, data_dir, crate::config::Synchronous::Full).await
    }

    /// [`SqliteCatalog::open`] with an explicit `synchronous` setting.
    pub async fn open_with(
        url: &str,
        data_dir: &Path,
        synchronous: crate::config::Synchronous,
    ) -> Result<SqliteCatalog, CatalogError> {
        let options = if url.is_empty() {
            SqliteConnectOptions::new().filename(data_dir.join("catalog.db"))
        } else if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(super::driver_error::open)?
        } else {
            return Err(CatalogError::Unsupported(
                url.split(':').next().unwrap_or("").to_string(),
            ));
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // An acknowledgement (SFTP close OK, tus 204, STOW 200) and a durable offset
            // told to a resuming client are promises that must survive power loss, and
            // they are catalog commits: with WAL + NORMAL the last commits before a power
            // cut are lost (the spool's fsync keeps the bytes, not the row that says they
            // were accepted). So FULL by default: each commit syncs the WAL. The
            // alternative, reconciling spool files with the catalog at start-up, would
            // have to re-verify whole files to tell an accepted one from a partial one.
            // Cost measured in bench/RESULTS.md ("Durability"); `normal` stays available.
            .synchronous(match synchronous {
                crate::config::Synchronous::Full => SqliteSynchronous::Full,
                crate::config::Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .busy_timeout(BUSY_TIMEOUT)
            // ANALYZE samples this many rows per index: milliseconds, not seconds.
            .pragma("analysis_limit", "1000")
            // A 16 MiB page cache per connection: with the default 2 MiB a catalog of
            // 100,000 uploads was read page by page with a pread each (perf under STOW
            // load). No memory map: while the catalog grows, every connection unmapped
            // and remapped it at the start of each transaction (munmap and page faults
            // were 13 % of the gateway's CPU under the standard loadtest), and mapped
            // pages count in the RSS the operators watch.
            .pragma("cache_size", "-16384")
            // Statement journals and sorts in memory: on disk SQLite created and deleted
            // a temporary file for about one in five small uploads (strace), and file
            // creation is what the spool already pays for most.
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .map_err(super::driver_error::open)?;
        MIGRATOR.run(&pool).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        let writer = writer::Writer::start(options.get_filename(), synchronous, BUSY_TIMEOUT)?;
        let reads = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options.read_only(true).pragma("mmap_size", "1073741824"))
            .await
            .map_err(super::driver_error::open)?;
        Ok(SqliteCatalog {
            pool,
            reads,
            writer,
            outbox: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// Runs `f` as one write command on the writer thread; returns once its writes
    /// are durable (or undone, if it failed).
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, CatalogError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, CatalogError> + Send + 'static,
    {
        self.writer.run(true, f).await
    }

    /// [`Self::write`] for a change nobody is promised: it may be lost with a power
    /// cut (never with a process crash) until the next durable write, which costs no
    /// WAL sync of its own. For the check queue's bookkeeping, which `requeue_checking`
    /// puts right at start-up whatever state it finds.
    pub(super) async fn write_lazy<T, F>(&self, f: F) -> Result<T, CatalogError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, CatalogError> + Send + 'static,
    {
        self.writer.run(false, f).await
    }

    pub(crate) fn outbox_changed(&self) {
        self.outbox.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that changes whenever outbox events were committed.
    pub fn outbox_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outbox.subscribe()
    }

    /// Cheap liveness probe for `/readyz`.
    pub async fn ping(&self) -> Result<(), CatalogError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn journal_mode(&self) -> Result<String, CatalogError> {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&self.pool)
            .await?;
        Ok(mode)
    }

    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), CatalogError> {
        let (actor, action, detail) = (actor.to_string(), action.to_string(), detail.to_string());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)",
            )?
            .execute(rusqlite::params![
                crate::util::unix_now(),
                actor,
                action,
                detail
            ])?;
            Ok(())
        })
        .await
    }

    pub async fn audit_count(&self, action: &str) -> Result<i64, CatalogError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = ?")
            .bind(action)
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// One process: nothing to share with other nodes.
    pub fn is_shared(&self) -> bool {
        false
    }

    /// One node holds every job (see the `Leases` trait).
    pub async fn hold_job(&self, _job: &str) -> Result<bool, CatalogError> {
        Ok(true)
    }

    /// One node: the writer's lease is the session registry's (`ingest.busy` there).
    pub async fn hold_upload(&self, _id: &str) -> Result<super::Lease, CatalogError> {
        Ok(super::Lease::Held)
    }

    pub async fn release_upload(&self, _id: &str) -> Result<(), CatalogError> {
        Ok(())
    }

    /// Checkpoints the WAL into the main database and closes every connection.
    pub async fn close(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
        {
            tracing::warn!(error = %e, "catalog checkpoint failed at shutdown");
        }
        self.writer.stop().await;
        self.reads.close().await;
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every suite of the catalog contract, each on a fresh catalog.
    mod contract {
        use super::SqliteCatalog;
        crate::contract_suites!(|dir| async { (SqliteCatalog::open("", dir).await.unwrap(), ()) });
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_queued_together_share_commits_and_a_failed_one_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open("", dir.path()).await.unwrap();
        let before = c.writer.commits();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..48 {
            let c = c.clone();
            tasks.spawn(async move {
                if i % 8 == 3 {
                    // Writes, then fails: its writes must go, nobody else's.
                    let r: Result<(), CatalogError> = c
                        .write(|c| {
                            c.execute("INSERT INTO audit_log (at, actor, action, detail) VALUES (0, 'x', 'group.dropped', '{}')", [])?;
                            Err(CatalogError::Conflict("on purpose".into()))
                        })
                        .await;
                    assert!(matches!(r, Err(CatalogError::Conflict(_))));
                } else {
                    c.audit("t", "group.kept", &serde_json::json!({ "i": i }))
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        // Every acknowledged write is there, none of the failed ones.
        assert_eq!(c.audit_count("group.kept").await.unwrap(), 42);
        assert_eq!(c.audit_count("group.dropped").await.unwrap(), 0);
        let commits = c.writer.commits() - before;
        assert!(
            commits < 42,
            "48 writers queued together made {commits} commits"
        );
        // A panicking command is refused alone; the writer carries on.
        let r: Result<(), CatalogError> = c.write(|_| panic!("on purpose")).await;
        assert!(r.is_err());
        c.audit("t", "group.after", &serde_json::json!({}))
            .await
            .unwrap();
        // A lazy write is committed like any other (only its WAL sync is left to the
        // next durable write), and the writer is back to syncing after it.
        c.write_lazy(|c| {
            c.execute("INSERT INTO audit_log (at, actor, action, detail) VALUES (0, 'x', 'group.lazy', '{}')", [])?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(c.audit_count("group.lazy").await.unwrap(), 1);
        let mode: i64 = c
            .write(|c| Ok(c.query_row("PRAGMA synchronous", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(mode, 2, "synchronous is FULL again after a lazy write");
        c.close().await;
        let c = SqliteCatalog::open("", dir.path()).await.unwrap();
        assert_eq!(c.audit_count("group.kept").await.unwrap(), 42);
        assert_eq!(c.audit_count("group.after").await.unwrap(), 1);
        assert_eq!(c.audit_count("group.lazy").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn opens_in_wal_mode_and_migrates_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteCatalog::open("", dir.path()).await.unwrap();
        assert_eq!(c.journal_mode().await.unwrap(), "wal");
        c.audit("gateway", "test.event", &serde_json::json!({"a": 1}))
            .await
            .unwrap();
        c.close().await;
        let c = SqliteCatalog::open("", dir.path()).await.unwrap();
        assert_eq!(c.audit_count("test.event").await.unwrap(), 1);
        assert!(SqliteCatalog::open("mysql://x", dir.path()).await.is_err());
    }
}
