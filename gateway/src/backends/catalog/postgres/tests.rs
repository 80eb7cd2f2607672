//! The PostgreSQL catalog against a real server (`gateway_fixtures::engines::Postgres`,
//! a throwaway cluster per test): the contract suites every catalog passes, and what
//! only a shared catalog must show: nodes claiming at once, the outbox in commit order,
//! leases between nodes, a restart of the server.

use super::*;
use gateway_fixtures::engines::Postgres;

/// A fresh, empty catalog on its own server; the server lives as long as the guard.
pub(crate) async fn fresh() -> (PgCatalog, Postgres) {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let c = PgCatalog::open(&pg.url()).await.unwrap();
    (c, pg)
}

mod contract {
    crate::contract_suites!(|_dir| async { super::fresh().await });
}

use crate::backends::catalog::{CatalogError, CatalogStore, NewFile, UploadRow};
use crate::events::Event;

const T: &str = "3501200000";

async fn accepted(c: &PgCatalog, id: &str) -> UploadRow {
    c.create_upload(id, T, &format!("{id}.pdf"), "test", None)
        .await
        .unwrap();
    c.accept_upload(id, 300, 100, &"ab".repeat(32))
        .await
        .unwrap();
    c.upload(id).await.unwrap().unwrap()
}

/// Two nodes claiming the same queue as fast as they can: every upload is checked
/// once, by one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_claiming_at_once_never_take_the_same_upload() {
    let (a, pg) = fresh().await;
    let b = PgCatalog::open(&pg.url()).await.unwrap();
    for i in 0..60 {
        accepted(&a, &format!("u{i:02}")).await;
    }
    let mut claims = tokio::task::JoinSet::new();
    for node in [a.clone(), b.clone(), a.clone(), b.clone()] {
        claims.spawn(async move {
            let mut mine = Vec::new();
            while let Some(r) = node.claim_next_accepted().await.unwrap() {
                mine.push((node.node().to_string(), r.id));
            }
            mine
        });
    }
    let mut all = Vec::new();
    while let Some(r) = claims.join_next().await {
        all.extend(r.unwrap());
    }
    let mut ids: Vec<&str> = all.iter().map(|(_, id)| id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((all.len(), ids.len()), (60, 60), "each upload claimed once");
    let by_b = all.iter().filter(|(n, _)| n == b.node()).count();
    assert!(by_b > 0 && by_b < 60, "both nodes took part: b took {by_b}");
}

/// Events committed by two nodes at once, read by a sink with a cursor while they
/// are committed: the sink sees every one, none skipped, because sequence numbers
/// become visible in order. Each commit also wakes the other node's readers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_reading_while_nodes_commit_never_skips_an_event() {
    let (a, pg) = fresh().await;
    let b = PgCatalog::open(&pg.url()).await.unwrap();
    let mut woken = b.outbox_watch();
    woken.borrow_and_update();
    const N: usize = 80;
    for i in 0..N {
        accepted(&a, &format!("r{i:02}")).await;
    }
    let reader = {
        let a = a.clone();
        tokio::spawn(async move {
            let (mut cursor, mut seen) = (0, Vec::new());
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
            while seen.len() < N && tokio::time::Instant::now() < deadline {
                for e in a.outbox_after(cursor, None, 7).await.unwrap() {
                    cursor = e.seq;
                    seen.push(e.event_id);
                }
            }
            seen
        })
    };
    let mut writers = tokio::task::JoinSet::new();
    for (k, node) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        writers.spawn(async move {
            for i in (k..N).step_by(4) {
                let id = format!("r{i:02}");
                let event = Event::upload_rejected(T, &id, &format!("{id}.pdf"), &[]);
                node.reject_upload(&id, &[], &event).await.unwrap();
            }
        });
    }
    while let Some(r) = writers.join_next().await {
        r.unwrap();
    }
    let mut seen = reader.await.unwrap();
    assert_eq!(seen.len(), N, "the sink saw every event once");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), N);
    tokio::time::timeout(std::time::Duration::from_secs(5), woken.changed())
        .await
        .expect("node b was woken by node a's commits")
        .unwrap();
}

/// One writer per partial upload, one node per cluster job, and a check taken over
/// from a node whose lease lapsed, whose late outcome is then refused.
#[tokio::test]
async fn leases_keep_one_node_per_upload_check_and_job() {
    let (a, pg) = fresh().await;
    let b = PgCatalog::open(&pg.url()).await.unwrap();
    a.create_upload("p1", T, "p1.pdf", "sftp", None)
        .await
        .unwrap();
    assert_eq!(a.hold_upload("p1").await.unwrap(), Lease::Held);
    assert!(matches!(b.hold_upload("p1").await.unwrap(), Lease::Busy(_)));
    a.release_upload("p1").await.unwrap();
    assert_eq!(b.hold_upload("p1").await.unwrap(), Lease::Held);
    assert!(matches!(a.hold_upload("p1").await.unwrap(), Lease::Busy(_)));

    assert!(a.hold_job("housekeeping").await.unwrap());
    assert!(
        a.hold_job("housekeeping").await.unwrap(),
        "renewed by its holder"
    );
    assert!(!b.hold_job("housekeeping").await.unwrap());
    assert!(
        b.hold_job("dispatch:hook").await.unwrap(),
        "jobs are leased apart"
    );
    // Node a stops renewing (killed): once its lease lapses, b takes the job over.
    pg.psql(
        "gateway",
        "UPDATE job_leases SET until = 0 WHERE job = 'housekeeping'",
    );
    assert!(b.hold_job("housekeeping").await.unwrap());
    assert!(!a.hold_job("housekeeping").await.unwrap());

    let up = accepted(&a, "c1").await;
    let claimed = a.claim_next_accepted().await.unwrap().unwrap();
    assert_eq!(claimed.id, up.id);
    assert!(
        b.claim_next_accepted().await.unwrap().is_none(),
        "held by a"
    );
    pg.psql(
        "gateway",
        "UPDATE uploads SET lease_until = 0 WHERE id = 'c1'",
    );
    let taken = b.claim_next_accepted().await.unwrap().unwrap();
    assert_eq!((taken.id.as_str(), taken.check_attempts), ("c1", 2));
    let file = NewFile {
        id: "fc1".into(),
        name: "c1.pdf".into(),
        sha256: "ab".repeat(32),
        size: 100,
        media_type: "application/pdf".into(),
        object_key: format!("sha256/{}", "ab".repeat(32)),
        metadata: serde_json::json!({}),
        retain_secs: None,
        instances: Vec::new(),
        request_id: None,
    };
    let event = file.indexed_event(&claimed, &[]);
    let late = a.index_upload(&claimed, &file, &[], &event).await;
    assert!(matches!(late, Err(CatalogError::Conflict(_))), "{late:?}");
    b.index_upload(&taken, &file, &[], &event).await.unwrap();
    assert_eq!(a.all_indexed().await.unwrap().len(), 1);
}

/// PostgreSQL killed and started again: calls meanwhile fail with
/// `catalog.unavailable` (and do not hang), and the same catalog works again after,
/// without being reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_refuses_with_a_code_then_serves_again() {
    let (c, mut pg) = fresh().await;
    let c: std::sync::Arc<dyn CatalogStore> = std::sync::Arc::new(c);
    c.create_upload("k1", T, "k1.pdf", "sftp", None)
        .await
        .unwrap();
    let pg = tokio::task::spawn_blocking(move || {
        pg.kill();
        pg
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let e = c.set_durable_offset("k1", 10).await.unwrap_err();
    assert_eq!(e.code(), "catalog.unavailable", "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    let mut pg = pg;
    let pg = tokio::task::spawn_blocking(move || {
        pg.restart();
        pg
    })
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match c.set_durable_offset("k1", 10).await {
            Ok(()) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                assert_eq!(e.code(), "catalog.unavailable", "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("not back after the restart: {e}\n{}", pg.log()),
        }
    }
    assert_eq!(c.upload("k1").await.unwrap().unwrap().durable_offset, 10);
}
