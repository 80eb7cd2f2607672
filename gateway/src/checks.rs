//! Check results (rule 11): what a hospital sees for each upload — a status
//! (`receiving`, `checking`, `passed`, `failed`) and a list of findings with stable
//! codes. The format is documented, with its JSON schema, in docs/check-results.md.

use serde::{Deserialize, Serialize};

/// One finding about an upload, as shown to the hospital.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    pub code: String,
    pub severity: Severity,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Passed; recorded so the hospital sees what was checked.
    Info,
    /// Accepted, but worth a look (e.g. a duplicate).
    Warning,
    /// The upload fails.
    Error,
}

impl Check {
    pub fn new(code: &str, severity: Severity, message: impl Into<String>) -> Check {
        Check {
            code: code.into(),
            severity,
            message: message.into(),
            detail: serde_json::Value::Null,
        }
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Check {
        self.detail = detail;
        self
    }
}

/// The hospital-facing status of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Bytes are still arriving (or the upload is waiting to be resumed).
    Receiving,
    /// Accepted; checks are queued or running (also during a maintenance window).
    Checking,
    Passed,
    Failed,
    /// A partial upload that was never finished and was cleaned up.
    Expired,
}

/// The check result of one upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub upload_id: String,
    pub tenant: String,
    pub name: String,
    pub status: Status,
    /// Sealed bytes received (durable) so far.
    pub received_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A pre-check (rule 21): checked only, never submitted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub precheck: bool,
    pub checks: Vec<Check>,
    /// What the review side did with the indexed file (rules 13 and 19), once
    /// there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<DownloadState>,
}

/// Whether an indexed file was downloaded, and whether it expired unread (the hospital
/// then re-sends or refunds, rule 19).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadState {
    /// `ready`, `downloaded`, `expired` (after a download) or `expired_unread`.
    pub state: String,
    pub downloads: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_downloaded_at: Option<String>,
    /// When retention ends (or ended) for the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

impl CheckResult {
    /// The human-readable error report (檢核錯誤明細表), as served next to the JSON.
    pub fn to_text(&self) -> String {
        let status = match self.status {
            Status::Receiving => "RECEIVING (傳送中)",
            Status::Checking => "CHECKING (檢核中)",
            Status::Passed => "PASSED (檢核正確)",
            Status::Failed => "FAILED (檢核失敗)",
            Status::Expired => "EXPIRED (未完成，已清除)",
        };
        let mut out = format!(
            "Check result for {}\nUpload:   {}\nStatus:   {status}\nReceived: {} bytes\n",
            self.name, self.upload_id, self.received_bytes
        );
        if let Some(sha) = &self.sha256 {
            out.push_str(&format!("SHA-256:  {sha}\n"));
        }
        if self.precheck {
            out.push_str("Pre-check (預檢): checked only; not submitted, removed after a day\n");
        }
        out.push_str("\nFindings:\n");
        for c in &self.checks {
            let sev = match c.severity {
                Severity::Info => "ok     ",
                Severity::Warning => "WARNING",
                Severity::Error => "ERROR  ",
            };
            out.push_str(&format!("  {sev} {:<28} {}\n", c.code, c.message));
        }
        if self.checks.is_empty() {
            out.push_str("  (none yet)\n");
        }
        out
    }
}
