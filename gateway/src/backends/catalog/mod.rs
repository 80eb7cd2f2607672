//! The catalog: the database of uploads, their state history, files, findings, the
//! outbox and the audit log.
//!
//! [`CatalogStore`] is the contract; [`sqlite::SqliteCatalog`] the embedded
//! implementation (the default, under `data_dir`) and [`postgres::PgCatalog`] the
//! scale-out one, shared by a cluster's nodes. Both pass the one [`contract`] suite. Callers hold a [`Catalog`], a shared handle to whichever
//! implementation `[catalog] url` names.

mod driver_error;
pub mod postgres;
pub(crate) mod rows;
pub mod sqlite;
mod types;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

pub use types::{
    AttributeMatch, AttributeValue, CurrentFile, DeadLetter, DicomGroup, DicomLevel, DicomLocation,
    DicomQuery, DicomRow, ExpiredFile, FileQuery, FileRow, FolderActivity, Lease, NewFile,
    OutboxEvent, Rejection, SameContent, TenantUsage, UploadRow, UploadState, result_of,
};

use crate::checks::{Check, CheckResult};
use crate::events::Event;

/// What a catalog call can fail with, in our terms: each implementation classifies its
/// driver's errors when they happen (`sqlite::error`), so no driver type reaches the
/// callers and every backend answers the same codes.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CatalogError {
    #[error("cannot open catalog: {0}")]
    Open(String),
    #[error("catalog migration failed: {0}")]
    Migrate(String),
    #[error("catalog query failed: {0}")]
    Query(String),
    #[error("catalog URL scheme `{0}` is not supported (sqlite: or postgres:)")]
    Unsupported(String),
    #[error("catalog conflict: {0}")]
    Conflict(String),
    /// The database cannot be used for now, through no fault of the request (locked by
    /// another process past the busy timeout, not writable, failing I/O). Clients are
    /// told to try again (503 `catalog.unavailable`); nothing is lost.
    #[error("the catalog cannot be written for now: {0}")]
    Unavailable(String),
    /// The database could not write because its disk is full.
    #[error("the catalog's disk is full: {0}")]
    DiskFull(String),
}

impl CatalogError {
    pub fn code(&self) -> &'static str {
        match self {
            CatalogError::Open(_) => "catalog.open",
            CatalogError::Migrate(_) => "catalog.migrate",
            CatalogError::Query(_) => "catalog.query",
            CatalogError::Unsupported(_) => "catalog.unsupported",
            CatalogError::Conflict(_) => "catalog.conflict",
            CatalogError::Unavailable(_) => "catalog.unavailable",
            CatalogError::DiskFull(_) => "catalog.disk_full",
        }
    }

    /// Whether to refuse for now and let the client retry (see [`CatalogError::Unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CatalogError::Unavailable(_))
    }

    pub fn is_disk_full(&self) -> bool {
        matches!(self, CatalogError::DiskFull(_))
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A shared handle to the catalog in use.
pub type Catalog = Arc<dyn CatalogStore>;

/// Opens the catalog named by `url` (empty: the embedded SQLite file in `data_dir`)
/// and brings its schema up to date.
pub async fn open(url: &str, data_dir: &Path) -> Result<Catalog, CatalogError> {
    open_with(url, data_dir, crate::config::Synchronous::Full).await
}

/// [`open`] with an explicit commit durability for the embedded catalog.
pub async fn open_with(
    url: &str,
    data_dir: &Path,
    synchronous: crate::config::Synchronous,
) -> Result<Catalog, CatalogError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(postgres::PgCatalog::open(url).await?));
    }
    Ok(Arc::new(
        sqlite::SqliteCatalog::open_with(url, data_dir, synchronous).await?,
    ))
}

/// Declares each catalog trait (one per concern) and implements it for each listed type
/// whose inherent async methods have the same names and arguments (the SQLite and the
/// PostgreSQL catalog). One list, so the traits and the forwarding cannot drift apart;
/// the methods return boxed futures so that a catalog can be a trait object (`async fn`
/// in traits is not object-safe).
macro_rules! catalog_traits {
    (impl for $tys:tt; $( $(#[$tdoc:meta])* trait $trait:ident $body:tt )*) => {
        $(
            catalog_traits!(@declare $(#[$tdoc])* $trait $body);
            catalog_traits!(@impls $tys $trait $body);
        )*
    };
    (@declare $(#[$tdoc:meta])* $trait:ident {
        $( sync $sname:ident -> $sret:ty; )*
        $( $(#[$doc:meta])* fn $name:ident($($arg:ident: $argty:ty),*) -> $ret:ty; )*
    }) => {
        $(#[$tdoc])*
        pub trait $trait: Send + Sync {
            $( fn $sname(&self) -> $sret; )*
            $( $(#[$doc])* fn $name<'a>(&'a self $(, $arg: $argty)*) -> BoxFuture<'a, Result<$ret, CatalogError>>; )*
        }
    };
    (@impls [] $trait:ident $body:tt) => {};
    (@impls [$ty:ty $(, $rest:ty)*] $trait:ident $body:tt) => {
        catalog_traits!(@impl $ty, $trait $body);
        catalog_traits!(@impls [$($rest),*] $trait $body);
    };
    (@impl $ty:ty, $trait:ident {
        $( sync $sname:ident -> $sret:ty; )*
        $( $(#[$doc:meta])* fn $name:ident($($arg:ident: $argty:ty),*) -> $ret:ty; )*
    }) => {
        impl $trait for $ty {
            $( fn $sname(&self) -> $sret {
                <$ty>::$sname(self)
            } )*
            $( fn $name<'a>(&'a self $(, $arg: $argty)*) -> BoxFuture<'a, Result<$ret, CatalogError>> {
                Box::pin(<$ty>::$name(self $(, $arg)*))
            } )*
        }
    };
}

/// Every concern together: what a backend implements and what `serve` hands out. A
/// part of the gateway that needs one concern takes that trait alone (an
/// `Arc<dyn CatalogStore>` coerces to `Arc<dyn CheckQueue>` and the others).
pub trait CatalogStore:
    UploadLedger
    + CheckQueue
    + FileIndex
    + ResultsQueries
    + ReviewQueries
    + DicomQueries
    + Outbox
    + Housekeeping
    + Operations
    + Leases
{
    /// Flushes and closes (at shutdown). Never fails; problems are logged.
    fn close(&self) -> BoxFuture<'_, ()>;
}

impl CatalogStore for sqlite::SqliteCatalog {
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(sqlite::SqliteCatalog::close(self))
    }
}

impl CatalogStore for postgres::PgCatalog {
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(postgres::PgCatalog::close(self))
    }
}

catalog_traits! {
    impl for [sqlite::SqliteCatalog, postgres::PgCatalog];

    /// The upload ledger: partial uploads, their durable offsets and the commit point
    /// (`receiving` → `accepted`), what each tenant holds.
    trait UploadLedger {
        /// A new `receiving` upload.
        fn create_upload(id: &'a str, tenant: &'a str, name: &'a str, protocol: &'a str, declared_len: Option<u64>) -> UploadRow;
        /// Records the request a partial upload answers, as its client gave it.
        fn set_upload_request(id: &'a str, request_id: &'a str) -> ();
        fn upload(id: &'a str) -> Option<UploadRow>;
        /// The partial upload of `name` a client would resume, if any.
        fn receiving_upload(tenant: &'a str, name: &'a str) -> Option<UploadRow>;
        /// Renames a partial upload; `false` if it is no longer receiving.
        fn rename_upload(id: &'a str, name: &'a str) -> bool;
        /// Declares the length of a partial upload created without one.
        fn set_declared_len(id: &'a str, len: u64) -> bool;
        /// Records that the spool file holds `offset` bytes on stable storage.
        fn set_durable_offset(id: &'a str, offset: u64) -> ();
        /// The commit point: `receiving` → `accepted`, with its `upload.accepted` audit
        /// record; returns the place in the check order.
        fn accept_upload(id: &'a str, sealed_len: u64, plaintext_len: u64, plaintext_sha256: &'a str) -> i64;
        /// A partial upload the client gave up: `receiving` → `expired`.
        fn abandon_upload(upload: &'a UploadRow, why: &'a str) -> bool;
        /// A tenant's uploads, newest first (optionally in one state), ids below `before`.
        fn list_uploads(tenant: &'a str, state: Option<UploadState>, before: Option<&'a str>, limit: i64) -> Vec<UploadRow>;
        /// The newest upload of `name`, in any state.
        fn latest_upload(tenant: &'a str, name: &'a str) -> Option<UploadRow>;
        /// The newest upload of each name under `prefix`, at most `limit` names.
        fn latest_uploads(tenant: &'a str, prefix: &'a str, limit: i64) -> Vec<UploadRow>;
        fn tenant_usage(tenant: &'a str) -> TenantUsage;
        /// What all tenants hold together.
        fn usage_totals() -> TenantUsage;
        /// Bytes held durably for uploads still receiving.
        fn spool_bytes() -> u64;
        fn count_in_state(state: UploadState) -> i64;
    }

    /// The check queue: accepted uploads claimed once each in arrival order, requeued
    /// after errors or restarts, held back while a set is still arriving.
    trait CheckQueue {
        /// Takes the oldest accepted upload (`accepted` → `checking`) whose backoff is
        /// over, counting the attempt; never the same twice.
        fn claim_next_accepted() -> Option<UploadRow>;
        /// The same, among uploads of at most `max_bytes` (the small-file lane).
        fn claim_next_small(max_bytes: u64) -> Option<UploadRow>;
        /// After a restart: uploads caught mid-check go back to the queue.
        fn requeue_checking() -> u64;
        /// A check that ended in an error goes back to the queue, not before `after`.
        fn requeue_upload(id: &'a str, after: i64) -> bool;
        /// A check that waits for the rest of its set goes back to the queue until `after`,
        /// its attempt given back.
        fn defer_check(id: &'a str, after: i64, waits_for: &'a str) -> bool;
        /// Uploads under a folder waiting for checks, and their last arrival.
        fn folder_activity(tenant: &'a str, prefix: &'a str, except: &'a str) -> FolderActivity;
        /// Whether a DICOMDIR is uploaded or on its way in one of `folders`.
        fn dicomdir_in(tenant: &'a str, folders: &'a [String]) -> bool;
        /// Uploads accepted before `seq` whose checks are pending (under `prefix`, with
        /// plaintext `sha256`, when given).
        fn earlier_pending(tenant: &'a str, seq: i64, prefix: Option<&'a str>, sha256: Option<&'a str>) -> i64;
    }

    /// The file index: a check's outcome recorded with its findings and event (indexed,
    /// rejected, pre-checked), versions and duplicates of a tenant's files.
    trait FileIndex {
        /// The tenant's current file with this content, if any.
        fn same_content(tenant: &'a str, sha256: &'a str) -> Option<SameContent>;
        /// `checking` → `indexed` with the file, findings and outbox event, together.
        fn index_upload(upload: &'a UploadRow, file: &'a NewFile, checks: &'a [Check], event: &'a Event) -> ();
        /// Any state → `rejected` with the findings and the `upload.rejected` event.
        fn reject_upload(id: &'a str, checks: &'a [Check], event: &'a Event) -> ();
        /// A pre-check's end: `prechecked` or `rejected`, findings, no file, no event.
        fn finish_precheck(id: &'a str, passed: bool, checks: &'a [Check]) -> ();
        /// Records the requests files answer, as a batch manifest names them.
        fn assign_requests(tenant: &'a str, files: &'a [(String, String, serde_json::Value)]) -> ();
        /// (upload id, sha256) of every indexed file.
        fn all_indexed() -> Vec<(String, String)>;
        /// (file id, sha256, object key) of the files an upload yielded.
        fn indexed_files(upload_id: &'a str) -> Vec<(String, String, String)>;
        /// The tenant's current files whose names start with `prefix`.
        fn current_files_under(tenant: &'a str, prefix: &'a str) -> Vec<CurrentFile>;
    }

    /// What a hospital reads back: check results, findings and download states.
    trait ResultsQueries {
        /// The hospital-facing result of one upload.
        fn check_result(id: &'a str) -> Option<CheckResult>;
        /// The findings of every upload of `tenant` under `prefix`, as (upload id, check),
        /// in upload then check order (one query for a whole `/results` listing).
        fn checks_under(tenant: &'a str, prefix: &'a str) -> Vec<(String, Check)>;
        /// The download state of every indexed file under `prefix`, by upload id.
        fn download_states_under(tenant: &'a str, prefix: &'a str) -> Vec<(String, crate::checks::DownloadState)>;
        /// The download state of the files these uploads of `tenant` yielded, by upload
        /// id (one query for a page of `/v1/uploads`).
        fn download_states_of(tenant: &'a str, upload_ids: &'a [String]) -> Vec<(String, crate::checks::DownloadState)>;
    }

    /// What reviewers read: file listings, one file, downloads counted.
    trait ReviewQueries {
        /// Files matching a review query, in indexing order after its cursor.
        fn list_files(query: &'a FileQuery) -> Vec<FileRow>;
        fn file(id: &'a str) -> Option<FileRow>;
        /// Counts a download with its `file.downloaded` event; `None` if the file expired.
        fn record_download(file_id: &'a str, by: &'a str, encrypted: bool) -> Option<i64>;
    }

    /// QIDO-RS and WADO-RS: studies, series and instances of a tenant.
    trait DicomQueries {
        /// The indexed DICOM instances of a tenant's study.
        fn study_instances(tenant: &'a str, study_uid: &'a str) -> Vec<DicomRow>;
        /// QIDO-RS: studies or series matching a query, with counts.
        fn dicom_groups(query: &'a DicomQuery) -> Vec<DicomGroup>;
        /// QIDO-RS / WADO-RS: instances matching a query, and where their bytes are.
        fn dicom_instances(query: &'a DicomQuery) -> Vec<DicomLocation>;
    }

    /// The outbox: committed events in order, each sink's cursor and dead letters;
    /// `outbox_watch` changes whenever events were committed.
    trait Outbox {
        sync outbox_watch -> tokio::sync::watch::Receiver<u64>;
        /// Outbox events after `after`, oldest first (only `tenants`' when given).
        fn outbox_after(after: i64, tenants: Option<&'a [String]>, limit: i64) -> Vec<OutboxEvent>;
        fn outbox_head() -> i64;
        fn outbox_count(kind: &'a str) -> i64;
        /// How far a sink has delivered.
        fn sink_cursor(sink: &'a str) -> i64;
        fn advance_sink(sink: &'a str, seq: i64) -> ();
        /// Gives up on an event for a sink (moving its cursor past it when `advance`).
        fn dead_letter(sink: &'a str, seq: i64, attempts: i64, error: &'a str, advance: bool) -> ();
        fn dead_letters(sink: Option<&'a str>) -> Vec<DeadLetter>;
        /// Asks for another delivery round of dead letters; returns how many.
        fn retry_dead_letters(sink: Option<&'a str>) -> u64;
        fn retries_due(sink: &'a str, limit: i64) -> Vec<OutboxEvent>;
        fn clear_dead_letter(sink: &'a str, seq: i64) -> ();
    }

    /// Housekeeping and retention: expiry of partial uploads, quarantines and pre-checks,
    /// files whose retention ended, objects still in use, statistics.
    trait Housekeeping {
        /// Expires partial uploads untouched since before `cutoff` (unix seconds).
        fn expire_receiving(cutoff: i64) -> Vec<UploadRow>;
        /// Rejected uploads whose quarantine ended before `cutoff` and whose bytes remain.
        fn quarantine_ended(cutoff: i64) -> Vec<UploadRow>;
        /// Pre-checks whose checks ended before `cutoff`.
        fn prechecks_ended(cutoff: i64) -> Vec<UploadRow>;
        /// Removes a finished pre-check's records.
        fn delete_precheck(upload: &'a UploadRow) -> ();
        /// Records that an upload's spooled bytes were removed.
        fn mark_purged(upload: &'a UploadRow) -> ();
        /// Marks files whose retention ended by `now` expired, with `file.expired` events.
        fn expire_due(now: i64, limit: i64) -> Vec<ExpiredFile>;
        /// True while a file that is not expired uses the object.
        fn object_in_use(object_key: &'a str) -> bool;
        /// Expired files whose objects retention has not dealt with yet.
        fn expired_unpurged(limit: i64) -> Vec<ExpiredFile>;
        fn mark_file_purged(file_id: &'a str) -> ();
        /// Refreshes the query planner's statistics (run by housekeeping).
        fn refresh_statistics() -> ();
    }

    /// What one node of a cluster holds and the others leave alone while it lives
    /// (`postgres/leases.rs`): a partial upload being written, a cluster job. The
    /// embedded catalog serves one node, which always holds everything.
    trait Leases {
        sync is_shared -> bool;
        /// Takes or renews the lease on a job that runs on one node at a time
        /// (housekeeping, retention, each sink's dispatch); `false` while another holds it.
        fn hold_job(job: &'a str) -> bool;
        /// Takes or renews the writer's lease on a partial upload.
        fn hold_upload(id: &'a str) -> Lease;
        /// Gives the writer's lease up (the client closed the upload).
        fn release_upload(id: &'a str) -> ();
    }

    /// For operators: liveness, the audit log, recent rejections.
    trait Operations {
        /// Cheap liveness probe for `/readyz`.
        fn ping() -> ();
        /// Appends to the audit log.
        fn audit(actor: &'a str, action: &'a str, detail: &'a serde_json::Value) -> ();
        fn audit_count(action: &'a str) -> i64;
        /// The newest rejections, for `gateway status`.
        fn recent_rejections(limit: i64) -> Vec<Rejection>;
    }
}

#[cfg(test)]
#[macro_use]
pub mod contract;
