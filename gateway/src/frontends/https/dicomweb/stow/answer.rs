//! The STOW-RS answer: waits (up to `[dicomweb] stow_wait_secs`) until every accepted
//! part is checked, then lists stored instances in ReferencedSOPSequence and failed
//! parts in FailedSOPSequence with their FailureReason and ErrorComment.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::checks::{CheckResult, Severity, Status};
use crate::frontends::https::Https;
use crate::frontends::https::dicomweb::unavailable;

use super::Outcome;

/// FailureReason for a refusal or a failed check.
fn failure_reason(code: &str) -> u16 {
    match code {
        "dicomweb.study_mismatch" => 0xA900,
        c if c.starts_with("ingest.quota")
            || c == "ingest.too_large"
            || c == "ingest.too_many_uploads" =>
        {
            0xA700
        }
        c if c.starts_with("sealed.")
            || c.starts_with("dicom.")
            || c.starts_with("type.")
            || c == "dicomweb.not_dicom"
            || c == "dicomweb.directory"
            || c == "dicomweb.part_media_type" =>
        {
            0xC000
        }
        _ => 0x0110,
    }
}

/// ErrorComment (0000,0902) of a failed part: the machine code of its refusal (as in
/// the check results, docs/check-results.md), which FailureReason's few classes cannot say.
fn error_comment(code: &str) -> Value {
    json!({ "vr": "LO", "Value": [code] })
}

fn us(v: u16) -> Value {
    json!({ "vr": "US", "Value": [v] })
}

fn ui(v: &str) -> Value {
    json!({ "vr": "UI", "Value": [v] })
}

/// Waits until the check of `upload` is final (or `deadline`).
async fn result_of(s: &Https, upload: &str, deadline: tokio::time::Instant) -> Option<CheckResult> {
    let mut changes = s.app.catalog.outbox_watch();
    loop {
        changes.borrow_and_update();
        match s.app.catalog.check_result(upload).await {
            Ok(Some(r))
                if matches!(r.status, Status::Passed | Status::Failed | Status::Expired) =>
            {
                return Some(r);
            }
            Ok(_) => {}
            Err(_) => return None,
        }
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            return None;
        }
    }
}

/// Refusals that hold only for now (the catalog or the store unreachable for a
/// moment, the gateway's own disk, the upload held by a closing connection).
fn for_now(code: &str) -> bool {
    matches!(
        code,
        "catalog.unavailable" | "objects.unavailable" | "ingest.io" | "ingest.busy"
    )
}

pub(super) async fn respond(
    s: &Https,
    outcomes: Vec<Outcome>,
    study: Option<&str>,
    base: &str,
    wait: Duration,
) -> Response {
    // Nothing accepted, and refused for now: the whole request is answered 503 with
    // the code, which clients retry, rather than a failure per part, which they do not.
    let transient = outcomes.iter().find_map(|o| match o {
        Outcome::Refused(code) if for_now(code) => Some(code.clone()),
        _ => None,
    });
    if let Some(code) = transient
        && outcomes.iter().all(|o| matches!(o, Outcome::Refused(_)))
    {
        return crate::frontends::https::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &code,
            "the gateway cannot store this now; send the request again",
        );
    }
    let deadline = tokio::time::Instant::now() + wait;
    let (mut referenced, mut failed, mut pending) = (Vec::new(), Vec::new(), 0);
    let mut stored_study = study.map(String::from);
    for o in outcomes {
        let id = match o {
            Outcome::Refused(code) => {
                failed.push(json!({
                    "00081197": us(failure_reason(&code)),
                    "00000902": error_comment(&code),
                }));
                continue;
            }
            Outcome::Accepted(id) => id,
        };
        let Some(result) = result_of(s, &id, deadline).await else {
            pending += 1;
            continue;
        };
        if result.status == Status::Passed {
            let files = match s.app.catalog.indexed_files(&id).await {
                Ok(f) => f,
                Err(e) => return unavailable(&e),
            };
            for (file_id, _, _) in files {
                let Ok(Some(f)) = s.app.catalog.file(&file_id).await else {
                    continue;
                };
                let d = &f.metadata["dicom"];
                let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
                let (st, se, sop) = (text("study_uid"), text("series_uid"), text("sop_uid"));
                stored_study.get_or_insert_with(|| st.clone());
                referenced.push(json!({
                    "00081150": ui(&text("sop_class_uid")),
                    "00081155": ui(&sop),
                    "00081190": { "vr": "UR", "Value": [format!("{base}/studies/{st}/series/{se}/instances/{sop}")] },
                }));
            }
        } else {
            let code = result
                .checks
                .iter()
                .find(|c| c.severity == Severity::Error)
                .map(|c| c.code.clone())
                .unwrap_or_else(|| "ingest.failed".into());
            let mut item = serde_json::Map::new();
            if let Some(detail) = result
                .checks
                .iter()
                .find(|c| c.code == code)
                .map(|c| &c.detail)
            {
                for (key, tag) in [
                    ("sop_class_uid", "00081150"),
                    ("sop_instance_uid", "00081155"),
                ] {
                    if let Some(v) = detail[key].as_str() {
                        item.insert(tag.into(), ui(v));
                    }
                }
            }
            item.insert("00081197".into(), us(failure_reason(&code)));
            item.insert("00000902".into(), error_comment(&code));
            failed.push(Value::Object(item));
        }
    }
    let mut doc = serde_json::Map::new();
    if let Some(st) = &stored_study {
        doc.insert(
            "00081190".into(),
            json!({ "vr": "UR", "Value": [format!("{base}/studies/{st}")] }),
        );
    }
    if !referenced.is_empty() {
        doc.insert(
            "00081199".into(),
            json!({ "vr": "SQ", "Value": referenced }),
        );
    }
    if !failed.is_empty() {
        doc.insert("00081198".into(), json!({ "vr": "SQ", "Value": failed }));
    }
    let status = if failed.is_empty() && pending == 0 {
        StatusCode::OK
    } else if referenced.is_empty() && pending == 0 {
        StatusCode::CONFLICT
    } else {
        StatusCode::ACCEPTED
    };
    let mut resp = (status, axum::Json(Value::Object(doc))).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    if pending > 0 {
        let w =
            format!("299 gateway \"{pending} instance(s) still being checked; see /v1/uploads\"");
        if let Ok(v) = HeaderValue::from_str(&w) {
            resp.headers_mut().insert(header::WARNING, v);
        }
    }
    resp
}
