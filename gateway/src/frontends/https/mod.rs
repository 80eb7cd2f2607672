//! The HTTPS listener (axum on rustls with the ring provider): tus uploads
//! ([`tus`]), hospitals' own results ([`results`]), the OpenAPI document. Callers are
//! authenticated by [`auth`]; every error is an RFC 9457 problem document carrying the
//! same stable codes as check results.

pub mod auth;
pub mod console;
pub mod dicomweb;
pub mod limit;
mod linger;
mod open_uploads;
pub mod proxied;
mod rate;
mod results;
pub mod review;
pub mod stored;
pub mod tls;
pub mod tus;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::frontends::AppState;
use crate::session::IngestError;
use crate::telemetry::events::{HttpRequestServed, InternalEvent};

/// What HTTPS handlers share.
#[derive(Clone)]
pub struct Https {
    pub app: AppState,
    open: Arc<open_uploads::OpenUploads>,
    rate: Arc<rate::Limiter>,
    /// Upload bytes collected and not yet written, all tus uploads together, in KiB
    /// (`https.upload_buffer_mib`).
    buffers: Arc<tokio::sync::Semaphore>,
}

/// The OpenAPI 3.1 description of this API (kept in docs/, served as is).
pub const OPENAPI: &str = include_str!("../../../../docs/openapi.json");

pub fn router(state: AppState) -> Router {
    routes(state).layer(axum::middleware::from_fn(linger::settle_unread_body))
}

fn routes(state: AppState) -> Router {
    let cors = cors(&state.config.https.cors_origins);
    let https = Https {
        app: state.clone(),
        open: Arc::new(open_uploads::OpenUploads::new(
            std::time::Duration::from_secs(state.config.https.idle_upload_secs.max(1)),
        )),
        rate: Arc::default(),
        buffers: Arc::new(tokio::sync::Semaphore::new(
            usize::try_from(state.config.https.upload_buffer_mib.max(1) * 1024)
                .unwrap_or(usize::MAX),
        )),
    };
    let tus = Router::new()
        .route(
            "/v1/uploads",
            post(tus::create).get(results::list).options(tus::options),
        )
        .route(
            "/v1/uploads/{id}",
            axum::routing::head(tus::head)
                .patch(tus::patch)
                .delete(tus::terminate)
                .options(tus::options),
        )
        .route("/v1/uploads/{id}/result", get(results::result))
        .route("/v1/results/summary", get(results::summary))
        .layer(axum::middleware::from_fn(tus_version));
    let app = Router::new()
        .route("/", get(index))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/files", get(review::files::list))
        .route("/v1/files/{id}", get(review::files::get))
        .route("/v1/files/{id}/content", get(review::content::content))
        .route("/v1/events", get(review::feed::events))
        .route("/v1/hospital/events", get(review::feed::hospital_events))
        .merge(dicomweb::routes())
        .merge(tus);
    let app = if state.config.https.console {
        app.merge(console::routes())
    } else {
        app
    };
    let app = app.fallback(not_found);
    // Per route, so each request is counted under its route template.
    let app = app.layer(axum::middleware::from_fn(|req, next| {
        count_requests("https", req, next)
    }));
    let Some(cors) = cors else {
        return app.with_state(https);
    };
    // The CORS layer answers every OPTIONS as a preflight, which would hide tus's own
    // OPTIONS (capabilities) from clients that are not browsers: only a real preflight
    // (with Access-Control-Request-Method) and the other methods go through it.
    let plain = app.clone().with_state(https.clone());
    let browsers = app.layer(cors).with_state(https);
    Router::new().fallback(move |req: Request| {
        let preflight = req
            .headers()
            .contains_key(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD);
        let target = if *req.method() == Method::OPTIONS && !preflight {
            plain.clone()
        } else {
            browsers.clone()
        };
        async move {
            use tower::ServiceExt;
            match target.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    })
}

/// tus: every request but `OPTIONS` names the protocol version (412 otherwise), and
/// every response carries `Tus-Resumable`. Plain GETs (results, listings) need not.
async fn tus_version(req: Request, next: Next) -> Response {
    let needs = !matches!(*req.method(), Method::OPTIONS | Method::GET);
    let version = req.headers().get("tus-resumable").cloned();
    let mut resp = if needs && version.as_ref().is_none_or(|v| v != tus::TUS_VERSION) {
        let mut r = problem(
            StatusCode::PRECONDITION_FAILED,
            "tus.version",
            "send Tus-Resumable: 1.0.0",
        );
        r.headers_mut()
            .insert("tus-version", HeaderValue::from_static(tus::TUS_VERSION));
        r
    } else {
        next.run(req).await
    };
    resp.headers_mut()
        .insert("tus-resumable", HeaderValue::from_static(tus::TUS_VERSION));
    resp
}

/// CORS for browser uploaders on the configured origins (none by default).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let headers = [
        "authorization",
        "content-type",
        "tus-resumable",
        "upload-length",
        "upload-defer-length",
        "upload-offset",
        "upload-metadata",
        "upload-checksum",
        "x-http-method-override",
        "x-requested-with",
    ];
    let exposed = [
        "location",
        "tus-resumable",
        "tus-version",
        "tus-extension",
        "tus-max-size",
        "tus-checksum-algorithm",
        "upload-offset",
        "upload-length",
        "upload-defer-length",
        "upload-metadata",
        "upload-expires",
    ];
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(headers.map(axum::http::HeaderName::from_static))
        .expose_headers(exposed.map(axum::http::HeaderName::from_static));
    Some(layer)
}

async fn openapi() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

/// The problem document for a refused session call.
pub fn ingest_problem(e: &IngestError) -> Response {
    let status = match e {
        _ if e.is_disk_full() => StatusCode::INSUFFICIENT_STORAGE,
        IngestError::OffsetMismatch { .. } => StatusCode::CONFLICT,
        IngestError::NameNotAllowed { .. } | IngestError::LengthShort { .. } => {
            StatusCode::BAD_REQUEST
        }
        IngestError::TooLarge { .. } | IngestError::LengthExceeded { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        IngestError::QuotaBytes { .. } | IngestError::QuotaFiles { .. } => {
            StatusCode::INSUFFICIENT_STORAGE
        }
        IngestError::TooManyUploads { .. } => StatusCode::TOO_MANY_REQUESTS,
        IngestError::UnknownTenant(_) => StatusCode::FORBIDDEN,
        IngestError::NotFound(_) => StatusCode::NOT_FOUND,
        IngestError::NotReceiving(_) | IngestError::Accepted { .. } => StatusCode::FORBIDDEN,
        IngestError::Busy(_) => StatusCode::LOCKED,
        IngestError::Sealed(_) => StatusCode::UNPROCESSABLE_ENTITY,
        IngestError::Io(_) | IngestError::Catalog(_) | IngestError::Checkpoint(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    problem(status, e.code(), &e.to_string())
}

/// Counts and logs every answered request (shared with the admin listener).
pub async fn count_requests(listener: &'static str, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    HttpRequestServed {
        listener,
        method: &method,
        route: &route,
        path: &path,
        status: resp.status().as_u16(),
        seconds: started.elapsed().as_secs_f64(),
    }
    .emit();
    resp
}

/// The service index; it also announces the age recipient hospitals seal files to
/// (public by nature), so that `gateway push` needs no out-of-band setup.
async fn index(
    axum::extract::State(s): axum::extract::State<Https>,
    headers: axum::http::HeaderMap,
) -> Response {
    if s.app.config.https.console && console::wants_page(&headers) {
        return axum::response::Redirect::to("/console/").into_response();
    }
    axum::Json(json!({
        "service": "medical-records ingestion gateway",
        "version": env!("CARGO_PKG_VERSION"),
        "uploads": "/v1/uploads",
        "openapi": "/v1/openapi.json",
        "recipient": s.app.keys.age_recipient().to_string(),
        "console": s.app.config.https.console.then_some("/console/"),
    }))
    .into_response()
}

/// An RFC 9457 problem document with our stable error code.
pub fn problem(status: StatusCode, code: &str, detail: &str) -> Response {
    Problem::new(status, code, detail).into_response()
}

/// A problem not yet turned into a response (small enough to be an `Err`).
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    code: String,
    detail: String,
}

impl Problem {
    pub fn code(&self) -> &str {
        &self.code
    }

    /// A server-side failure's own words (I/O, database, storage errors) may name
    /// files and directories of the gateway's machine: they go to the log, and the
    /// caller gets the stable code with a neutral detail.
    pub fn new(status: StatusCode, code: &str, detail: &str) -> Problem {
        let detail = if status.is_server_error() {
            tracing::warn!(
                code,
                status = status.as_u16(),
                detail,
                "request failed on the gateway's side"
            );
            "the gateway could not complete this request; retry later (the error is logged under this code)".to_string()
        } else {
            detail.to_string()
        };
        Problem {
            status,
            code: code.to_string(),
            detail,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = json!({
            "type": format!("https://gateway.invalid/problems/{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        resp
    }
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "http.not_found", "no such resource")
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_failures_never_show_their_own_words() {
        use axum::response::IntoResponse;
        let detail = "cannot open /var/lib/gateway/spool/3501200000/u1.part: Permission denied";
        let r = super::Problem::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "ingest.io",
            detail,
        );
        assert!(!r.detail.contains("/var/lib"), "{r:?}");
        assert_eq!(r.into_response().status(), 500);
        let r = super::Problem::new(axum::http::StatusCode::BAD_REQUEST, "tus.bad", "as is");
        assert_eq!(r.detail, "as is", "a client's mistake is explained in full");
    }

    #[test]
    fn the_openapi_document_describes_every_route() {
        let doc: serde_json::Value = serde_json::from_str(super::OPENAPI).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        for path in [
            "/",
            "/v1/openapi.json",
            "/v1/uploads",
            "/v1/uploads/{id}",
            "/v1/uploads/{id}/result",
            "/v1/files",
            "/v1/files/{id}",
            "/v1/files/{id}/content",
            "/v1/events",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is documented");
        }
        for method in ["options", "head", "patch", "delete"] {
            assert!(
                doc["paths"]["/v1/uploads/{id}"][method].is_object(),
                "{method}"
            );
        }
    }
}
