//! What a hospital asks about its own uploads over HTTPS: one upload's check result
//! (`GET /v1/uploads/{id}/result`, the same JSON as `/results/<name>.json` over SFTP)
//! and a paginated list of its uploads (`GET /v1/uploads?status=…`).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Caller;
use super::{Https, problem};
use crate::backends::catalog::UploadState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultQuery {
    /// json (default) | txt: the error report (檢核錯誤明細表) as text, to save or print.
    format: Option<String>,
}

/// `GET /v1/uploads/{id}/result?format=json|txt`.
pub async fn result(
    State(s): State<Https>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<ResultQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let text = match query.as_ref().map(|q| q.format.as_deref()) {
        Ok(None | Some("json")) => false,
        Ok(Some("txt" | "text")) => true,
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "http.bad_query",
                "format is json or txt",
            );
        }
    };
    let found = s.app.catalog.check_result(&id).await;
    match found {
        Ok(Some(r)) if r.tenant == caller.who.tenant && text => {
            let file = format!(
                "attachment; filename=\"{}.result.txt\"",
                r.name
                    .rsplit('/')
                    .next()
                    .unwrap_or("upload")
                    .replace('"', "")
            );
            let disposition = axum::http::HeaderValue::from_str(&file)
                .unwrap_or(axum::http::HeaderValue::from_static("attachment"));
            (
                [
                    (
                        axum::http::header::CONTENT_TYPE,
                        axum::http::HeaderValue::from_static("text/plain; charset=utf-8"),
                    ),
                    (axum::http::header::CONTENT_DISPOSITION, disposition),
                ],
                r.to_text(),
            )
                .into_response()
        }
        Ok(Some(r)) if r.tenant == caller.who.tenant => Json(r).into_response(),
        Ok(_) => problem(StatusCode::NOT_FOUND, "ingest.not_found", "no such upload"),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// The batch folder (`case-7` or `case-7/`); empty or absent: every upload.
    folder: Option<String>,
    /// json (default) | csv | txt
    format: Option<String>,
}

/// `GET /v1/results/summary?folder=…&format=json|csv|txt`: a batch's result list
/// (rule 22), the same document as `/results/<folder>/SUMMARY.*` over SFTP.
pub async fn summary(
    State(s): State<Https>,
    caller: Caller,
    query: Result<Query<SummaryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(
            StatusCode::BAD_REQUEST,
            "http.bad_query",
            "query parameters: folder, format (json, csv or txt)",
        );
    };
    let folder = match q.folder.as_deref().map(|f| f.trim_matches('/')) {
        None | Some("") => String::new(),
        Some(f) => format!("{f}/"),
    };
    let format = q.format.as_deref().unwrap_or("json");
    let mime = match format {
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "txt" | "text" => "text/plain; charset=utf-8",
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "http.bad_query",
                "format is json, csv or txt",
            );
        }
    };
    match crate::session::summary::of_folder(&s.app.catalog, &caller.who.tenant, &folder).await {
        Ok(sum) => {
            let body = sum.render(format).unwrap_or_default();
            ([(axum::http::header::CONTENT_TYPE, mime)], body).into_response()
        }
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// receiving | accepted | checking | indexed | rejected | expired
    status: Option<String>,
    /// The `next` cursor of the previous page.
    cursor: Option<String>,
    limit: Option<u32>,
}

const MAX_PAGE: u32 = 500;

/// `GET /v1/uploads`: the caller's uploads, newest first.
pub async fn list(
    State(s): State<Https>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(
            StatusCode::BAD_REQUEST,
            "http.bad_query",
            "query parameters: status, cursor, limit",
        );
    };
    let state = match q.status.as_deref().map(UploadState::parse) {
        None => None,
        Some(Some(st)) => Some(st),
        Some(None) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "http.bad_query",
                "status is one of receiving, accepted, checking, indexed, rejected, expired",
            );
        }
    };
    let limit = q.limit.unwrap_or(100).clamp(1, MAX_PAGE);
    let rows = s
        .app
        .catalog
        .list_uploads(
            &caller.who.tenant,
            state,
            q.cursor.as_deref(),
            i64::from(limit),
        )
        .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    };
    // Each indexed file's download state (rule 19), in one query for the page.
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let downloads: std::collections::HashMap<String, crate::checks::DownloadState> = match s
        .app
        .catalog
        .download_states_of(&caller.who.tenant, &ids)
        .await
    {
        Ok(d) => d.into_iter().collect(),
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string()),
    };
    // A full page may have a successor; its last id is the cursor.
    let next = rows
        .last()
        .filter(|_| rows.len() == limit as usize)
        .map(|r| r.id.clone());
    let uploads: Vec<_> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "name": r.name,
                "status": r.state.as_str(),
                "protocol": r.protocol,
                "received_bytes": r.durable_offset,
                "length": r.declared_len,
                "sha256": r.plaintext_sha256,
                "result": format!("/v1/uploads/{}/result", r.id),
                "download": downloads.get(&r.id),
            })
        })
        .collect();
    Json(serde_json::json!({ "uploads": uploads, "next": next })).into_response()
}
