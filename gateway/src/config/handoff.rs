//! The `[retention]` and `[publish]` sections: how long indexed files are kept, and
//! where their events go.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::tenants::Profile;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days an indexed file of each profile is kept; 0 = until deleted otherwise.
    pub nhi_review_days: u32,
    pub emr_download_days: u32,
    pub generic_days: u32,
    /// Seconds between retention sweeps.
    pub sweep_interval_secs: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            nhi_review_days: 0,
            emr_download_days: 14,
            generic_days: 0,
            sweep_interval_secs: 300,
        }
    }
}

impl RetentionConfig {
    /// Seconds a file is kept: the tenant's own figure when it has one, else its
    /// profile's; `None` = kept.
    pub fn retain_secs(&self, profile: Profile, tenant_days: Option<u32>) -> Option<i64> {
        let days = tenant_days.unwrap_or(match profile {
            Profile::NhiReview => self.nhi_review_days,
            Profile::EmrDownload => self.emr_download_days,
            Profile::Generic => self.generic_days,
        });
        (days > 0).then_some(i64::from(days) * 86_400)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishConfig {
    /// Attempts per event and sink before it becomes a dead letter.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt (with jitter) up to `backoff_max_secs`.
    pub backoff_initial_ms: u64,
    pub backoff_max_secs: u64,
    /// Webhook subscribers.
    pub webhooks: Vec<WebhookConfig>,
    pub nats: NatsConfig,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            max_attempts: 10,
            backoff_initial_ms: 500,
            backoff_max_secs: 300,
            webhooks: Vec::new(),
            nats: NatsConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Names the sink in metrics, dead letters and its cursor; keep it stable.
    pub name: String,
    pub url: String,
    /// HMAC-SHA-256 key for the `Gateway-Signature` header (a file holding it).
    pub secret_file: PathBuf,
    #[serde(default = "default_webhook_timeout")]
    pub timeout_secs: u64,
    /// This subscriber's own `[publish] max_attempts`.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Allow an `http://` URL (tests, a subscriber on the same host); otherwise events,
    /// which name patients' files, only travel over `https://`.
    #[serde(default)]
    pub allow_plain_http: bool,
}

fn default_webhook_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:port`; empty = no NATS sink.
    pub url: String,
    /// Events go to `<subject_prefix>.<kind>`, e.g. `gateway.events.file.indexed`.
    pub subject_prefix: String,
    /// The JetStream stream that must capture the subjects.
    pub stream: String,
    /// Create the stream when it does not exist.
    pub create_stream: bool,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: String::new(),
            subject_prefix: "gateway.events".into(),
            stream: "GATEWAY_EVENTS".into(),
            create_stream: true,
        }
    }
}
