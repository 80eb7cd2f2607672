//! The outbox from the delivery side: reading events in order, each sink's cursor,
//! and the dead letters a sink gave up on.

use rusqlite::{Connection, params};

use super::SqliteCatalog;
use crate::backends::catalog::{CatalogError, DeadLetter, OutboxEvent, rows};
use crate::util::unix_now;

/// Moves `sink`'s cursor forward to `seq` (never back).
fn move_cursor(c: &Connection, sink: &str, seq: i64, now: i64) -> Result<(), CatalogError> {
    c.prepare_cached(
        "INSERT INTO sink_cursors (sink, delivered_seq, updated_at) VALUES (?, ?, ?) \
         ON CONFLICT (sink) DO UPDATE SET delivered_seq = MAX(delivered_seq, excluded.delivered_seq), \
         updated_at = excluded.updated_at",
    )?
    .execute(params![sink, seq, now])?;
    Ok(())
}

impl SqliteCatalog {
    /// Events after `after`, oldest first; only `tenants`' when given.
    pub async fn outbox_after(
        &self,
        after: i64,
        tenants: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>, CatalogError> {
        let mut q = sqlx::QueryBuilder::new(
            "SELECT seq, event_id, tenant, kind, payload, created_at FROM outbox WHERE seq > ",
        );
        q.push_bind(after);
        if let Some(tenants) = tenants {
            q.push(" AND tenant IN (");
            let mut list = q.separated(", ");
            for t in tenants {
                list.push_bind(t.clone());
            }
            list.push_unseparated(if tenants.is_empty() { "NULL)" } else { ")" });
        }
        q.push(" ORDER BY seq LIMIT ")
            .push_bind(limit.clamp(1, 1000));
        let rows = q.build().fetch_all(&self.pool).await?;
        Ok(rows.iter().map(rows::event).collect::<Result<_, _>>()?)
    }

    /// The newest event's sequence number (0 when none).
    pub async fn outbox_head(&self) -> Result<i64, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM outbox")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// How far `sink` has delivered (0 = nothing yet).
    pub async fn sink_cursor(&self, sink: &str) -> Result<i64, CatalogError> {
        let seq: Option<i64> =
            sqlx::query_scalar("SELECT delivered_seq FROM sink_cursors WHERE sink = ?")
                .bind(sink)
                .fetch_optional(&self.pool)
                .await?;
        Ok(seq.unwrap_or(0))
    }

    /// Records that `sink` has delivered (or dead-lettered) everything up to `seq`.
    pub async fn advance_sink(&self, sink: &str, seq: i64) -> Result<(), CatalogError> {
        let sink = sink.to_string();
        self.write(move |c| move_cursor(c, &sink, seq, unix_now()))
            .await
    }

    /// Gives up on event `seq` for `sink` and moves the cursor past it, together.
    pub async fn dead_letter(
        &self,
        sink: &str,
        seq: i64,
        attempts: i64,
        error: &str,
        advance: bool,
    ) -> Result<(), CatalogError> {
        let now = unix_now();
        let (sink, error) = (sink.to_string(), error.to_string());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO dead_letters (sink, seq, attempts, last_error, dead_at, retry) VALUES (?, ?, ?, ?, ?, 0) \
                 ON CONFLICT (sink, seq) DO UPDATE SET attempts = dead_letters.attempts + excluded.attempts, \
                 last_error = excluded.last_error, dead_at = excluded.dead_at, retry = 0",
            )?
            .execute(params![sink, seq, attempts, error, now])?;
            if advance {
                move_cursor(c, &sink, seq, now)?;
            }
            Ok(())
        })
        .await
    }

    /// Dead letters, of one sink or all.
    pub async fn dead_letters(&self, sink: Option<&str>) -> Result<Vec<DeadLetter>, CatalogError> {
        let rows = sqlx::query(
            "SELECT d.sink, d.seq, o.event_id, d.attempts, d.last_error, d.dead_at, d.retry \
             FROM dead_letters d JOIN outbox o ON o.seq = d.seq \
             WHERE ? IS NULL OR d.sink = ? ORDER BY d.sink, d.seq",
        )
        .bind(sink)
        .bind(sink)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(rows::dead_letter)
            .collect::<Result<_, _>>()?)
    }

    /// Asks for another delivery round of a sink's dead letters (all sinks when `None`).
    pub async fn retry_dead_letters(&self, sink: Option<&str>) -> Result<u64, CatalogError> {
        let sink = sink.map(String::from);
        let n = self
            .write(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE dead_letters SET retry = 1 WHERE ? IS NULL OR sink = ?",
                    )?
                    .execute(params![sink, sink])?;
                Ok(n as u64)
            })
            .await?;
        self.outbox_changed();
        Ok(n)
    }

    /// The dead letters of `sink` an operator asked to retry, oldest first.
    pub async fn retries_due(
        &self,
        sink: &str,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>, CatalogError> {
        let rows = sqlx::query(
            "SELECT o.seq, o.event_id, o.tenant, o.kind, o.payload, o.created_at \
             FROM dead_letters d JOIN outbox o ON o.seq = d.seq \
             WHERE d.sink = ? AND d.retry = 1 ORDER BY d.seq LIMIT ?",
        )
        .bind(sink)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::event).collect::<Result<_, _>>()?)
    }

    /// A retried dead letter was delivered after all.
    pub async fn clear_dead_letter(&self, sink: &str, seq: i64) -> Result<(), CatalogError> {
        let sink = sink.to_string();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM dead_letters WHERE sink = ? AND seq = ?")?
                .execute(params![sink, seq])?;
            Ok(())
        })
        .await
    }

    /// The newest rejections (id, tenant, name, when, first error code).
    pub async fn recent_rejections(
        &self,
        limit: i64,
    ) -> Result<Vec<crate::backends::catalog::Rejection>, CatalogError> {
        let rows = sqlx::query(
            "SELECT u.id, u.tenant, u.name, u.updated_at, \
             (SELECT c.code FROM checks c WHERE c.upload_id = u.id AND c.severity = 'error' \
              ORDER BY c.seq LIMIT 1) AS code \
             FROM uploads u WHERE u.state = 'rejected' ORDER BY u.updated_at DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::rejection).collect::<Result<_, _>>()?)
    }
}
