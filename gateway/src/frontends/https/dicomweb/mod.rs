//! DICOMweb (DICOM PS3.18) for PACS and viewers: [`stow`] (STOW-RS, store), [`qido`]
//! (QIDO-RS, search) and [`wado`] (WADO-RS, retrieve), all under `/dicomweb`.
//!
//! STOW-RS is an upload channel like tus and SFTP: each part becomes an ingest session
//! (plain DICOM parts are sealed to the gateway on arrival), and the answer waits until
//! the parts are checked and indexed. QIDO and WADO read the DICOM index and stream
//! instances from storage, decrypting on the fly.
//!
//! Who may read: a reviewer (its granted hospitals) or a hospital (its own studies).

pub mod accept;
pub mod bulkdata;
pub mod fields;
mod frames;
pub mod json;
pub mod multipart;
pub mod qido;
pub mod stow;
pub mod wado;

use std::net::IpAddr;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};

use super::{Https, auth, problem};

/// The DICOMweb routes.
pub fn routes() -> Router<Https> {
    Router::new()
        .route("/dicomweb/studies", post(stow::store).get(qido::studies))
        .route("/dicomweb/series", get(qido::all_series))
        .route("/dicomweb/instances", get(qido::all_instances))
        .route(
            "/dicomweb/studies/{study}",
            post(stow::store_in_study).get(wado::study),
        )
        .route(
            "/dicomweb/studies/{study}/metadata",
            get(wado::study_metadata),
        )
        .route("/dicomweb/studies/{study}/series", get(qido::study_series))
        .route(
            "/dicomweb/studies/{study}/instances",
            get(qido::study_instances),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}",
            get(wado::series),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/metadata",
            get(wado::series_metadata),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances",
            get(qido::series_instances),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}",
            get(wado::instance),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata",
            get(wado::instance_metadata),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/bulkdata/{*path}",
            get(bulkdata::bulkdata),
        )
        .route(
            "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            get(frames::frames),
        )
}

/// Someone who may read DICOM: the hospitals it may see (`None` = all).
#[derive(Debug, Clone)]
pub struct Viewer {
    pub tenants: Option<Vec<String>>,
    pub ip: IpAddr,
    /// A reviewer (not the hospital itself): retrievals count as downloads.
    pub reviewer: Option<String>,
    /// The reviewer receives files sealed to its recipient only, so WADO-RS (plain
    /// DICOM for viewers) is not for it.
    pub sealed_only: bool,
}

impl FromRequestParts<Https> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Https) -> Result<Self, Response> {
        let snapshot = state.app.tenants.snapshot();
        let is_reviewer = match auth::bearer(parts) {
            Some(t) => snapshot.principal_by_token(t).is_some(),
            // A console session: its signed claims say whose it is.
            None => crate::frontends::https::console::session::cookie(parts)
                .and_then(|v| {
                    crate::frontends::https::console::session::open(
                        &state.app.keys.console_key,
                        v,
                        crate::util::unix_now(),
                    )
                })
                .is_some_and(|c| c.role == "reviewer"),
        };
        drop(snapshot);
        if is_reviewer {
            let r =
                crate::frontends::https::review::Reviewer::from_request_parts(parts, state).await?;
            return Ok(Viewer {
                tenants: r.grant,
                ip: r.ip,
                sealed_only: r.recipient.is_some(),
                reviewer: Some(r.name),
            });
        }
        let c = auth::Caller::from_request_parts(parts, state).await?;
        Ok(Viewer {
            tenants: Some(vec![c.who.tenant.clone()]),
            ip: c.ip,
            reviewer: None,
            sealed_only: false,
        })
    }
}

/// `https://host` as the client addressed us, for RetrieveURLs.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("https://{host}/dicomweb")
}

fn unavailable(e: &crate::backends::catalog::CatalogError) -> Response {
    problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string())
}
