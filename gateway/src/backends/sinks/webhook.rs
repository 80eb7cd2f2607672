//! Webhook subscribers: each event is POSTed as its JSON document, signed so the
//! receiver can tell it came from the gateway and was not replayed much later:
//!
//! ```text
//! Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA-256(secret, "<t>.<body>")>
//! Gateway-Event-Id: file.indexed:f01J…
//! ```
//!
//! Any 2xx answer is delivery; anything else, a timeout or a refused connection is a
//! failed attempt. docs/events.md shows the receiver's side of the check.

use std::time::Duration;

use super::{Sink, SinkError};
use crate::backends::catalog::{BoxFuture, OutboxEvent};
use crate::config::WebhookConfig;

pub struct Webhook {
    name: String,
    url: reqwest::Url,
    key: ring::hmac::Key,
    http: reqwest::Client,
    max_attempts: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookSetupError {
    #[error("webhook `{name}`: url: {message}")]
    Url { name: String, message: String },
    #[error("webhook `{name}`: cannot read secret_file {path}: {source}")]
    Secret {
        name: String,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("webhook `{name}`: secret_file {path} is empty")]
    EmptySecret {
        name: String,
        path: std::path::PathBuf,
    },
    #[error("webhook `{name}`: {message}")]
    Client { name: String, message: String },
}

/// `t=<t>,v1=<hex>` for `body` at time `t`.
pub fn signature(key: &ring::hmac::Key, t: i64, body: &[u8]) -> String {
    let mut ctx = ring::hmac::Context::with_key(key);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex::encode(ctx.sign().as_ref()))
}

impl Webhook {
    pub fn new(cfg: &WebhookConfig) -> Result<Webhook, WebhookSetupError> {
        let name = cfg.name.clone();
        let url = reqwest::Url::parse(&cfg.url).map_err(|e| WebhookSetupError::Url {
            name: name.clone(),
            message: e.to_string(),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if cfg.allow_plain_http => {}
            other => {
                return Err(WebhookSetupError::Url {
                    name,
                    message: format!(
                        "`{other}://` is not accepted: webhooks are https only \
                         (allow_plain_http = true for a subscriber on this host)"
                    ),
                });
            }
        }
        let secret =
            std::fs::read(&cfg.secret_file).map_err(|source| WebhookSetupError::Secret {
                name: name.clone(),
                path: cfg.secret_file.clone(),
                source,
            })?;
        let secret = secret.trim_ascii();
        if secret.is_empty() {
            return Err(WebhookSetupError::EmptySecret {
                name,
                path: cfg.secret_file.clone(),
            });
        }
        // reqwest is built without a bundled crypto provider; the gateway's is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            // A redirect could send signed events (and their file names) to a host
            // nobody configured: a 3xx is a failed delivery, never followed.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(cfg.timeout_secs.clamp(1, 10)))
            .build()
            .map_err(|e| WebhookSetupError::Client {
                name: name.clone(),
                message: e.to_string(),
            })?;
        Ok(Webhook {
            name,
            url,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
            http,
            max_attempts: cfg.max_attempts,
        })
    }

    async fn post(&self, event: &OutboxEvent) -> Result<(), SinkError> {
        let body = serde_json::to_vec(&event.payload).map_err(|e| SinkError(e.to_string()))?;
        let t = crate::util::unix_now();
        let resp = self
            .http
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("gateway-event-id", &event.event_id)
            .header("gateway-event-kind", &event.kind)
            .header("gateway-signature", signature(&self.key, t, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| SinkError(format!("POST {}: {e}", self.url)))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SinkError(format!("POST {}: HTTP {status}", self.url)))
        }
    }
}

impl Sink for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn max_attempts(&self) -> Option<u32> {
        self.max_attempts
    }

    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.post(event))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_hmac_sha256_over_timestamp_dot_body() {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"key");
        // Known answer from Python: hmac.new(b"key", b"1700000000.{}", sha256).
        let s = super::signature(&key, 1_700_000_000, b"{}");
        assert_eq!(
            s,
            "t=1700000000,v1=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }
}
