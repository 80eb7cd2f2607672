//! What the review side reads and changes: file listings with filters, one file,
//! downloads (rule 13), and retention (rules 2 and 3).

use rusqlite::{OptionalExtension, params};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::SqliteCatalog;
use super::results::insert_event;
use crate::backends::catalog::{CatalogError, ExpiredFile, FileQuery, FileRow, rows};
use crate::events::{Event, FileFacts};

/// The facts an event tells about a file, from a `files` row.
pub(super) fn facts_of(row: &rusqlite::Row, tenant: &str) -> rusqlite::Result<FileFacts> {
    Ok(FileFacts {
        tenant: tenant.to_string(),
        upload_id: row.get("upload_id")?,
        file_id: row.get("id")?,
        name: row.get("name")?,
        sha256: row.get("sha256")?,
        size: u64::try_from(row.get::<_, i64>("size")?).unwrap_or(0),
        media_type: row.get("media_type")?,
    })
}

const FILE_COLUMNS: &str = "f.rowid AS seq, f.id, f.upload_id, f.tenant, f.name, f.sha256, f.size, \
     f.media_type, f.object_key, f.metadata, f.indexed_at, f.superseded_by, f.expires_at, \
     f.expired_at, f.downloads, f.last_downloaded_at, f.request_id";

/// `AND f.<column> = ?` for each filter given.
fn push_filters(q: &mut QueryBuilder<Sqlite>, f: &FileQuery) {
    if let Some(tenants) = &f.tenants {
        q.push(" AND f.tenant IN (");
        let mut list = q.separated(", ");
        for t in tenants {
            list.push_bind(t.clone());
        }
        // An empty grant matches nothing, not everything.
        list.push_unseparated(if tenants.is_empty() { "NULL)" } else { ")" });
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
    for (path, value) in [
        ("$.case.category", &f.category),
        ("$.case.case_class", &f.case_class),
        ("$.case.serial", &f.serial),
    ] {
        if let Some(v) = value {
            q.push(" AND json_extract(f.metadata, ")
                .push_bind(path)
                .push(") = ")
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

impl SqliteCatalog {
    /// Files matching `query`, in indexing order, after its cursor.
    pub async fn list_files(&self, query: &FileQuery) -> Result<Vec<FileRow>, CatalogError> {
        let mut q = QueryBuilder::new(format!("SELECT {FILE_COLUMNS} FROM files f WHERE 1 = 1"));
        push_filters(&mut q, query);
        if let Some(after) = query.after {
            q.push(" AND f.rowid > ").push_bind(after);
        }
        q.push(" ORDER BY f.rowid LIMIT ")
            .push_bind(query.limit.clamp(1, 1000));
        let rows = q.build().fetch_all(&self.reads).await?;
        Ok(rows.iter().map(rows::file).collect::<Result<_, _>>()?)
    }

    pub async fn file(&self, id: &str) -> Result<Option<FileRow>, CatalogError> {
        // FILE_COLUMNS is a constant: nothing from outside reaches the SQL text.
        let sql = format!("SELECT {FILE_COLUMNS} FROM files f WHERE f.id = ?");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.reads)
            .await?;
        Ok(row.as_ref().map(rows::file).transpose()?)
    }

    /// Counts a download of a file still in retention, with its `file.downloaded` event
    /// and audit record. Returns the download's number, or `None` if it expired.
    pub async fn record_download(
        &self,
        file_id: &str,
        by: &str,
        encrypted: bool,
    ) -> Result<Option<i64>, CatalogError> {
        let now = crate::util::unix_now();
        let (file_id, by) = (file_id.to_string(), by.to_string());
        let n = self
            .write(move |c| {
                let row = c
                    .prepare_cached(
                        "UPDATE files SET downloads = downloads + 1, last_downloaded_at = ? \
                         WHERE id = ? AND expired_at IS NULL \
                         RETURNING id, upload_id, tenant, name, sha256, size, media_type, downloads",
                    )?
                    .query_row(params![now, file_id], |r| {
                        let tenant: String = r.get("tenant")?;
                        Ok((facts_of(r, &tenant)?, r.get::<_, i64>("downloads")?))
                    })
                    .optional()?;
                let Some((facts, n)) = row else {
                    return Ok(None);
                };
                let downloaded = Event::FileDownloaded {
                    file: facts,
                    by: by.clone(),
                    n,
                    encrypted,
                    at: now,
                };
                insert_event(c, &downloaded)?;
                c.prepare_cached(
                    "INSERT INTO audit_log (at, actor, action, detail) VALUES (?, ?, 'file.downloaded', ?)",
                )?
                .execute(params![
                    now,
                    by,
                    serde_json::json!({ "file_id": file_id, "download": n, "encrypted": encrypted })
                        .to_string()
                ])?;
                Ok(Some(n))
            })
            .await?;
        if n.is_some() {
            self.outbox_changed();
        }
        Ok(n)
    }

    /// Marks up to `limit` files whose retention ended by `now` as expired, each with
    /// its `file.expired` event, in one transaction.
    pub async fn expire_due(&self, now: i64, limit: i64) -> Result<Vec<ExpiredFile>, CatalogError> {
        let expired = self
            .write(move |c| {
                let rows = c
                    .prepare_cached(
                        "SELECT id, upload_id, tenant, name, sha256, size, media_type, object_key FROM files \
                         WHERE expired_at IS NULL AND expires_at IS NOT NULL AND expires_at <= ? \
                         ORDER BY expires_at LIMIT ?",
                    )?
                    .query_map(params![now, limit], |r| {
                        let tenant: String = r.get("tenant")?;
                        Ok((facts_of(r, &tenant)?, r.get::<_, String>("object_key")?))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut expired = Vec::with_capacity(rows.len());
                let mut mark = c.prepare_cached("UPDATE files SET expired_at = ? WHERE id = ?")?;
                for (facts, object_key) in rows {
                    mark.execute(params![now, facts.file_id])?;
                    expired.push(ExpiredFile {
                        file_id: facts.file_id.clone(),
                        tenant: facts.tenant.clone(),
                        object_key,
                    });
                    insert_event(
                        c,
                        &Event::FileExpired {
                            file: facts,
                            at: now,
                        },
                    )?;
                }
                Ok(expired)
            })
            .await?;
        if !expired.is_empty() {
            self.outbox_changed();
        }
        Ok(expired)
    }

    /// Expired files whose objects retention has not dealt with yet.
    pub async fn expired_unpurged(&self, limit: i64) -> Result<Vec<ExpiredFile>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, tenant, object_key FROM files \
             WHERE expired_at IS NOT NULL AND purged_at IS NULL ORDER BY expired_at LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ExpiredFile {
                file_id: r.get("id"),
                tenant: r.get("tenant"),
                object_key: r.get("object_key"),
            })
            .collect())
    }

    pub async fn mark_file_purged(&self, file_id: &str) -> Result<(), CatalogError> {
        let file_id = file_id.to_string();
        self.write(move |c| {
            c.prepare_cached("UPDATE files SET purged_at = ? WHERE id = ?")?
                .execute(params![crate::util::unix_now(), file_id])?;
            Ok(())
        })
        .await
    }

    /// True while a file that is not expired still points at `object_key` (content is
    /// stored once per digest, so another tenant's file may share it).
    pub async fn object_in_use(&self, object_key: &str) -> Result<bool, CatalogError> {
        // An object is content-addressed (`sha256/ab/cd/<sha>`): an upload accepted or
        // being checked with that content may already rely on it as its only copy (the
        // store stage drops a spool file whose content is stored), so it is in use too.
        let sha = object_key
            .strip_prefix("sha256/")
            .and_then(|k| k.rsplit('/').next())
            .unwrap_or("");
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM files WHERE object_key = ? AND expired_at IS NULL) \
             + (SELECT COUNT(*) FROM uploads WHERE state IN ('accepted', 'checking') \
                AND plaintext_sha256 = ?)",
        )
        .bind(object_key)
        .bind(sha)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }
}
