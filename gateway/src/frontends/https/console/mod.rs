//! The web console (`/console/`): pages for hospitals (upload files and folders sealed
//! in the browser, follow check results as they happen, download error reports and
//! result lists) and for reviewers (file lists with the API's filters, metadata,
//! downloads, DICOM studies), in Traditional Chinese and English — docs/console.md.
//!
//! The pages are static files compiled into the binary ([`assets`]); they call the same
//! API as any client, signed in by a session cookie ([`session`], [`sign_in`]), so
//! tenant isolation, rate limits and audit are the API's own. Every console answer
//! carries a strict Content-Security-Policy: scripts and styles from this origin only,
//! no inline script, no other origin contacted.

mod assets;
pub mod session;
mod sign_in;

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::Https;

/// No inline script or style, nothing from another origin; `data:` images only for
/// the favicon placeholder. `worker-src` for nothing: sealing runs on the page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The console's routes (pages, assets, the session API).
pub fn routes() -> Router<Https> {
    Router::new()
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(|| async { asset("index.html") }))
        .route(
            "/console/api/session",
            get(sign_in::current)
                .post(sign_in::sign_in)
                .delete(sign_in::sign_out),
        )
        .route(
            "/console/{*path}",
            get(|Path(p): Path<String>| async move { asset(&p) }),
        )
        .layer(axum::middleware::from_fn(security_headers))
}

fn asset(path: &str) -> Response {
    let Some(a) = assets::find(path) else {
        return super::problem(StatusCode::NOT_FOUND, "http.not_found", "no such page");
    };
    let cache = if a.mime.starts_with("text/html") {
        "no-store"
    } else {
        // Revalidated each time: a new gateway version serves new scripts at once.
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(a.mime)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        a.body,
    )
        .into_response()
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// Whether a request for `/` comes from a browser (which is sent to the console).
pub fn wants_page(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}
