//! Leases: what one node holds in a cluster and others must leave alone while it lives.
//! - a partial upload being written (one writer per upload: a second node answers
//!   `ingest.busy` until the lease is released or lapses);
//! - a check in progress (taken over by another node's claim once its lease lapses);
//! - a cluster job: housekeeping, retention, each sink's outbox dispatch.
//!
//! A lease is a holder and an expiry in a row. Each node renews all of its leases
//! together every [`RENEW_EVERY`] from one task, so a lease lapses [`LEASE_SECS`] after
//! its node stops (killed, cut off from PostgreSQL), whatever it was doing. Rows rather
//! than session advisory locks: a lock dies with its connection, and a pooled
//! connection's death says nothing about the node's; and a row can be read by
//! operators (`SELECT * FROM job_leases`).

use std::time::Duration;

use super::PgCatalog;
use crate::backends::catalog::{CatalogError, Lease};
use crate::util::unix_now;

/// How long a lease lasts unless renewed (seconds).
pub(super) const LEASE_SECS: i64 = 15;
/// How often a node renews its leases: three chances before one lapses.
const RENEW_EVERY: Duration = Duration::from_secs(5);

impl PgCatalog {
    /// Many nodes may use this catalog at once.
    pub fn is_shared(&self) -> bool {
        true
    }

    /// Takes or renews the lease on cluster job `job`; `false` while another node holds it.
    pub async fn hold_job(&self, job: &str) -> Result<bool, CatalogError> {
        let now = unix_now();
        let holder: Option<String> = sqlx::query_scalar(
            "INSERT INTO job_leases (job, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE job_leases.holder = excluded.holder OR job_leases.until < $4 \
             RETURNING holder",
        )
        .bind(job)
        .bind(self.node())
        .bind(now + LEASE_SECS)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(holder.is_some())
    }

    /// Takes or renews the writer's lease on a partial upload.
    pub async fn hold_upload(&self, id: &str) -> Result<Lease, CatalogError> {
        let now = unix_now();
        let held = sqlx::query(
            "UPDATE uploads SET lease_holder = $1, lease_until = $2 WHERE id = $3 \
             AND state = 'receiving' AND (lease_holder IS NULL OR lease_holder = $1 OR lease_until < $4)",
        )
        .bind(self.node())
        .bind(now + LEASE_SECS)
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        if held.rows_affected() == 1 {
            self.keep(id);
            return Ok(Lease::Held);
        }
        let until: Option<i64> = sqlx::query_scalar(
            "SELECT lease_until FROM uploads WHERE id = $1 AND state = 'receiving'",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        // Not receiving any more: nothing to hold, and nothing to wait for.
        Ok(until.map_or(Lease::Held, Lease::Busy))
    }

    /// Gives up the writer's lease on a partial upload (the client closed it), so that
    /// a client resuming on another node need not wait for it to lapse.
    pub async fn release_upload(&self, id: &str) -> Result<(), CatalogError> {
        self.let_go(id);
        sqlx::query(
            "UPDATE uploads SET lease_holder = NULL, lease_until = 0 \
             WHERE id = $1 AND lease_holder = $2 AND state = 'receiving'",
        )
        .bind(id)
        .bind(self.node())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Renews every lease this node holds and still works on.
    pub(super) async fn renew_leases(&self) -> Result<(), CatalogError> {
        let until = unix_now() + LEASE_SECS;
        sqlx::query(
            "UPDATE uploads SET lease_until = $1 WHERE lease_holder = $2 AND id = ANY($3) \
             AND state IN ('receiving', 'checking')",
        )
        .bind(until)
        .bind(self.node())
        .bind(self.held_ids())
        .execute(&self.pool)
        .await?;
        sqlx::query("UPDATE job_leases SET until = $1 WHERE holder = $2")
            .bind(until)
            .bind(self.node())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

/// Renews this node's leases until the catalog closes.
pub(super) async fn renew(catalog: PgCatalog) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if catalog.pool.is_closed() {
            return;
        }
        if let Err(e) = catalog.renew_leases().await {
            tracing::warn!(error = %e, "catalog: cannot renew this node's leases");
        }
    }
}
