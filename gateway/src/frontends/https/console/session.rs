//! Console sign-in. An API token (or a registered client certificate) is presented
//! once, to `POST /console/api/session`, and exchanged for a session cookie:
//! `HttpOnly` (no script reads it), `Secure`, `SameSite=Strict` (no other site's page
//! sends it), lasting `https.console_session_minutes` and renewed while the page is
//! open, never beyond the token's own expiry.
//!
//! The cookie holds no secret of the caller's: its role, its name, the *hash* of the
//! credential it signed in with, the expiry and a nonce, signed with HMAC-SHA256 under
//! `keys/console-session.key`. Nothing is kept on the server, so every node of a
//! cluster with the same `keys/` accepts it. Each request re-checks the credential
//! against the current tenants file, so a token removed, a hospital suspended or an
//! address taken off the allow-list ends the session at once, as it ends an API caller.
//!
//! Every request that changes something must also carry `X-CSRF-Token`, an HMAC of the
//! session's nonce that the page learns from the sign-in answer (a page of another
//! origin can neither read it nor, under `SameSite=Strict`, send the cookie).

use std::net::IpAddr;

use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::frontends::https::auth::{Caller, Credential};
use crate::frontends::https::review::Reviewer;
use crate::frontends::https::{Https, problem};
use crate::session::Principal;
use crate::telemetry::events::{AuthRefusal, HttpAuthRefused, InternalEvent};
use crate::tenants::TokenHash;

pub const COOKIE: &str = "gw_console";
pub const CSRF_HEADER: &str = "x-csrf-token";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a session cookie says, under its signature.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// `hospital` or `reviewer`.
    pub role: String,
    /// The hospital's code, or the reviewer's name.
    pub subject: String,
    /// `t:<hex>` a token's hash, `c:<hex>` a client certificate's, `s` a certificate
    /// from the client CA naming the hospital.
    pub credential: String,
    /// Unix seconds the session ends at unless renewed.
    pub expires: i64,
    /// Unix seconds no renewal goes past (the token's expiry), if any.
    pub cap: Option<i64>,
    pub nonce: String,
}

impl Claims {
    pub fn new(role: &str, subject: &str, credential: String, cap: Option<i64>) -> Claims {
        let nonce = crate::sealed::random_seed()
            .map(hex::encode)
            .unwrap_or_default();
        Claims {
            role: role.into(),
            subject: subject.into(),
            credential,
            expires: 0,
            cap,
            nonce,
        }
    }

    /// The same session, lasting `minutes` from `now` (within its cap).
    pub fn renewed(mut self, now: i64, minutes: u64) -> Claims {
        let until = now.saturating_add(i64::try_from(minutes.max(1) * 60).unwrap_or(1800));
        self.expires = self.cap.map_or(until, |c| until.min(c));
        self
    }

    /// How the session was signed in: `token` or `certificate`.
    pub fn via(&self) -> &'static str {
        if self.credential.starts_with("t:") {
            "token"
        } else {
            "certificate"
        }
    }

    /// Whether more than half of the session's time is used up (then it is renewed).
    pub fn half_spent(&self, now: i64, minutes: u64) -> bool {
        self.expires - now < i64::try_from(minutes * 30).unwrap_or(900)
    }
}

fn mac(key: &[u8; 32], data: &[u8]) -> Vec<u8> {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&k, data).as_ref().to_vec()
}

/// The cookie value: the claims as base64url JSON, a dot, and their MAC.
pub fn seal(key: &[u8; 32], claims: &Claims) -> String {
    let body = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
    let tag = B64.encode(mac(key, body.as_bytes()));
    format!("{body}.{tag}")
}

/// The claims of a cookie value whose MAC is right and whose time is not up.
pub fn open(key: &[u8; 32], value: &str, now: i64) -> Option<Claims> {
    let (body, tag) = value.split_once('.')?;
    let tag = B64.decode(tag).ok()?;
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::verify(&k, body.as_bytes(), &tag).ok()?;
    let claims: Claims = serde_json::from_slice(&B64.decode(body).ok()?).ok()?;
    (claims.expires > now).then_some(claims)
}

/// The CSRF token of a session: only the page that signed in learns it.
pub fn csrf(key: &[u8; 32], claims: &Claims) -> String {
    B64.encode(mac(key, format!("csrf:{}", claims.nonce).as_bytes()))
}

/// The `Set-Cookie` value for a session (or, with `None`, for signing out).
pub fn set_cookie(value: Option<&str>, max_age_secs: i64) -> HeaderValue {
    let v = match value {
        Some(v) => format!(
            "{COOKIE}={v}; Path=/; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Strict"
        ),
        None => format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict"),
    };
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session cookie's value, if the request carries one.
pub fn cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .map(str::trim)
        .find_map(|c| c.strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

fn refuse(ip: IpAddr, reason: AuthRefusal, status: StatusCode, code: &str, d: &str) -> Response {
    HttpAuthRefused { ip, reason }.emit();
    problem(status, code, d)
}

/// The answer to a session that no longer holds: forged, expired, or its credential gone.
fn ended(ip: IpAddr) -> Response {
    refuse(
        ip,
        AuthRefusal::SessionInvalid,
        StatusCode::UNAUTHORIZED,
        "auth.session_invalid",
        "the console session has ended; sign in again",
    )
}

/// The request's session, checked (signature, time, and the CSRF token of a request
/// that changes something); `None` when it carries no session cookie.
pub fn claims(parts: &Parts, state: &Https, ip: IpAddr) -> Option<Result<Claims, Response>> {
    let value = cookie(parts)?;
    let key = &state.app.keys.console_key;
    let Some(claims) = open(key, value, crate::util::unix_now()) else {
        return Some(Err(ended(ip)));
    };
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let expected = csrf(key, &claims);
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .map(HeaderValue::as_bytes)
            .unwrap_or_default();
        let same = sent.len() == expected.len()
            && sent
                .iter()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Some(Err(refuse(
                ip,
                AuthRefusal::CsrfMissing,
                StatusCode::FORBIDDEN,
                "auth.csrf",
                "a console request that changes something must carry X-CSRF-Token",
            )));
        }
    }
    Some(Ok(claims))
}

fn credential_of(claims: &Claims) -> Option<Credential> {
    let hash = |hex: &str| format!("sha256:{hex}").parse::<TokenHash>().ok();
    match claims.credential.split_once(':') {
        Some(("t", h)) => hash(h).map(Credential::Token),
        Some(("c", h)) => hash(h).map(Credential::Cert),
        _ if claims.credential == "s" => Some(Credential::CertSubject),
        _ => None,
    }
}

/// A hospital's session as a [`Caller`], held to the same checks as a token: the
/// credential still registered and unexpired, the hospital not suspended, the address
/// allowed, the request rate. `None`: no session cookie, or a reviewer's.
pub fn hospital(parts: &Parts, state: &Https, ip: IpAddr) -> Option<Result<Caller, Response>> {
    match claims(parts, state, ip)? {
        Ok(c) if c.role == "hospital" => Some(hospital_of(&c, state, ip)),
        Ok(_) => None,
        Err(r) => Some(Err(r)),
    }
}

/// [`hospital`] for claims already opened.
// The error is the extractors' own rejection type (a response), returned as is.
#[allow(clippy::result_large_err)]
pub fn hospital_of(claims: &Claims, state: &Https, ip: IpAddr) -> Result<Caller, Response> {
    let gone = |why: &str| {
        tracing::info!(audit = true, %ip, hospital = %claims.subject, why, "console session ended");
        ended(ip)
    };
    let Some(credential) = credential_of(claims) else {
        return Err(gone("credential_unreadable"));
    };
    let caller = Caller {
        who: Principal {
            tenant: claims.subject.clone(),
            protocol: "tus",
        },
        ip,
        credential,
    };
    if let Some(why) = caller.revoked(&state.app.tenants) {
        return Err(gone(why));
    }
    let snapshot = state.app.tenants.snapshot();
    let tenant = snapshot
        .tenant(&claims.subject)
        .ok_or_else(|| gone("tenant_removed"))?;
    super::super::auth::within_rate(state, tenant)?;
    Ok(caller)
}

/// A reviewer's session as a [`Reviewer`]: the principal still holds the token it
/// signed in with (unexpired), is not suspended, and the address is allowed.
/// `None`: no session cookie, or a hospital's.
pub fn reviewer(parts: &Parts, state: &Https, ip: IpAddr) -> Option<Result<Reviewer, Response>> {
    match claims(parts, state, ip)? {
        Ok(c) if c.role == "reviewer" => Some(reviewer_of(&c, state, ip)),
        Ok(_) => None,
        Err(r) => Some(Err(r)),
    }
}

/// [`reviewer`] for claims already opened.
// The error is the extractors' own rejection type (a response), returned as is.
#[allow(clippy::result_large_err)]
pub fn reviewer_of(claims: &Claims, state: &Https, ip: IpAddr) -> Result<Reviewer, Response> {
    let Some(Credential::Token(hash)) = credential_of(claims) else {
        return Err(ended(ip));
    };
    let snapshot = state.app.tenants.snapshot();
    let now = crate::util::unix_now();
    let principal = snapshot.principals().iter().find(|p| {
        p.name == claims.subject
            && p.role != crate::tenants::Role::Vendor
            && p.token_hashes
                .iter()
                .any(|h| h.same_as(&hash) && !h.expired(now))
    });
    let Some(p) = principal.filter(|p| p.allows_ip(ip)) else {
        return Err(ended(ip));
    };
    Reviewer::admit(p, ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn claims() -> Claims {
        Claims::new("hospital", "3501200000", "t:00".into(), None).renewed(1_000, 30)
    }

    #[test]
    fn a_sealed_session_opens_until_its_time_is_up() {
        let c = claims();
        let v = seal(&KEY, &c);
        assert_eq!(open(&KEY, &v, 1_000), Some(c.clone()));
        assert_eq!(open(&KEY, &v, 1_000 + 30 * 60), None, "expired");
        assert_eq!(open(&[8; 32], &v, 1_000), None, "another key");
    }

    #[test]
    fn a_changed_claim_breaks_the_signature() {
        let v = seal(&KEY, &claims());
        let (body, tag) = v.split_once('.').unwrap();
        let mut forged: Claims = serde_json::from_slice(&B64.decode(body).unwrap()).unwrap();
        forged.subject = "9999999999".into();
        let forged_body = B64.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(open(&KEY, &format!("{forged_body}.{tag}"), 1_000), None);
        assert_eq!(open(&KEY, "garbage", 1_000), None);
        assert_eq!(open(&KEY, "a.b", 1_000), None);
    }

    #[test]
    fn renewal_never_passes_the_tokens_expiry() {
        let c = Claims::new("hospital", "x", "t:00".into(), Some(1_600)).renewed(1_000, 30);
        assert_eq!(c.expires, 1_600);
        assert!(
            c.half_spent(1_000, 30),
            "already under half of 30 minutes left"
        );
        let c = claims();
        assert!(!c.half_spent(1_000, 30));
        assert!(c.half_spent(1_000 + 16 * 60, 30));
    }

    #[test]
    fn each_session_has_its_own_csrf_token() {
        let a = claims();
        let b = claims();
        assert_ne!(csrf(&KEY, &a), csrf(&KEY, &b));
        assert_eq!(csrf(&KEY, &a), csrf(&KEY, &a));
    }
}
