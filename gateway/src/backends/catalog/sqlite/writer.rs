//! The catalog's one writer: a thread of its own holding one `rusqlite` connection, to
//! which every write is sent as a whole command (a closure), and which commits the
//! commands queued together in one transaction with one WAL sync (group commit).
//!
//! Why a thread and `rusqlite` rather than sqlx: sqlx's SQLite driver runs every
//! statement on a worker thread of its connection, so a command of five statements
//! (begin, savepoint, two inserts, release, commit) was six round trips between
//! threads. Under load that was the gateway's largest cost: a third of its CPU was
//! thread switching, and the sqlx workers used more CPU than the SFTP, tus and STOW code
//! together (perf, bench/RESULTS.md "Catalog writer"). Here a command is one hop: it
//! is queued, run to its end on this thread, and its caller woken once after the
//! commit. Reads stay on sqlx's pools, where a query is one statement anyway.
//!
//! Group commit: the thread takes every command waiting when it starts a transaction
//! (up to [`MAX_BATCH`]), runs each inside a savepoint — a command that fails is rolled
//! back alone — and commits once. Nobody is answered before the commit that holds its
//! writes has synced, so an acknowledgement still means durable; if the commit fails,
//! every member gets the error, as each would have alone.

use std::any::Any;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::super::CatalogError;
use crate::telemetry::metrics::METRICS;

/// At most this many commands share one transaction, bounding how long the first
/// waits for the commit.
const MAX_BATCH: usize = 64;

type Output = Box<dyn Any + Send>;
type Work = Box<dyn FnOnce(&Connection) -> Result<Output, CatalogError> + Send>;
type Reply = oneshot::Sender<Result<Output, CatalogError>>;

enum Msg {
    /// A command, and whether its caller needs it durable when answered.
    Job(Work, Reply, bool),
    /// Closes the connection and answers once it is closed.
    Stop(oneshot::Sender<()>),
}

/// The handle callers send commands through; cheap to clone.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Msg>,
    /// Whether commits sync the WAL (`synchronous = FULL`).
    full: bool,
    /// Commits made so far (each one WAL sync), for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    commits: Arc<AtomicU64>,
}

/// rusqlite's errors in the catalog's terms (the same classes as sqlx's, error.rs).
pub(super) fn classify(e: rusqlite::Error) -> CatalogError {
    let text = e.to_string();
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => CatalogError::DiskFull(text),
        Some(
            rusqlite::ErrorCode::DatabaseBusy
            | rusqlite::ErrorCode::DatabaseLocked
            | rusqlite::ErrorCode::ReadOnly
            | rusqlite::ErrorCode::SystemIoFailure
            | rusqlite::ErrorCode::CannotOpen,
        ) => CatalogError::Unavailable(text),
        _ => CatalogError::Query(text),
    }
}

impl From<rusqlite::Error> for CatalogError {
    fn from(e: rusqlite::Error) -> CatalogError {
        classify(e)
    }
}

impl Writer {
    /// Opens the writer's connection to the (already migrated) catalog at `path` and
    /// starts its thread.
    pub(super) fn start(
        path: &Path,
        synchronous: crate::config::Synchronous,
        busy_timeout: Duration,
    ) -> Result<Writer, CatalogError> {
        let conn = Connection::open(path).map_err(|e| CatalogError::Open(e.to_string()))?;
        conn.busy_timeout(busy_timeout)
            .map_err(|e| CatalogError::Open(e.to_string()))?;
        let full = matches!(synchronous, crate::config::Synchronous::Full);
        let sync = if full { "FULL" } else { "NORMAL" };
        // The same settings as the sqlx connections (mod.rs says why for each).
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -16384; PRAGMA temp_store = memory; PRAGMA analysis_limit = 1000;"
        ))
        .map_err(|e| CatalogError::Open(e.to_string()))?;
        conn.set_prepared_statement_cache_capacity(128);
        let (jobs, rx) = mpsc::channel();
        let commits = Arc::new(AtomicU64::new(0));
        let counted = commits.clone();
        std::thread::Builder::new()
            .name("catalog-writer".into())
            .spawn(move || serve(conn, rx, &counted, full))
            .map_err(|e| CatalogError::Open(e.to_string()))?;
        Ok(Writer {
            jobs,
            full,
            commits,
        })
    }

    /// Runs `f` in a write transaction and returns its result once that is durable
    /// (or, if `durable` is false, once it is committed: see [`Msg::Job`] below).
    /// If `f` fails, its writes are undone and the error returned.
    pub(super) async fn run<T, F>(&self, durable: bool, f: F) -> Result<T, CatalogError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, CatalogError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let work: Work = Box::new(move |c| f(c).map(|t| Box::new(t) as Output));
        self.jobs
            .send(Msg::Job(work, tx, durable || !self.full))
            .map_err(|_| stopped())?;
        let out = rx.await.map_err(|_| stopped())??;
        out.downcast::<T>()
            .map(|b| *b)
            .map_err(|_| CatalogError::Query("the writer answered with another type".into()))
    }

    /// Commits made so far.
    #[cfg(test)]
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Closes the writer's connection (after every command sent before).
    pub(super) async fn stop(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Msg::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn stopped() -> CatalogError {
    CatalogError::Unavailable("the catalog writer has stopped".into())
}

fn serve(conn: Connection, rx: mpsc::Receiver<Msg>, commits: &AtomicU64, full: bool) {
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::new();
        let mut stop = None;
        let mut durable = false;
        match first {
            Msg::Job(w, r, d) => {
                batch.push((w, r));
                durable |= d;
            }
            Msg::Stop(s) => stop = Some(s),
        }
        while stop.is_none() && batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Job(w, r, d)) => {
                    batch.push((w, r));
                    durable |= d;
                }
                Ok(Msg::Stop(s)) => stop = Some(s),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            // A group of commands none of which needs durability commits without
            // syncing the WAL; the next durable commit's sync covers it (the WAL is one
            // file, written in order), and a process crash loses nothing either way.
            let relax = full && !durable;
            if relax {
                let _ = conn.execute_batch("PRAGMA synchronous = NORMAL");
            }
            stop = stop.or(run_batch(&conn, batch, &rx, commits));
            if relax && let Err(e) = conn.execute_batch("PRAGMA synchronous = FULL") {
                // Without FULL no promise made after this would hold: stop writing.
                tracing::error!(error = %e, "the catalog writer cannot restore synchronous = FULL");
                return;
            }
        }
        if let Some(s) = stop {
            drop(conn);
            let _ = s.send(());
            return;
        }
    }
}

/// Runs one group of commands in one transaction and answers each after the commit.
/// Returns a stop request met while refusing queued commands.
fn run_batch(
    conn: &Connection,
    batch: Vec<(Work, Reply)>,
    rx: &mpsc::Receiver<Msg>,
    commits: &AtomicU64,
) -> Option<oneshot::Sender<()>> {
    let mut done: Vec<(Reply, Result<Output, CatalogError>)> = Vec::with_capacity(batch.len());
    let mut open = false;
    for (work, reply) in batch {
        if !open {
            if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                // Locked by another process past the busy timeout (or failing I/O):
                // everyone waiting now would wait as long again, so all are told.
                let e = classify(e);
                let _ = reply.send(Err(e.clone()));
                return refuse_waiting(rx, &e);
            }
            open = true;
        }
        let r = run_one(conn, work);
        if r.is_err() && conn.is_autocommit() {
            // SQLite ended the whole transaction (I/O error, disk full): the writes of
            // those before are gone too.
            let e = r.as_ref().err().cloned().unwrap_or_else(stopped);
            fail_all(std::mem::take(&mut done), &e);
            let _ = reply.send(r);
            open = false;
            continue;
        }
        done.push((reply, r));
    }
    if !open {
        return None;
    }
    let members = done.len() as u64;
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            METRICS.catalog_commits.inc();
            METRICS.catalog_writes.inc_by(members);
            for (reply, r) in done {
                let _ = reply.send(r);
            }
        }
        Err(e) => {
            let e = classify(e);
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            fail_all(done, &e);
        }
    }
    None
}

/// Runs one command inside a savepoint, undoing its writes if it fails.
fn run_one(conn: &Connection, work: Work) -> Result<Output, CatalogError> {
    conn.execute_batch("SAVEPOINT w")?;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
        .unwrap_or_else(|_| Err(CatalogError::Query("a catalog command panicked".into())));
    if conn.is_autocommit() {
        return r;
    }
    let end = if r.is_ok() {
        "RELEASE w"
    } else {
        "ROLLBACK TO w; RELEASE w"
    };
    conn.execute_batch(end)?;
    r
}

/// Tells every member of a group whose writes were lost: those that succeeded get the
/// group's error (a full disk stays a full disk), those that failed their own.
fn fail_all(done: Vec<(Reply, Result<Output, CatalogError>)>, e: &CatalogError) {
    let message = format!("the shared commit failed: {e}");
    for (reply, r) in done {
        let _ = reply.send(match r {
            Ok(_) if matches!(e, CatalogError::DiskFull(_)) => {
                Err(CatalogError::DiskFull(message.clone()))
            }
            Ok(_) => Err(CatalogError::Unavailable(message.clone())),
            Err(own) => Err(own),
        });
    }
}

/// Refuses every command already queued, with `e`; returns a stop request among them.
fn refuse_waiting(rx: &mpsc::Receiver<Msg>, e: &CatalogError) -> Option<oneshot::Sender<()>> {
    let mut stop = None;
    while let Ok(m) = rx.try_recv() {
        match m {
            Msg::Job(_, reply, _) => {
                let _ = reply.send(Err(e.clone()));
            }
            Msg::Stop(s) => stop = Some(s),
        }
    }
    stop
}
