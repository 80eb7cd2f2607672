//! Group commit: writers that queue for the catalog while another writes share its
//! transaction and its one WAL sync.
//!
//! Why: with `synchronous = FULL` every commit syncs the WAL, and SQLite takes one writer
//! at a time, so N uploads finishing together paid N syncs in a row (about four per
//! small file: created, accepted, claimed, indexed), which capped small files near 450
//! a second whatever the cores. Now each writer works inside a savepoint of one open
//! transaction; when it is done it releases its savepoint and, if others are queued,
//! hands the transaction on and waits for the group's commit. The writer that finds
//! nobody behind it commits for everyone. Nobody is told "done" before the commit that
//! holds its writes has synced: an acknowledgement still means durable.
//!
//! A writer that drops its transaction without committing (an error, an early return)
//! is rolled back to its savepoint by whoever holds the slot next; only its own writes
//! go. If the group's commit fails, every member gets the error, as each would have
//! alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use crate::telemetry::metrics::METRICS;

/// At most this many writers share one commit, bounding how long the first waits.
const MAX_MEMBERS: usize = 64;

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

/// How a group's commit ended, told to every member.
#[derive(Clone, Debug)]
enum Outcome {
    Committed,
    Failed { full: bool, message: String },
}

/// The writer slot and the transaction writers take turns in.
pub(super) struct Group {
    tx: Option<Tx>,
    members: usize,
    commits: u64,
    /// A member left without committing: roll back its savepoint before anything else.
    abandoned: bool,
    outcome: Arc<watch::Sender<Option<Outcome>>>,
}

/// The writer slot of one catalog, with the count of those queued for it.
#[derive(Clone)]
pub(super) struct Slot {
    group: Arc<Mutex<Group>>,
    queued: Arc<AtomicUsize>,
}

#[cfg(test)]
impl Slot {
    /// Commits made through this slot so far (each one WAL sync).
    pub(super) async fn commits(&self) -> u64 {
        self.group.lock().await.commits
    }
}

/// Counts a task as queued for the slot while it waits.
struct Queued(Arc<AtomicUsize>);

impl Queued {
    fn new(n: &Arc<AtomicUsize>) -> Queued {
        n.fetch_add(1, Ordering::SeqCst);
        Queued(n.clone())
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slot {
    pub(super) fn new() -> Slot {
        Slot {
            group: Arc::new(Mutex::new(Group {
                tx: None,
                members: 0,
                commits: 0,
                abandoned: false,
                outcome: Arc::new(watch::Sender::new(None)),
            })),
            queued: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Waits for the slot; the returned future ends when the slot is ours.
    pub(super) async fn acquire(&self) -> OwnedMutexGuard<Group> {
        let _queued = Queued::new(&self.queued);
        self.group.clone().lock_owned().await
    }

    /// Joins the open group (opening one with `begin` if none is) under a savepoint.
    pub(super) async fn join<F, Fut>(
        &self,
        mut g: OwnedMutexGuard<Group>,
        begin: F,
    ) -> Result<WriteTx, sqlx::Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Tx, sqlx::Error>>,
    {
        settle(&mut g).await;
        if g.tx.is_none() {
            g.tx = Some(begin().await?);
            g.members = 0;
            g.outcome = Arc::new(watch::Sender::new(None));
        }
        let tx = g.tx.as_mut().ok_or(sqlx::Error::PoolClosed)?;
        if let Err(e) = sqlx::query("SAVEPOINT w").execute(&mut **tx).await {
            fail(&mut g, &e).await;
            return Err(e);
        }
        g.members += 1;
        Ok(WriteTx {
            g: Some(g),
            slot: self.clone(),
        })
    }
}

/// A write transaction: a savepoint in the open group, holding the writer slot.
pub(crate) struct WriteTx {
    g: Option<OwnedMutexGuard<Group>>,
    slot: Slot,
}

impl std::ops::Deref for WriteTx {
    type Target = Tx;
    fn deref(&self) -> &Tx {
        // Invariant: a WriteTx exists only while its group's transaction is open.
        self.g
            .as_ref()
            .and_then(|g| g.tx.as_ref())
            .expect("a write transaction outlived its group")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Tx {
        self.g
            .as_mut()
            .and_then(|g| g.tx.as_mut())
            .expect("a write transaction outlived its group")
    }
}

impl WriteTx {
    /// Keeps this transaction's writes and returns once they are durable.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        let Some(mut g) = self.g.take() else {
            return Err(sqlx::Error::PoolClosed);
        };
        let Some(tx) = g.tx.as_mut() else {
            return Err(sqlx::Error::PoolClosed);
        };
        if let Err(e) = sqlx::query("RELEASE w").execute(&mut **tx).await {
            fail(&mut g, &e).await;
            return Err(e);
        }
        if g.members >= MAX_MEMBERS || self.slot.queued.load(Ordering::SeqCst) == 0 {
            return finish(&mut g).await;
        }
        // Others are queued: let them in, and wait for whichever commits the group,
        // queueing too, so that if nobody else does, we do.
        let mut told = g.outcome.subscribe();
        let ours = g.outcome.clone();
        drop(g);
        loop {
            tokio::select! {
                changed = told.changed() => {
                    if changed.is_err() {
                        return Err(sqlx::Error::PoolClosed);
                    }
                    if let Some(o) = told.borrow_and_update().clone() {
                        return o.into_result();
                    }
                }
                mut g = self.slot.acquire() => {
                    if let Some(o) = told.borrow().clone() {
                        return o.into_result();
                    }
                    if Arc::ptr_eq(&g.outcome, &ours) {
                        settle(&mut g).await;
                        if let Some(o) = told.borrow().clone() {
                            return o.into_result();
                        }
                        return finish(&mut g).await;
                    }
                    // A later group: ours ended in between; its outcome is on its way.
                }
            }
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        let Some(mut g) = self.g.take() else { return };
        g.abandoned = true;
        drop(g);
        if self.slot.queued.load(Ordering::SeqCst) == 0 {
            // Nobody comes after us to settle the group: do it in the background.
            let slot = self.slot.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let mut g = slot.acquire().await;
                    settle(&mut g).await;
                    if g.tx.is_some() && slot.queued.load(Ordering::SeqCst) == 0 {
                        let _ = finish(&mut g).await;
                    }
                });
            }
        }
    }
}

impl Outcome {
    fn of(e: &sqlx::Error) -> Outcome {
        let full = match e {
            sqlx::Error::Database(d) => d
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .is_some_and(|c| c & 0xff == 13),
            sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::StorageFull,
            _ => false,
        };
        Outcome::Failed {
            full,
            message: e.to_string(),
        }
    }

    fn into_result(self) -> Result<(), sqlx::Error> {
        match self {
            Outcome::Committed => Ok(()),
            // Members other than the one whose commit failed see an I/O error: the
            // catalog could not be written (`catalog.unavailable`, or disk full).
            Outcome::Failed { full, message } => Err(sqlx::Error::Io(std::io::Error::new(
                if full {
                    std::io::ErrorKind::StorageFull
                } else {
                    std::io::ErrorKind::Other
                },
                format!("the shared commit failed: {message}"),
            ))),
        }
    }
}

/// Rolls back the savepoint of a member that left without committing.
async fn settle(g: &mut Group) {
    if !std::mem::take(&mut g.abandoned) {
        return;
    }
    let Some(tx) = g.tx.as_mut() else { return };
    let undone = sqlx::query("ROLLBACK TO w").execute(&mut **tx).await;
    let released = match undone {
        Ok(_) => sqlx::query("RELEASE w").execute(&mut **tx).await,
        Err(e) => Err(e),
    };
    g.members = g.members.saturating_sub(1);
    if let Err(e) = released {
        // SQLite ended the whole transaction (I/O error, disk full): the group is lost.
        fail(g, &e).await;
    }
}

/// Commits the open group and tells its members.
async fn finish(g: &mut Group) -> Result<(), sqlx::Error> {
    let Some(tx) = g.tx.take() else {
        return Err(sqlx::Error::PoolClosed);
    };
    let members = std::mem::take(&mut g.members);
    let r = tx.commit().await;
    let told = match &r {
        Ok(()) => {
            METRICS.catalog_commits.inc();
            g.commits += 1;
            METRICS.catalog_writes.inc_by(members as u64);
            Outcome::Committed
        }
        Err(e) => Outcome::of(e),
    };
    g.outcome.send_replace(Some(told));
    r
}

/// Abandons the open group after an error that SQLite does not confine to a statement.
async fn fail(g: &mut Group, e: &sqlx::Error) {
    if let Some(tx) = g.tx.take() {
        let _ = tx.rollback().await;
    }
    g.members = 0;
    g.abandoned = false;
    g.outcome.send_replace(Some(Outcome::of(e)));
}
