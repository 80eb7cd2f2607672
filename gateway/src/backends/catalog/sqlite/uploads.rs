//! Upload rows: creation, resume lookup, durable offset, acceptance, tenant usage.
//! Plain SQL that PostgreSQL accepts too (placeholders aside).

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteCatalog;
use crate::backends::catalog::rows;
use crate::backends::catalog::{CatalogError, TenantUsage, UploadRow, UploadState};
use crate::util::unix_now;

fn u64_of(v: Option<i64>) -> Option<u64> {
    v.and_then(|x| u64::try_from(x).ok())
}

/// An [`UploadRow`] from the writer's connection (the columns of `upload_columns!`).
pub(super) fn upload_row(r: &rusqlite::Row) -> rusqlite::Result<UploadRow> {
    let state: String = r.get("state")?;
    Ok(UploadRow {
        id: r.get("id")?,
        tenant: r.get("tenant")?,
        name: r.get("name")?,
        protocol: r.get("protocol")?,
        state: UploadState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Text,
                format!("unknown upload state `{state}`").into(),
            )
        })?,
        declared_len: u64_of(r.get("declared_len")?),
        durable_offset: u64_of(Some(r.get("durable_offset")?)).unwrap_or(0),
        plaintext_len: u64_of(r.get("plaintext_len")?),
        plaintext_sha256: r.get("plaintext_sha256")?,
        accept_seq: r.get("accept_seq")?,
        accepted_at: r.get("accepted_at")?,
        updated_at: r.get("updated_at")?,
        check_attempts: u32::try_from(r.get::<_, i64>("check_attempts")?).unwrap_or(0),
        waits_for: r.get("waits_for")?,
        request_id: r.get("request_id")?,
    })
}

pub(super) use crate::backends::catalog::rows::upload_columns;

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl SqliteCatalog {
    pub async fn create_upload(
        &self,
        id: &str,
        tenant: &str,
        name: &str,
        protocol: &str,
        declared_len: Option<u64>,
    ) -> Result<UploadRow, CatalogError> {
        let now = unix_now();
        let args = (
            id.to_string(),
            tenant.to_string(),
            name.to_string(),
            protocol.to_string(),
        );
        // Lazy: creating an upload promises no byte. The first durable offset or the
        // acceptance is a durable commit after it in the same WAL, so it makes the row
        // durable too; a power cut before that loses a row whose client was promised
        // nothing (SFTP and tus clients reopen or create again), at one WAL sync
        // fewer per upload.
        self.write_lazy(move |c| {
            let (id, tenant, name, protocol) = args;
            c.prepare_cached(
                "INSERT INTO uploads (id, tenant, name, protocol, state, declared_len, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, 'receiving', ?, ?, ?)",
            )?
            .execute(params![id, tenant, name, protocol, declared_len.map(to_i64), now, now])?;
            record_state(c, &id, UploadState::Receiving)
        })
        .await?;
        Ok(UploadRow {
            id: id.into(),
            tenant: tenant.into(),
            name: name.into(),
            protocol: protocol.into(),
            state: UploadState::Receiving,
            declared_len,
            durable_offset: 0,
            plaintext_len: None,
            plaintext_sha256: None,
            accept_seq: None,
            accepted_at: None,
            updated_at: now,
            check_attempts: 0,
            waits_for: None,
            request_id: None,
        })
    }

    /// Records the request a partial upload answers, as its client gave it.
    pub async fn set_upload_request(&self, id: &str, request_id: &str) -> Result<(), CatalogError> {
        let (id, request_id) = (id.to_string(), request_id.to_string());
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE uploads SET request_id = ? WHERE id = ? AND state = 'receiving'",
            )?
            .execute(params![request_id, id])?;
            Ok(())
        })
        .await
    }

    pub async fn upload(&self, id: &str) -> Result<Option<UploadRow>, CatalogError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::upload).transpose()?)
    }

    /// The partial upload of `name` a client would resume, if any.
    pub async fn receiving_upload(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<UploadRow>, CatalogError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE tenant = ? AND name = ? AND state = 'receiving'"
        ))
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::upload).transpose()?)
    }

    /// Gives a partial upload a new name (an SFTP client's temporary name → the final
    /// one). `false` if it is no longer receiving; a conflict if another partial upload
    /// already has that name.
    pub async fn rename_upload(&self, id: &str, name: &str) -> Result<bool, CatalogError> {
        let (id, name) = (id.to_string(), name.to_string());
        self.write(move |c| {
            let taken: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM uploads u JOIN uploads me ON me.id = ? \
                     WHERE u.tenant = me.tenant AND u.name = ? AND u.state = 'receiving' AND u.id <> me.id",
                )?
                .query_row(params![id, name], |r| r.get(0))?;
            if taken > 0 {
                return Err(CatalogError::Conflict(format!(
                    "a partial upload named `{name}` exists"
                )));
            }
            let done = c
                .prepare_cached(
                    "UPDATE uploads SET name = ?, updated_at = ? WHERE id = ? AND state = 'receiving'",
                )?
                .execute(params![name, unix_now(), id])?;
            if done != 1 {
                return Ok(false);
            }
            let detail = serde_json::json!({ "upload": id, "name": name });
            c.prepare_cached(
                "INSERT INTO audit_log (at, actor, action, detail) \
                 SELECT ?, tenant, 'upload.renamed', ? FROM uploads WHERE id = ?",
            )?
            .execute(params![unix_now(), detail.to_string(), id])?;
            Ok(true)
        })
        .await
    }

    /// Sets the declared length of a partial upload that had none.
    pub async fn set_declared_len(&self, id: &str, len: u64) -> Result<bool, CatalogError> {
        let id = id.to_string();
        self.write(move |c| {
            let done = c
                .prepare_cached(
                    "UPDATE uploads SET declared_len = ?, updated_at = ? \
                     WHERE id = ? AND state = 'receiving' AND declared_len IS NULL",
                )?
                .execute(params![to_i64(len), unix_now(), id])?;
            Ok(done == 1)
        })
        .await
    }

    /// A tenant's uploads, newest first, optionally in one state, after the cursor id
    /// `before` (exclusive), at most `limit`.
    pub async fn list_uploads(
        &self,
        tenant: &str,
        state: Option<UploadState>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UploadRow>, CatalogError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE tenant = ? AND (? IS NULL OR state = ?) AND (? IS NULL OR id < ?) \
             ORDER BY id DESC LIMIT ?"
        ))
        .bind(tenant)
        .bind(state.map(|s| s.as_str()))
        .bind(state.map(|s| s.as_str()))
        .bind(before)
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::upload).collect::<Result<_, _>>()?)
    }

    /// Records that the spool file holds `offset` bytes on stable storage.
    pub async fn set_durable_offset(&self, id: &str, offset: u64) -> Result<(), CatalogError> {
        let id = id.to_string();
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE uploads SET durable_offset = ?, updated_at = ? WHERE id = ? AND state = 'receiving'",
            )?
            .execute(params![to_i64(offset), unix_now(), id])?;
            Ok(())
        })
        .await
    }

    /// The commit point of an upload: `receiving` → `accepted` with its final length and
    /// digest, and its place in the processing order. Returns that place.
    pub async fn accept_upload(
        &self,
        id: &str,
        sealed_len: u64,
        plaintext_len: u64,
        plaintext_sha256: &str,
    ) -> Result<i64, CatalogError> {
        let now = unix_now();
        let (id, sha) = (id.to_string(), plaintext_sha256.to_string());
        self.write(move |c| {
            let seq: i64 = c
                .prepare_cached("SELECT COALESCE(MAX(accept_seq), 0) + 1 FROM uploads")?
                .query_row([], |r| r.get(0))?;
            let done: Option<(String, String)> = c
                .prepare_cached(
                    "UPDATE uploads SET state = 'accepted', durable_offset = ?, plaintext_len = ?, \
                     plaintext_sha256 = ?, accepted_at = ?, updated_at = ?, accept_seq = ? \
                     WHERE id = ? AND state = 'receiving' RETURNING tenant, name",
                )?
                .query_row(
                    params![
                        to_i64(sealed_len),
                        to_i64(plaintext_len),
                        sha,
                        now,
                        now,
                        seq,
                        id
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((tenant, name)) = done else {
                return Err(CatalogError::Conflict(format!(
                    "upload {id} is not receiving"
                )));
            };
            record_state(c, &id, UploadState::Accepted)?;
            // The audit record commits with the acceptance: one transaction, not two.
            let detail = serde_json::json!({
                "upload": id, "name": name, "bytes": sealed_len, "sha256": sha,
            });
            c.prepare_cached(
                "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)",
            )?
            .execute(params![now, tenant, "upload.accepted", detail.to_string()])?;
            Ok(seq)
        })
        .await
    }

    /// All tenants together.
    pub async fn usage_totals(&self) -> Result<TenantUsage, CatalogError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(bytes), 0) AS bytes, COALESCE(SUM(files), 0) AS files, \
             COALESCE(SUM(receiving), 0) AS receiving FROM tenant_usage",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(rows::usage(&row)?)
    }

    pub async fn tenant_usage(&self, tenant: &str) -> Result<TenantUsage, CatalogError> {
        // Kept by triggers (migration 0008); a tenant without uploads has no row.
        let row = sqlx::query(
            "SELECT COALESCE(MAX(bytes), 0) AS bytes, COALESCE(MAX(files), 0) AS files, \
             COALESCE(MAX(receiving), 0) AS receiving FROM tenant_usage WHERE tenant = ?",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?;
        Ok(rows::usage(&row)?)
    }
}

fn record_state(c: &Connection, id: &str, state: UploadState) -> Result<(), CatalogError> {
    record_state_detail(c, id, state, &serde_json::json!({}))
}

pub(super) fn record_state_detail(
    c: &Connection,
    id: &str,
    state: UploadState,
    detail: &serde_json::Value,
) -> Result<(), CatalogError> {
    c.prepare_cached(
        "INSERT INTO upload_states (upload_id, state, at, detail) VALUES (?, ?, ?, ?)",
    )?
    .execute(params![id, state.as_str(), unix_now(), detail.to_string()])?;
    Ok(())
}
