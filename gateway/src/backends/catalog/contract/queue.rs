//! The check queue's contract: accepted uploads handed out once each, in arrival
//! order, requeued after a restart or an error.

use super::{OTHER, T, accepted, sha};
use crate::backends::catalog::{CatalogStore, UploadState};

pub async fn run(c: &dyn CatalogStore) {
    // Starts from the uploads the ledger suite leaves behind.
    super::ledger::run(c).await;
    checks_run_in_arrival_order_once(c).await;
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
