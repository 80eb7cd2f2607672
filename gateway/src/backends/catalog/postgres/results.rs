//! What checking writes and hospitals read back, on PostgreSQL: each outcome (indexed,
//! rejected, pre-checked) is one transaction with the upload's state change, as in the
//! embedded catalog (`sqlite/results.rs`).

use sqlx::PgConnection;

use super::{PgCatalog, outbox_turn, to_i64};
use crate::backends::catalog::rows::{self, severity_str};
use crate::backends::catalog::{
    CatalogError, DicomRow, NewFile, SameContent, UploadRow, UploadState,
};
use crate::checks::{Check, CheckResult, Severity};
use crate::events::Event;
use crate::util::unix_now;

pub(super) async fn record_state(
    c: &mut PgConnection,
    id: &str,
    state: UploadState,
    detail: &serde_json::Value,
) -> Result<(), CatalogError> {
    sqlx::query("INSERT INTO upload_states (upload_id, state, at, detail) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(state.as_str())
        .bind(unix_now())
        .bind(detail.to_string())
        .execute(c)
        .await?;
    Ok(())
}

/// The findings, numbered after those already recorded, in one statement.
async fn insert_checks(
    c: &mut PgConnection,
    upload_id: &str,
    checks: &[Check],
) -> Result<(), CatalogError> {
    if checks.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&Check) -> String| checks.iter().map(f).collect::<Vec<String>>();
    sqlx::query(
        "INSERT INTO checks (upload_id, seq, code, severity, message, detail) \
         SELECT $1, b.base + k.n, k.code, k.severity, k.message, k.detail \
         FROM (SELECT COALESCE(MAX(seq), 0) AS base FROM checks WHERE upload_id = $1) b, \
         unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY \
         AS k(code, severity, message, detail, n)",
    )
    .bind(upload_id)
    .bind(column(|k| k.code.clone()))
    .bind(column(|k| severity_str(k.severity).to_string()))
    .bind(column(|k| k.message.clone()))
    .bind(column(|k| k.detail.to_string()))
    .execute(c)
    .await?;
    Ok(())
}

/// Stores `event` in the outbox; the transaction must hold the outbox turn.
pub(super) async fn insert_event(c: &mut PgConnection, event: &Event) -> Result<(), CatalogError> {
    sqlx::query(
        "INSERT INTO outbox (event_id, tenant, kind, payload, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event.id())
    .bind(event.tenant())
    .bind(event.kind())
    .bind(event.payload().to_string())
    .bind(unix_now())
    .execute(c)
    .await?;
    Ok(())
}

async fn insert_instance(
    c: &mut PgConnection,
    file_id: &str,
    tenant: &str,
    d: &DicomRow,
) -> Result<(), CatalogError> {
    sqlx::query(
        "UPDATE dicom_instances SET replaced_by = $1 \
         WHERE tenant = $2 AND sop_uid = $3 AND replaced_by IS NULL",
    )
    .bind(file_id)
    .bind(tenant)
    .bind(&d.sop_uid)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO dicom_instances (file_id, tenant, path, patient_id, patient_name, study_uid, \
         series_uid, sop_uid, sop_class_uid, transfer_syntax, modality, study_date, study_time, \
         accession_number, institution_name, number_of_frames, patient_birth_date, patient_sex, \
         study_description, study_id, referring_physician, series_description, series_number, \
         instance_number, attributes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)",
    )
    .bind(file_id)
    .bind(tenant)
    .bind(&d.path)
    .bind(&d.patient_id)
    .bind(&d.patient_name)
    .bind(&d.study_uid)
    .bind(&d.series_uid)
    .bind(&d.sop_uid)
    .bind(&d.sop_class_uid)
    .bind(&d.transfer_syntax)
    .bind(&d.modality)
    .bind(&d.study_date)
    .bind(&d.study_time)
    .bind(&d.accession_number)
    .bind(&d.institution_name)
    .bind(d.number_of_frames.map(i64::from))
    .bind(&d.patient_birth_date)
    .bind(&d.patient_sex)
    .bind(&d.study_description)
    .bind(&d.study_id)
    .bind(&d.referring_physician)
    .bind(&d.series_description)
    .bind(&d.series_number)
    .bind(&d.instance_number)
    .bind(&d.attributes)
    .execute(c)
    .await?;
    Ok(())
}

impl PgCatalog {
    pub async fn study_instances(
        &self,
        tenant: &str,
        study_uid: &str,
    ) -> Result<Vec<DicomRow>, CatalogError> {
        let rows = sqlx::query(
            "SELECT d.* FROM dicom_instances d JOIN files f ON f.id = d.file_id \
             WHERE d.tenant = $1 AND d.study_uid = $2 AND f.superseded_by IS NULL \
             AND d.replaced_by IS NULL ORDER BY d.series_uid, d.sop_uid",
        )
        .bind(tenant)
        .bind(study_uid)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(rows::dicom).collect::<Result<_, _>>()?)
    }

    pub async fn same_content(
        &self,
        tenant: &str,
        sha256: &str,
    ) -> Result<Option<SameContent>, CatalogError> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT id, name, indexed_at FROM files WHERE tenant = $1 AND sha256 = $2 \
             AND superseded_by IS NULL ORDER BY indexed_at, seq LIMIT 1",
        )
        .bind(tenant)
        .bind(sha256)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(file_id, name, indexed_at)| SameContent {
            file_id,
            name,
            indexed_at,
        }))
    }

    /// `checking` → `indexed` with the file (superseding earlier versions of its
    /// name), its instances, findings and events, in one transaction. Only the node
    /// whose claim is current may: a node that lost its lease (`leases.rs`) while
    /// checking gets a conflict, not a second index entry.
    pub async fn index_upload(
        &self,
        upload: &UploadRow,
        file: &NewFile,
        checks: &[Check],
        event: &Event,
    ) -> Result<(), CatalogError> {
        let now = unix_now();
        // Renewed no more whatever happens: recorded, or left to lapse and be taken over.
        self.let_go(&upload.id);
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE uploads SET state = 'indexed', updated_at = $1, lease_holder = NULL \
             WHERE id = $2 AND state = 'checking' AND lease_holder = $3",
        )
        .bind(now)
        .bind(&upload.id)
        .bind(self.node())
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Err(CatalogError::Conflict(format!(
                "upload {} is not being checked here",
                upload.id
            )));
        }
        outbox_turn(&mut tx).await?;
        let superseded: Vec<(String, String, String, String, i64, String)> = sqlx::query_as(
            "UPDATE files SET superseded_by = $1 WHERE tenant = $2 AND name = $3 \
             AND superseded_by IS NULL AND expired_at IS NULL \
             RETURNING id, upload_id, name, sha256, size, media_type",
        )
        .bind(&file.id)
        .bind(&upload.tenant)
        .bind(&file.name)
        .fetch_all(&mut *tx)
        .await?;
        // Versions already expired are superseded too, without an event (as embedded).
        sqlx::query(
            "UPDATE files SET superseded_by = $1 WHERE tenant = $2 AND name = $3 AND superseded_by IS NULL",
        )
        .bind(&file.id)
        .bind(&upload.tenant)
        .bind(&file.name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO files (id, upload_id, tenant, name, sha256, size, media_type, object_key, \
             metadata, indexed_at, expires_at, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&file.id)
        .bind(&upload.id)
        .bind(&upload.tenant)
        .bind(&file.name)
        .bind(&file.sha256)
        .bind(to_i64(file.size))
        .bind(&file.media_type)
        .bind(&file.object_key)
        .bind(file.metadata.to_string())
        .bind(now)
        .bind(file.retain_secs.map(|s| now.saturating_add(s)))
        .bind(&file.request_id)
        .execute(&mut *tx)
        .await?;
        for (id, upload_id, name, sha256, size, media_type) in superseded {
            let old = crate::events::FileFacts {
                tenant: upload.tenant.clone(),
                upload_id,
                file_id: id,
                name,
                sha256,
                size: u64::try_from(size).unwrap_or(0),
                media_type,
            };
            let superseded = Event::FileSuperseded {
                file: old,
                by: file.id.clone(),
                at: now,
            };
            insert_event(&mut tx, &superseded).await?;
        }
        for d in &file.instances {
            insert_instance(&mut tx, &file.id, &upload.tenant, d).await?;
        }
        insert_checks(&mut tx, &upload.id, checks).await?;
        insert_event(&mut tx, event).await?;
        record_state(
            &mut tx,
            &upload.id,
            UploadState::Indexed,
            &serde_json::Value::Null,
        )
        .await?;
        tx.commit().await?;
        self.outbox_changed();
        Ok(())
    }

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
        self.let_go(id);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE uploads SET state = $1, updated_at = $2, lease_holder = NULL WHERE id = $3",
        )
        .bind(state.as_str())
        .bind(unix_now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        insert_checks(&mut tx, id, checks).await?;
        record_state(&mut tx, id, state, &serde_json::json!({ "precheck": true })).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn assign_requests(
        &self,
        tenant: &str,
        files: &[(String, String, serde_json::Value)],
    ) -> Result<(), CatalogError> {
        let ids: Vec<&str> = files.iter().map(|f| f.0.as_str()).collect();
        let requests: Vec<&str> = files.iter().map(|f| f.1.as_str()).collect();
        let values: Vec<String> = files.iter().map(|f| f.2.to_string()).collect();
        sqlx::query(
            "UPDATE files SET request_id = r.request_id, \
             metadata = jsonb_set(files.metadata::jsonb, '{request}', r.value::jsonb)::text \
             FROM unnest($1::text[], $2::text[], $3::text[]) AS r(id, request_id, value) \
             WHERE files.id = r.id AND files.tenant = $4",
        )
        .bind(ids)
        .bind(requests)
        .bind(values)
        .bind(tenant)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn reject_upload(
        &self,
        id: &str,
        checks: &[Check],
        event: &Event,
    ) -> Result<(), CatalogError> {
        let codes: Vec<&str> = checks
            .iter()
            .filter(|k| k.severity == Severity::Error)
            .map(|k| k.code.as_str())
            .collect();
        self.let_go(id);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE uploads SET state = 'rejected', updated_at = $1, lease_holder = NULL WHERE id = $2",
        )
        .bind(unix_now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        insert_checks(&mut tx, id, checks).await?;
        outbox_turn(&mut tx).await?;
        insert_event(&mut tx, event).await?;
        let detail = serde_json::json!({ "codes": codes });
        record_state(&mut tx, id, UploadState::Rejected, &detail).await?;
        tx.commit().await?;
        self.outbox_changed();
        Ok(())
    }

    pub async fn all_indexed(&self) -> Result<Vec<(String, String)>, CatalogError> {
        Ok(
            sqlx::query_as("SELECT upload_id, sha256 FROM files ORDER BY upload_id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn outbox_count(&self, kind: &str) -> Result<i64, CatalogError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind = $1")
                .bind(kind)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub async fn indexed_files(
        &self,
        upload_id: &str,
    ) -> Result<Vec<(String, String, String)>, CatalogError> {
        Ok(sqlx::query_as(
            "SELECT id, sha256, object_key FROM files WHERE upload_id = $1 ORDER BY name",
        )
        .bind(upload_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn check_result(&self, id: &str) -> Result<Option<CheckResult>, CatalogError> {
        let Some(up) = self.upload(id).await? else {
            return Ok(None);
        };
        let found = sqlx::query(
            "SELECT code, severity, message, detail FROM checks WHERE upload_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let checks = found.iter().map(rows::check).collect::<Result<_, _>>()?;
        let mut result = crate::backends::catalog::result_of(up, checks);
        let download = sqlx::query(
            "SELECT downloads, last_downloaded_at, expires_at, expired_at FROM files \
             WHERE upload_id = $1 ORDER BY indexed_at DESC, seq DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        result.download = download.as_ref().map(rows::download).transpose()?;
        Ok(Some(result))
    }

    pub async fn download_states_under(
        &self,
        tenant: &str,
        prefix: &str,
    ) -> Result<Vec<(String, crate::checks::DownloadState)>, CatalogError> {
        let found = sqlx::query(concat!(
            "SELECT upload_id, downloads, last_downloaded_at, expires_at, expired_at \
             FROM files WHERE tenant = $1 AND ",
            super::under_prefix!("name", "$2"),
            " ORDER BY indexed_at, seq"
        ))
        .bind(tenant)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        by_upload(&found)
    }

    pub async fn download_states_of(
        &self,
        tenant: &str,
        upload_ids: &[String],
    ) -> Result<Vec<(String, crate::checks::DownloadState)>, CatalogError> {
        let found = sqlx::query(
            "SELECT upload_id, downloads, last_downloaded_at, expires_at, expired_at \
             FROM files WHERE tenant = $1 AND upload_id = ANY($2) ORDER BY indexed_at, seq",
        )
        .bind(tenant)
        .bind(upload_ids)
        .fetch_all(&self.pool)
        .await?;
        by_upload(&found)
    }

    pub async fn checks_under(
        &self,
        tenant: &str,
        prefix: &str,
    ) -> Result<Vec<(String, Check)>, CatalogError> {
        let found = sqlx::query(concat!(
            "SELECT c.upload_id, c.code, c.severity, c.message, c.detail FROM checks c \
             JOIN uploads u ON u.id = c.upload_id WHERE u.tenant = $1 AND ",
            super::under_prefix!("u.name", "$2"),
            " ORDER BY c.upload_id, c.seq"
        ))
        .bind(tenant)
        .bind(prefix)
        .fetch_all(&self.pool)
        .await?;
        found
            .iter()
            .map(|r| {
                use rows::Columns;
                Ok((r.text("upload_id")?, rows::check(r)?))
            })
            .collect()
    }
}

/// (upload id, download state) of each `files` row read.
fn by_upload(
    found: &[sqlx::postgres::PgRow],
) -> Result<Vec<(String, crate::checks::DownloadState)>, CatalogError> {
    use rows::Columns;
    found
        .iter()
        .map(|r| Ok((r.text("upload_id")?, rows::download(r)?)))
        .collect()
}
