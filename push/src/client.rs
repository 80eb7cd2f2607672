//! A small tus 1.0 client on reqwest (rustls with ring): create, HEAD, PATCH, and the
//! gateway's own result resource. Only what `gateway push` needs.

use std::path::Path;
use std::time::Duration;

use reqwest::{StatusCode, Url};

use super::PushError;
use gateway_sealed::Recipient;

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");

pub struct TusClient {
    http: reqwest::Client,
    base: Url,
    token: String,
}

/// Where an upload stands at the gateway.
pub enum Remote {
    /// Receiving, or complete when `offset == length`.
    At { offset: u64, length: Option<u64> },
    /// Expired, terminated or unknown: start a new upload.
    Gone,
}

fn transport(e: reqwest::Error) -> PushError {
    PushError::Transport(e.to_string())
}

/// A refusal with the gateway's problem document, if it sent one.
async fn refused(resp: reqwest::Response) -> PushError {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    PushError::Refused {
        status,
        code: body["code"].as_str().unwrap_or("http.error").to_string(),
        detail: body["detail"].as_str().unwrap_or("").to_string(),
    }
}

impl TusClient {
    pub fn new(
        base: &str,
        token: &str,
        ca_cert: Option<&Path>,
        insecure: bool,
    ) -> Result<TusClient, PushError> {
        // reqwest is built without a bundled crypto provider; the gateway's is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = Url::parse(base).map_err(|e| PushError::Usage(format!("--url: {e}")))?;
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .tls_danger_accept_invalid_certs(insecure);
        if let Some(pem) = ca_cert {
            let bytes = std::fs::read(pem).map_err(|e| PushError::Local(pem.into(), e))?;
            let cert = reqwest::Certificate::from_pem(&bytes)
                .map_err(|e| PushError::Usage(format!("--ca-cert: {e}")))?;
            b = b.add_root_certificate(cert);
        }
        Ok(TusClient {
            http: b.build().map_err(transport)?,
            base,
            token: token.to_string(),
        })
    }

    fn url(&self, path_or_url: &str) -> Result<Url, PushError> {
        self.base
            .join(path_or_url)
            .map_err(|e| PushError::Transport(format!("bad upload URL {path_or_url}: {e}")))
    }

    /// The gateway's age recipient, as its index announces it.
    pub async fn recipient(&self) -> Result<Recipient, PushError> {
        let resp = self
            .http
            .get(self.url("/")?)
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        let v: serde_json::Value = resp.json().await.map_err(transport)?;
        v["recipient"]
            .as_str()
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| {
                PushError::Usage("the gateway announces no recipient; pass --recipient".into())
            })
    }

    /// Creates an upload of `len` bytes named `name`; returns its absolute URL.
    pub async fn create(&self, name: &str, len: u64) -> Result<String, PushError> {
        use base64::Engine;
        let meta = format!(
            "filename {}",
            base64::engine::general_purpose::STANDARD.encode(name)
        );
        let resp = self
            .http
            .post(self.url("/v1/uploads")?)
            .bearer_auth(&self.token)
            .header(TUS.0, TUS.1)
            .header("Upload-Length", len)
            .header("Upload-Metadata", meta)
            .send()
            .await
            .map_err(transport)?;
        if resp.status() != StatusCode::CREATED {
            return Err(refused(resp).await);
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| PushError::Transport("201 without Location".into()))?;
        Ok(self.url(location)?.to_string())
    }

    pub async fn remote(&self, url: &str) -> Result<Remote, PushError> {
        let resp = self
            .http
            .head(self.url(url)?)
            .bearer_auth(&self.token)
            .header(TUS.0, TUS.1)
            .send()
            .await
            .map_err(transport)?;
        let num = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        match resp.status() {
            StatusCode::OK => Ok(Remote::At {
                offset: num("upload-offset").unwrap_or(0),
                length: num("upload-length"),
            }),
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(Remote::Gone),
            _ => Err(refused(resp).await),
        }
    }

    /// Appends `bytes` at `offset`; returns the new durable offset. A 409 returns the
    /// gateway's offset as `Err(OffsetMoved)` so that the caller continues from there.
    pub async fn append(&self, url: &str, offset: u64, bytes: Vec<u8>) -> Result<u64, PushError> {
        let resp = self
            .http
            .patch(self.url(url)?)
            .bearer_auth(&self.token)
            .header(TUS.0, TUS.1)
            .header("Content-Type", "application/offset+octet-stream")
            .header("Upload-Offset", offset)
            .body(bytes)
            .send()
            .await
            .map_err(transport)?;
        let new_offset = resp
            .headers()
            .get("upload-offset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match (resp.status(), new_offset) {
            (StatusCode::NO_CONTENT, Some(o)) => Ok(o),
            (StatusCode::CONFLICT, Some(o)) => Err(PushError::OffsetMoved(o)),
            _ => Err(refused(resp).await),
        }
    }

    /// The check result of the upload at `url`.
    pub async fn result(&self, url: &str) -> Result<serde_json::Value, PushError> {
        let resp = self
            .http
            .get(self.url(&format!("{url}/result"))?)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        resp.json().await.map_err(transport)
    }
}
