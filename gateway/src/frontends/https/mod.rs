//! The HTTPS listener (axum on rustls with the ring provider). Uploads (tus), results
//! and the review API arrive with their issues; until then the routes that exist say so.

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::json;

use crate::serve::AppState;
use crate::telemetry::events::{HttpRequestServed, InternalEvent};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/v1/uploads", any(not_implemented))
        .route("/v1/uploads/{*rest}", any(not_implemented))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(|req, next| {
            count_requests("https", req, next)
        }))
        .with_state(state)
}

/// Counts and logs every answered request (shared with the admin listener).
pub async fn count_requests(listener: &'static str, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    HttpRequestServed {
        listener,
        method: &method,
        path: &path,
        status: resp.status().as_u16(),
    }
    .emit();
    resp
}

async fn index() -> impl IntoResponse {
    axum::Json(json!({
        "service": "medical-records ingestion gateway",
        "version": env!("CARGO_PKG_VERSION"),
        "uploads": "/v1/uploads",
    }))
}

/// An RFC 9457 problem document with our stable error code.
pub fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = json!({
        "type": format!("https://gateway.invalid/problems/{code}"),
        "title": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "code": code,
        "detail": detail,
    });
    let mut resp = (status, axum::Json(body)).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/problem+json"),
    );
    resp
}

async fn not_implemented() -> Response {
    problem(
        StatusCode::NOT_IMPLEMENTED,
        "http.not_implemented",
        "uploads over HTTPS (tus) are not implemented yet",
    )
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "http.not_found", "no such resource")
}
