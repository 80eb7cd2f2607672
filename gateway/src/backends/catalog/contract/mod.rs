//! The behaviour every catalog implementation must show, one suite per concern. Each
//! implementation runs every suite on a fresh, empty catalog
//! ([`contract_suites!`](crate::contract_suites)), so a failure names its concern; a
//! suite that starts from the story of another runs that one first.

pub mod dicom;
pub mod housekeeping;
pub mod index;
pub mod ledger;
pub mod outbox;
pub mod queue;
pub mod requests;
pub mod review;

use super::{CatalogStore, NewFile};

pub(super) const T: &str = "3501200000";
pub(super) const OTHER: &str = "1101020018";

pub(super) fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

pub(super) fn file(upload: &str, name: &str, sha256: &str, size: u64) -> NewFile {
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
pub(super) async fn accepted(
    c: &dyn CatalogStore,
    id: &str,
    name: &str,
    digest: &str,
    len: u64,
) -> i64 {
    c.create_upload(id, T, name, "test", None).await.unwrap();
    c.accept_upload(id, len + 200, len, digest).await.unwrap()
}

/// Creates, accepts, claims and indexes one upload with `retain_secs`.
pub(super) async fn indexed(
    c: &dyn CatalogStore,
    tenant: &str,
    id: &str,
    n: u8,
    retain: Option<i64>,
) -> String {
    c.create_upload(id, tenant, &format!("{id}.pdf"), "test", None)
        .await
        .unwrap();
    c.accept_upload(id, 300, 100, &sha(n)).await.unwrap();
    let row = loop {
        let r = c.claim_next_accepted().await.unwrap().unwrap();
        if r.id == id {
            break r;
        }
    };
    let file = NewFile {
        id: format!("f{id}"),
        name: row.name.clone(),
        sha256: sha(n),
        size: 100,
        media_type: "application/pdf".into(),
        object_key: format!("sha256/{}", sha(n)),
        metadata: serde_json::json!({ "case": { "category": "A" } }),
        retain_secs: retain,
        instances: Vec::new(),
        request_id: None,
    };
    c.index_upload(&row, &file, &[], &file.indexed_event(&row, &[]))
        .await
        .unwrap();
    file.id
}

/// One `#[tokio::test]` per suite for an implementation; `$open` is an async block
/// that opens a fresh, empty catalog in the temporary directory `$dir` and returns it
/// with whatever must live as long as the test (a database server; `()` if nothing).
#[macro_export]
macro_rules! contract_suites {
    (|$dir:ident| $open:expr) => {
        $crate::contract_suites!(@each |$dir| $open; ledger, queue, index, housekeeping, review, outbox, requests, dicom);
    };
    (@each |$dir:ident| $open:expr; $($suite:ident),*) => {
        $(
            #[tokio::test]
            async fn $suite() {
                let tmp = tempfile::tempdir().unwrap();
                let $dir = tmp.path();
                let (c, _keep) = $open.await;
                $crate::backends::catalog::contract::$suite::run(&c).await;
            }
        )*
    };
}
