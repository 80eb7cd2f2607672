//! Who came in and how: SSH and HTTPS connections, logins and refusals, requests
//! served, sessions ended by a tenants reload.

use std::net::{IpAddr, SocketAddr};

use super::InternalEvent;
use crate::telemetry::metrics::METRICS;

pub struct SshConnectionAccepted {
    pub peer: SocketAddr,
}

impl InternalEvent for SshConnectionAccepted {
    fn emit(self) {
        METRICS.ssh_connections.inc();
        tracing::debug!(peer = %self.peer, "ssh connection");
    }
}

/// Why an SSH login was refused; the label values of `gateway_ssh_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    UnknownUser,
    IpNotAllowed,
    KeyNotAuthorized,
    MethodNotAllowed,
    TooManySessions,
    Suspended,
    VendorNotAllowed,
    /// A console session cookie that is forged, expired or no longer backed by its
    /// credential.
    SessionInvalid,
    /// A console request that changes something without its CSRF token.
    CsrfMissing,
}

impl AuthRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthRefusal::UnknownUser => "unknown_user",
            AuthRefusal::IpNotAllowed => "ip_not_allowed",
            AuthRefusal::KeyNotAuthorized => "key_not_authorized",
            AuthRefusal::MethodNotAllowed => "method_not_allowed",
            AuthRefusal::TooManySessions => "too_many_sessions",
            AuthRefusal::Suspended => "suspended",
            AuthRefusal::VendorNotAllowed => "vendor_not_allowed",
            AuthRefusal::SessionInvalid => "session_invalid",
            AuthRefusal::CsrfMissing => "csrf_missing",
        }
    }
}

pub struct SshAuthRefused<'a> {
    pub user: &'a str,
    pub ip: Option<IpAddr>,
    pub reason: AuthRefusal,
}

impl InternalEvent for SshAuthRefused<'_> {
    fn emit(self) {
        METRICS
            .ssh_auth_failures
            .with_label_values(&[self.reason.as_str()])
            .inc();
        tracing::warn!(
            audit = true,
            user = self.user,
            ip = ?self.ip,
            reason = self.reason.as_str(),
            "ssh login refused"
        );
    }
}

pub struct HttpAuthRefused {
    pub ip: IpAddr,
    pub reason: AuthRefusal,
}

impl InternalEvent for HttpAuthRefused {
    fn emit(self) {
        METRICS
            .http_auth_failures
            .with_label_values(&[self.reason.as_str()])
            .inc();
        tracing::warn!(
            audit = true,
            ip = %self.ip,
            reason = self.reason.as_str(),
            "https call refused"
        );
    }
}

pub struct SshConnectionRefused {
    pub ip: IpAddr,
    /// `locked` or `too_many_sessions`.
    pub reason: &'static str,
}

impl InternalEvent for SshConnectionRefused {
    fn emit(self) {
        METRICS
            .ssh_refused_connections
            .with_label_values(&[self.reason])
            .inc();
        tracing::warn!(ip = %self.ip, reason = self.reason, "ssh connection refused");
    }
}

/// A connection from a load balancer whose PROXY v2 header was read: the client it
/// names, or why the connection was closed instead.
pub struct ProxyHeaderRead<'a> {
    pub protocol: &'static str,
    pub balancer: std::net::SocketAddr,
    pub outcome: Result<std::net::SocketAddr, &'a crate::frontends::proxy::ProxyError>,
}

impl InternalEvent for ProxyHeaderRead<'_> {
    fn emit(self) {
        let outcome = match &self.outcome {
            Ok(client) if *client == self.balancer => "local",
            Ok(_) => "client",
            Err(e) => e.code(),
        };
        METRICS
            .proxy_headers
            .with_label_values(&[self.protocol, outcome])
            .inc();
        match self.outcome {
            Ok(client) => tracing::debug!(protocol = self.protocol, balancer = %self.balancer,
                client = %client, "connection through the load balancer"),
            Err(e) => tracing::warn!(protocol = self.protocol, balancer = %self.balancer,
                code = e.code(), error = %e, "load balancer connection refused"),
        }
    }
}

/// An HTTPS connection dropped at accept because the listener holds
/// `https.max_connections` already.
pub struct HttpsConnectionRefused {
    pub reason: &'static str,
}

impl InternalEvent for HttpsConnectionRefused {
    fn emit(self) {
        METRICS
            .https_refused_connections
            .with_label_values(&[self.reason])
            .inc();
        tracing::warn!(reason = self.reason, "https connection refused");
    }
}

/// A request answered before its body was read: the rest was read and discarded
/// (`drained`) or the connection closed after the answer (`closed`, too large or too
/// slow to wait for).
pub struct HttpsUnreadBody {
    pub outcome: &'static str,
}

impl InternalEvent for HttpsUnreadBody {
    fn emit(self) {
        METRICS
            .https_unread_bodies
            .with_label_values(&[self.outcome])
            .inc();
        tracing::debug!(
            outcome = self.outcome,
            "request answered before its body was read"
        );
    }
}

/// A logged-in session, or an HTTPS upload under way, ended because a reload took its
/// access away (rule 18).
pub struct SessionRevoked<'a> {
    pub protocol: &'static str,
    pub tenant: &'a str,
    pub ip: IpAddr,
    pub reason: &'static str,
}

impl InternalEvent for SessionRevoked<'_> {
    fn emit(self) {
        METRICS
            .sessions_revoked
            .with_label_values(&[self.protocol, self.reason])
            .inc();
        tracing::warn!(audit = true, protocol = self.protocol, tenant = self.tenant, ip = %self.ip, reason = self.reason, "access revoked: session ended");
    }
}

pub struct SshLockout {
    pub ip: IpAddr,
    pub seconds: u64,
}

impl InternalEvent for SshLockout {
    fn emit(self) {
        METRICS.ssh_lockouts.inc();
        tracing::warn!(audit = true, ip = %self.ip, seconds = self.seconds, "ssh source locked out after failed logins");
    }
}

pub struct SshLogin<'a> {
    pub tenant: &'a str,
    pub ip: Option<IpAddr>,
    pub key_fingerprint: &'a str,
}

impl InternalEvent for SshLogin<'_> {
    fn emit(self) {
        METRICS.ssh_logins.inc();
        tracing::info!(
            audit = true,
            tenant = self.tenant,
            ip = ?self.ip,
            key = self.key_fingerprint,
            "ssh login"
        );
    }
}

pub struct HttpRequestServed<'a> {
    pub listener: &'static str,
    pub method: &'a str,
    /// The route template (`/v1/uploads/{id}`), or `unmatched`.
    pub route: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub seconds: f64,
}

impl InternalEvent for HttpRequestServed<'_> {
    fn emit(self) {
        let class = match self.status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        // Methods outside the known set are one label, so clients cannot add series.
        let method = match self.method {
            m @ ("GET" | "HEAD" | "POST" | "PATCH" | "PUT" | "DELETE" | "OPTIONS") => m,
            _ => "other",
        };
        METRICS
            .http_requests
            .with_label_values(&[self.listener, method, self.route, class])
            .inc();
        METRICS
            .http_duration
            .with_label_values(&[self.listener, self.route])
            .observe(self.seconds);
        tracing::debug!(
            listener = self.listener,
            method = self.method,
            path = self.path,
            status = self.status,
            "http request"
        );
    }
}

/// A web console sign-in or sign-out (audited).
pub struct ConsoleSession<'a> {
    pub ip: IpAddr,
    /// `hospital` or `reviewer`.
    pub role: &'a str,
    /// The hospital's code or the reviewer's name.
    pub subject: &'a str,
    /// `token` or `certificate`.
    pub via: &'a str,
    /// `sign_in` or `sign_out`.
    pub action: &'static str,
}

impl InternalEvent for ConsoleSession<'_> {
    fn emit(self) {
        METRICS
            .console_sessions
            .with_label_values(&[self.role, self.via, self.action])
            .inc();
        tracing::info!(
            audit = true,
            ip = %self.ip,
            role = self.role,
            subject = self.subject,
            via = self.via,
            action = self.action,
            "console session"
        );
    }
}
