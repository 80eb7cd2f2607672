//! The admin listener (plain HTTP, private network): `/metrics`, `/healthz`, `/readyz`,
//! and the outbox's dead letters (`GET /admin/outbox/dead-letters`, `POST
//! /admin/outbox/retry?sink=NAME` to deliver them again, all sinks without `sink`).
//!
//! `/admin/*` needs `Authorization: Bearer <token>` when `admin.token_sha256` is set
//! (it must be, off loopback), and its `POST`s refuse browser requests from other
//! sites (an `Origin` header or `Sec-Fetch-Site: cross-site`): a page a operator
//! happens to open cannot make their browser retry or change anything here. Metrics and
//! health stay open for scrapers and load balancers.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::frontends::AppState;
use crate::telemetry::metrics::METRICS;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/admin/outbox/dead-letters", get(dead_letters))
        .route("/admin/outbox/retry", post(retry))
        .route("/admin/status", get(status))
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .layer(axum::middleware::from_fn(|req, next| {
            super::https::count_requests("admin", req, next)
        }))
        .with_state(state)
}

fn refusal(status: StatusCode, code: &str, detail: &str) -> axum::response::Response {
    (
        status,
        axum::Json(serde_json::json!({ "code": code, "detail": detail })),
    )
        .into_response()
}

/// The token and cross-site rules of `/admin/*`.
async fn guard(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !req.uri().path().starts_with("/admin/") {
        return next.run(req).await;
    }
    let headers = req.headers();
    if req.method() != axum::http::Method::GET {
        let cross_site = headers.contains_key(header::ORIGIN)
            || headers
                .get("sec-fetch-site")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v != "none" && v != "same-origin");
        if cross_site {
            return refusal(
                StatusCode::FORBIDDEN,
                "admin.cross_site",
                "admin changes are not taken from web pages",
            );
        }
    }
    let want = &state.config.admin.token_sha256;
    if !want.is_empty() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| hex::encode(ring::digest::digest(&ring::digest::SHA256, t.as_bytes())));
        // Digests, not tokens, are compared: the comparison's time tells nothing.
        if !given.is_some_and(|g| g.eq_ignore_ascii_case(want)) {
            return refusal(
                StatusCode::UNAUTHORIZED,
                "admin.unauthorized",
                "send Authorization: Bearer <admin token>",
            );
        }
    }
    next.run(req).await
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

#[derive(Debug, serde::Deserialize)]
struct SinkQuery {
    sink: Option<String>,
}

async fn dead_letters(
    State(state): State<AppState>,
    Query(q): Query<SinkQuery>,
) -> impl IntoResponse {
    match state.catalog.dead_letters(q.sink.as_deref()).await {
        Ok(d) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "dead_letters": d })),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "code": e.code(), "detail": e.to_string() })),
        ),
    }
}

async fn retry(State(state): State<AppState>, Query(q): Query<SinkQuery>) -> impl IntoResponse {
    match state.catalog.retry_dead_letters(q.sink.as_deref()).await {
        Ok(n) => {
            let _ = state
                .catalog
                .audit(
                    "admin",
                    "outbox.retry",
                    &serde_json::json!({ "sink": q.sink, "events": n }),
                )
                .await;
            (
                StatusCode::OK,
                axum::Json(serde_json::json!({ "requeued": n })),
            )
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "code": e.code(), "detail": e.to_string() })),
        ),
    }
}

/// One screen for an operator (`gateway status`): health, backlog, outbox, rejections.
async fn status(State(state): State<AppState>) -> impl IntoResponse {
    use crate::backends::catalog::UploadState;
    use crate::telemetry::metrics::METRICS;
    let c = &state.catalog;
    let ready = c.ping().await.is_ok() && state.objects.probe().await.is_ok();
    let mut backlog = serde_json::Map::new();
    for s in [
        UploadState::Receiving,
        UploadState::Accepted,
        UploadState::Checking,
    ] {
        backlog.insert(
            s.as_str().into(),
            serde_json::json!(c.count_in_state(s).await.ok()),
        );
    }
    let head = c.outbox_head().await.unwrap_or(0);
    let dead = c.dead_letters(None).await.unwrap_or_default();
    let mut sinks = Vec::new();
    let mut names: Vec<String> = state
        .config
        .publish
        .webhooks
        .iter()
        .map(|w| w.name.clone())
        .collect();
    if !state.config.publish.nats.url.is_empty() {
        names.push("nats".into());
    }
    for name in names {
        let cursor = c.sink_cursor(&name).await.unwrap_or(0);
        sinks.push(serde_json::json!({
            "sink": name,
            "backlog": (head - cursor).max(0),
            "lag_seconds": METRICS.outbox_lag_seconds.with_label_values(&[&name]).get(),
            "dead_letters": dead.iter().filter(|d| d.sink == name).count(),
        }));
    }
    let usage = c.usage_totals().await.ok();
    let disk = crate::telemetry::sampler::disk_space(&state.config.server.data_dir);
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "ready": ready,
        "uptime_seconds": METRICS.uptime(),
        "tenants": state.tenants.snapshot().len(),
        "backlog": backlog,
        "stored": usage.map(|u| serde_json::json!({ "bytes": u.accepted_bytes, "files": u.accepted_files })),
        "data_dir": disk.map(|(free, size)| serde_json::json!({ "free_bytes": free, "size_bytes": size })),
        "outbox": { "events": head, "sinks": sinks },
        "recent_rejections": c.recent_rejections(10).await.unwrap_or_default(),
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body))
}
