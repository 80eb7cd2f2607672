//! The catalog contract, hand-off and review half: file listings, downloads,
//! retention, the outbox as sinks read it, cursors and dead letters. Run by
//! `contract::run` against every implementation.

use super::{CatalogStore, FileQuery, NewFile};

const H1: &str = "5000000001";
const H2: &str = "5000000002";

fn sha(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// Creates, accepts, claims and indexes one upload with `retain_secs`.
async fn indexed(
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
    let event = serde_json::json!({ "event_id": format!("file.indexed:{}", file.id) });
    c.index_upload(&row, &file, &[], &event).await.unwrap();
    file.id
}

pub async fn run(c: &dyn CatalogStore) {
    review_downloads_and_retention(c).await;
    outbox_cursors_and_dead_letters(c).await;
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

async fn outbox_cursors_and_dead_letters(c: &dyn CatalogStore) {
    let head = c.outbox_head().await.unwrap();
    assert!(head > 0);
    let all = c.outbox_after(0, None, 1000).await.unwrap();
    assert_eq!(all.last().map(|e| e.seq), Some(head));
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "in order");
    let h2 = c
        .outbox_after(0, Some(&[H2.to_string()]), 1000)
        .await
        .unwrap();
    assert!(!h2.is_empty() && h2.iter().all(|e| e.tenant == H2));
    assert!(c.outbox_after(0, Some(&[]), 1000).await.unwrap().is_empty());

    assert_eq!(c.sink_cursor("hook").await.unwrap(), 0);
    c.advance_sink("hook", 3).await.unwrap();
    c.advance_sink("hook", 2).await.unwrap();
    assert_eq!(c.sink_cursor("hook").await.unwrap(), 3, "never backwards");
    c.dead_letter("hook", 4, 5, "HTTP 500", true).await.unwrap();
    assert_eq!(c.sink_cursor("hook").await.unwrap(), 4);
    let dead = c.dead_letters(Some("hook")).await.unwrap();
    assert_eq!((dead.len(), dead[0].attempts, dead[0].retry), (1, 5, false));
    assert!(c.retries_due("hook", 10).await.unwrap().is_empty());
    assert_eq!(c.retry_dead_letters(Some("hook")).await.unwrap(), 1);
    let due = c.retries_due("hook", 10).await.unwrap();
    assert_eq!(due.iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);
    c.dead_letter("hook", 4, 5, "HTTP 500 again", false)
        .await
        .unwrap();
    let dead = c.dead_letters(None).await.unwrap();
    assert_eq!((dead[0].attempts, dead[0].retry), (10, false));
    c.clear_dead_letter("hook", 4).await.unwrap();
    assert!(c.dead_letters(Some("hook")).await.unwrap().is_empty());
}
