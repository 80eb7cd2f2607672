//! A PATCH body streamed into the session in blocks from a small pool, stopped when
//! idle, cut by the client or revoked; or, with `Upload-Checksum`, held (bounded) until
//! its digest is checked.

use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

use crate::frontends::https::auth::Caller;
use crate::frontends::https::{ingest_problem, problem};
use crate::session::{IngestError, Upload};

use super::metadata::checksum_spec;

/// Why a body stopped before its end.
pub(super) enum Cut {
    Ingest(IngestError),
    Idle,
    Client,
    Checksum(Response),
    /// A reload took the caller's access away mid-body.
    Revoked,
}

/// Watches the tenants while a body streams in: an upload whose access a reload
/// removes stops at once (what arrived stays, resumable by whoever is still allowed).
pub(super) struct Revocation<'a> {
    pub(super) changes: tokio::sync::watch::Receiver<u64>,
    pub(super) caller: &'a Caller,
    pub(super) tenants: &'a crate::tenants::Registry,
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
pub(super) async fn next_data(
    body: &mut Body,
    idle: Duration,
) -> Result<Option<axum::body::Bytes>, Cut> {
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
pub(super) struct Pool {
    pub(super) buffers: std::sync::Arc<tokio::sync::Semaphore>,
    /// The whole budget: a piece larger than it (never seen: body frames are far
    /// smaller) holds all of it rather than waiting for ever.
    pub(super) total_kib: u32,
    pub(super) block: usize,
}

type Held = Option<tokio::sync::OwnedSemaphorePermit>;

pub(super) fn kib(bytes: usize) -> u32 {
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
pub(super) async fn stream_into(
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
pub(super) async fn checksummed(
    spec: &str,
    mut body: Body,
    idle: Duration,
    max: u64,
) -> Result<Vec<u8>, Cut> {
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
