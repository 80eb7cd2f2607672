//! `/console/api/session`: sign in (`POST`, with the API token as a bearer token or a
//! registered client certificate), who am I (`GET`, which also renews the cookie) and
//! sign out (`DELETE`). Sign-ins go through the very extractors the API uses, so the
//! allow-list, suspension, rate limit and refusal metrics are the API's own.

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::session::{self, Claims};
use crate::frontends::https::auth::{self, Caller, Credential};
use crate::frontends::https::review::Reviewer;
use crate::frontends::https::{Https, problem};
use crate::telemetry::events::{ConsoleSession, InternalEvent};
use crate::tenants::{Role, TokenHash};

/// `POST /console/api/session`.
pub async fn sign_in(State(s): State<Https>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let token = auth::bearer(&parts).map(str::to_owned);
    if token.is_none() && auth::client_cert(&parts).is_none() {
        return problem(
            StatusCode::UNAUTHORIZED,
            "auth.token_missing",
            "sign in with your API token, or with your registered client certificate",
        );
    }
    let role = token.as_deref().and_then(|t| {
        let snapshot = s.app.tenants.snapshot();
        if snapshot.by_token(t).is_some() {
            return None;
        }
        snapshot.principal_by_token(t).map(|p| p.role)
    });
    let claims = match role {
        Some(Role::Vendor) => {
            return problem(
                StatusCode::FORBIDDEN,
                "console.vendor",
                "a vendor's token acts for hospitals through the API; the console is for \
                 hospitals and reviewers",
            );
        }
        Some(_) => reviewer_claims(&mut parts, &s, token.as_deref().unwrap_or("")).await,
        None => hospital_claims(&mut parts, &s).await,
    };
    let claims = match claims {
        Ok(c) => c.renewed(
            crate::util::unix_now(),
            s.app.config.https.console_session_minutes,
        ),
        Err(r) => return r,
    };
    let ip = auth::peer(&parts).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    record(&s, &claims, ip, "sign_in").await;
    answer(&s, &claims, true)
}

async fn hospital_claims(parts: &mut Parts, s: &Https) -> Result<Claims, Response> {
    let c = Caller::from_request_parts(parts, s).await?;
    let credential = match &c.credential {
        Credential::Token(h) => format!("t:{}", h.hex()),
        Credential::Cert(h) => format!("c:{}", h.hex()),
        Credential::CertSubject => "s".into(),
        Credential::Vendor { .. } => {
            return Err(problem(
                StatusCode::FORBIDDEN,
                "console.vendor",
                "the console is for hospitals and reviewers",
            ));
        }
    };
    let cap = match &c.credential {
        Credential::Token(h) => s
            .app
            .tenants
            .snapshot()
            .tenant(&c.who.tenant)
            .and_then(|t| t.token_hashes.iter().find(|x| x.same_as(h)))
            .and_then(TokenHash::expires_at),
        _ => None,
    };
    Ok(Claims::new("hospital", &c.who.tenant, credential, cap))
}

async fn reviewer_claims(parts: &mut Parts, s: &Https, token: &str) -> Result<Claims, Response> {
    let r = Reviewer::from_request_parts(parts, s).await?;
    let hash = TokenHash::of(token);
    let cap = s
        .app
        .tenants
        .snapshot()
        .principal_by_token(token)
        .and_then(|p| p.token_hashes.iter().find(|x| x.same_as(&hash)))
        .and_then(TokenHash::expires_at);
    Ok(Claims::new(
        "reviewer",
        &r.name,
        format!("t:{}", hash.hex()),
        cap,
    ))
}

/// `GET /console/api/session`: who the session is, checked as any request is; the
/// cookie is renewed once half its time is spent.
pub async fn current(State(s): State<Https>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let ip = auth::peer(&parts).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    let claims = match session::claims(&parts, &s, ip) {
        Some(Ok(c)) => c,
        Some(Err(r)) => return signed_out(r),
        None => {
            return problem(
                StatusCode::UNAUTHORIZED,
                "auth.session_missing",
                "not signed in",
            );
        }
    };
    let still = if claims.role == "hospital" {
        session::hospital_of(&claims, &s, ip).map(drop)
    } else {
        session::reviewer_of(&claims, &s, ip).map(drop)
    };
    if let Err(r) = still {
        return signed_out(r);
    }
    let now = crate::util::unix_now();
    let minutes = s.app.config.https.console_session_minutes;
    let renew = claims.half_spent(now, minutes);
    let claims = if renew {
        claims.renewed(now, minutes)
    } else {
        claims
    };
    answer(&s, &claims, renew)
}

/// A refusal (or the sign-out) that also clears the cookie: the page shows the sign-in
/// form.
fn signed_out(mut r: Response) -> Response {
    r.headers_mut()
        .insert(axum::http::header::SET_COOKIE, session::set_cookie(None, 0));
    r
}

/// `DELETE /console/api/session` (with the CSRF token).
pub async fn sign_out(State(s): State<Https>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let ip = auth::peer(&parts).unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
    match session::claims(&parts, &s, ip) {
        Some(Ok(c)) => record(&s, &c, ip, "sign_out").await,
        Some(Err(r)) => return r,
        None => {}
    }
    signed_out(StatusCode::NO_CONTENT.into_response())
}

/// Counted, logged and written to the catalog's audit trail.
async fn record(s: &Https, c: &Claims, ip: std::net::IpAddr, action: &'static str) {
    let via = c.via();
    ConsoleSession {
        ip,
        role: &c.role,
        subject: &c.subject,
        via,
        action,
    }
    .emit();
    let detail = json!({ "ip": ip.to_string(), "role": c.role, "via": via });
    if let Err(e) = s
        .app
        .catalog
        .audit(&c.subject, &format!("console.{action}"), &detail)
        .await
    {
        tracing::warn!(code = e.code(), error = %e, "console audit record not written");
    }
}

/// The session as the page needs it; with `cookie`, the renewed cookie too.
fn answer(s: &Https, c: &Claims, cookie: bool) -> Response {
    let key = &s.app.keys.console_key;
    let snapshot = s.app.tenants.snapshot();
    let (hospitals, encrypted_only) = if c.role == "reviewer" {
        let p = snapshot.principals().iter().find(|p| p.name == c.subject);
        let grant = p.and_then(|p| p.grant()).unwrap_or_else(|| {
            let mut all: Vec<String> = snapshot.codes().map(str::to_owned).collect();
            all.sort();
            all
        });
        (grant, p.is_some_and(|p| p.age_recipient.is_some()))
    } else {
        (vec![c.subject.clone()], false)
    };
    let name = snapshot
        .tenant(&c.subject)
        .map(|t| t.name.clone())
        .unwrap_or_else(|| c.subject.clone());
    let body = json!({
        "role": c.role,
        "subject": c.subject,
        "name": name,
        "hospitals": hospitals,
        "encrypted_downloads_only": encrypted_only,
        "csrf": session::csrf(key, c),
        "expires_at": crate::util::rfc3339(c.expires),
        "recipient": s.app.keys.age_recipient().to_string(),
        "max_file_bytes": s.app.config.ingest.max_file_bytes,
    });
    let mut r = Json(body).into_response();
    if cookie {
        let value = session::seal(key, c);
        let age = (c.expires - crate::util::unix_now()).max(0);
        r.headers_mut().insert(
            axum::http::header::SET_COOKIE,
            session::set_cookie(Some(&value), age),
        );
    }
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}
