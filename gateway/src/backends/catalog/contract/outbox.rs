//! The outbox's contract: events in commit order as sinks read them, cursors, dead
//! letters and their retries.

use crate::backends::catalog::CatalogStore;

const H2: &str = "5000000002";

pub async fn run(c: &dyn CatalogStore) {
    // Starts from the uploads the review suite leaves behind.
    super::review::run(c).await;
    outbox_cursors_and_dead_letters(c).await;
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
