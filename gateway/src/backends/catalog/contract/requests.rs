//! The contract for request ids (rule 20) and pre-checks (rule 21): a request id
//! given with an upload is kept on it; files are found by their request; a pre-check
//! ends without a file or an event, never counts against what a tenant holds, and is
//! removed whole.

use super::T;
use crate::backends::catalog::{CatalogStore, FileQuery, NewFile, UploadRow, UploadState};
use crate::checks::{Check, Severity, Status};

/// Accepts upload `id` and claims it for checking (claiming any earlier ones on the way).
async fn checking(c: &dyn CatalogStore, id: &str, name: &str, sha: &str) -> UploadRow {
    c.create_upload(id, T, name, "test", None).await.unwrap();
    c.accept_upload(id, 300, 100, sha).await.unwrap();
    for _ in 0..100 {
        match c.claim_next_accepted().await.unwrap() {
            Some(row) if row.id == id => return row,
            Some(_) => {}
            None => break,
        }
    }
    panic!("{id} was never handed out for checking");
}

pub async fn run(c: &dyn CatalogStore) {
    request_ids(c).await;
    prechecks(c).await;
}

async fn request_ids(c: &dyn CatalogStore) {
    let sha = "7".repeat(64);
    c.create_upload("rq1", T, "r/a.pdf", "tus", None)
        .await
        .unwrap();
    c.set_upload_request("rq1", "35012000002026061400001")
        .await
        .unwrap();
    let row = c.upload("rq1").await.unwrap().unwrap();
    assert_eq!(row.request_id.as_deref(), Some("35012000002026061400001"));
    c.accept_upload("rq1", 300, 100, &sha).await.unwrap();
    let row = loop {
        let r = c
            .claim_next_accepted()
            .await
            .unwrap()
            .expect("rq1 is queued");
        if r.id == "rq1" {
            break r;
        }
    };
    assert_eq!(row.request_id.as_deref(), Some("35012000002026061400001"));
    let file = NewFile {
        id: "frq1".into(),
        name: row.name.clone(),
        sha256: sha.clone(),
        size: 100,
        media_type: "application/pdf".into(),
        object_key: format!("sha256/{sha}"),
        metadata: serde_json::json!({}),
        retain_secs: None,
        instances: Vec::new(),
        request_id: row.request_id.clone(),
    };
    c.index_upload(&row, &file, &[], &file.indexed_event(&row, &[]))
        .await
        .unwrap();
    let by = |id: &str| FileQuery {
        request_id: Some(id.into()),
        limit: 10,
        ..FileQuery::default()
    };
    let found = c.list_files(&by("35012000002026061400001")).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].request_id.as_deref(),
        Some("35012000002026061400001")
    );
    assert!(c.list_files(&by("other")).await.unwrap().is_empty());

    // A manifest names the request afterwards: recorded on the file and its metadata.
    let meta = serde_json::json!({ "id": "35012000002026070100002", "source": "manifest" });
    let assigned = [(
        "frq1".to_string(),
        "35012000002026070100002".to_string(),
        meta,
    )];
    c.assign_requests(T, &assigned).await.unwrap();
    let f = c.file("frq1").await.unwrap().unwrap();
    assert_eq!(f.request_id.as_deref(), Some("35012000002026070100002"));
    assert_eq!(f.metadata["request"]["source"], "manifest");
    // Another tenant's assignment changes nothing.
    c.assign_requests(
        "1101020018",
        &[("frq1".into(), "x".into(), serde_json::json!({}))],
    )
    .await
    .unwrap();
    assert_eq!(
        c.file("frq1").await.unwrap().unwrap().request_id.as_deref(),
        Some("35012000002026070100002")
    );
}

async fn prechecks(c: &dyn CatalogStore) {
    let before = c.tenant_usage(T).await.unwrap();
    let passed = checking(c, "pc1", "precheck/a.pdf", &"8".repeat(64)).await;
    assert!(passed.is_precheck());
    checking(c, "pc2", "precheck/b.pdf", &"9".repeat(64)).await;
    let during = c.tenant_usage(T).await.unwrap();
    assert_eq!(
        (during.accepted_bytes, during.accepted_files),
        (before.accepted_bytes, before.accepted_files),
        "pre-checks are not what a tenant holds"
    );
    let ok = [Check::new("type.allowed", Severity::Info, "a PDF")];
    c.finish_precheck("pc1", true, &ok).await.unwrap();
    let bad = [Check::new("type.not_allowed", Severity::Error, "no")];
    c.finish_precheck("pc2", false, &bad).await.unwrap();
    let events = c.outbox_count("upload.rejected").await.unwrap();
    let r1 = c.check_result("pc1").await.unwrap().unwrap();
    assert_eq!((r1.status, r1.precheck), (Status::Passed, true));
    assert_eq!(r1.checks.len(), 1);
    let r2 = c.check_result("pc2").await.unwrap().unwrap();
    assert_eq!(r2.status, Status::Failed);
    assert_eq!(
        c.upload("pc1").await.unwrap().unwrap().state,
        UploadState::Prechecked
    );
    assert_eq!(
        c.outbox_count("upload.rejected").await.unwrap(),
        events,
        "no event"
    );
    assert!(
        c.indexed_files("pc1").await.unwrap().is_empty(),
        "nothing indexed"
    );

    let now = crate::util::unix_now();
    assert!(
        c.prechecks_ended(now - 3600).await.unwrap().is_empty(),
        "not yet"
    );
    let ended = c.prechecks_ended(now + 1).await.unwrap();
    let ids: Vec<&str> = ended.iter().map(|u| u.id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(
        ended.iter().all(UploadRow::is_precheck),
        "real uploads are never removed"
    );
    for up in &ended {
        c.delete_precheck(up).await.unwrap();
    }
    assert!(c.upload("pc1").await.unwrap().is_none());
    assert!(c.check_result("pc2").await.unwrap().is_none());
    assert!(c.prechecks_ended(now + 1).await.unwrap().is_empty());
}
