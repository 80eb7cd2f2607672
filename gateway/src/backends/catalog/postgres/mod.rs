//! The scale-out catalog: PostgreSQL, shared by every node of a cluster, through sqlx.
//!
//! The same records and the same contract as the embedded SQLite catalog
//! (`../contract`); what differs is what many writers at once need:
//! - the check queue is claimed with `FOR UPDATE SKIP LOCKED`, so nodes claiming at the
//!   same time each get another upload and none waits for another's claim;
//! - outbox events (and indexed files, the reviewers' listing cursor) get their sequence
//!   numbers under one transaction-scoped advisory lock, so they become visible in
//!   sequence order: a sink that has read up to 41 can never later find a 40 that was
//!   still being committed ([`OUTBOX_LOCK`]);
//! - a committed event wakes the dispatchers and feeds of every node (`NOTIFY`);
//! - group commit is PostgreSQL's own: commits from concurrent connections that wait
//!   for the WAL flush share one flush, so the writer thread the embedded catalog needs
//!   has no counterpart here. Each command is one transaction, most of them one
//!   statement (common table expressions) to keep round trips down.

mod dicom;
mod handoff;
mod housekeeping;
mod leases;
mod queue;
mod results;
mod review;
mod uploads;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use super::CatalogError;

pub use crate::backends::catalog::Lease;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

/// The advisory lock (an arbitrary constant: "GWOUTBOX") held from a transaction's first
/// outbox or file row to its commit.
const OUTBOX_LOCK: i64 = 0x4757_4f55_5442_4f58;
/// The channel a commit with outbox events notifies.
const OUTBOX_CHANNEL: &str = "gateway_outbox";
/// How long a call waits for a connection before it is refused as `catalog.unavailable`
/// (PostgreSQL restarting, the network down).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct PgCatalog {
    pool: PgPool,
    /// Bumped whenever any node committed outbox events (a `NOTIFY` heard), and after
    /// this node's own commits.
    outbox: Arc<tokio::sync::watch::Sender<u64>>,
    /// This process's name in leases: host, process id and a random part, so a node
    /// restarted on the same host is another holder.
    node: Arc<str>,
    /// The uploads and checks whose leases this node holds and renews: only what this
    /// process still works on, so a lease it could not give back (the catalog was down
    /// when the connection ended) lapses instead of being renewed for ever.
    held: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The notification listener and the lease renewer, stopped at close.
    tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

/// `p` as the start of `column`: `column >= p AND column < p || U+10FFFF`, a range the
/// `(tenant, name)` indexes can seek (every text column sorts byte by byte, `COLLATE
/// "C"`), and `starts_with` for a name that holds U+10FFFF itself.
macro_rules! under_prefix_def {
    ($column:literal, $p:literal) => {
        concat!(
            $column,
            " >= ",
            $p,
            " AND ",
            $column,
            " < ",
            $p,
            " || chr(1114111) AND starts_with(",
            $column,
            ", ",
            $p,
            ")"
        )
    };
}
pub(super) use under_prefix_def as under_prefix;

impl PgCatalog {
    /// Connects to the database at `url` (`postgres://…`) and brings its schema up to
    /// date; nodes starting together migrate once (sqlx holds an advisory lock).
    pub async fn open(url: &str) -> Result<PgCatalog, CatalogError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(super::driver_error::open)?
            .application_name("gateway");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(super::driver_error::open)?;
        MIGRATOR.run(&pool).await?;
        let outbox = Arc::new(tokio::sync::watch::Sender::new(0));
        let listener = tokio::spawn(listen(pool.clone(), outbox.clone()));
        let mut salt = [0u8; 4];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt);
        let node = format!(
            "{}/{}/{}",
            hostname(),
            std::process::id(),
            hex::encode(salt)
        );
        let catalog = PgCatalog {
            pool,
            outbox,
            node: node.into(),
            held: Arc::default(),
            tasks: Arc::new(std::sync::Mutex::new(vec![listener])),
        };
        let renewer = tokio::spawn(leases::renew(catalog.clone()));
        if let Ok(mut tasks) = catalog.tasks.lock() {
            tasks.push(renewer);
        }
        Ok(catalog)
    }

    /// This node's name in leases.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Starts renewing the lease on `id` (an upload being written or checked here).
    pub(super) fn keep(&self, id: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.insert(id.to_string());
        }
    }

    /// Stops renewing the lease on `id`: it is given back, or left to lapse.
    pub(super) fn let_go(&self, id: &str) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(id);
        }
    }

    fn held_ids(&self) -> Vec<String> {
        self.held
            .lock()
            .map(|h| h.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(crate) fn outbox_changed(&self) {
        self.outbox.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn outbox_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outbox.subscribe()
    }

    pub async fn ping(&self) -> Result<(), CatalogError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        detail: &serde_json::Value,
    ) -> Result<(), CatalogError> {
        sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
            .bind(crate::util::unix_now())
            .bind(actor)
            .bind(action)
            .bind(detail.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn audit_count(&self, action: &str) -> Result<i64, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1")
                .bind(action)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Refreshes the planner's statistics.
    pub async fn refresh_statistics(&self) -> Result<(), CatalogError> {
        sqlx::query("ANALYZE").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
        self.pool.close().await;
    }
}

/// Takes the outbox lock and asks for a notification at commit: called in every
/// transaction that adds outbox events, before its first one.
pub(super) async fn outbox_turn(tx: &mut sqlx::PgConnection) -> Result<(), CatalogError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1), pg_notify($2, '')")
        .bind(OUTBOX_LOCK)
        .bind(OUTBOX_CHANNEL)
        .execute(tx)
        .await?;
    Ok(())
}

/// Wakes this node's outbox readers whenever any node commits events. A lost
/// connection is reopened, and the readers woken once more then, since a notification
/// sent meanwhile was missed.
async fn listen(pool: PgPool, outbox: Arc<tokio::sync::watch::Sender<u64>>) {
    let bump = || outbox.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let listener = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(OUTBOX_CHANNEL).await?;
            bump();
            loop {
                // `try_recv` answers `None` when the connection was lost (and reconnects
                // at the next call): wake the readers for what may have been missed.
                if l.try_recv().await?.is_none() {
                    tracing::warn!("catalog notifications: connection lost, reconnecting");
                }
                bump();
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        if let Err(e) = listener.await {
            tracing::warn!(error = %e, "catalog notifications: cannot listen; retrying");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "node".into())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
