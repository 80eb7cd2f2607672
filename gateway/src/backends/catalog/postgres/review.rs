//! What the review side reads and changes, on PostgreSQL: file listings with filters,
//! one file, downloads (rule 13), retention (rules 2 and 3).

use sqlx::{Postgres, QueryBuilder};

use super::PgCatalog;
use super::results::insert_event;
use crate::backends::catalog::{CatalogError, ExpiredFile, FileQuery, FileRow, rows};
use crate::events::{Event, FileFacts};

const FILE_COLUMNS: &str = "f.seq, f.id, f.upload_id, f.tenant, f.name, f.sha256, f.size, \
     f.media_type, f.object_key, f.metadata, f.indexed_at, f.superseded_by, f.expires_at, \
     f.expired_at, f.downloads, f.last_downloaded_at, f.request_id";

const FACTS: &str = "id, upload_id, tenant, name, sha256, size, media_type";

/// The facts an event tells about a file, from a `files` row with [`FACTS`].
fn facts(r: &sqlx::postgres::PgRow) -> Result<FileFacts, sqlx::Error> {
    use rows::Columns;
    Ok(FileFacts {
        tenant: r.text("tenant")?,
        upload_id: r.text("upload_id")?,
        file_id: r.text("id")?,
        name: r.text("name")?,
        sha256: r.text("sha256")?,
        size: u64::try_from(r.int("size")?).unwrap_or(0),
        media_type: r.text("media_type")?,
    })
}

/// `AND …` for each filter given (the same filters as `sqlite/review.rs`).
fn push_filters(q: &mut QueryBuilder<Postgres>, f: &FileQuery) {
    if let Some(tenants) = &f.tenants {
        // An empty grant matches nothing, not everything.
        q.push(" AND f.tenant = ANY(")
            .push_bind(tenants.clone())
            .push(")");
    }
    if let Some(t) = &f.tenant {
        q.push(" AND f.tenant = ").push_bind(t.clone());
    }
    match f.status.as_deref() {
        Some("ready") => q.push(" AND f.expired_at IS NULL AND f.downloads = 0"),
        Some("downloaded") => q.push(" AND f.expired_at IS NULL AND f.downloads > 0"),
        Some("expired") => q.push(" AND f.expired_at IS NOT NULL"),
        Some("current") => q.push(" AND f.expired_at IS NULL AND f.superseded_by IS NULL"),
        Some("live") => q.push(" AND f.expired_at IS NULL"),
        _ => q,
    };
    if let Some(r) = &f.request_id {
        q.push(" AND f.request_id = ").push_bind(r.clone());
    }
    if let Some(m) = &f.media_type {
        q.push(" AND f.media_type = ").push_bind(m.clone());
    }
    for (field, value) in [
        ("category", &f.category),
        ("case_class", &f.case_class),
        ("serial", &f.serial),
    ] {
        if let Some(v) = value {
            q.push(" AND f.metadata::jsonb -> 'case' ->> ")
                .push_bind(field)
                .push(" = ")
                .push_bind(v.clone());
        }
    }
    if let Some(from) = f.indexed_from {
        q.push(" AND f.indexed_at >= ").push_bind(from);
    }
    if let Some(to) = f.indexed_to {
        q.push(" AND f.indexed_at < ").push_bind(to);
    }
    let dicom = [
        ("d.patient_id = ", &f.patient_id),
        ("d.study_uid = ", &f.study_uid),
        ("d.modality = ", &f.modality),
        ("d.study_date >= ", &f.study_date_from),
        ("d.study_date <= ", &f.study_date_to),
    ];
    if dicom.iter().any(|(_, v)| v.is_some()) {
        q.push(" AND EXISTS (SELECT 1 FROM dicom_instances d WHERE d.file_id = f.id");
        for (cond, value) in dicom {
            if let Some(v) = value {
                q.push(" AND ").push(cond).push_bind(v.clone());
            }
        }
        q.push(")");
    }
}

impl PgCatalog {
    /// Files matching `query`, in indexing order, after its cursor. Files get their
    /// sequence numbers under the outbox lock (mod.rs), so a cursor never skips a file
    /// committed late.
    pub async fn list_files(&self, query: &FileQuery) -> Result<Vec<FileRow>, CatalogError> {
        let mut q = QueryBuilder::new(format!("SELECT {FILE_COLUMNS} FROM files f WHERE TRUE"));
        push_filters(&mut q, query);
        if let Some(after) = query.after {
            q.push(" AND f.seq > ").push_bind(after);
        }
        q.push(" ORDER BY f.seq LIMIT ")
            .push_bind(query.limit.clamp(1, 1000));
        let found = q.build().fetch_all(&self.pool).await?;
        Ok(found.iter().map(rows::file).collect::<Result<_, _>>()?)
    }

    pub async fn file(&self, id: &str) -> Result<Option<FileRow>, CatalogError> {
        // FILE_COLUMNS is a constant: nothing from outside reaches the SQL text.
        let sql = format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(rows::file).transpose()?)
    }

    pub async fn record_download(
        &self,
        file_id: &str,
        by: &str,
        encrypted: bool,
    ) -> Result<Option<i64>, CatalogError> {
        let now = crate::util::unix_now();
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE files SET downloads = downloads + 1, last_downloaded_at = $1 \
             WHERE id = $2 AND expired_at IS NULL RETURNING {FACTS}, downloads"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(file_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let n = rows::Columns::int(&row, "downloads")?;
        super::outbox_turn(&mut tx).await?;
        let downloaded = Event::FileDownloaded {
            file: facts(&row)?,
            by: by.to_string(),
            n,
            encrypted,
            at: now,
        };
        insert_event(&mut tx, &downloaded).await?;
        let detail =
            serde_json::json!({ "file_id": file_id, "download": n, "encrypted": encrypted });
        sqlx::query(
            "INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, 'file.downloaded', $3)",
        )
        .bind(now)
        .bind(by)
        .bind(detail.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.outbox_changed();
        Ok(Some(n))
    }

    /// Marks up to `limit` files whose retention ended by `now` expired, with their
    /// events, in one transaction; rows another node is expiring are skipped.
    pub async fn expire_due(&self, now: i64, limit: i64) -> Result<Vec<ExpiredFile>, CatalogError> {
        let mut tx = self.pool.begin().await?;
        super::outbox_turn(&mut tx).await?;
        let sql = format!(
            "UPDATE files SET expired_at = $1 WHERE id IN (SELECT id FROM files \
             WHERE expired_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING {FACTS}, object_key"
        );
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        let mut expired = Vec::with_capacity(found.len());
        for row in found {
            let file = facts(&row)?;
            expired.push(ExpiredFile {
                file_id: file.file_id.clone(),
                tenant: file.tenant.clone(),
                object_key: rows::Columns::text(&row, "object_key")?,
            });
            insert_event(&mut tx, &Event::FileExpired { file, at: now }).await?;
        }
        tx.commit().await?;
        if !expired.is_empty() {
            self.outbox_changed();
        }
        Ok(expired)
    }

    pub async fn expired_unpurged(&self, limit: i64) -> Result<Vec<ExpiredFile>, CatalogError> {
        let found: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, tenant, object_key FROM files \
             WHERE expired_at IS NOT NULL AND purged_at IS NULL ORDER BY expired_at, seq LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(found
            .into_iter()
            .map(|(file_id, tenant, object_key)| ExpiredFile {
                file_id,
                tenant,
                object_key,
            })
            .collect())
    }

    pub async fn mark_file_purged(&self, file_id: &str) -> Result<(), CatalogError> {
        sqlx::query("UPDATE files SET purged_at = $1 WHERE id = $2")
            .bind(crate::util::unix_now())
            .bind(file_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// True while a file that is not expired, or an upload accepted or being checked
    /// with that content, uses the object (`sqlite/review.rs` says why both).
    pub async fn object_in_use(&self, object_key: &str) -> Result<bool, CatalogError> {
        let sha = object_key
            .strip_prefix("sha256/")
            .and_then(|k| k.rsplit('/').next())
            .unwrap_or("");
        let used: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM files WHERE object_key = $1 AND expired_at IS NULL) \
             OR EXISTS (SELECT 1 FROM uploads WHERE state IN ('accepted', 'checking') \
                AND plaintext_sha256 = $2)",
        )
        .bind(object_key)
        .bind(sha)
        .fetch_one(&self.pool)
        .await?;
        Ok(used)
    }
}
