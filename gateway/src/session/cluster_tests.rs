//! The session on a cluster: two ingest cores ("nodes") with their own spool
//! directories, sharing a PostgreSQL catalog and an object store, as the gateway runs
//! behind a balancer. A node lost mid-upload costs the client only the bytes after the
//! last durable offset; the other node rebuilds and re-verifies the rest.

use std::sync::Arc;

use super::checkpoint::Checkpoints;
use super::testing::{CODE, core_on, plaintext, who};
use crate::backends::catalog::postgres::PgCatalog;
use crate::backends::catalog::{Catalog, UploadState};
use crate::backends::objects::ObjectStore;
use crate::sealed::{Identity, seal_to_vec};
use gateway_fixtures::engines::Postgres;

struct Cluster {
    pg: Arc<Postgres>,
    pg_url: String,
    dir: tempfile::TempDir,
    objects: Arc<dyn ObjectStore>,
    identity: Identity,
}

impl Cluster {
    async fn start() -> Cluster {
        let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let objects: Arc<dyn ObjectStore> = Arc::new(
            crate::backends::objects::local::LocalStore::new(dir.path().join("shared-objects"))
                .unwrap(),
        );
        Cluster {
            pg_url: pg.url(),
            pg: Arc::new(pg),
            dir,
            objects,
            identity: Identity::generate().unwrap(),
        }
    }

    /// A node with its own disk; every node has the same identity and tenants.
    async fn node(&self, name: &str) -> (Arc<super::IngestCore>, PgCatalog) {
        let pg = PgCatalog::open(&self.pg_url).await.unwrap();
        let catalog: Catalog = Arc::new(pg.clone());
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let checkpoints = Some(Arc::new(Checkpoints::new(self.objects.clone())));
        let core = core_on(
            catalog,
            &dir,
            self.identity.clone(),
            1 << 30,
            64 << 10,
            checkpoints,
        );
        (core, pg)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_on_another_node_after_its_node_is_lost() {
    let cluster = Cluster::start().await;
    let (a, a_catalog) = cluster.node("a").await;
    let (b, _) = cluster.node("b").await;
    let pt = plaintext(1_500_000);
    let sealed = seal_to_vec(&[cluster.identity.to_public()], &pt).unwrap();
    let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &pt));

    // Node a receives the first 900,000 bytes in 100,000-byte writes, then dies: no
    // suspend, no sync, its lease not given back (the upload is leaked, not dropped).
    let mut up = a
        .open(&who(), "big.pdf", Some(sealed.len() as u64))
        .await
        .unwrap();
    let id = up.id().to_string();
    for at in (0..900_000).step_by(100_000) {
        up.write_at(at as u64, sealed[at..at + 100_000].to_vec())
            .await
            .unwrap();
    }
    std::mem::forget(up);
    a_catalog.close().await;
    drop(a);

    // The client reconnects through the balancer to node b: refused while a's lease
    // runs, then resumed at the durable offset, rebuilt from the checkpoints.
    let e = b.resume(&who(), &id).await.unwrap_err();
    assert_eq!(e.code(), "ingest.busy");
    // (Its lease lapses by itself within seconds; the test does not wait for that.)
    let pg = cluster.pg.clone();
    let sql = format!("UPDATE uploads SET lease_until = 0 WHERE id = '{id}'");
    tokio::task::spawn_blocking(move || pg.psql("gateway", &sql))
        .await
        .unwrap();
    let mut up = b.resume(&who(), &id).await.unwrap();
    let resumed_at = up.offset();
    assert!(
        resumed_at > 0 && resumed_at <= 900_000,
        "resumed at {resumed_at}"
    );
    let resent = 900_000 - resumed_at;
    assert!(
        resent <= 64 << 10,
        "re-sent {resent} bytes, more than one fsync interval"
    );
    up.write_at(resumed_at, sealed[resumed_at as usize..].to_vec())
        .await
        .unwrap();
    let accepted = up.finish().await.unwrap();
    assert_eq!(
        accepted.plaintext_sha256, sha,
        "b verified every byte again"
    );

    // Node b dies right after accepting: a third node finds every byte of the accepted
    // upload in the checkpoints.
    let row = b.catalog().upload(&id).await.unwrap().unwrap();
    assert_eq!(row.state, UploadState::Accepted);
    let c = Checkpoints::new(cluster.objects.clone());
    let elsewhere = cluster.dir.path().join("c/spool/file");
    assert!(
        c.restore(&elsewhere, CODE, &id, row.durable_offset)
            .await
            .unwrap()
    );
    assert_eq!(std::fs::read(&elsewhere).unwrap(), sealed);
    c.remove(CODE, &id).await.unwrap();

    // A partial upload given up takes its checkpoints with it.
    let mut up = b.open(&who(), "given-up.pdf", None).await.unwrap();
    up.write_at(0, sealed[..200_000].to_vec()).await.unwrap();
    let gone = up.id().to_string();
    up.suspend().await.unwrap();
    let row = b.catalog().upload(&gone).await.unwrap().unwrap();
    assert!(row.durable_offset > 0);
    b.abandon(&row, "test").await.unwrap();
    let nowhere = cluster.dir.path().join("c/spool/gone");
    let e = c
        .restore(&nowhere, CODE, &gone, row.durable_offset)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "ingest.checkpoint_lost");
}
