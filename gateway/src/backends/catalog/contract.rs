//! The behaviour every [`CatalogStore`] must show. Each implementation's tests call
//! [`run`] with a fresh, empty catalog.

use super::{CatalogStore, DicomRow, NewFile, UploadState};
use crate::checks::{Check, Severity, Status};
use crate::util::unix_now;

const T: &str = "3501200000";
const OTHER: &str = "1101020018";

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn file(upload: &str, name: &str, sha256: &str, size: u64) -> NewFile {
    NewFile {
        id: format!("f{upload}"),
        name: name.into(),
        sha256: sha256.into(),
        size,
        media_type: "application/pdf".into(),
        object_key: format!("sha256/{sha256}"),
        metadata: serde_json::json!({ "pages": 1 }),
        retain_secs: None,
        instances: Vec::new(),
        request_id: None,
    }
}

/// Creates and accepts an upload; returns its place in the check order.
async fn accepted(c: &dyn CatalogStore, id: &str, name: &str, digest: &str, len: u64) -> i64 {
    c.create_upload(id, T, name, "test", None).await.unwrap();
    c.accept_upload(id, len + 200, len, digest).await.unwrap()
}

pub async fn run(c: &dyn CatalogStore) {
    c.ping().await.unwrap();
    uploads_resume_and_accept(c).await;
    checks_run_in_arrival_order_once(c).await;
    indexing_versions_and_duplicates(c).await;
    rejection_and_quarantine(c).await;
    expiry_of_partial_uploads(c).await;
    super::contract_handoff::run(c).await;
    super::contract_requests::run(c).await;
}

async fn uploads_resume_and_accept(c: &dyn CatalogStore) {
    let created = c
        .create_upload("u1", T, "a/12A03123345.pdf", "sftp", Some(1000))
        .await
        .unwrap();
    let row = c.upload("u1").await.unwrap().unwrap();
    assert_eq!(
        (created.id.as_str(), created.state, created.declared_len),
        (row.id.as_str(), row.state, row.declared_len)
    );
    assert_eq!(
        (row.state, row.declared_len, row.durable_offset),
        (UploadState::Receiving, Some(1000), 0)
    );
    assert!(c.upload("nope").await.unwrap().is_none());
    let resumable = c.receiving_upload(T, "a/12A03123345.pdf").await.unwrap();
    assert_eq!(resumable.map(|r| r.id), Some("u1".into()));
    assert!(
        c.receiving_upload(OTHER, "a/12A03123345.pdf")
            .await
            .unwrap()
            .is_none(),
        "tenants never see each other's uploads"
    );
    assert!(
        c.create_upload("u1b", T, "a/12A03123345.pdf", "sftp", None)
            .await
            .is_err(),
        "one receiving upload per name"
    );
    // A temporary name becomes the final one; never onto another partial upload.
    c.create_upload("t1", T, "a/x.filepart", "sftp", None)
        .await
        .unwrap();
    assert!(
        c.rename_upload("t1", "a/12A03123345.pdf").await.is_err(),
        "renaming onto a partial upload is a conflict"
    );
    assert!(c.rename_upload("t1", "a/final.pdf").await.unwrap());
    assert!(c.set_declared_len("t1", 4096).await.unwrap());
    assert!(
        !c.set_declared_len("t1", 8192).await.unwrap(),
        "a declared length never changes"
    );
    assert_eq!(
        c.upload("t1").await.unwrap().unwrap().declared_len,
        Some(4096)
    );
    let listed = c.list_uploads(T, None, None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["u1", "t1"],
        "newest (largest id) first"
    );
    let page = c.list_uploads(T, None, Some("u1"), 10).await.unwrap();
    assert_eq!(page.len(), 1, "the cursor excludes what was seen");
    let receiving = c
        .list_uploads(T, Some(UploadState::Receiving), None, 10)
        .await
        .unwrap();
    assert_eq!(receiving.len(), 2);
    assert!(
        c.list_uploads(OTHER, None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(c.upload("t1").await.unwrap().unwrap().name, "a/final.pdf");
    assert!(
        c.receiving_upload(T, "a/x.filepart")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        c.abandon_upload(&c.upload("t1").await.unwrap().unwrap(), "test")
            .await
            .unwrap()
    );
    assert!(
        !c.rename_upload("t1", "a/again.pdf").await.unwrap(),
        "only partial uploads are renamed"
    );
    c.set_durable_offset("u1", 512).await.unwrap();
    assert_eq!(c.upload("u1").await.unwrap().unwrap().durable_offset, 512);
    let usage = c.tenant_usage(T).await.unwrap();
    assert_eq!((usage.receiving, usage.accepted_files), (1, 0));
    assert_eq!(
        c.spool_bytes().await.unwrap(),
        512,
        "held for receiving uploads"
    );

    let seq = c.accept_upload("u1", 1000, 800, &sha(1)).await.unwrap();
    assert_eq!(
        c.spool_bytes().await.unwrap(),
        0,
        "accepted bytes are not spool"
    );
    let row = c.upload("u1").await.unwrap().unwrap();
    assert_eq!(row.state, UploadState::Accepted);
    assert_eq!(
        (row.durable_offset, row.plaintext_len, row.accept_seq),
        (1000, Some(800), Some(seq))
    );
    assert_eq!(row.plaintext_sha256, Some(sha(1)));
    assert!(
        c.accept_upload("u1", 1000, 800, &sha(1)).await.is_err(),
        "accepting twice is a conflict"
    );
    assert_eq!(c.audit_count("upload.accepted").await.unwrap(), 1);
    assert!(
        c.receiving_upload(T, "a/12A03123345.pdf")
            .await
            .unwrap()
            .is_none()
    );
    let usage = c.tenant_usage(T).await.unwrap();
    assert_eq!(
        (usage.receiving, usage.accepted_files, usage.accepted_bytes),
        (0, 1, 1000)
    );
    let check = c.check_result("u1").await.unwrap().unwrap();
    assert_eq!(check.status, Status::Checking);
}

async fn checks_run_in_arrival_order_once(c: &dyn CatalogStore) {
    let s2 = accepted(c, "u2", "b.pdf", &sha(2), 10).await;
    let s3 = accepted(c, "u3", "c.pdf", &sha(3), 10).await;
    assert!(s2 < s3);
    assert_eq!(
        c.earlier_pending(T, s3, None, None).await.unwrap(),
        2,
        "u1 and u2"
    );
    assert_eq!(c.earlier_pending(T, s3, Some("b"), None).await.unwrap(), 1);
    assert_eq!(
        c.earlier_pending(T, s3, None, Some(&sha(1))).await.unwrap(),
        1
    );
    assert_eq!(c.earlier_pending(T, s2, Some("c"), None).await.unwrap(), 0);
    assert_eq!(c.earlier_pending(OTHER, s3, None, None).await.unwrap(), 0);
    let order: Vec<String> = [
        c.claim_next_accepted().await.unwrap(),
        c.claim_next_accepted().await.unwrap(),
    ]
    .into_iter()
    .map(|r| r.unwrap().id)
    .collect();
    assert_eq!(order, ["u1", "u2"], "oldest acceptance first");
    assert_eq!(c.count_in_state(UploadState::Checking).await.unwrap(), 2);
    // A restart puts interrupted checks back, still in arrival order.
    assert_eq!(c.requeue_checking().await.unwrap(), 2);
    let ids: Vec<String> = [
        c.claim_next_accepted().await.unwrap(),
        c.claim_next_accepted().await.unwrap(),
        c.claim_next_accepted().await.unwrap(),
    ]
    .into_iter()
    .map(|r| r.unwrap().id)
    .collect();
    assert_eq!(ids, ["u1", "u2", "u3"]);
    assert!(c.claim_next_accepted().await.unwrap().is_none());
}

async fn indexing_versions_and_duplicates(c: &dyn CatalogStore) {
    let u1 = c.upload("u1").await.unwrap().unwrap();
    let checks = [
        Check::new("type.allowed", Severity::Info, "a PDF"),
        Check::new("x.note", Severity::Warning, "note").with_detail(serde_json::json!({"k": 1})),
    ];
    let mut f1 = file("u1", &u1.name, &sha(1), 800);
    let inst = DicomRow {
        path: "IMAGES/IM1".into(),
        patient_id: "P1".into(),
        study_uid: "1.2.3".into(),
        series_uid: "1.2.3.4".into(),
        sop_uid: "1.2.3.4.5".into(),
        number_of_frames: Some(2),
        ..DicomRow::default()
    };
    f1.instances = vec![inst.clone()];
    c.index_upload(
        &u1,
        &f1,
        &checks,
        &serde_json::json!({"kind": "file.indexed"}),
    )
    .await
    .unwrap();
    assert!(
        c.index_upload(&u1, &f1, &checks, &serde_json::json!({}))
            .await
            .is_err(),
        "an upload is indexed once"
    );
    let result = c.check_result("u1").await.unwrap().unwrap();
    assert_eq!(result.status, Status::Passed);
    assert_eq!(
        result.checks, checks,
        "findings keep their order and detail"
    );
    let listed: Vec<Check> = c
        .checks_under(T, "")
        .await
        .unwrap()
        .into_iter()
        .filter(|(id, _)| id == "u1")
        .map(|(_, check)| check)
        .collect();
    assert_eq!(listed, checks, "a listing's findings match the result's");
    assert!(
        c.checks_under(T, "elsewhere/").await.unwrap().is_empty(),
        "only names under the prefix"
    );
    assert_eq!(c.outbox_count("file.indexed").await.unwrap(), 1);
    assert_eq!(
        c.indexed_files("u1").await.unwrap(),
        [(f1.id.clone(), sha(1), f1.object_key.clone())]
    );
    let same = c.same_content(T, &sha(1)).await.unwrap().unwrap();
    assert_eq!(
        (same.file_id.as_str(), same.name.as_str()),
        ("fu1", "a/12A03123345.pdf")
    );
    assert!(c.same_content(OTHER, &sha(1)).await.unwrap().is_none());
    assert_eq!(c.study_instances(T, "1.2.3").await.unwrap(), [inst]);
    assert!(c.study_instances(OTHER, "1.2.3").await.unwrap().is_empty());

    // A new version of the same name supersedes the old one.
    accepted(c, "u4", "a/12A03123345.pdf", &sha(4), 900).await;
    let u4 = c.claim_next_accepted().await.unwrap().unwrap();
    assert_eq!(u4.id, "u4");
    c.index_upload(
        &u4,
        &file("u4", &u4.name, &sha(4), 900),
        &[],
        &serde_json::json!({}),
    )
    .await
    .unwrap();
    assert!(
        c.same_content(T, &sha(1)).await.unwrap().is_none(),
        "superseded"
    );
    let under = c.current_files_under(T, "a/").await.unwrap();
    assert_eq!(
        under
            .iter()
            .map(|f| (f.name.as_str(), f.size, f.sha256.clone()))
            .collect::<Vec<_>>(),
        [("a/12A03123345.pdf", 900, sha(4))]
    );
    assert!(
        c.current_files_under(T, "a_").await.unwrap().is_empty(),
        "`_` is literal"
    );
    assert!(c.current_files_under(OTHER, "a/").await.unwrap().is_empty());
    let all = c.all_indexed().await.unwrap();
    assert_eq!(all, [("u1".into(), sha(1)), ("u4".into(), sha(4))]);
}

async fn rejection_and_quarantine(c: &dyn CatalogStore) {
    let u2 = c.upload("u2").await.unwrap().unwrap();
    let why = [Check::new(
        "type.not_allowed",
        Severity::Error,
        "an executable",
    )];
    c.reject_upload(&u2.id, T, &why).await.unwrap();
    let result = c.check_result("u2").await.unwrap().unwrap();
    assert_eq!(result.status, Status::Failed);
    assert_eq!(result.checks, why);
    assert_eq!(c.outbox_count("upload.rejected").await.unwrap(), 1);
    assert_eq!(c.count_in_state(UploadState::Rejected).await.unwrap(), 1);

    assert!(
        c.quarantine_ended(unix_now() - 60)
            .await
            .unwrap()
            .is_empty(),
        "still in quarantine"
    );
    let ended = c.quarantine_ended(unix_now() + 10).await.unwrap();
    assert_eq!(
        ended.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        ["u2"]
    );
    c.mark_purged(&ended[0]).await.unwrap();
    assert!(
        c.quarantine_ended(unix_now() + 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(c.audit_count("upload.purged").await.unwrap(), 1);
    assert_eq!(
        c.check_result("u2").await.unwrap().unwrap().status,
        Status::Failed,
        "the result outlives the bytes"
    );
}

async fn expiry_of_partial_uploads(c: &dyn CatalogStore) {
    c.create_upload("u5", T, "partial.pdf", "tus", None)
        .await
        .unwrap();
    c.set_durable_offset("u5", 4096).await.unwrap();
    assert!(
        c.expire_receiving(unix_now() - 60)
            .await
            .unwrap()
            .is_empty(),
        "too recent"
    );
    let gone = c.expire_receiving(unix_now() + 10).await.unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(
        (gone[0].id.as_str(), gone[0].state),
        ("u5", UploadState::Expired)
    );
    assert_eq!(gone[0].durable_offset, 4096);
    assert!(
        c.receiving_upload(T, "partial.pdf")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        c.check_result("u5").await.unwrap().unwrap().status,
        Status::Expired
    );
    assert_eq!(c.audit_count("upload.expired").await.unwrap(), 1);
    assert_eq!(c.tenant_usage(T).await.unwrap().receiving, 0);
    // The name is free again for a new upload.
    c.create_upload("u6", T, "partial.pdf", "tus", None)
        .await
        .unwrap();
    assert!(
        c.set_durable_offset("u5", 8192).await.is_ok()
            && c.upload("u5").await.unwrap().unwrap().durable_offset == 4096,
        "an expired upload no longer moves"
    );
    c.audit(T, "contract.done", &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(c.audit_count("contract.done").await.unwrap(), 1);
}
