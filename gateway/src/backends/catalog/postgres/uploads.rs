//! Upload rows on PostgreSQL: creation, resume lookup, durable offset, acceptance,
//! tenant usage. A state change and its history row (and audit record) are one
//! statement, a common table expression, so each is one round trip.

use super::{PgCatalog, to_i64};
use crate::backends::catalog::rows::{self, upload_columns};
use crate::backends::catalog::{CatalogError, TenantUsage, UploadRow, UploadState};
use crate::util::unix_now;

impl PgCatalog {
    /// A new partial upload, its writer's lease held by this node (`leases.rs`).
    pub async fn create_upload(
        &self,
        id: &str,
        tenant: &str,
        name: &str,
        protocol: &str,
        declared_len: Option<u64>,
    ) -> Result<UploadRow, CatalogError> {
        let now = unix_now();
        sqlx::query(
            "WITH u AS (INSERT INTO uploads (id, tenant, name, protocol, state, declared_len, created_at, updated_at, \
             lease_holder, lease_until) VALUES ($1, $2, $3, $4, 'receiving', $5, $6, $6, $7, $6 + $8) RETURNING id) \
             INSERT INTO upload_states (upload_id, state, at, detail) SELECT id, 'receiving', $6, '{}' FROM u",
        )
        .bind(id)
        .bind(tenant)
        .bind(name)
        .bind(protocol)
        .bind(declared_len.map(to_i64))
        .bind(now)
        .bind(self.node())
        .bind(super::leases::LEASE_SECS)
        .execute(&self.pool)
        .await?;
        self.keep(id);
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

    pub async fn set_upload_request(&self, id: &str, request_id: &str) -> Result<(), CatalogError> {
        sqlx::query("UPDATE uploads SET request_id = $1 WHERE id = $2 AND state = 'receiving'")
            .bind(request_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn upload(&self, id: &str) -> Result<Option<UploadRow>, CatalogError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::upload).transpose()?)
    }

    pub async fn receiving_upload(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<UploadRow>, CatalogError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE tenant = $1 AND name = $2 AND state = 'receiving'"
        ))
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::upload).transpose()?)
    }

    /// Renames a partial upload; a conflict if another partial upload has that name
    /// (the unique index on receiving names answers for concurrent renames too).
    pub async fn rename_upload(&self, id: &str, name: &str) -> Result<bool, CatalogError> {
        let r = sqlx::query_scalar::<_, i64>(
            "WITH u AS (UPDATE uploads SET name = $1, updated_at = $2 \
             WHERE id = $3 AND state = 'receiving' RETURNING id, tenant), \
             a AS (INSERT INTO audit_log (at, actor, action, detail) \
             SELECT $2, tenant, 'upload.renamed', json_build_object('upload', id, 'name', $1::text)::text FROM u) \
             SELECT COUNT(*) FROM u",
        )
        .bind(name)
        .bind(unix_now())
        .bind(id)
        .fetch_one(&self.pool)
        .await;
        match r {
            Ok(n) => Ok(n == 1),
            Err(sqlx::Error::Database(d)) if d.constraint() == Some("uploads_receiving_name") => {
                Err(CatalogError::Conflict(format!(
                    "a partial upload named `{name}` exists"
                )))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn set_declared_len(&self, id: &str, len: u64) -> Result<bool, CatalogError> {
        let done = sqlx::query(
            "UPDATE uploads SET declared_len = $1, updated_at = $2 \
             WHERE id = $3 AND state = 'receiving' AND declared_len IS NULL",
        )
        .bind(to_i64(len))
        .bind(unix_now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

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
            " FROM uploads WHERE tenant = $1 AND ($2::text IS NULL OR state = $2) \
             AND ($3::text IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
        ))
        .bind(tenant)
        .bind(state.map(|s| s.as_str()))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::upload).collect::<Result<_, _>>()?)
    }

    pub async fn set_durable_offset(&self, id: &str, offset: u64) -> Result<(), CatalogError> {
        sqlx::query(
            "UPDATE uploads SET durable_offset = $1, updated_at = $2 WHERE id = $3 AND state = 'receiving'",
        )
        .bind(to_i64(offset))
        .bind(unix_now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The commit point: `receiving` → `accepted`, its history row and audit record, in
    /// one statement. The place in the check order comes from a sequence: nodes accept
    /// at once.
    pub async fn accept_upload(
        &self,
        id: &str,
        sealed_len: u64,
        plaintext_len: u64,
        plaintext_sha256: &str,
    ) -> Result<i64, CatalogError> {
        self.let_go(id);
        let seq: Option<i64> = sqlx::query_scalar(
            "WITH u AS (UPDATE uploads SET state = 'accepted', durable_offset = $1, plaintext_len = $2, \
             plaintext_sha256 = $3, accepted_at = $4, updated_at = $4, \
             accept_seq = nextval('uploads_accept_seq'), lease_holder = NULL, lease_until = 0 \
             WHERE id = $5 AND state = 'receiving' RETURNING id, tenant, name, accept_seq), \
             s AS (INSERT INTO upload_states (upload_id, state, at, detail) SELECT id, 'accepted', $4, '{}' FROM u), \
             a AS (INSERT INTO audit_log (at, actor, action, detail) \
             SELECT $4, tenant, 'upload.accepted', \
             json_build_object('upload', id, 'name', name, 'bytes', $1, 'sha256', $3::text)::text FROM u) \
             SELECT accept_seq FROM u",
        )
        .bind(to_i64(sealed_len))
        .bind(to_i64(plaintext_len))
        .bind(plaintext_sha256)
        .bind(unix_now())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        seq.ok_or_else(|| CatalogError::Conflict(format!("upload {id} is not receiving")))
    }

    pub async fn usage_totals(&self) -> Result<TenantUsage, CatalogError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(bytes), 0)::bigint AS bytes, COALESCE(SUM(files), 0)::bigint AS files, \
             COALESCE(SUM(receiving), 0)::bigint AS receiving FROM tenant_usage",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(rows::usage(&row)?)
    }

    pub async fn tenant_usage(&self, tenant: &str) -> Result<TenantUsage, CatalogError> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(bytes), 0) AS bytes, COALESCE(MAX(files), 0) AS files, \
             COALESCE(MAX(receiving), 0) AS receiving FROM tenant_usage WHERE tenant = $1",
        )
        .bind(tenant)
        .fetch_one(&self.pool)
        .await?;
        Ok(rows::usage(&row)?)
    }

    pub async fn spool_bytes(&self) -> Result<u64, CatalogError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(durable_offset), 0)::bigint FROM uploads WHERE state = 'receiving'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub async fn count_in_state(&self, state: UploadState) -> Result<i64, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE state = $1")
                .bind(state.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn latest_upload(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<UploadRow>, CatalogError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE tenant = $1 AND name = $2 ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::upload).transpose()?)
    }

    /// The newest upload of each name under `prefix`, by name, at most `limit` names.
    pub async fn latest_uploads(
        &self,
        tenant: &str,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<UploadRow>, CatalogError> {
        let rows = sqlx::query(concat!(
            "SELECT DISTINCT ON (name) ",
            upload_columns!(),
            " FROM uploads WHERE tenant = $1 AND ",
            super::under_prefix!("name", "$2"),
            " ORDER BY name, created_at DESC, id DESC LIMIT $3"
        ))
        .bind(tenant)
        .bind(prefix)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::upload).collect::<Result<_, _>>()?)
    }

    /// A client gave up a partial upload: `receiving` → `expired` with an audit record.
    pub async fn abandon_upload(
        &self,
        upload: &UploadRow,
        why: &str,
    ) -> Result<bool, CatalogError> {
        let detail = serde_json::json!({
            "upload": upload.id, "name": upload.name,
            "received_bytes": upload.durable_offset, "why": why,
        })
        .to_string();
        let n: i64 = sqlx::query_scalar(
            "WITH u AS (UPDATE uploads SET state = 'expired', updated_at = $1 \
             WHERE id = $2 AND state = 'receiving' RETURNING id, tenant), \
             s AS (INSERT INTO upload_states (upload_id, state, at, detail) SELECT id, 'expired', $1, $3 FROM u), \
             a AS (INSERT INTO audit_log (at, actor, action, detail) SELECT $1, tenant, 'upload.abandoned', $3 FROM u) \
             SELECT COUNT(*) FROM u",
        )
        .bind(unix_now())
        .bind(&upload.id)
        .bind(detail)
        .fetch_one(&self.pool)
        .await?;
        Ok(n == 1)
    }
}
