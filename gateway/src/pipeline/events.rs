//! The events handed to downstream services (schema 1, documented in docs/events.md).
//! Each is written to the outbox in the same catalog transaction as the change it
//! reports, so an event exists exactly when its change does. Event ids are derived
//! from what happened (`file.indexed:<file id>`), never random: a replay after a crash
//! produces the same id, which sinks use to deduplicate (NATS `Nats-Msg-Id`).

use serde_json::{Value, json};

use crate::checks::{Check, Severity};

pub const SCHEMA: u32 = 1;

/// The fields every event has.
fn envelope(kind: &str, event_id: String, tenant: &str, at: i64) -> Value {
    json!({
        "schema": SCHEMA,
        "event_id": event_id,
        "kind": kind,
        "occurred_at": crate::util::rfc3339(at),
        "tenant": tenant,
    })
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
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

/// What a `file.*` event says about the file.
pub struct FileFacts<'a> {
    pub tenant: &'a str,
    pub upload_id: &'a str,
    pub file_id: &'a str,
    pub name: &'a str,
    pub sha256: &'a str,
    pub size: u64,
    pub media_type: &'a str,
}

fn file_fields(f: &FileFacts<'_>) -> Value {
    json!({
        "upload_id": f.upload_id,
        "file_id": f.file_id,
        "name": f.name,
        "sha256": f.sha256,
        "size": f.size,
        "media_type": f.media_type,
    })
}

pub fn file_indexed(f: &FileFacts<'_>, metadata: &Value, checks: &[Check], at: i64) -> Value {
    let base = envelope(
        "file.indexed",
        format!("file.indexed:{}", f.file_id),
        f.tenant,
        at,
    );
    let mut extra = file_fields(f);
    if let Some(id) = metadata.pointer("/request/id") {
        extra["request_id"] = id.clone();
    }
    extra["metadata"] = metadata.clone();
    extra["checks"] = check_summary(checks);
    merge(base, extra)
}

pub fn file_superseded(f: &FileFacts<'_>, by: &str, at: i64) -> Value {
    let base = envelope(
        "file.superseded",
        format!("file.superseded:{}", f.file_id),
        f.tenant,
        at,
    );
    let mut extra = file_fields(f);
    extra["superseded_by"] = json!(by);
    merge(base, extra)
}

pub fn file_expired(f: &FileFacts<'_>, at: i64) -> Value {
    let base = envelope(
        "file.expired",
        format!("file.expired:{}", f.file_id),
        f.tenant,
        at,
    );
    merge(base, file_fields(f))
}

/// The `n`th download of a file (ids stay unique per download).
pub fn file_downloaded(f: &FileFacts<'_>, by: &str, n: i64, encrypted: bool, at: i64) -> Value {
    let base = envelope(
        "file.downloaded",
        format!("file.downloaded:{}:{n}", f.file_id),
        f.tenant,
        at,
    );
    let mut extra = file_fields(f);
    extra["downloaded_by"] = json!(by);
    extra["download"] = json!(n);
    extra["encrypted"] = json!(encrypted);
    merge(base, extra)
}

pub fn upload_rejected(
    tenant: &str,
    upload_id: &str,
    name: &str,
    checks: &[Check],
    at: i64,
) -> Value {
    let base = envelope(
        "upload.rejected",
        format!("upload.rejected:{upload_id}"),
        tenant,
        at,
    );
    merge(
        base,
        json!({ "upload_id": upload_id, "name": name, "checks": check_summary(checks) }),
    )
}
