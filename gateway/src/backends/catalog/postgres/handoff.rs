//! The outbox from the delivery side, on PostgreSQL: events in sequence order, each
//! sink's cursor (shared by the nodes: whichever dispatches a sink moves it), dead
//! letters.

use sqlx::{PgConnection, QueryBuilder};

use super::PgCatalog;
use crate::backends::catalog::{CatalogError, DeadLetter, OutboxEvent, Rejection, rows};
use crate::util::unix_now;

/// Moves `sink`'s cursor forward to `seq` (never back).
async fn move_cursor(c: &mut PgConnection, sink: &str, seq: i64) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO sink_cursors (sink, delivered_seq, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (sink) DO UPDATE SET \
         delivered_seq = GREATEST(sink_cursors.delivered_seq, excluded.delivered_seq), \
         updated_at = excluded.updated_at",
    )
    .bind(sink)
    .bind(seq)
    .bind(unix_now())
    .execute(c)
    .await?;
    Ok(())
}

impl PgCatalog {
    pub async fn outbox_after(
        &self,
        after: i64,
        tenants: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>, CatalogError> {
        let mut q = QueryBuilder::new(
            "SELECT seq, event_id, tenant, kind, payload, created_at FROM outbox WHERE seq > ",
        );
        q.push_bind(after);
        if let Some(tenants) = tenants {
            q.push(" AND tenant = ANY(")
                .push_bind(tenants.to_vec())
                .push(")");
        }
        q.push(" ORDER BY seq LIMIT ")
            .push_bind(limit.clamp(1, 1000));
        let found = q.build().fetch_all(&self.pool).await?;
        Ok(found.iter().map(rows::event).collect::<Result<_, _>>()?)
    }

    pub async fn outbox_head(&self) -> Result<i64, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM outbox")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn sink_cursor(&self, sink: &str) -> Result<i64, CatalogError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT delivered_seq FROM sink_cursors WHERE sink = $1")
                .bind(sink)
                .fetch_optional(&self.pool)
                .await?;
        Ok(seq.unwrap_or(0))
    }

    pub async fn advance_sink(&self, sink: &str, seq: i64) -> Result<(), CatalogError> {
        let mut c = self.pool.acquire().await?;
        move_cursor(&mut c, sink, seq).await
    }

    pub async fn dead_letter(
        &self,
        sink: &str,
        seq: i64,
        attempts: i64,
        error: &str,
        advance: bool,
    ) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO dead_letters (sink, seq, attempts, last_error, dead_at, retry) \
             VALUES ($1, $2, $3, $4, $5, 0) ON CONFLICT (sink, seq) DO UPDATE SET \
             attempts = dead_letters.attempts + excluded.attempts, \
             last_error = excluded.last_error, dead_at = excluded.dead_at, retry = 0",
        )
        .bind(sink)
        .bind(seq)
        .bind(attempts)
        .bind(error)
        .bind(unix_now())
        .execute(&mut *tx)
        .await?;
        if advance {
            move_cursor(&mut tx, sink, seq).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn dead_letters(&self, sink: Option<&str>) -> Result<Vec<DeadLetter>, CatalogError> {
        let found = sqlx::query(
            "SELECT d.sink, d.seq, o.event_id, d.attempts, d.last_error, d.dead_at, d.retry \
             FROM dead_letters d JOIN outbox o ON o.seq = d.seq \
             WHERE $1::text IS NULL OR d.sink = $1 ORDER BY d.sink, d.seq",
        )
        .bind(sink)
        .fetch_all(&self.pool)
        .await?;
        Ok(found
            .iter()
            .map(rows::dead_letter)
            .collect::<Result<_, _>>()?)
    }

    /// Asks for another delivery round; the `NOTIFY` wakes every node's dispatcher.
    pub async fn retry_dead_letters(&self, sink: Option<&str>) -> Result<u64, CatalogError> {
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("UPDATE dead_letters SET retry = 1 WHERE $1::text IS NULL OR sink = $1")
                .bind(sink)
                .execute(&mut *tx)
                .await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(super::OUTBOX_CHANNEL)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.outbox_changed();
        Ok(done.rows_affected())
    }

    pub async fn retries_due(
        &self,
        sink: &str,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>, CatalogError> {
        let found = sqlx::query(
            "SELECT o.seq, o.event_id, o.tenant, o.kind, o.payload, o.created_at \
             FROM dead_letters d JOIN outbox o ON o.seq = d.seq \
             WHERE d.sink = $1 AND d.retry = 1 ORDER BY d.seq LIMIT $2",
        )
        .bind(sink)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(found.iter().map(rows::event).collect::<Result<_, _>>()?)
    }

    pub async fn clear_dead_letter(&self, sink: &str, seq: i64) -> Result<(), CatalogError> {
        sqlx::query("DELETE FROM dead_letters WHERE sink = $1 AND seq = $2")
            .bind(sink)
            .bind(seq)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn recent_rejections(&self, limit: i64) -> Result<Vec<Rejection>, CatalogError> {
        let found = sqlx::query(
            "SELECT u.id, u.tenant, u.name, u.updated_at, \
             (SELECT c.code FROM checks c WHERE c.upload_id = u.id AND c.severity = 'error' \
              ORDER BY c.seq LIMIT 1) AS code \
             FROM uploads u WHERE u.state = 'rejected' ORDER BY u.updated_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(found
            .iter()
            .map(rows::rejection)
            .collect::<Result<_, _>>()?)
    }
}
