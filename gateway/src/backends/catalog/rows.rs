//! The catalog's records read from a result row of either engine: SQLite's and
//! PostgreSQL's rows decode through the same few column getters ([`Columns`]), so each
//! record is decoded in one place and the two backends cannot drift apart on, say,
//! what a download state means.

use sqlx::Row;

use super::{
    DeadLetter, DicomGroup, DicomRow, FileRow, OutboxEvent, Rejection, TenantUsage, UploadRow,
    UploadState,
};
use crate::checks::{Check, DownloadState, Severity};

type R<T> = Result<T, sqlx::Error>;

/// A result row's columns by name, in the four types the catalog stores.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> R<String>;
    fn text_opt(&self, column: &str) -> R<Option<String>>;
    fn int(&self, column: &str) -> R<i64>;
    fn int_opt(&self, column: &str) -> R<Option<i64>>;
}

macro_rules! columns_for {
    ($($row:ty),*) => {$(
        impl Columns for $row {
            fn text(&self, c: &str) -> R<String> { self.try_get(c) }
            fn text_opt(&self, c: &str) -> R<Option<String>> { self.try_get(c) }
            fn int(&self, c: &str) -> R<i64> { self.try_get(c) }
            fn int_opt(&self, c: &str) -> R<Option<i64>> { self.try_get(c) }
        }
    )*};
}
columns_for!(sqlx::sqlite::SqliteRow, sqlx::postgres::PgRow);

fn u64_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The columns of [`UploadRow`], in the order [`upload`] reads them; a macro so that
/// queries stay static strings.
macro_rules! upload_columns_def {
    () => {
        "id, tenant, name, protocol, state, declared_len, durable_offset, plaintext_len, \
         plaintext_sha256, accept_seq, accepted_at, updated_at, check_attempts, waits_for, \
         request_id"
    };
}
pub(crate) use upload_columns_def as upload_columns;

pub(crate) fn upload(r: &impl Columns) -> R<UploadRow> {
    let state = r.text("state")?;
    Ok(UploadRow {
        id: r.text("id")?,
        tenant: r.text("tenant")?,
        name: r.text("name")?,
        protocol: r.text("protocol")?,
        state: UploadState::parse(&state)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown upload state `{state}`").into()))?,
        declared_len: r.int_opt("declared_len")?.map(u64_of),
        durable_offset: u64_of(r.int("durable_offset")?),
        plaintext_len: r.int_opt("plaintext_len")?.map(u64_of),
        plaintext_sha256: r.text_opt("plaintext_sha256")?,
        accept_seq: r.int_opt("accept_seq")?,
        accepted_at: r.int_opt("accepted_at")?,
        updated_at: r.int("updated_at")?,
        check_attempts: u32::try_from(r.int("check_attempts")?).unwrap_or(0),
        waits_for: r.text_opt("waits_for")?,
        request_id: r.text_opt("request_id")?,
    })
}

/// A `tenant_usage`-shaped row (bytes, files, receiving).
pub(crate) fn usage(r: &impl Columns) -> R<TenantUsage> {
    Ok(TenantUsage {
        accepted_bytes: u64_of(r.int("bytes")?),
        accepted_files: u64_of(r.int("files")?),
        receiving: u64_of(r.int("receiving")?),
    })
}

pub(crate) fn severity_str(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}

fn severity_of(s: &str) -> Severity {
    match s {
        "info" => Severity::Info,
        "warning" => Severity::Warning,
        _ => Severity::Error,
    }
}

pub(crate) fn check(r: &impl Columns) -> R<Check> {
    Ok(Check {
        code: r.text("code")?,
        severity: severity_of(&r.text("severity")?),
        message: r.text("message")?,
        detail: serde_json::from_str(&r.text("detail")?).unwrap_or(serde_json::Value::Null),
    })
}

/// A file's download state (rule 13) from its `downloads`, `last_downloaded_at`,
/// `expires_at` and `expired_at`.
pub(crate) fn download(r: &impl Columns) -> R<DownloadState> {
    let downloads = r.int("downloads")?;
    let expires = r.int_opt("expires_at")?;
    let expired = r.int_opt("expired_at")?;
    let state = match (expired.is_some(), downloads > 0) {
        (true, false) => "expired_unread",
        (true, true) => "expired",
        (false, true) => "downloaded",
        (false, false) => "ready",
    };
    Ok(DownloadState {
        state: state.into(),
        downloads: u64_of(downloads),
        last_downloaded_at: r.int_opt("last_downloaded_at")?.map(crate::util::rfc3339),
        expires_at: expired.or(expires).map(crate::util::rfc3339),
    })
}

pub(crate) fn file(r: &impl Columns) -> R<FileRow> {
    Ok(FileRow {
        seq: r.int("seq")?,
        id: r.text("id")?,
        upload_id: r.text("upload_id")?,
        tenant: r.text("tenant")?,
        name: r.text("name")?,
        sha256: r.text("sha256")?,
        size: u64_of(r.int("size")?),
        media_type: r.text("media_type")?,
        object_key: r.text("object_key")?,
        metadata: serde_json::from_str(&r.text("metadata")?).unwrap_or_default(),
        indexed_at: r.int("indexed_at")?,
        superseded_by: r.text_opt("superseded_by")?,
        expires_at: r.int_opt("expires_at")?,
        expired_at: r.int_opt("expired_at")?,
        downloads: r.int("downloads")?,
        last_downloaded_at: r.int_opt("last_downloaded_at")?,
        request_id: r.text_opt("request_id")?,
    })
}

pub(crate) fn event(r: &impl Columns) -> R<OutboxEvent> {
    Ok(OutboxEvent {
        seq: r.int("seq")?,
        event_id: r.text("event_id")?,
        tenant: r.text("tenant")?,
        kind: r.text("kind")?,
        payload: serde_json::from_str(&r.text("payload")?).unwrap_or_default(),
        created_at: r.int("created_at")?,
    })
}

pub(crate) fn dead_letter(r: &impl Columns) -> R<DeadLetter> {
    Ok(DeadLetter {
        sink: r.text("sink")?,
        seq: r.int("seq")?,
        event_id: r.text("event_id")?,
        attempts: r.int("attempts")?,
        last_error: r.text("last_error")?,
        dead_at: r.int("dead_at")?,
        retry: r.int("retry")? != 0,
    })
}

pub(crate) fn rejection(r: &impl Columns) -> R<Rejection> {
    Ok(Rejection {
        upload_id: r.text("id")?,
        tenant: r.text("tenant")?,
        name: r.text("name")?,
        at: r.int("updated_at")?,
        code: r.text_opt("code")?.unwrap_or_default(),
    })
}

pub(crate) fn dicom(r: &impl Columns) -> R<DicomRow> {
    Ok(DicomRow {
        path: r.text("path")?,
        patient_id: r.text("patient_id")?,
        patient_name: r.text("patient_name")?,
        study_uid: r.text("study_uid")?,
        series_uid: r.text("series_uid")?,
        sop_uid: r.text("sop_uid")?,
        sop_class_uid: r.text("sop_class_uid")?,
        transfer_syntax: r.text("transfer_syntax")?,
        modality: r.text("modality")?,
        study_date: r.text("study_date")?,
        study_time: r.text("study_time")?,
        accession_number: r.text("accession_number")?,
        institution_name: r.text("institution_name")?,
        number_of_frames: r
            .int_opt("number_of_frames")?
            .and_then(|n| u32::try_from(n).ok()),
        patient_birth_date: r.text("patient_birth_date")?,
        patient_sex: r.text("patient_sex")?,
        study_description: r.text("study_description")?,
        study_id: r.text("study_id")?,
        referring_physician: r.text("referring_physician")?,
        series_description: r.text("series_description")?,
        series_number: r.text("series_number")?,
        instance_number: r.text("instance_number")?,
        attributes: r.text("attributes")?,
    })
}

/// A study or series with its counts (`n_series`, `n_instances`) and its modalities
/// joined by commas (`mods`).
pub(crate) fn group(r: &impl Columns) -> R<DicomGroup> {
    let mut modalities: Vec<String> = r
        .text_opt("mods")?
        .unwrap_or_default()
        .split(',')
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect();
    modalities.sort();
    modalities.dedup();
    Ok(DicomGroup {
        row: dicom(r)?,
        tenant: r.text("tenant")?,
        series: r.int("n_series")?,
        instances: r.int("n_instances")?,
        modalities,
    })
}
