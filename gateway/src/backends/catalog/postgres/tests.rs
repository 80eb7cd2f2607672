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
