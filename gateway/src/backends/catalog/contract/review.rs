//! The review side's contract: file listings and their filters, downloads counted,
//! retention.

use super::{indexed, sha};
use crate::backends::catalog::{CatalogStore, FileQuery};

const H1: &str = "5000000001";
const H2: &str = "5000000002";

pub async fn run(c: &dyn CatalogStore) {
    review_downloads_and_retention(c).await;
}

async fn review_downloads_and_retention(c: &dyn CatalogStore) {
    let now = crate::util::unix_now();
    let kept = indexed(c, H1, "h1", 11, None).await;
    let short = indexed(c, H1, "h2", 12, Some(100)).await;
    // Same content as `kept`, another tenant: shares its object.
    let shared = indexed(c, H2, "h3", 11, Some(100)).await;

    let q = |tenants: Option<Vec<String>>| FileQuery {
        tenants,
        limit: 10,
        ..FileQuery::default()
    };
    let mine = c.list_files(&q(Some(vec![H1.into()]))).await.unwrap();
    assert_eq!(
        mine.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        [kept.as_str(), short.as_str()]
    );
    assert!(
        c.list_files(&q(Some(Vec::new()))).await.unwrap().is_empty(),
        "no grant, no files"
    );
    let mut paged = q(Some(vec![H1.into(), H2.into()]));
    paged.limit = 2;
    let first = c.list_files(&paged).await.unwrap();
    paged.after = Some(first[1].seq);
    let second = c.list_files(&paged).await.unwrap();
    assert_eq!(
        second.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(),
        [shared.as_str()]
    );
    let mut by_case = q(None);
    by_case.category = Some("A".into());
    by_case.tenant = Some(H2.into());
    assert_eq!(c.list_files(&by_case).await.unwrap().len(), 1);

    let f = c.file(&short).await.unwrap().unwrap();
    assert_eq!((f.status(), f.expires_at.is_some()), ("ready", true));
    assert_eq!(
        c.record_download(&short, "rev", false).await.unwrap(),
        Some(1)
    );
    assert_eq!(
        c.record_download(&short, "rev", true).await.unwrap(),
        Some(2)
    );
    assert_eq!(
        c.file(&short).await.unwrap().unwrap().status(),
        "downloaded"
    );
    assert_eq!(c.outbox_count("file.downloaded").await.unwrap(), 2);
    // A page of a hospital's uploads gets its files' download states in one call, and
    // never another hospital's.
    let ids = ["h1", "h2", "h3", "nothing"].map(String::from);
    let states: std::collections::HashMap<String, String> = c
        .download_states_of(H1, &ids)
        .await
        .unwrap()
        .into_iter()
        .map(|(u, d)| (u, d.state))
        .collect();
    assert_eq!(states.get("h1").map(String::as_str), Some("ready"));
    assert_eq!(states.get("h2").map(String::as_str), Some("downloaded"));
    assert_eq!(
        states.len(),
        2,
        "not H2's h3, not an unknown id: {states:?}"
    );
    assert!(c.download_states_of(H1, &[]).await.unwrap().is_empty());

    assert!(
        c.expire_due(now + 50, 10).await.unwrap().is_empty(),
        "not due yet"
    );
    let gone = c.expire_due(now + 101, 10).await.unwrap();
    let mut ids: Vec<_> = gone.iter().map(|e| e.file_id.clone()).collect();
    ids.sort();
    let mut want = vec![short.clone(), shared.clone()];
    want.sort();
    assert_eq!(ids, want);
    assert!(
        c.expire_due(now + 1000, 10).await.unwrap().is_empty(),
        "once only"
    );
    assert_eq!(c.outbox_count("file.expired").await.unwrap(), 2);
    assert_eq!(c.file(&short).await.unwrap().unwrap().status(), "expired");
    assert_eq!(c.record_download(&short, "rev", false).await.unwrap(), None);
    assert!(
        c.object_in_use(&format!("sha256/{}", sha(11)))
            .await
            .unwrap(),
        "kept still uses it"
    );
    assert!(
        !c.object_in_use(&format!("sha256/{}", sha(12)))
            .await
            .unwrap()
    );
    // An upload accepted with that content, not yet checked, may rely on the object as
    // its only copy: retention must not delete it.
    c.create_upload("u-same-content", H1, "again.pdf", "tus", None)
        .await
        .unwrap();
    c.accept_upload("u-same-content", 10, 10, &sha(12))
        .await
        .unwrap();
    assert!(
        c.object_in_use(&format!("sha256/ab/cd/{}", sha(12)))
            .await
            .unwrap(),
        "an accepted upload with the same content keeps it"
    );
    assert_eq!(c.expired_unpurged(10).await.unwrap().len(), 2);
    c.mark_file_purged(&short).await.unwrap();
    assert_eq!(c.expired_unpurged(10).await.unwrap().len(), 1);
    let mut live = q(Some(vec![H1.into()]));
    live.status = Some("live".into());
    assert_eq!(c.list_files(&live).await.unwrap().len(), 1);
}
