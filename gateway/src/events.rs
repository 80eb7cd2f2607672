//! The events handed to downstream services (schema 1, documented in docs/events.md),
//! as typed values, serialized at one point ([`Event::payload`]).
//!
//! A leaf: it knows files, uploads and findings, nothing of the catalog or the pipeline.
//! The pipeline builds `file.indexed` and `upload.rejected`; the catalog stores each
//! event in the same transaction as the change it reports, so an event exists exactly
//! when its change does. Three events are filled in inside that transaction because
//! what they say is only known there: which current files a new version supersedes,
//! the running count of a download, which files' retention ended. Event ids are
//! derived from what happened (`file.indexed:<file id>`), never random: a replay after
//! a crash produces the same id, which sinks use to deduplicate (NATS `Nats-Msg-Id`).

use serde_json::{Value, json};

use crate::checks::{Check, Severity};

pub const SCHEMA: u32 = 1;

/// What a `file.*` event says about the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileFacts {
    pub tenant: String,
    pub upload_id: String,
    pub file_id: String,
    pub name: String,
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
}

/// One event, typed.
#[derive(Clone, Debug)]
pub enum Event {
    /// A file passed its checks and is stored and indexed.
    FileIndexed {
        file: FileFacts,
        metadata: Value,
        checks: Vec<Check>,
        at: i64,
    },
    /// A newer version of the same name replaced the file (rule 3).
    FileSuperseded {
        file: FileFacts,
        by: String,
        at: i64,
    },
    /// The file's retention ended (rule 9).
    FileExpired { file: FileFacts, at: i64 },
    /// The file's `n`th download (ids stay unique per download).
    FileDownloaded {
        file: FileFacts,
        by: String,
        n: i64,
        encrypted: bool,
        at: i64,
    },
    /// An upload failed its checks (or broke off with an error).
    UploadRejected {
        tenant: String,
        upload_id: String,
        name: String,
        checks: Vec<Check>,
        at: i64,
    },
}

impl Event {
    /// `upload.rejected` for an upload, now.
    pub fn upload_rejected(tenant: &str, upload_id: &str, name: &str, checks: &[Check]) -> Event {
        Event::UploadRejected {
            tenant: tenant.into(),
            upload_id: upload_id.into(),
            name: name.into(),
            checks: checks.to_vec(),
            at: crate::util::unix_now(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Event::FileIndexed { .. } => "file.indexed",
            Event::FileSuperseded { .. } => "file.superseded",
            Event::FileExpired { .. } => "file.expired",
            Event::FileDownloaded { .. } => "file.downloaded",
            Event::UploadRejected { .. } => "upload.rejected",
        }
    }

    /// The deduplication id: the kind and what it happened to.
    pub fn id(&self) -> String {
        match self {
            Event::FileIndexed { file, .. }
            | Event::FileSuperseded { file, .. }
            | Event::FileExpired { file, .. } => format!("{}:{}", self.kind(), file.file_id),
            Event::FileDownloaded { file, n, .. } => {
                format!("{}:{}:{n}", self.kind(), file.file_id)
            }
            Event::UploadRejected { upload_id, .. } => format!("{}:{upload_id}", self.kind()),
        }
    }

    pub fn tenant(&self) -> &str {
        match self {
            Event::FileIndexed { file, .. }
            | Event::FileSuperseded { file, .. }
            | Event::FileExpired { file, .. }
            | Event::FileDownloaded { file, .. } => &file.tenant,
            Event::UploadRejected { tenant, .. } => tenant,
        }
    }

    fn at(&self) -> i64 {
        match self {
            Event::FileIndexed { at, .. }
            | Event::FileSuperseded { at, .. }
            | Event::FileExpired { at, .. }
            | Event::FileDownloaded { at, .. }
            | Event::UploadRejected { at, .. } => *at,
        }
    }

    /// The JSON document sinks receive: the envelope every event has, then its own
    /// fields. The one place events are serialized.
    pub fn payload(&self) -> Value {
        let mut doc = json!({
            "schema": SCHEMA,
            "event_id": self.id(),
            "kind": self.kind(),
            "occurred_at": crate::util::rfc3339(self.at()),
            "tenant": self.tenant(),
        });
        let extra = match self {
            Event::FileIndexed {
                file,
                metadata,
                checks,
                ..
            } => {
                let mut e = file_fields(file);
                if let Some(id) = metadata.pointer("/request/id") {
                    e["request_id"] = id.clone();
                }
                e["metadata"] = metadata.clone();
                e["checks"] = check_summary(checks);
                e
            }
            Event::FileSuperseded { file, by, .. } => {
                let mut e = file_fields(file);
                e["superseded_by"] = json!(by);
                e
            }
            Event::FileExpired { file, .. } => file_fields(file),
            Event::FileDownloaded {
                file,
                by,
                n,
                encrypted,
                ..
            } => {
                let mut e = file_fields(file);
                e["downloaded_by"] = json!(by);
                e["download"] = json!(n);
                e["encrypted"] = json!(encrypted);
                e
            }
            Event::UploadRejected {
                upload_id,
                name,
                checks,
                ..
            } => json!({ "upload_id": upload_id, "name": name, "checks": check_summary(checks) }),
        };
        if let (Some(d), Value::Object(e)) = (doc.as_object_mut(), extra) {
            d.extend(e);
        }
        doc
    }
}

fn file_fields(f: &FileFacts) -> Value {
    json!({
        "upload_id": f.upload_id,
        "file_id": f.file_id,
        "name": f.name,
        "sha256": f.sha256,
        "size": f.size,
        "media_type": f.media_type,
    })
}

/// The check summary: overall status and each finding's code and severity.
pub fn check_summary(checks: &[Check]) -> Value {
    let status = if checks.iter().any(|c| c.severity == Severity::Error) {
        "failed"
    } else if checks.iter().any(|c| c.severity == Severity::Warning) {
        "passed_with_warnings"
    } else {
        "passed"
    };
    json!({
        "status": status,
        "findings": checks
            .iter()
            .map(|c| json!({ "code": c.code, "severity": c.severity }))
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> FileFacts {
        FileFacts {
            tenant: "3501200000".into(),
            upload_id: "u1".into(),
            file_id: "f1".into(),
            name: "a.pdf".into(),
            sha256: "ab".repeat(32),
            size: 7,
            media_type: "application/pdf".into(),
        }
    }

    #[test]
    fn every_event_has_the_envelope_and_an_id_from_what_happened() {
        let checks = vec![Check::new("x.note", Severity::Warning, "note")];
        let events = [
            Event::FileIndexed {
                file: facts(),
                metadata: json!({ "request": { "id": "R1" } }),
                checks: checks.clone(),
                at: 0,
            },
            Event::FileSuperseded {
                file: facts(),
                by: "f2".into(),
                at: 0,
            },
            Event::FileExpired {
                file: facts(),
                at: 0,
            },
            Event::FileDownloaded {
                file: facts(),
                by: "review".into(),
                n: 3,
                encrypted: true,
                at: 0,
            },
            Event::UploadRejected {
                tenant: "3501200000".into(),
                upload_id: "u9".into(),
                name: "b.pdf".into(),
                checks,
                at: 0,
            },
        ];
        let ids: Vec<String> = events.iter().map(Event::id).collect();
        assert_eq!(
            ids,
            [
                "file.indexed:f1",
                "file.superseded:f1",
                "file.expired:f1",
                "file.downloaded:f1:3",
                "upload.rejected:u9"
            ]
        );
        for e in &events {
            let p = e.payload();
            assert_eq!(p["schema"], SCHEMA);
            assert_eq!(p["event_id"], e.id());
            assert_eq!(p["kind"], e.kind());
            assert_eq!(p["tenant"], "3501200000");
            assert_eq!(p["occurred_at"], "1970-01-01T00:00:00Z");
        }
        assert_eq!(events[0].payload()["request_id"], "R1");
        assert_eq!(
            events[0].payload()["checks"]["status"],
            "passed_with_warnings"
        );
        assert_eq!(events[3].payload()["download"], 3);
        assert_eq!(
            events[4].payload()["checks"]["status"],
            "passed_with_warnings"
        );
    }
}
