//! The admin listener (plain HTTP, private network): `/metrics`, `/healthz`, `/readyz`.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::serve::AppState;
use crate::telemetry::metrics::METRICS;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(axum::middleware::from_fn(|req, next| {
            super::https::count_requests("admin", req, next)
        }))
        .with_state(state)
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        METRICS.render(),
    )
}

/// Alive: the process answers. Says nothing about dependencies.
async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// Ready: the catalog answers a query and the storage directory is writable.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let catalog = state.catalog.ping().await;
    let storage = state.objects.probe().await;
    let body = serde_json::json!({
        "catalog": catalog.as_ref().map(|_| "ok").unwrap_or_else(|e| e.code()),
        "storage": storage.as_ref().map(|_| "ok").unwrap_or_else(|e| e.code()),
    });
    let status = if catalog.is_ok() && storage.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body))
}
