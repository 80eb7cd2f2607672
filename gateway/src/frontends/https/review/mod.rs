//! The review side of the HTTPS API, for principals with role `reviewer` (or `admin`)
//! from the tenants file: file listings and metadata ([`files`]), content downloads
//! with ranges and encrypted download ([`content`]), and the event feed ([`feed`]).
//! A principal sees only the tenants it is granted; anything else is a plain 404, the
//! same as a file that does not exist.

pub mod content;
pub mod feed;
pub mod files;

use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;

use super::{Https, auth, problem};
use crate::sealed::Recipient;
use crate::telemetry::events::{AuthRefusal, HttpAuthRefused, InternalEvent};

/// An authenticated reviewer.
#[derive(Debug, Clone)]
pub struct Reviewer {
    pub name: String,
    /// Tenants it may read; `None` = all.
    pub grant: Option<Vec<String>>,
    /// Its registered recipient for encrypted downloads.
    pub recipient: Option<Recipient>,
    pub ip: IpAddr,
}

impl Reviewer {
    /// The reviewer a known principal is, from `ip`, unless it is suspended (a token's
    /// and a console session's last check alike).
    // The error is the extractor's own rejection type (a response), returned as is.
    #[allow(clippy::result_large_err)]
    pub fn admit(p: &crate::tenants::Principal, ip: IpAddr) -> Result<Reviewer, Response> {
        if let Some(why) = p.suspension().at(crate::util::unix_now()) {
            HttpAuthRefused {
                ip,
                reason: AuthRefusal::Suspended,
            }
            .emit();
            return Err(problem(StatusCode::FORBIDDEN, "auth.suspended", &why));
        }
        Ok(Reviewer {
            name: p.name.clone(),
            grant: p.grant(),
            // Validated when the tenants file was loaded.
            recipient: p.age_recipient.as_deref().and_then(|r| r.parse().ok()),
            ip,
        })
    }

    pub fn may_read(&self, tenant: &str) -> bool {
        self.grant
            .as_ref()
            .is_none_or(|g| g.iter().any(|t| t == tenant))
    }
}

impl FromRequestParts<Https> for Reviewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Https) -> Result<Self, Response> {
        let ip = auth::peer(parts).ok_or_else(|| {
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "http.no_peer",
                "the caller's address is unknown",
            )
        })?;
        let refuse = |reason: AuthRefusal, status: StatusCode, code: &str, detail: &str| {
            HttpAuthRefused { ip, reason }.emit();
            problem(status, code, detail)
        };
        if auth::bearer(parts).is_none()
            && let Some(session) = super::console::session::reviewer(parts, state, ip)
        {
            return session;
        }
        let Some(token) = auth::bearer(parts) else {
            return Err(refuse(
                AuthRefusal::MethodNotAllowed,
                StatusCode::UNAUTHORIZED,
                "auth.token_missing",
                "send `Authorization: Bearer <reviewer token>`",
            ));
        };
        let snapshot = state.app.tenants.snapshot();
        // Vendors act for hospitals (the upload API); they are no reviewers.
        let reviewer = snapshot
            .principal_by_token(token)
            .filter(|p| p.role != crate::tenants::Role::Vendor);
        let Some(p) = reviewer else {
            return Err(refuse(
                AuthRefusal::KeyNotAuthorized,
                StatusCode::UNAUTHORIZED,
                "auth.token_invalid",
                auth::TOKEN_REFUSED,
            ));
        };
        if !p.allows_ip(ip) {
            // The same answer as an unknown token (see `auth.rs`).
            return Err(refuse(
                AuthRefusal::IpNotAllowed,
                StatusCode::UNAUTHORIZED,
                "auth.token_invalid",
                auth::TOKEN_REFUSED,
            ));
        }
        Reviewer::admit(p, ip)
    }
}

/// The catalog failed: the caller may retry.
fn unavailable(e: &crate::backends::catalog::CatalogError) -> Response {
    problem(StatusCode::SERVICE_UNAVAILABLE, e.code(), &e.to_string())
}

fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "file.not_found", "no such file")
}
