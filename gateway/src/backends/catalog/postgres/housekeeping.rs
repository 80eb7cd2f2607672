//! Housekeeping on PostgreSQL: expiring abandoned partial uploads, the end of
//! quarantine and of pre-checks, and the batch view a manifest is compared with.

use super::PgCatalog;
use crate::backends::catalog::rows::{self, upload_columns};
use crate::backends::catalog::{CatalogError, CurrentFile, UploadRow};
use crate::util::unix_now;

impl PgCatalog {
    /// `receiving` uploads untouched since before `cutoff` become `expired`, each with
    /// its history row and audit record, in one statement (untouched for hours: a
    /// writer's lease, seconds long, does not keep an idle upload alive, as an idle
    /// connection does not on the embedded catalog).
    pub async fn expire_receiving(&self, cutoff: i64) -> Result<Vec<UploadRow>, CatalogError> {
        let found = sqlx::query(concat!(
            "WITH u AS (UPDATE uploads SET state = 'expired', updated_at = $2 \
             WHERE state = 'receiving' AND updated_at < $1 \
             RETURNING ",
            upload_columns!(),
            ", json_build_object('upload', id, 'name', name, 'received_bytes', durable_offset)::text AS detail), \
             s AS (INSERT INTO upload_states (upload_id, state, at, detail) SELECT id, 'expired', $2, detail FROM u), \
             a AS (INSERT INTO audit_log (at, actor, action, detail) SELECT $2, tenant, 'upload.expired', detail FROM u) \
             SELECT * FROM u ORDER BY updated_at"
        ))
        .bind(cutoff)
        .bind(unix_now())
        .fetch_all(&self.pool)
        .await?;
        Ok(found.iter().map(rows::upload).collect::<Result<_, _>>()?)
    }

    pub async fn quarantine_ended(&self, cutoff: i64) -> Result<Vec<UploadRow>, CatalogError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE state = 'rejected' AND updated_at < $1 AND purged_at IS NULL \
             ORDER BY updated_at"
        ))
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        Ok(found.iter().map(rows::upload).collect::<Result<_, _>>()?)
    }

    pub async fn prechecks_ended(&self, cutoff: i64) -> Result<Vec<UploadRow>, CatalogError> {
        let found = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE starts_with(name, 'precheck/') \
             AND state IN ('prechecked', 'rejected', 'expired') AND updated_at < $1 \
             ORDER BY updated_at LIMIT 1000"
        ))
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        let all: Vec<UploadRow> = found.iter().map(rows::upload).collect::<Result<_, _>>()?;
        Ok(all
            .into_iter()
            .filter(|r| crate::session::names::is_precheck(&r.name))
            .collect())
    }

    pub async fn delete_precheck(&self, upload: &UploadRow) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        for sql in [
            "DELETE FROM checks WHERE upload_id = $1",
            "DELETE FROM upload_states WHERE upload_id = $1",
            "DELETE FROM uploads WHERE id = $1 AND starts_with(name, 'precheck/')",
        ] {
            sqlx::query(sql).bind(&upload.id).execute(&mut *tx).await?;
        }
        audit(&mut tx, &upload.tenant, "precheck.removed", upload).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn mark_purged(&self, upload: &UploadRow) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE uploads SET purged_at = $1 WHERE id = $2")
            .bind(unix_now())
            .bind(&upload.id)
            .execute(&mut *tx)
            .await?;
        audit(&mut tx, &upload.tenant, "upload.purged", upload).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn current_files_under(
        &self,
        tenant: &str,
        prefix: &str,
    ) -> Result<Vec<CurrentFile>, CatalogError> {
        let found: Vec<(String, String, i64, String)> = sqlx::query_as(concat!(
            "SELECT id, name, size, sha256 FROM files WHERE tenant = $1 AND superseded_by IS NULL AND ",
            super::under_prefix!("name", "$2"),
            " ORDER BY name"
        ))
        .bind(tenant)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        Ok(found
            .into_iter()
            .map(|(file_id, name, size, sha256)| CurrentFile {
                file_id,
                name,
                size: u64::try_from(size).unwrap_or(0),
                sha256,
            })
            .collect())
    }
}

/// An audit record naming `upload`, in the caller's transaction.
async fn audit(
    c: &mut sqlx::PgConnection,
    actor: &str,
    action: &str,
    upload: &UploadRow,
) -> Result<(), CatalogError> {
    let detail = serde_json::json!({ "upload": upload.id, "name": upload.name });
    sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(unix_now())
        .bind(actor)
        .bind(action)
        .bind(detail.to_string())
        .execute(c)
        .await?;
    Ok(())
}
