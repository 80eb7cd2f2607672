//! What checking writes: indexed files, findings, and the outbox event, each outcome in
//! one transaction with the upload's state change, so a crash can never leave a file
//! indexed without its event, or an upload indexed twice.

use crate::events::Event;
use sqlx::Row;

use super::SqliteCatalog;
use super::uploads::record_state_detail;
use crate::backends::catalog::rows;
use crate::backends::catalog::{
    CatalogError, DicomRow, NewFile, SameContent, UploadRow, UploadState,
};
use crate::checks::{Check, CheckResult, Severity};
use crate::util::unix_now;
use rusqlite::{Connection, params};

fn insert_checks(c: &Connection, upload_id: &str, checks: &[Check]) -> Result<(), CatalogError> {
    let base: i64 = c
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM checks WHERE upload_id = ?")?
        .query_row([upload_id], |r| r.get(0))?;
    let mut insert = c.prepare_cached(
        "INSERT INTO checks (upload_id, seq, code, severity, message, detail) VALUES (?, ?, ?, ?, ?, ?)",
    )?;
    for (i, k) in checks.iter().enumerate() {
        insert.execute(params![
            upload_id,
            base + 1 + i as i64,
            k.code,
            rows::severity_str(k.severity),
            k.message,
            k.detail.to_string()
        ])?;
    }
    Ok(())
}

/// Stores `event` in the outbox, in the transaction of the change it reports.
pub(super) fn insert_event(c: &Connection, event: &Event) -> Result<(), CatalogError> {
    c.prepare_cached(
        "INSERT INTO outbox (event_id, tenant, kind, payload, created_at) VALUES (?, ?, ?, ?, ?)",
    )?
    .execute(params![
        event.id(),
        event.tenant(),
        event.kind(),
        event.payload().to_string(),
        unix_now()
    ])?;
    Ok(())
}

fn insert_instance(
    c: &Connection,
    file_id: &str,
    tenant: &str,
    d: &DicomRow,
) -> Result<(), CatalogError> {
    // One SOP Instance UID is one instance (migration 0014): this one replaces any
    // the hospital sent before, which keeps a record of by which file.
    c.prepare_cached(
        "UPDATE dicom_instances SET replaced_by = ? \
         WHERE tenant = ? AND sop_uid = ? AND replaced_by IS NULL",
    )?
    .execute(params![file_id, tenant, d.sop_uid])?;
    c.prepare_cached(
        "INSERT INTO dicom_instances (file_id, tenant, path, patient_id, patient_name, study_uid, \
         series_uid, sop_uid, sop_class_uid, transfer_syntax, modality, study_date, study_time, \
         accession_number, institution_name, number_of_frames, patient_birth_date, patient_sex, \
         study_description, study_id, referring_physician, series_description, series_number, \
         instance_number, attributes) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        file_id,
        tenant,
        d.path,
        d.patient_id,
        d.patient_name,
        d.study_uid,
        d.series_uid,
        d.sop_uid,
        d.sop_class_uid,
        d.transfer_syntax,
        d.modality,
        d.study_date,
        d.study_time,
        d.accession_number,
        d.institution_name,
        d.number_of_frames.map(i64::from),
        d.patient_birth_date,
        d.patient_sex,
        d.study_description,
        d.study_id,
        d.referring_physician,
        d.series_description,
        d.series_number,
        d.instance_number,
        d.attributes,
    ])?;
    Ok(())
}

impl SqliteCatalog {
    /// The indexed DICOM instances of a tenant's study (current files and instances only).
    pub async fn study_instances(
        &self,
        tenant: &str,
        study_uid: &str,
    ) -> Result<Vec<DicomRow>, CatalogError> {
        let rows = sqlx::query(
            "SELECT d.* FROM dicom_instances d JOIN files f ON f.id = d.file_id \
             WHERE d.tenant = ? AND d.study_uid = ? AND f.superseded_by IS NULL \
             AND d.replaced_by IS NULL ORDER BY d.series_uid, d.sop_uid",
        )
        .bind(tenant)
        .bind(study_uid)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(rows::dicom)
            .collect::<Result<_, _>>()
            .map_err(CatalogError::from)
    }

    /// The tenant's current (not superseded) file with this content, if any.
    pub async fn same_content(
        &self,
        tenant: &str,
        sha256: &str,
    ) -> Result<Option<SameContent>, CatalogError> {
        let row = sqlx::query(
            "SELECT id, name, indexed_at FROM files WHERE tenant = ? AND sha256 = ? AND superseded_by IS NULL \
             ORDER BY indexed_at LIMIT 1",
        )
        .bind(tenant)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> Result<SameContent, CatalogError> {
            Ok(SameContent {
                file_id: r.try_get("id")?,
                name: r.try_get("name")?,
                indexed_at: r.try_get("indexed_at")?,
            })
        })
        .transpose()
    }

    /// `checking` → `indexed`: the file row (superseding earlier versions of its name),
    /// the findings and the `file.indexed` event, together.
    pub async fn index_upload(
        &self,
        upload: &UploadRow,
        file: &NewFile,
        checks: &[Check],
        event: &Event,
    ) -> Result<(), CatalogError> {
        let now = unix_now();
        let (upload, file, checks, event) =
            (upload.clone(), file.clone(), checks.to_vec(), event.clone());
        self.write(move |c| {
            let moved = c
                .prepare_cached(
                    "UPDATE uploads SET state = 'indexed', updated_at = ? WHERE id = ? AND state = 'checking'",
                )?
                .execute(params![now, upload.id])?;
            if moved != 1 {
                return Err(CatalogError::Conflict(format!(
                    "upload {} is not being checked",
                    upload.id
                )));
            }
            let superseded = c
                .prepare_cached(
                    "SELECT id, upload_id, name, sha256, size, media_type FROM files \
                     WHERE tenant = ? AND name = ? AND superseded_by IS NULL AND expired_at IS NULL",
                )?
                .query_map(params![upload.tenant, file.name], |r| {
                    super::review::facts_of(r, &upload.tenant)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            c.prepare_cached(
                "INSERT INTO files (id, upload_id, tenant, name, sha256, size, media_type, object_key, metadata, indexed_at, expires_at, request_id) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                file.id,
                upload.id,
                upload.tenant,
                file.name,
                file.sha256,
                i64::try_from(file.size).unwrap_or(i64::MAX),
                file.media_type,
                file.object_key,
                file.metadata.to_string(),
                now,
                file.retain_secs.map(|s| now.saturating_add(s)),
                file.request_id
            ])?;
            for old in superseded {
                let superseded = Event::FileSuperseded {
                    file: old,
                    by: file.id.clone(),
                    at: now,
                };
                insert_event(c, &superseded)?;
            }
            c.prepare_cached(
                "UPDATE files SET superseded_by = ? WHERE tenant = ? AND name = ? AND id != ? AND superseded_by IS NULL",
            )?
            .execute(params![file.id, upload.tenant, file.name, file.id])?;
            for d in &file.instances {
                insert_instance(c, &file.id, &upload.tenant, d)?;
            }
            insert_checks(c, &upload.id, &checks)?;
            insert_event(c, &event)?;
            record_state_detail(c, &upload.id, UploadState::Indexed, &serde_json::Value::Null)
        })
        .await?;
        self.outbox_changed();
        Ok(())
    }

    /// A pre-check's end (rule 21): `checking` → `prechecked` (passed) or
    /// `rejected`, with its findings — no file, no event: nothing is handed on.
    pub async fn finish_precheck(
        &self,
        id: &str,
        passed: bool,
        checks: &[Check],
    ) -> Result<(), CatalogError> {
        let state = if passed {
            UploadState::Prechecked
        } else {
            UploadState::Rejected
        };
        let (id, checks) = (id.to_string(), checks.to_vec());
        self.write(move |c| {
            c.prepare_cached("UPDATE uploads SET state = ?, updated_at = ? WHERE id = ?")?
                .execute(params![state.as_str(), unix_now(), id])?;
            insert_checks(c, &id, &checks)?;
            let detail = serde_json::json!({ "precheck": true });
            record_state_detail(c, &id, state, &detail)
        })
        .await
    }

    /// Records the requests files answer, as a batch manifest names them (rule
    /// 20): `(file id, request id, metadata.request)` for each.
    pub async fn assign_requests(
        &self,
        tenant: &str,
        files: &[(String, String, serde_json::Value)],
    ) -> Result<(), CatalogError> {
        let (tenant, files) = (tenant.to_string(), files.to_vec());
        self.write(move |c| {
            let mut update = c.prepare_cached(
                "UPDATE files SET request_id = ?, metadata = json_set(metadata, '$.request', json(?)) \
                 WHERE id = ? AND tenant = ?",
            )?;
            for (file_id, request_id, request) in &files {
                update.execute(params![request_id, request.to_string(), file_id, tenant])?;
            }
            Ok(())
        })
        .await
    }

    /// Any state → `rejected`, with the findings and the `upload.rejected` event.
    pub async fn reject_upload(
        &self,
        id: &str,
        checks: &[Check],
        event: &Event,
    ) -> Result<(), CatalogError> {
        let now = unix_now();
        let (id, checks, event) = (id.to_string(), checks.to_vec(), event.clone());
        self.write(move |c| {
            c.prepare_cached("UPDATE uploads SET state = 'rejected', updated_at = ? WHERE id = ?")?
                .execute(params![now, id])?;
            insert_checks(c, &id, &checks)?;
            let codes: Vec<&str> = checks
                .iter()
                .filter(|k| k.severity == Severity::Error)
                .map(|k| k.code.as_str())
                .collect();
            insert_event(c, &event)?;
            record_state_detail(
                c,
                &id,
                UploadState::Rejected,
                &serde_json::json!({ "codes": codes }),
            )
        })
        .await?;
        self.outbox_changed();
        Ok(())
    }

    /// Bytes held durably for uploads still receiving.
    pub async fn spool_bytes(&self) -> Result<u64, CatalogError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(durable_offset), 0) FROM uploads WHERE state = 'receiving'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub async fn count_in_state(&self, state: UploadState) -> Result<i64, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM uploads WHERE state = ?")
                .bind(state.as_str())
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// (upload id, file sha256) of every indexed file, for audits and tests.
    pub async fn all_indexed(&self) -> Result<Vec<(String, String)>, CatalogError> {
        let rows = sqlx::query("SELECT upload_id, sha256 FROM files ORDER BY upload_id")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("upload_id")?, r.try_get("sha256")?)))
            .collect()
    }

    pub async fn outbox_count(&self, kind: &str) -> Result<i64, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind = ?")
                .bind(kind)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn indexed_files(
        &self,
        upload_id: &str,
    ) -> Result<Vec<(String, String, String)>, CatalogError> {
        let rows = sqlx::query(
            "SELECT id, sha256, object_key FROM files WHERE upload_id = ? ORDER BY name",
        )
        .bind(upload_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("sha256")?,
                    r.try_get("object_key")?,
                ))
            })
            .collect()
    }

    /// The hospital-facing result of one upload.
    pub async fn check_result(&self, id: &str) -> Result<Option<CheckResult>, CatalogError> {
        let Some(up) = self.upload(id).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT code, severity, message, detail FROM checks WHERE upload_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let checks = rows.iter().map(rows::check).collect::<Result<_, _>>()?;
        let mut result = crate::backends::catalog::result_of(up, checks);
        result.download = self.download_state(id).await?;
        Ok(Some(result))
    }

    /// [`Self::download_state`] of every upload of `tenant` under `prefix`, in one query
    /// (a `/results` listing shows the same bytes a read gets).
    pub async fn download_states_under(
        &self,
        tenant: &str,
        prefix: &str,
    ) -> Result<Vec<(String, crate::checks::DownloadState)>, CatalogError> {
        let rows = super::bind_tenant_prefix(
            sqlx::query(
                "SELECT upload_id, downloads, last_downloaded_at, expires_at, expired_at \
                 FROM files WHERE tenant = ? AND substr(name, 1, ?) = ? \
                 AND name >= ? AND name < ? || char(1114111) ORDER BY indexed_at",
            ),
            tenant,
            prefix,
        )
        .fetch_all(&self.pool)
        .await?;
        by_upload(&rows)
    }

    /// [`Self::download_state`] of each of `upload_ids` (those of `tenant` only).
    pub async fn download_states_of(
        &self,
        tenant: &str,
        upload_ids: &[String],
    ) -> Result<Vec<(String, crate::checks::DownloadState)>, CatalogError> {
        if upload_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = sqlx::QueryBuilder::new(
            "SELECT upload_id, downloads, last_downloaded_at, expires_at, expired_at \
             FROM files WHERE tenant = ",
        );
        q.push_bind(tenant).push(" AND upload_id IN (");
        let mut list = q.separated(", ");
        for id in upload_ids {
            list.push_bind(id.clone());
        }
        q.push(") ORDER BY indexed_at");
        let rows = q.build().fetch_all(&self.pool).await?;
        by_upload(&rows)
    }

    /// The review side's use of the file an upload yielded (the current version).
    async fn download_state(
        &self,
        upload_id: &str,
    ) -> Result<Option<crate::checks::DownloadState>, CatalogError> {
        let row = sqlx::query(
            "SELECT downloads, last_downloaded_at, expires_at, expired_at FROM files \
             WHERE upload_id = ? ORDER BY indexed_at DESC LIMIT 1",
        )
        .bind(upload_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(rows::download).transpose()?)
    }

    /// The findings of every upload of `tenant` whose name starts with `prefix`, as
    /// (upload id, check), in one query: a `/results` listing builds every result from
    /// these instead of asking once per file.
    pub async fn checks_under(
        &self,
        tenant: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Check)>, CatalogError> {
        let rows = super::bind_tenant_prefix(
            sqlx::query(
                "SELECT c.upload_id, c.code, c.severity, c.message, c.detail FROM checks c \
             JOIN uploads u ON u.id = c.upload_id \
             WHERE u.tenant = ? AND substr(u.name, 1, ?) = ? \
             AND u.name >= ? AND u.name < ? || char(1114111) ORDER BY c.upload_id, c.seq",
            ),
            tenant,
            prefix,
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("upload_id")?, rows::check(r)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(CatalogError::from)
    }
}

/// (upload id, download state) of each `files` row read.
fn by_upload(
    found: &[sqlx::sqlite::SqliteRow],
) -> Result<Vec<(String, crate::checks::DownloadState)>, CatalogError> {
    found
        .iter()
        .map(|r| Ok((r.try_get("upload_id")?, rows::download(r)?)))
        .collect()
}
