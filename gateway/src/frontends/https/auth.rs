//! Who is calling: a bearer API token names the tenant (tokens are stored only as
//! SHA-256 hashes and compared in constant time) — or a registered TLS client
//! certificate does (see `tls.rs`); when both come they must name the same tenant —
//! and the caller's address must be on that tenant's allow-list. An unknown token and a
//! known token from the wrong address get the same answer (no oracle for a stolen
//! token); metrics and the log tell them apart.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;

use super::{Https, problem};
use crate::session::Principal;
use crate::telemetry::events::{AuthRefusal, HttpAuthRefused, InternalEvent};
use crate::tenants::{Registry, TokenHash};

/// What a refused token hears, whether it is unknown or used from the wrong address.
pub const TOKEN_REFUSED: &str = "the API token is not valid (from this address)";
/// The same for a client certificate.
const CERT_REFUSED: &str =
    "the client certificate is not registered for any hospital (from this address)";

/// An authenticated hospital.
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Principal,
    pub ip: IpAddr,
    /// What it signed in with: watched while an upload is under way (see [`Caller::revoked`]).
    pub credential: Credential,
}

#[derive(Debug, Clone)]
pub enum Credential {
    Token(TokenHash),
    Cert(TokenHash),
    /// A certificate from the client CA that names the hospital by its code.
    CertSubject,
    /// A vendor's token, acting for the hospital it named (rule 17).
    Vendor {
        name: String,
        token: TokenHash,
    },
}

/// The header a vendor names the hospital it acts for with.
pub const HOSPITAL_HEADER: &str = "x-hospital-code";

impl Caller {
    /// Why the caller's access is gone under the current tenants, if it is: a reload
    /// removed its token or certificate, suspended or removed its hospital, or took its
    /// address off the allow-list (rule 18: revocation takes effect at once).
    pub fn revoked(&self, tenants: &Registry) -> Option<&'static str> {
        let snapshot = tenants.snapshot();
        if let Credential::Vendor { name, token } = &self.credential {
            let now = crate::util::unix_now();
            let still = snapshot
                .principals()
                .iter()
                .find(|p| &p.name == name && p.token_hashes.iter().any(|h| h.same_as(token)));
            return match still {
                None => Some("token_removed"),
                Some(v) if !v.allows_ip(self.ip) => Some("ip_not_allowed"),
                Some(v) => match snapshot.vendor_may_act(v, &self.who.tenant, now) {
                    Ok(_) => None,
                    Err(crate::tenants::Refusal::Suspended(_)) => Some("suspended"),
                    Err(_) => Some("vendor_not_allowed"),
                },
            };
        }
        let Some(t) = snapshot.tenant(&self.who.tenant) else {
            return Some("tenant_removed");
        };
        let still = match &self.credential {
            Credential::Token(h) => t.token_hashes.iter().any(|x| x.same_as(h)),
            Credential::Cert(h) => t.client_cert_sha256.iter().any(|x| x.same_as(h)),
            Credential::CertSubject => true,
            Credential::Vendor { .. } => false,
        };
        if !still {
            Some("token_removed")
        } else if t.suspension().at(crate::util::unix_now()).is_some() {
            Some("suspended")
        } else if !t.allows_api_ip(self.ip) {
            Some("ip_not_allowed")
        } else {
            None
        }
    }
}

pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let v = v.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The hospital's `quota.requests_per_second` (bursts of twice that), shared by its
/// API calls and its console pages.
// The error is the extractor's own rejection type (a response), returned as is.
#[allow(clippy::result_large_err)]
pub(super) fn within_rate(state: &Https, tenant: &crate::tenants::Tenant) -> Result<(), Response> {
    let rate = tenant.quota.requests_per_second;
    if state
        .rate
        .allow(&tenant.code, rate, std::time::Instant::now())
    {
        return Ok(());
    }
    let mut r = problem(
        StatusCode::TOO_MANY_REQUESTS,
        "http.rate_limited",
        &format!("at most {rate} requests per second for this hospital"),
    );
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    Err(r)
}

/// The client certificate (DER) presented in the TLS handshake, if any.
pub(super) fn client_cert(parts: &Parts) -> Option<&[u8]> {
    parts
        .extensions
        .get::<std::sync::Arc<axum_server::tls::TlsInfo>>()
        .and_then(|info| info.peer_certificates.first())
        .map(Vec::as_slice)
}

/// The caller's address (a dual-stack socket shows IPv4 clients as `::ffff:a.b.c.d`):
/// the client a load balancer's PROXY header named, else the TCP peer.
pub fn peer(parts: &Parts) -> Option<IpAddr> {
    if let Some(c) = parts.extensions.get::<super::proxied::ClientAddr>() {
        return Some(c.0.ip());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// A vendor's request: it names the hospital it acts for, which must have admitted it.
// The error is the extractor's own rejection type (a response), returned as is.
#[allow(clippy::result_large_err)]
fn vendor(
    parts: &Parts,
    state: &Https,
    snapshot: &crate::tenants::Tenants,
    v: &crate::tenants::Principal,
    ip: IpAddr,
    refuse: &dyn Fn(AuthRefusal, StatusCode, &str, &str) -> Response,
) -> Result<Caller, Response> {
    if !v.allows_ip(ip) {
        return Err(refuse(
            AuthRefusal::IpNotAllowed,
            StatusCode::UNAUTHORIZED,
            "auth.token_invalid",
            TOKEN_REFUSED,
        ));
    }
    let Some(code) = parts
        .headers
        .get(HOSPITAL_HEADER)
        .and_then(|h| h.to_str().ok())
    else {
        let mut r = problem(
            StatusCode::BAD_REQUEST,
            "auth.hospital_missing",
            &format!(
                "a vendor names the hospital it acts for in `X-Hospital-Code`; this vendor \
                 may act for: {}",
                snapshot.consenting(v).join(", ")
            ),
        );
        r.headers_mut().insert(
            axum::http::header::VARY,
            axum::http::HeaderValue::from_static("x-hospital-code"),
        );
        return Err(r);
    };
    let tenant = match snapshot.vendor_may_act(v, code, crate::util::unix_now()) {
        Ok(t) => t,
        Err(crate::tenants::Refusal::Suspended(why)) => {
            return Err(refuse(
                AuthRefusal::Suspended,
                StatusCode::FORBIDDEN,
                "auth.suspended",
                &why,
            ));
        }
        Err(_) => {
            return Err(refuse(
                AuthRefusal::VendorNotAllowed,
                StatusCode::FORBIDDEN,
                "auth.vendor_not_allowed",
                "this vendor may act only for hospitals it names that also admit it \
                 (allow_vendors)",
            ));
        }
    };
    within_rate(state, tenant)?;
    let token = bearer(parts)
        .map(TokenHash::of)
        .unwrap_or_else(|| TokenHash::of(""));
    Ok(Caller {
        who: Principal {
            tenant: tenant.code.clone(),
            protocol: "tus",
        },
        ip,
        credential: Credential::Vendor {
            name: v.name.clone(),
            token,
        },
    })
}

impl FromRequestParts<Https> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Https) -> Result<Self, Response> {
        let ip = peer(parts).ok_or_else(|| {
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "http.no_peer",
                "the caller's address is unknown",
            )
        })?;
        let refuse = |reason: AuthRefusal, status: StatusCode, code: &str, detail: &str| {
            HttpAuthRefused { ip, reason }.emit();
            let mut r = problem(status, code, detail);
            if status == StatusCode::UNAUTHORIZED {
                r.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer"),
                );
            }
            r
        };
        if bearer(parts).is_none()
            && client_cert(parts).is_none()
            && let Some(session) = super::console::session::hospital(parts, state, ip)
        {
            return session;
        }
        let snapshot = state.app.tenants.snapshot();
        if let Some(token) = bearer(parts)
            && snapshot.by_token(token).is_none()
            && let Some(v) = snapshot
                .principal_by_token(token)
                .filter(|p| p.role == crate::tenants::Role::Vendor)
        {
            return vendor(parts, state, &snapshot, v, ip, &refuse);
        }
        let cert = client_cert(parts);
        // With a client CA the handshake verified the chain, so the subject may name the
        // hospital by its code instead of a pinned fingerprint (rule 25).
        let ca_mode = !state.app.config.https.client_ca_file.as_os_str().is_empty();
        let by_cert = cert.map(|der| {
            snapshot
                .by_client_cert(der)
                .or_else(|| ca_mode.then(|| snapshot.by_cert_subject(der)).flatten())
        });
        let tenant = match (bearer(parts), by_cert) {
            (Some(token), by_cert) => {
                let Some(tenant) = snapshot.by_token(token) else {
                    if snapshot.token_expired(token) {
                        return Err(refuse(
                            AuthRefusal::KeyNotAuthorized,
                            StatusCode::UNAUTHORIZED,
                            "auth.token_expired",
                            "the API token has expired; ask for a new one",
                        ));
                    }
                    return Err(refuse(
                        AuthRefusal::KeyNotAuthorized,
                        StatusCode::UNAUTHORIZED,
                        "auth.token_invalid",
                        TOKEN_REFUSED,
                    ));
                };
                if let Some(Some(other)) = by_cert
                    && other.code != tenant.code
                {
                    return Err(refuse(
                        AuthRefusal::KeyNotAuthorized,
                        StatusCode::UNAUTHORIZED,
                        "auth.identity_conflict",
                        "the client certificate and the API token belong to different hospitals",
                    ));
                }
                tenant
            }
            (None, Some(Some(tenant))) => tenant,
            (None, Some(None)) => {
                return Err(refuse(
                    AuthRefusal::KeyNotAuthorized,
                    StatusCode::UNAUTHORIZED,
                    "auth.cert_unknown",
                    CERT_REFUSED,
                ));
            }
            (None, None) => {
                return Err(refuse(
                    AuthRefusal::MethodNotAllowed,
                    StatusCode::UNAUTHORIZED,
                    "auth.token_missing",
                    "send `Authorization: Bearer <API token>` (or a registered client certificate)",
                ));
            }
        };
        if !tenant.allows_api_ip(ip) {
            // Answered exactly as an unknown credential: a stranger holding a stolen or
            // guessed token learns nothing from where they try it (the metric and the
            // log still say `ip_not_allowed`).
            let (code, detail) = match bearer(parts) {
                Some(_) => ("auth.token_invalid", TOKEN_REFUSED),
                None => ("auth.cert_unknown", CERT_REFUSED),
            };
            return Err(refuse(
                AuthRefusal::IpNotAllowed,
                StatusCode::UNAUTHORIZED,
                code,
                detail,
            ));
        }
        if let Some(why) = tenant.suspension().at(crate::util::unix_now()) {
            return Err(refuse(
                AuthRefusal::Suspended,
                StatusCode::FORBIDDEN,
                "auth.suspended",
                &why,
            ));
        }
        within_rate(state, tenant)?;
        let credential = match (bearer(parts), cert) {
            (Some(token), _) => Credential::Token(TokenHash::of(token)),
            (None, Some(der)) if snapshot.by_client_cert(der).is_none() => Credential::CertSubject,
            (None, Some(der)) => Credential::Cert(TokenHash::of_bytes(der)),
            (None, None) => Credential::Token(TokenHash::of("")),
        };
        Ok(Caller {
            who: Principal {
                tenant: tenant.code.clone(),
                protocol: "tus",
            },
            ip,
            credential,
        })
    }
}
