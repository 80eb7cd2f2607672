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
use http_body_util::BodyExt;

use super::auth::Caller;
use super::{Https, Problem, ingest_problem, problem};
use crate::backends::catalog::{UploadRow, UploadState};
use crate::session::{IngestError, Upload};

pub const TUS_VERSION: &str = "1.0.0";
pub const EXTENSIONS: &str =
    "creation,creation-with-upload,creation-defer-length,checksum,expiration,termination";
pub const CHECKSUMS: &str = "sha256,sha1";
const OFFSET_STREAM: &str = "application/offset+octet-stream";

fn h(name: &'static str) -> HeaderName {
    HeaderName::from_static(name)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn num(v: u64) -> HeaderValue {
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

/// Parses `Upload-Metadata` (`key base64,key base64`); returns the file name.
fn file_name(headers: &HeaderMap) -> Result<String, Problem> {
    let meta = header(headers, "upload-metadata").unwrap_or("");
    metadata_file_name(meta)
        .map_err(|detail| Problem::new(StatusCode::BAD_REQUEST, "tus.bad_metadata", detail))
}

/// The file name an `Upload-Metadata` value carries, or why it carries none.
pub fn metadata_file_name(meta: &str) -> Result<String, &'static str> {
    for key in ["filename", "name"] {
        if let Some(v) = metadata_value(meta, key)? {
            return Ok(v);
        }
    }
    Err("Upload-Metadata must carry the file name as `filename` (or `name`)")
}

/// The value of `key` in an `Upload-Metadata` value: `None` if absent, `Some("")` for
/// a key given without a value (tus allows that), or why the value is unreadable.
pub fn metadata_value(meta: &str, key: &str) -> Result<Option<String>, &'static str> {
    for pair in meta.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, value) = pair.split_once(' ').unwrap_or((pair, ""));
        if k == key {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| "Upload-Metadata values must be base64")?;
            return String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| "Upload-Metadata values must be UTF-8 (and names ASCII)");
        }
    }
    Ok(None)
}

/// What `Upload-Metadata` asks besides the name: a pre-check (key `precheck`, any
/// value or none; rule 21) and the request the upload answers (`request_id`,
/// rule 20), validated for the tenant's profile before anything is created.
fn upload_intent(
    s: &Https,
    tenant: &str,
    headers: &HeaderMap,
) -> Result<(bool, Option<String>), Problem> {
    let meta = header(headers, "upload-metadata").unwrap_or("");
    let bad = |detail| Problem::new(StatusCode::BAD_REQUEST, "tus.bad_metadata", detail);
    let precheck = metadata_value(meta, "precheck").map_err(bad)?.is_some();
    let Some(id) = metadata_value(meta, "request_id").map_err(bad)? else {
        return Ok((precheck, None));
    };
    let profile = s
        .app
        .ingest
        .tenants()
        .snapshot()
        .tenant(tenant)
        .map(|t| t.profile)
        .unwrap_or(crate::tenants::Profile::Generic);
    let rules = &s.app.ingest.settings().requests;
    rules
        .validate(
            profile,
            tenant,
            &id,
            crate::pipeline::request::Source::Upload,
        )
        .map(|r| (precheck, Some(r.id)))
        .map_err(|c| Problem::new(StatusCode::BAD_REQUEST, &c.code, &c.message))
}

/// The algorithm and expected digest of an `Upload-Checksum` value, or its refusal
/// (code, detail).
pub fn checksum_spec(
    spec: &str,
) -> Result<(&'static ring::digest::Algorithm, Vec<u8>), (&'static str, &'static str)> {
    let (algo, expected) = spec.split_once(' ').ok_or((
        "tus.bad_checksum",
        "Upload-Checksum is `<algorithm> <base64>`",
    ))?;
    let algorithm = match algo {
        "sha256" => &ring::digest::SHA256,
        "sha1" => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        _ => return Err(("tus.checksum_algorithm", "supported: sha256, sha1")),
    };
    let expected = base64::engine::general_purpose::STANDARD
        .decode(expected.trim())
        .map_err(|_| ("tus.bad_checksum", "the checksum must be base64"))?;
    Ok((algorithm, expected))
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
        && !matches!(e, IngestError::Io(_) | IngestError::Catalog(_))
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

/// Why a body stopped before its end.
enum Cut {
    Ingest(IngestError),
    Idle,
    Client,
    Checksum(Response),
    /// A reload took the caller's access away mid-body.
    Revoked,
}

/// Watches the tenants while a body streams in: an upload whose access a reload
/// removes stops at once (what arrived stays, resumable by whoever is still allowed).
struct Revocation<'a> {
    changes: tokio::sync::watch::Receiver<u64>,
    caller: &'a Caller,
    tenants: &'a crate::tenants::Registry,
}

impl IntoResponse for Cut {
    fn into_response(self) -> Response {
        match self {
            Cut::Ingest(e) => ingest_problem(&e),
            Cut::Idle => problem(
                StatusCode::REQUEST_TIMEOUT,
                "http.body_idle",
                "the upload body stalled; resume with HEAD and PATCH",
            ),
            Cut::Client => problem(
                StatusCode::BAD_REQUEST,
                "http.body_broken",
                "the upload body ended early; resume with HEAD and PATCH",
            ),
            Cut::Checksum(r) => r,
            Cut::Revoked => problem(
                StatusCode::FORBIDDEN,
                "auth.revoked",
                "access for this hospital or credential was withdrawn during the upload; \
                 what arrived is kept",
            ),
        }
    }
}

/// The next piece of a body, or why there is none.
async fn next_data(body: &mut Body, idle: Duration) -> Result<Option<axum::body::Bytes>, Cut> {
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(Cut::Idle),
            Ok(None) => return Ok(None),
            Ok(Some(Err(_))) => return Err(Cut::Client),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// The shared budget of collected bytes (KiB permits) and the size of one write.
struct Pool {
    buffers: std::sync::Arc<tokio::sync::Semaphore>,
    /// The whole budget: a piece larger than it (never seen: body frames are far
    /// smaller) holds all of it rather than waiting for ever.
    total_kib: u32,
    block: usize,
}

type Held = Option<tokio::sync::OwnedSemaphorePermit>;

fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .max(1)
}

impl Pool {
    /// Holds `bytes` more against the shared budget without waiting; `false` when the
    /// budget is spent.
    fn try_hold(&self, bytes: usize, held: &mut Held) -> bool {
        match self
            .buffers
            .clone()
            .try_acquire_many_owned(kib(bytes).min(self.total_kib))
        {
            Ok(p) => {
                match held {
                    Some(h) => h.merge(p),
                    None => *held = Some(p),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Waits for `bytes` of budget; called holding nothing, so waiters never hold
    /// part of the budget another waiter needs.
    async fn hold(&self, bytes: usize) -> Held {
        let want = kib(bytes).min(self.total_kib);
        self.buffers.clone().acquire_many_owned(want).await.ok()
    }
}

/// Streams `body` into the upload in `pool.block`-sized writes, each collected against
/// the listener's shared buffer budget.
async fn stream_into(
    up: &mut Upload,
    mut body: Body,
    idle: Duration,
    mut watch: Revocation<'_>,
    pool: Pool,
) -> Result<(), Cut> {
    let mut buf = Vec::with_capacity(pool.block);
    let mut held = None;
    let mut watching = true;
    loop {
        let next = tokio::select! {
            next = next_data(&mut body, idle) => next,
            changed = watch.changes.changed(), if watching => {
                watching = changed.is_ok();
                match watch.caller.revoked(watch.tenants) {
                    Some(reason) => {
                        use crate::telemetry::events::InternalEvent;
                        crate::telemetry::events::SessionRevoked {
                            protocol: "tus",
                            tenant: &watch.caller.who.tenant,
                            ip: watch.caller.ip,
                            reason,
                        }
                        .emit();
                        Err(Cut::Revoked)
                    }
                    None => continue,
                }
            }
        };
        let piece = match next {
            Ok(p) => p,
            Err(cut) => {
                // Keep what arrived: the client resumes after it.
                if !buf.is_empty() {
                    let at = up.offset();
                    up.write_at(at, buf).await.map_err(Cut::Ingest)?;
                }
                return Err(cut);
            }
        };
        let last = piece.is_none();
        if let Some(data) = piece {
            if !pool.try_hold(data.len(), &mut held) {
                // The budget is spent: write what this upload holds first, then wait
                // with empty hands.
                if !buf.is_empty() {
                    let at = up.offset();
                    let part = std::mem::replace(&mut buf, Vec::with_capacity(pool.block));
                    up.write_at(at, part).await.map_err(Cut::Ingest)?;
                }
                held = pool.hold(data.len()).await;
            }
            buf.extend_from_slice(&data);
        }
        if buf.len() >= pool.block || (last && !buf.is_empty()) {
            let at = up.offset();
            let full = std::mem::replace(&mut buf, Vec::with_capacity(pool.block));
            up.write_at(at, full).await.map_err(Cut::Ingest)?;
            held = None;
        }
        if last {
            return Ok(());
        }
    }
}

/// Reads a whole (bounded) PATCH body and checks it against `Upload-Checksum`.
async fn checksummed(spec: &str, mut body: Body, idle: Duration, max: u64) -> Result<Vec<u8>, Cut> {
    let bad =
        |code: &str, detail: &str| Cut::Checksum(problem(StatusCode::BAD_REQUEST, code, detail));
    let (algorithm, expected) = checksum_spec(spec).map_err(|(code, detail)| bad(code, detail))?;
    let mut bytes = Vec::new();
    while let Some(data) = next_data(&mut body, idle).await? {
        if (bytes.len() + data.len()) as u64 > max {
            return Err(Cut::Checksum(problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "tus.checksum_chunk_too_large",
                &format!("a PATCH with Upload-Checksum may carry at most {max} bytes"),
            )));
        }
        bytes.extend_from_slice(&data);
    }
    if ring::digest::digest(algorithm, &bytes).as_ref() != expected.as_slice() {
        let status = StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST);
        return Err(Cut::Checksum(problem(
            status,
            "tus.checksum_mismatch",
            "the body does not match Upload-Checksum; nothing was appended",
        )));
    }
    Ok(bytes)
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
