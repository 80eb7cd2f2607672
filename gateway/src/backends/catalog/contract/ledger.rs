//! The upload ledger's contract: partial uploads created, resumed and renamed, durable
//! offsets, the commit point and what each tenant holds.

use super::{OTHER, T, sha};
use crate::backends::catalog::{CatalogStore, UploadState};
use crate::checks::Status;

pub async fn run(c: &dyn CatalogStore) {
    uploads_resume_and_accept(c).await;
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
