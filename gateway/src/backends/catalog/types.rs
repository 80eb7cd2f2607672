//! The catalog's records, independent of the database behind it.

use crate::checks::{Check, CheckResult, Status};
use crate::events::{Event, FileFacts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    Receiving,
    Accepted,
    Checking,
    Indexed,
    Rejected,
    Expired,
    /// A pre-check (rule 21) that passed: checked in full, never indexed.
    Prechecked,
}

impl UploadState {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Receiving => "receiving",
            UploadState::Accepted => "accepted",
            UploadState::Checking => "checking",
            UploadState::Indexed => "indexed",
            UploadState::Rejected => "rejected",
            UploadState::Expired => "expired",
            UploadState::Prechecked => "prechecked",
        }
    }

    pub fn parse(s: &str) -> Option<UploadState> {
        Some(match s {
            "receiving" => UploadState::Receiving,
            "accepted" => UploadState::Accepted,
            "checking" => UploadState::Checking,
            "indexed" => UploadState::Indexed,
            "rejected" => UploadState::Rejected,
            "expired" => UploadState::Expired,
            "prechecked" => UploadState::Prechecked,
            _ => return None,
        })
    }
}

/// Whether this node holds a lease it asked for (`Leases`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Held,
    /// Another node holds it, until the given time (unix seconds).
    Busy(i64),
}

#[derive(Debug, Clone)]
pub struct UploadRow {
    pub id: String,
    pub tenant: String,
    pub name: String,
    pub protocol: String,
    pub state: UploadState,
    pub declared_len: Option<u64>,
    pub durable_offset: u64,
    pub plaintext_len: Option<u64>,
    pub plaintext_sha256: Option<String>,
    pub accept_seq: Option<i64>,
    /// When it was accepted (unix seconds).
    pub accepted_at: Option<i64>,
    /// Its last change (unix seconds); a partial upload expires counting from here.
    pub updated_at: i64,
    /// Checks started so far, this one included once it is claimed.
    pub check_attempts: u32,
    /// What a deferred check waits for (`members`: a DICOMDIR for the files it
    /// references; `dicomdir`: a loose DICOM file for a set to belong to).
    pub waits_for: Option<String>,
    /// The request this upload answers, as its client gave it (rule 20).
    pub request_id: Option<String>,
}

impl UploadRow {
    /// Whether this upload is a pre-check (rule 21): named under `precheck/`.
    pub fn is_precheck(&self) -> bool {
        crate::session::names::is_precheck(&self.name)
    }
}

/// What a tenant holds and has in flight, for quota checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantUsage {
    pub accepted_bytes: u64,
    pub accepted_files: u64,
    pub receiving: u64,
}

/// A file about to be indexed.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub id: String,
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    pub object_key: String,
    pub metadata: serde_json::Value,
    /// Seconds the file is kept after indexing (retention); `None` = kept.
    pub retain_secs: Option<i64>,
    /// DICOM instances the file holds (itself, or entries of a batch/set).
    pub instances: Vec<DicomRow>,
    /// The request the file answers (rule 20), also in `metadata.request`.
    pub request_id: Option<String>,
}

impl NewFile {
    /// The `file.indexed` event for this file of `upload`, now.
    pub fn indexed_event(&self, upload: &UploadRow, checks: &[Check]) -> Event {
        Event::FileIndexed {
            file: FileFacts {
                tenant: upload.tenant.clone(),
                upload_id: upload.id.clone(),
                file_id: self.id.clone(),
                name: self.name.clone(),
                sha256: self.sha256.clone(),
                size: self.size,
                media_type: self.media_type.clone(),
            },
            metadata: self.metadata.clone(),
            checks: checks.to_vec(),
            at: crate::util::unix_now(),
        }
    }
}

/// One DICOM instance for the four-level index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DicomRow {
    /// Entry path inside the file (a ZIP batch); empty for the file itself.
    pub path: String,
    pub patient_id: String,
    pub patient_name: String,
    pub study_uid: String,
    pub series_uid: String,
    pub sop_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax: String,
    pub modality: String,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub institution_name: String,
    pub number_of_frames: Option<u32>,
    pub patient_birth_date: String,
    pub patient_sex: String,
    pub study_description: String,
    pub study_id: String,
    pub referring_physician: String,
    pub series_description: String,
    pub series_number: String,
    pub instance_number: String,
    /// The instance's other short attributes, a DICOM JSON object (`{}` when none):
    /// what `includefield` adds and matching on any other attribute looks into.
    pub attributes: String,
}

/// A folder's uploads seen from one of them: how many wait for a check, and when the
/// last arrived or received bytes (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FolderActivity {
    pub pending: u64,
    pub last_arrival: Option<i64>,
}

/// An earlier indexed file with the same content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameContent {
    pub file_id: String,
    pub name: String,
    pub indexed_at: i64,
}

/// A current file, as a manifest check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentFile {
    pub file_id: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// An indexed file, as the review API shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FileRow {
    /// Increasing with indexing order; the listing cursor.
    #[serde(skip)]
    pub seq: i64,
    pub id: String,
    pub upload_id: String,
    pub tenant: String,
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    #[serde(skip)]
    pub object_key: String,
    pub metadata: serde_json::Value,
    pub indexed_at: i64,
    pub superseded_by: Option<String>,
    pub expires_at: Option<i64>,
    pub expired_at: Option<i64>,
    pub downloads: i64,
    pub last_downloaded_at: Option<i64>,
    pub request_id: Option<String>,
}

impl FileRow {
    /// Rule 13's download state: `ready`, `downloaded` (still re-downloadable), or
    /// `expired` (retention removed its bytes).
    pub fn status(&self) -> &'static str {
        if self.expired_at.is_some() {
            "expired"
        } else if self.downloads > 0 {
            "downloaded"
        } else {
            "ready"
        }
    }
}

/// Filters of a file listing; every field narrows it, `None` = any.
#[derive(Debug, Clone, Default)]
pub struct FileQuery {
    /// Tenants the caller may read; `None` = all.
    pub tenants: Option<Vec<String>>,
    pub tenant: Option<String>,
    /// `ready`, `downloaded`, `expired`, `current` (not superseded, not expired),
    /// `live` (not expired).
    pub status: Option<String>,
    pub media_type: Option<String>,
    /// Review-record name parts (metadata.case).
    pub category: Option<String>,
    pub case_class: Option<String>,
    pub serial: Option<String>,
    /// The request the files answer (rule 20).
    pub request_id: Option<String>,
    /// DICOM index fields (any instance of the file).
    pub patient_id: Option<String>,
    pub study_uid: Option<String>,
    pub modality: Option<String>,
    /// DICOM StudyDate range, `YYYYMMDD`, inclusive.
    pub study_date_from: Option<String>,
    pub study_date_to: Option<String>,
    /// Indexed at or after / before (unix seconds).
    pub indexed_from: Option<i64>,
    pub indexed_to: Option<i64>,
    /// Files after this listing cursor.
    pub after: Option<i64>,
    pub limit: i64,
}

/// One outbox event.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEvent {
    pub seq: i64,
    pub event_id: String,
    pub tenant: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_at: i64,
}

/// An event a sink gave up on.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadLetter {
    pub sink: String,
    pub seq: i64,
    pub event_id: String,
    pub attempts: i64,
    pub last_error: String,
    pub dead_at: i64,
    pub retry: bool,
}

/// A file retention removed from the index; its object may now be unreferenced.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpiredFile {
    pub file_id: String,
    pub tenant: String,
    pub object_key: String,
}

/// The level a DICOM query answers at (QIDO-RS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DicomLevel {
    Study,
    Series,
    Instance,
}

/// Matching on an attribute without a column of its own (`?Rows=512`): looked up in
/// the instance's `attributes` (DICOM JSON); any of its values may match.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeMatch {
    /// `GGGGEEEE`, upper case.
    pub tag: String,
    pub value: AttributeValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// Equal to this number (the numeric VRs).
    Number(f64),
    /// Equal to this text, or matching its wildcards `*` and `?` (a person name by its
    /// Alphabetic group).
    Text(String),
    /// Within these inclusive bounds (dates and times).
    Range(Option<String>, Option<String>),
}

/// A QIDO-RS query, already parsed. Text matches may hold DICOM wildcards (`*`, `?`).
#[derive(Debug, Clone)]
pub struct DicomQuery {
    pub level: DicomLevel,
    /// Tenants the caller may read; `None` = all.
    pub tenants: Option<Vec<String>>,
    pub study_uids: Vec<String>,
    pub series_uids: Vec<String>,
    pub sop_uids: Vec<String>,
    pub patient_name: Option<String>,
    pub patient_id: Option<String>,
    pub accession_number: Option<String>,
    pub study_description: Option<String>,
    pub study_id: Option<String>,
    pub referring_physician: Option<String>,
    /// Series/instance level: the instance's modality; study level: any in the study.
    pub modality: Option<String>,
    /// `YYYYMMDD` bounds, inclusive.
    pub study_date_from: Option<String>,
    pub study_date_to: Option<String>,
    /// `HHMMSS` bounds, inclusive.
    pub study_time_from: Option<String>,
    pub study_time_to: Option<String>,
    pub series_number: Option<String>,
    pub instance_number: Option<String>,
    pub sop_class_uid: Option<String>,
    /// Every one must match.
    pub attributes: Vec<AttributeMatch>,
    pub limit: i64,
    pub offset: i64,
}

impl DicomQuery {
    /// Everything at `level` that `tenants` may read (`None` = all), first page.
    pub fn new(level: DicomLevel, tenants: Option<Vec<String>>) -> DicomQuery {
        DicomQuery {
            level,
            tenants,
            study_uids: Vec::new(),
            series_uids: Vec::new(),
            sop_uids: Vec::new(),
            patient_name: None,
            patient_id: None,
            accession_number: None,
            study_description: None,
            study_id: None,
            referring_physician: None,
            modality: None,
            study_date_from: None,
            study_date_to: None,
            study_time_from: None,
            study_time_to: None,
            series_number: None,
            instance_number: None,
            sop_class_uid: None,
            attributes: Vec::new(),
            limit: 1000,
            offset: 0,
        }
    }
}

/// One answer of a study or series query: a representative instance plus counts.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomGroup {
    pub row: DicomRow,
    pub tenant: String,
    pub series: i64,
    pub instances: i64,
    /// Distinct modalities, sorted.
    pub modalities: Vec<String>,
}

/// Where an indexed instance's bytes are: its file, and the entry path inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomLocation {
    pub tenant: String,
    pub file_id: String,
    pub object_key: String,
    pub media_type: String,
    pub path: String,
    pub row: DicomRow,
}

/// A rejected upload, for an operator's summary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rejection {
    pub upload_id: String,
    pub tenant: String,
    pub name: String,
    pub at: i64,
    pub code: String,
}

/// The hospital-facing result of `up` with its findings.
pub fn result_of(up: UploadRow, checks: Vec<Check>) -> CheckResult {
    let status = match up.state {
        UploadState::Receiving => Status::Receiving,
        UploadState::Accepted | UploadState::Checking => Status::Checking,
        UploadState::Indexed | UploadState::Prechecked => Status::Passed,
        UploadState::Rejected => Status::Failed,
        UploadState::Expired => Status::Expired,
    };
    let precheck = up.is_precheck();
    CheckResult {
        upload_id: up.id,
        tenant: up.tenant,
        name: up.name,
        status,
        received_bytes: up.durable_offset,
        sha256: up.plaintext_sha256,
        precheck,
        checks,
        download: None,
    }
}
