//! tus 1.0 at `/v1/uploads`: core protocol plus the creation, creation-with-upload,
//! creation-defer-length, checksum, expiration and termination extensions. Every
//! request goes through the one ingest session ([`crate::session`]); this file only
//! translates headers.
//!
//! A PATCH answers `204` only once its bytes are durable, and the PATCH that completes
//! an upload answers only once the upload is *accepted* (the commit point), so an
//! acknowledged offset is never lost. Bodies stream through in blocks; only a PATCH
//! with `Upload-Checksum` is held in memory (bounded) until its digest is checked, so
//! that a mismatch appends nothing.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::auth::Caller;
use super::{Https, Problem, ingest_problem, problem};
use crate::backends::catalog::{UploadRow, UploadState};
use crate::session::{IngestError, Upload};

mod body;
mod metadata;

use body::{Cut, Pool, Revocation, checksummed, next_data, stream_into};
pub use metadata::{checksum_spec, metadata_file_name, metadata_value};
use metadata::{file_name, upload_intent};

pub const TUS_VERSION: &str = "1.0.0";
pub const EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,checksum,expiration,termination";
pub const CHECKSUMS: &str = "sha256,sha1";
pub(super) const OFFSET_STREAM: &str = "application/offset+octet-stream";

pub(super) fn h(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(super) fn num(v: u64) -> HeaderValue {
    HeaderValue::from(v)
}

/// Adds `Upload-Expires` for a partial upload last touched at `updated_at`.
fn expires(resp: &mut Response, s: &Https, updated_at: i64) {
    let hours = s.app.config.ingest.partial_expiry_hours;
    let at = updated_at.max(0) as u64 + hours.saturating_mul(3600);
    let when = std::time::UNIX_EPOCH + Duration::from_secs(at);
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(when)) {
        resp.headers_mut().insert(h("upload-expires"), v);
    }
}

/// `OPTIONS`: what this server speaks.
pub async fn options(State(s): State<Https>) -> Response {
    let mut r = StatusCode::NO_CONTENT.into_response();
    let hd = r.headers_mut();
    hd.insert(h("tus-version"), HeaderValue::from_static(TUS_VERSION));
    hd.insert(h("tus-extension"), HeaderValue::from_static(EXTENSIONS));
    hd.insert(
        h("tus-checksum-algorithm"),
        HeaderValue::from_static(CHECKSUMS),
    );
    hd.insert(
        h("tus-max-size"),
        num(s.app.ingest.settings().max_file_bytes),
    );
    r
}

/// `POST`: creates an upload (and with a body, appends to it at once).
pub async fn create(
    State(s): State<Https>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut body = Some(body);
    let resp = create_upload(&s, &caller, &headers, &mut body).await;
    drain(&s, body).await;
    resp
}

async fn create_upload(
    s: &Https,
    caller: &Caller,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Response {
    let declared = match (
        header(headers, "upload-length"),
        header(headers, "upload-defer-length"),
    ) {
        (Some(v), _) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "tus.bad_length",
                    "Upload-Length must be a non-negative integer",
                );
            }
        },
        (None, Some("1")) => None,
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "tus.length_missing",
                "send Upload-Length, or Upload-Defer-Length: 1",
            );
        }
    };
    let name = match file_name(headers) {
        Ok(n) => n,
        Err(p) => return p.into_response(),
    };
    if let Err(why) = crate::session::names::check_client(&name) {
        return problem(StatusCode::BAD_REQUEST, "ingest.name_not_allowed", why);
    }
    let (precheck, request_id) = match upload_intent(s, &caller.who.tenant, headers) {
        Ok(i) => i,
        Err(p) => return p.into_response(),
    };
    let name = if precheck {
        crate::session::names::precheck(&name)
    } else {
        name
    };
    let up = match s.app.ingest.create(&caller.who, &name, declared).await {
        Ok(up) => up,
        Err(e) => return ingest_problem(&e),
    };
    let id = up.id().to_string();
    if let Some(r) = &request_id
        && let Err(e) = s.app.ingest.catalog().set_upload_request(&id, r).await
    {
        return ingest_problem(&e.into());
    }
    if let super::auth::Credential::Vendor { name: vendor, .. } = &caller.credential {
        // The audit actor is the hospital and its vendor together (rule 17).
        let actor = format!("{} via vendor {vendor}", caller.who.tenant);
        let detail = serde_json::json!({ "upload": id, "name": name, "vendor": vendor, "ip": caller.ip.to_string() });
        if let Err(e) = s
            .app
            .ingest
            .catalog()
            .audit(&actor, "vendor.upload", &detail)
            .await
        {
            tracing::warn!(error = %e, "audit record not written");
        }
    }
    let Some(mut slot) = s.open.hold(&id) else {
        return problem(StatusCode::LOCKED, "tus.busy", "the upload is in use");
    };
    let location = format!("/v1/uploads/{id}");
    let with_body = header(headers, "content-type") == Some(OFFSET_STREAM);
    let mut resp = if with_body {
        let body = body.take().unwrap_or_default();
        append(s, caller, &mut slot, up, 0, headers, body).await
    } else {
        let updated_at = crate::util::unix_now();
        *slot = Some(up);
        let mut r = StatusCode::NO_CONTENT.into_response();
        r.headers_mut().insert(h("upload-offset"), num(0));
        expires(&mut r, s, updated_at);
        r
    };
    if resp.status().is_success() {
        *resp.status_mut() = StatusCode::CREATED;
    }
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    resp
}

/// The upload `id` if it is the caller's; another tenant's id is "not found".
async fn row_of(s: &Https, caller: &Caller, id: &str) -> Result<UploadRow, Response> {
    match s.app.catalog.upload(id).await {
        Ok(Some(row)) if row.tenant == caller.who.tenant => Ok(row),
        Ok(_) => Err(problem(
            StatusCode::NOT_FOUND,
            "ingest.not_found",
            "no such upload",
        )),
        Err(e) => Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            e.code(),
            &e.to_string(),
        )),
    }
}

fn gone_unless_receiving(row: &UploadRow) -> Result<(), Problem> {
    match row.state {
        UploadState::Receiving => Ok(()),
        UploadState::Expired => Err(Problem::new(
            StatusCode::GONE,
            "ingest.expired",
            "the upload expired or was terminated; start a new one",
        )),
        _ => Err(Problem::new(
            StatusCode::FORBIDDEN,
            "ingest.not_receiving",
            "the upload is complete; see its result",
        )),
    }
}

/// `HEAD`: where to continue.
pub async fn head(State(s): State<Https>, caller: Caller, Path(id): Path<String>) -> Response {
    let mut row = match row_of(&s, &caller, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if row.state == UploadState::Receiving
        && row.declared_len == Some(row.durable_offset)
        && let Some(done) = complete_whole(&s, &caller, &id).await
    {
        row = done;
    }
    if row.state == UploadState::Expired {
        return StatusCode::GONE.into_response();
    }
    // Another request writing now: its bytes are not acknowledged yet, so the durable
    // offset recorded in the catalog is the right answer.
    let mut r = StatusCode::OK.into_response();
    let hd = r.headers_mut();
    hd.insert(h("upload-offset"), num(row.durable_offset));
    match row.declared_len {
        Some(n) => hd.insert(h("upload-length"), num(n)),
        None => hd.insert(h("upload-defer-length"), HeaderValue::from_static("1")),
    };
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode(&row.name)
    );
    if let Ok(v) = HeaderValue::from_str(&meta) {
        hd.insert(h("upload-metadata"), v);
    }
    hd.insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    if row.state == UploadState::Receiving {
        expires(&mut r, &s, row.updated_at);
    }
    r
}

/// Every declared byte is durable but the request that brought the last ones ended
/// badly (the client went away before the answer): the upload is complete, so it is
/// finished now instead of waiting as a partial upload until it expires. `None` when
/// another request holds it or it cannot be finished here (its result says why).
async fn complete_whole(s: &Https, caller: &Caller, id: &str) -> Option<UploadRow> {
    let mut slot = s.open.hold(id)?;
    let up = match slot.take() {
        Some(up) => up,
        None => s.app.ingest.resume(&caller.who, id).await.ok()?,
    };
    if up.declared_len() != Some(up.offset()) {
        *slot = Some(up);
        return None;
    }
    s.open.forget(id);
    if let Err(e) = up.finish().await {
        tracing::info!(
            upload = id,
            code = e.code(),
            "completing a whole upload on HEAD failed"
        );
    }
    s.app.catalog.upload(id).await.ok().flatten()
}

/// `PATCH`: appends the body at `Upload-Offset`.
pub async fn patch(
    State(s): State<Https>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut body = Some(body);
    let resp = patch_upload(&s, &caller, &id, &headers, &mut body).await;
    drain(&s, body).await;
    resp
}

/// Bytes of an unread body read and dropped before a refusal is sent. Answering
/// without reading it makes the connection close under a client still sending, which
/// then sees a broken pipe instead of the answer; beyond this, that is the lesser cost.
const DRAIN_MAX: u64 = 8 << 20;

/// Reads and drops what is left of a refused request's body (bounded).
pub(crate) async fn drain(s: &Https, body: Option<Body>) {
    let Some(mut body) = body else { return };
    let idle = Duration::from_secs(s.app.config.https.body_idle_timeout_secs.max(1));
    let mut seen = 0u64;
    while seen <= DRAIN_MAX {
        match next_data(&mut body, idle).await {
            Ok(Some(d)) => seen += d.len() as u64,
            _ => return,
        }
    }
}

async fn patch_upload(
    s: &Https,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    body: &mut Option<Body>,
) -> Response {
    if header(headers, "content-type") != Some(OFFSET_STREAM) {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "tus.content_type",
            "PATCH bodies are application/offset+octet-stream",
        );
    }
    let Some(offset) = header(headers, "upload-offset").and_then(|v| v.parse::<u64>().ok()) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "tus.offset_missing",
            "send Upload-Offset",
        );
    };
    let row = match row_of(s, caller, id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Err(p) = gone_unless_receiving(&row) {
        return p.into_response();
    }
    let Some(mut slot) = s.open.hold(id) else {
        return problem(
            StatusCode::LOCKED,
            "tus.busy",
            "another request is writing to this upload",
        );
    };
    let up = match slot.take() {
        Some(up) => up,
        None => match s.app.ingest.resume(&caller.who, id).await {
            Ok(up) => up,
            Err(e) => return ingest_problem(&e),
        },
    };
    let body = body.take().unwrap_or_default();
    append(s, caller, &mut slot, up, offset, headers, body).await
}

/// Appends `body` at `offset` and answers; the upload goes back into `slot` unless it
/// ended (accepted or rejected).
async fn append(
    s: &Https,
    caller: &Caller,
    slot: &mut super::open_uploads::Held,
    mut up: Upload,
    offset: u64,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    if let Some(len) = header(headers, "upload-length") {
        let declared = match len.parse::<u64>() {
            Ok(n) => up.declare_len(n).await,
            Err(_) => Err(IngestError::LengthExceeded { declared: 0 }),
        };
        if let Err(e) = declared {
            **slot = Some(up);
            drain(s, Some(body)).await;
            return ingest_problem(&e);
        }
    }
    if offset != up.offset() {
        let mut r = ingest_problem(&IngestError::OffsetMismatch {
            expected: up.offset(),
            got: offset,
        });
        r.headers_mut().insert(h("upload-offset"), num(up.offset()));
        **slot = Some(up);
        drain(s, Some(body)).await;
        return r;
    }
    let idle = Duration::from_secs(s.app.config.https.body_idle_timeout_secs.max(1));
    let result = match header(headers, "upload-checksum") {
        Some(c) => {
            match checksummed(c, body, idle, s.app.config.https.checksum_max_chunk_bytes).await {
                Ok(bytes) if bytes.is_empty() => Ok(()),
                Ok(bytes) => up.write_at(offset, bytes).await.map_err(Cut::Ingest),
                Err(r) => Err(r),
            }
        }
        None => {
            let watch = Revocation {
                changes: s.app.tenants.changes(),
                caller,
                tenants: &s.app.tenants,
            };
            let block = usize::try_from(s.app.config.https.upload_write_kib.max(4) << 10)
                .unwrap_or(1 << 20);
            let total = s.app.config.https.upload_buffer_mib.max(1) * 1024;
            let pool = Pool {
                buffers: s.buffers.clone(),
                total_kib: u32::try_from(total).unwrap_or(u32::MAX),
                block,
            };
            stream_into(&mut up, body, idle, watch, pool).await
        }
    };
    let id = up.id().to_string();
    if let Err(Cut::Ingest(e)) = &result
        && !e.is_resumable()
        && !matches!(
            e,
            IngestError::Io(_) | IngestError::Catalog(_) | IngestError::Checkpoint(_)
        )
    {
        s.open.forget(&id);
        return ingest_problem(e);
    }
    // Complete even when the body then broke (the client went away after its last
    // byte): every declared byte is here, so there is nothing left to resume.
    let complete = up.declared_len() == Some(up.offset());
    if complete && matches!(result, Ok(()) | Err(Cut::Client | Cut::Idle)) {
        s.open.forget(&id);
        let len = up.offset();
        return match up.finish().await {
            Ok(_) => {
                let mut r = StatusCode::NO_CONTENT.into_response();
                r.headers_mut().insert(h("upload-offset"), num(len));
                r
            }
            Err(e) => ingest_problem(&e),
        };
    }
    if up.is_broken() {
        // A storage or catalog error (a full disk, say): this open upload is dropped and
        // the next request reopens it from its durable offset, re-verified.
        s.open.forget(&id);
        return match result {
            Err(Cut::Ingest(e)) => ingest_problem(&e),
            _ => ingest_problem(&IngestError::Io(std::io::Error::other("storage error"))),
        };
    }
    // Acknowledge only what is durable.
    let durable = up.sync().await;
    if up.is_broken() {
        s.open.forget(&id);
        return match durable {
            Err(e) => ingest_problem(&e),
            Ok(_) => ingest_problem(&IngestError::Io(std::io::Error::other("storage error"))),
        };
    }
    let reply = match (durable, result) {
        (Err(e), _) => ingest_problem(&e),
        (Ok(_), Err(cut)) => cut.into_response(),
        (Ok(at), Ok(())) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            r.headers_mut().insert(h("upload-offset"), num(at));
            expires(&mut r, s, crate::util::unix_now());
            r
        }
    };
    **slot = Some(up);
    reply
}

/// `DELETE` (termination): gives up a partial upload. Accepted files are never deleted.
pub async fn terminate(State(s): State<Https>, caller: Caller, Path(id): Path<String>) -> Response {
    let row = match row_of(&s, &caller, &id).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if let Err(p) = gone_unless_receiving(&row) {
        return p.into_response();
    }
    let Some(mut slot) = s.open.hold(&id) else {
        return problem(StatusCode::LOCKED, "tus.busy", "the upload is in use");
    };
    drop(slot.take());
    s.open.forget(&id);
    match s
        .app
        .ingest
        .abandon(&row, "terminated by the client (tus)")
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ingest_problem(&e),
    }
}
