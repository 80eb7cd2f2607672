//! An answer given before the request's body was read (a refused token, a wrong
//! `Upload-Offset`, an unknown route) must still reach the client.
//!
//! hyper closes an HTTP/1.1 connection whose request body was not read to its end when
//! the response goes out. The client is often still sending that body; the bytes that
//! arrive after the close make the kernel answer with a reset, and a reset discards the
//! response the client had not read yet: it sees "connection reset" or a TLS EOF instead
//! of our 401 (schemathesis caught this under load). This layer does what web servers
//! call a lingering close, before the answer instead of after it: a small unread rest
//! is read and discarded (bounded in bytes and time), so the connection stays usable; a
//! large or endless one gets `Connection: close` and the client is told so in the
//! response itself. hyper has no such option, so it is a small middleware here.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;

use crate::telemetry::events::{HttpsUnreadBody, InternalEvent};

/// Unread bytes read and discarded at most before answering.
const DRAIN_MAX_BYTES: u64 = 1 << 20;
/// Time the client has to send them.
const DRAIN_MAX_TIME: Duration = Duration::from_secs(2);

/// The request body, shared between the handler (which may read it or drop it) and
/// this layer (which reads what the handler left).
struct Shared(Arc<Mutex<Body>>);

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        match self.0.lock() {
            Ok(mut body) => Pin::new(&mut *body).poll_frame(cx),
            Err(_) => Poll::Ready(Some(Err(axum::Error::new("request body lock poisoned")))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.lock().map(|b| b.is_end_stream()).unwrap_or(true)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.lock().map(|b| b.size_hint()).unwrap_or_default()
    }
}

/// Middleware: runs the request, then settles what the handler left of its body.
pub async fn settle_unread_body(req: Request, next: Next) -> Response {
    // HTTP/2 ends one stream without touching the connection; a client waiting for
    // `100 Continue` has sent no body and will not, unless we ask for it by reading.
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if req.version() != Version::HTTP_11 || expects_continue {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let shared = Arc::new(Mutex::new(body));
    let mut resp = next
        .run(Request::from_parts(
            parts,
            Body::new(Shared(shared.clone())),
        ))
        .await;
    // A handler that still holds the body (a stream it hands on) reads it itself.
    let Some(body) = Arc::into_inner(shared).and_then(|m| m.into_inner().ok()) else {
        return resp;
    };
    if http_body::Body::is_end_stream(&body) {
        return resp;
    }
    let outcome = match http_body::Body::size_hint(&body).upper() {
        Some(rest) if rest <= DRAIN_MAX_BYTES => drain(body).await,
        _ => false,
    };
    if !outcome {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    HttpsUnreadBody {
        outcome: if outcome { "drained" } else { "closed" },
    }
    .emit();
    resp
}

/// Reads `body` to its end within the bounds; false if it did not end in time.
async fn drain(mut body: Body) -> bool {
    let read = async {
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > DRAIN_MAX_BYTES {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_MAX_TIME, read)
        .await
        .unwrap_or(false)
}
