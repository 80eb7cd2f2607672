//! Housekeeping queries: expiring abandoned partial uploads, the end of quarantine, and
//! the batch view a manifest is compared with.

use sqlx::Row;

use super::SqliteCatalog;
use super::uploads::{record_state_detail, upload_columns, upload_row};
use crate::backends::catalog::rows;
use crate::backends::catalog::{CatalogError, CurrentFile, UploadRow, UploadState};
use crate::util::unix_now;
use rusqlite::{Connection, params};

fn audit(
    c: &Connection,
    at: i64,
    actor: &str,
    action: &str,
    detail: &serde_json::Value,
) -> Result<(), CatalogError> {
    c.prepare_cached("INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, ?, ?)")?
        .execute(params![at, actor, action, detail.to_string()])?;
    Ok(())
}

impl SqliteCatalog {
    /// `receiving` uploads untouched since before `cutoff` (unix seconds) become
    /// `expired`, each with an audit record, in one transaction. Returns them, so that
    /// their spool files can be removed.
    pub async fn expire_receiving(&self, cutoff: i64) -> Result<Vec<UploadRow>, CatalogError> {
        let rows = self
            .write(move |c| {
                let rows = c
                    .prepare_cached(concat!(
                        "SELECT ",
                        upload_columns!(),
                        " FROM uploads WHERE state = 'receiving' AND updated_at < ? ORDER BY updated_at"
                    ))?
                    .query_map([cutoff], upload_row)?
                    .collect::<Result<Vec<_>, _>>()?;
                let now = unix_now();
                for r in &rows {
                    c.prepare_cached("UPDATE uploads SET state = 'expired', updated_at = ? WHERE id = ?")?
                        .execute(params![now, r.id])?;
                    let detail = serde_json::json!({
                        "upload": r.id, "name": r.name, "received_bytes": r.durable_offset,
                    });
                    record_state_detail(c, &r.id, UploadState::Expired, &detail)?;
                    audit(c, now, &r.tenant, "upload.expired", &detail)?;
                }
                Ok(rows)
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| UploadRow {
                state: UploadState::Expired,
                ..r
            })
            .collect())
    }

    /// Rejected uploads whose quarantine ended (rejected before `cutoff`) and whose
    /// bytes are still kept.
    pub async fn quarantine_ended(&self, cutoff: i64) -> Result<Vec<UploadRow>, CatalogError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE state = 'rejected' AND updated_at < ? AND purged_at IS NULL \
             ORDER BY updated_at"
        ))
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::upload).collect::<Result<_, _>>()?)
    }

    /// Pre-checks (rule 21) whose checks ended before `cutoff`.
    pub async fn prechecks_ended(&self, cutoff: i64) -> Result<Vec<UploadRow>, CatalogError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE name LIKE 'precheck/%' \
             AND state IN ('prechecked', 'rejected', 'expired') AND updated_at < ? \
             ORDER BY updated_at LIMIT 1000"
        ))
        .bind(cutoff)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter(|r| {
                r.try_get::<&str, _>("name")
                    .is_ok_and(crate::session::names::is_precheck)
            })
            .map(rows::upload)
            .collect::<Result<_, _>>()?)
    }

    /// Removes a finished pre-check's records (its result included), with an audit
    /// record: a pre-check leaves nothing behind but that record.
    pub async fn delete_precheck(&self, upload: &UploadRow) -> Result<(), CatalogError> {
        let upload = upload.clone();
        self.write(move |c| {
            for sql in [
                "DELETE FROM checks WHERE upload_id = ?",
                "DELETE FROM upload_states WHERE upload_id = ?",
                "DELETE FROM uploads WHERE id = ? AND name LIKE 'precheck/%'",
            ] {
                c.prepare_cached(sql)?.execute([&upload.id])?;
            }
            let detail = serde_json::json!({ "upload": upload.id, "name": upload.name });
            audit(c, unix_now(), &upload.tenant, "precheck.removed", &detail)
        })
        .await
    }

    /// Records that an upload's spooled bytes were removed, with an audit record.
    pub async fn mark_purged(&self, upload: &UploadRow) -> Result<(), CatalogError> {
        let now = unix_now();
        let upload = upload.clone();
        self.write(move |c| {
            c.prepare_cached("UPDATE uploads SET purged_at = ? WHERE id = ?")?
                .execute(params![now, upload.id])?;
            let detail = serde_json::json!({ "upload": upload.id, "name": upload.name });
            audit(c, now, &upload.tenant, "upload.purged", &detail)
        })
        .await
    }

    /// The tenant's current (not superseded) files whose names start with `prefix`.
    pub async fn current_files_under(
        &self,
        tenant: &str,
        prefix: &str,
    ) -> Result<Vec<CurrentFile>, CatalogError> {
        // `substr` rather than LIKE: names may contain `_`, a LIKE wildcard. The range
        // (prefix ≤ name < prefix + U+10FFFF) is the same condition in a form an index
        // can seek; without it every file of the tenant was read.
        let rows = super::bind_tenant_prefix(
            sqlx::query(
                "SELECT id, name, size, sha256 FROM files \
             WHERE tenant = ? AND superseded_by IS NULL AND substr(name, 1, ?) = ? \
             AND name >= ? AND name < ? || char(1114111) ORDER BY name",
            ),
            tenant,
            prefix,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CurrentFile {
                    file_id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    size: u64::try_from(r.try_get::<i64, _>("size")?).unwrap_or(0),
                    sha256: r.try_get("sha256")?,
                })
            })
            .collect()
    }

    /// The newest upload of each name under `prefix` (any state), by name; at most
    /// `limit` names. What a directory listing shows. (The name range: see
    /// `current_files_under`.)
    pub async fn latest_uploads(
        &self,
        tenant: &str,
        prefix: &str,
        limit: i64,
    ) -> Result<Vec<UploadRow>, CatalogError> {
        let rows = super::bind_tenant_prefix(
            sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads u WHERE tenant = ? AND substr(name, 1, ?) = ? \
             AND name >= ? AND name < ? || char(1114111) \
             AND created_at = (SELECT MAX(created_at) FROM uploads v WHERE v.tenant = u.tenant AND v.name = u.name) \
             ORDER BY name, id DESC LIMIT ?"
        )),
            tenant,
            prefix,
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<UploadRow> = Vec::with_capacity(rows.len());
        for r in rows {
            let r = rows::upload(&r)?;
            // Two uploads of a name in the same second: keep the newest id.
            if out.last().is_none_or(|l| l.name != r.name) {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// The newest upload of `name`, in any state.
    pub async fn latest_upload(
        &self,
        tenant: &str,
        name: &str,
    ) -> Result<Option<UploadRow>, CatalogError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            upload_columns!(),
            " FROM uploads WHERE tenant = ? AND name = ? ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(tenant)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::upload).transpose()?)
    }

    /// A client gave up a partial upload (started over, or removed it): `receiving` →
    /// `expired` with an audit record. `false` if it was not receiving.
    pub async fn abandon_upload(
        &self,
        upload: &UploadRow,
        why: &str,
    ) -> Result<bool, CatalogError> {
        let now = unix_now();
        let (upload, why) = (upload.clone(), why.to_string());
        self.write(move |c| {
            let done = c
                .prepare_cached(
                    "UPDATE uploads SET state = 'expired', updated_at = ? WHERE id = ? AND state = 'receiving'",
                )?
                .execute(params![now, upload.id])?;
            if done != 1 {
                return Ok(false);
            }
            let detail = serde_json::json!({
                "upload": upload.id, "name": upload.name, "received_bytes": upload.durable_offset, "why": why,
            });
            record_state_detail(c, &upload.id, UploadState::Expired, &detail)?;
            audit(c, now, &upload.tenant, "upload.abandoned", &detail)?;
            Ok(true)
        })
        .await
    }

    /// Uploads of `tenant` accepted before `seq` whose checks are still pending,
    /// optionally only those under `prefix` or with plaintext `sha256`. Checks that
    /// compare with earlier files (duplicates, manifests) wait for these.
    pub async fn earlier_pending(
        &self,
        tenant: &str,
        seq: i64,
        prefix: Option<&str>,
        sha256: Option<&str>,
    ) -> Result<i64, CatalogError> {
        let prefix = prefix.unwrap_or("");
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM uploads WHERE tenant = ? AND accept_seq < ? \
             AND state IN ('accepted', 'checking') AND substr(name, 1, ?) = ? \
             AND (? = '' OR plaintext_sha256 = ?)",
        )
        .bind(tenant)
        .bind(seq)
        .bind(prefix.len() as i64)
        .bind(prefix)
        .bind(sha256.unwrap_or(""))
        .bind(sha256.unwrap_or(""))
        .fetch_one(&self.pool)
        .await?)
    }
}
