//! Housekeeping's contract: rejected uploads kept for their quarantine then purged,
//! partial uploads expired when untouched.

use super::T;
use crate::backends::catalog::{CatalogStore, UploadState};
use crate::checks::{Check, Severity, Status};
use crate::events::Event;
use crate::util::unix_now;

pub async fn run(c: &dyn CatalogStore) {
    // Starts from the uploads the index suite leaves behind.
    super::index::run(c).await;
    rejection_and_quarantine(c).await;
    expiry_of_partial_uploads(c).await;
}

async fn rejection_and_quarantine(c: &dyn CatalogStore) {
    let u2 = c.upload("u2").await.unwrap().unwrap();
    let why = [Check::new(
        "type.not_allowed",
        Severity::Error,
        "an executable",
    )];
    let rejected = Event::upload_rejected(T, &u2.id, &u2.name, &why);
    c.reject_upload(&u2.id, &why, &rejected).await.unwrap();
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
