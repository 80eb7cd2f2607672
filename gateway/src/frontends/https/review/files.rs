//! `GET /v1/files` (filtered, cursor-paginated listing in indexing order) and
//! `GET /v1/files/{id}` (one file with its check result).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Reviewer, not_found, unavailable};
use crate::backends::catalog::{FileQuery, FileRow};
use crate::frontends::https::{Https, Problem};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    tenant: Option<String>,
    /// ready | downloaded | expired | current | any (default: ready and downloaded)
    status: Option<String>,
    /// A media type, or pdf | dicom | zip.
    r#type: Option<String>,
    category: Option<String>,
    case_class: Option<String>,
    serial: Option<String>,
    /// The request the files answer (rule 20).
    request_id: Option<String>,
    patient_id: Option<String>,
    study_uid: Option<String>,
    modality: Option<String>,
    /// `YYYYMMDD`, `YYYYMMDD-`, `-YYYYMMDD` or `YYYYMMDD-YYYYMMDD` (DICOM StudyDate).
    study_date: Option<String>,
    /// Indexed at or after / before: RFC 3339, `YYYY-MM-DD` or unix seconds.
    indexed_from: Option<String>,
    indexed_to: Option<String>,
    /// The same as `indexed_from`.
    uploaded_since: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

const MAX_PAGE: u32 = 1000;

fn bad(detail: &str) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "http.bad_query", detail)
}

fn media_type(t: &str) -> String {
    match t {
        "pdf" => "application/pdf".into(),
        "dicom" => "application/dicom".into(),
        "zip" => "application/zip".into(),
        other => other.into(),
    }
}

fn date_range(s: &str) -> Option<(Option<String>, Option<String>)> {
    let ok = |d: &str| d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit());
    let part = |d: &str| (!d.is_empty()).then(|| d.to_string());
    let (from, to) = s.split_once('-').unwrap_or((s, s));
    ((from.is_empty() || ok(from))
        && (to.is_empty() || ok(to))
        && !(from.is_empty() && to.is_empty()))
    .then(|| (part(from), part(to)))
}

fn instant(s: &Option<String>, name: &str) -> Result<Option<i64>, Problem> {
    s.as_deref()
        .map(|v| {
            crate::util::parse_instant(v)
                .ok_or_else(|| bad(&format!("{name}: RFC 3339, YYYY-MM-DD or unix seconds")))
        })
        .transpose()
}

impl ListQuery {
    fn to_query(&self, reviewer: &Reviewer) -> Result<FileQuery, Problem> {
        let status = match self.status.as_deref() {
            None => Some("live".to_string()),
            Some("any") => None,
            Some(s @ ("ready" | "downloaded" | "expired" | "current")) => Some(s.to_string()),
            Some(_) => return Err(bad("status: ready, downloaded, expired, current or any")),
        };
        let (study_date_from, study_date_to) = match self.study_date.as_deref() {
            None => (None, None),
            Some(s) => date_range(s).ok_or_else(|| bad("study_date: YYYYMMDD[-YYYYMMDD]"))?,
        };
        let after = self
            .cursor
            .as_deref()
            .map(|c| c.parse::<i64>().map_err(|_| bad("cursor: a `next` value")))
            .transpose()?;
        let indexed_from = match (
            instant(&self.indexed_from, "indexed_from")?,
            instant(&self.uploaded_since, "uploaded_since")?,
        ) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Ok(FileQuery {
            tenants: reviewer.grant.clone(),
            tenant: self.tenant.clone(),
            status,
            media_type: self.r#type.as_deref().map(media_type),
            category: self.category.clone(),
            case_class: self.case_class.clone(),
            request_id: self.request_id.clone(),
            serial: self.serial.clone(),
            patient_id: self.patient_id.clone(),
            study_uid: self.study_uid.clone(),
            modality: self.modality.clone(),
            study_date_from,
            study_date_to,
            indexed_from,
            indexed_to: instant(&self.indexed_to, "indexed_to")?,
            after,
            limit: i64::from(self.limit.unwrap_or(100).clamp(1, MAX_PAGE)),
        })
    }
}

/// A file as the API shows it.
pub fn file_json(f: &FileRow) -> serde_json::Value {
    let mut v = serde_json::to_value(f).unwrap_or_default();
    v["status"] = json!(f.status());
    v["indexed_at"] = json!(crate::util::rfc3339(f.indexed_at));
    v["expires_at"] = json!(f.expires_at.map(crate::util::rfc3339));
    v["expired_at"] = json!(f.expired_at.map(crate::util::rfc3339));
    v["last_downloaded_at"] = json!(f.last_downloaded_at.map(crate::util::rfc3339));
    v["content"] = json!(format!("/v1/files/{}/content", f.id));
    v
}

/// `GET /v1/files`.
pub async fn list(
    State(s): State<Https>,
    reviewer: Reviewer,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return bad("unknown or malformed query parameter (see /v1/openapi.json)").into_response();
    };
    let fq = match q.to_query(&reviewer) {
        Ok(fq) => fq,
        Err(p) => return p.into_response(),
    };
    let rows = match s.app.catalog.list_files(&fq).await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    // The cursor always advances to the last file seen (or stays), so a client can
    // keep polling from it for files indexed later: no gaps, no repeats.
    let next = rows.last().map(|f| f.seq).or(fq.after).unwrap_or(0);
    Json(json!({
        "files": rows.iter().map(file_json).collect::<Vec<_>>(),
        "next": next.to_string(),
        "more": rows.len() as i64 == fq.limit,
    }))
    .into_response()
}

/// `GET /v1/files/{id}`: metadata, state and the upload's check result.
pub async fn get(State(s): State<Https>, reviewer: Reviewer, Path(id): Path<String>) -> Response {
    let file = match s.app.catalog.file(&id).await {
        Ok(Some(f)) if reviewer.may_read(&f.tenant) => f,
        Ok(_) => return not_found(),
        Err(e) => return unavailable(&e),
    };
    let result = match s.app.catalog.check_result(&file.upload_id).await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    let mut v = file_json(&file);
    v["result"] = serde_json::to_value(result).unwrap_or_default();
    Json(v).into_response()
}
