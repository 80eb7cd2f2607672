//! A real ingest core on a temporary catalog and spool, for tests of the session and of
//! the pipeline stages behind it.

use std::sync::Arc;

use super::{IngestCore, IngestSettings, Principal};
use crate::backends::catalog;
use crate::sealed::{HeaderPolicy, Identity, seal_to_vec};
use crate::tenants::{Quota, Registry};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub core: Arc<IngestCore>,
    pub identity: Identity,
}

pub const CODE: &str = "3501200000";

pub async fn fixture_with(quota: Quota, max_file_bytes: u64, fsync_interval_bytes: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(
        &tenants,
        format!(
            "[[tenant]]\ncode = \"{CODE}\"\nname = \"T\"\nprofile = \"generic\"\n[tenant.quota]\n\
             max_bytes = {}\nmax_files = {}\nmax_concurrent_uploads = {}\n",
            quota.max_bytes, quota.max_files, quota.max_concurrent_uploads
        ),
    )
    .unwrap();
    let catalog = catalog::open("", dir.path()).await.unwrap();
    let identity = Identity::generate().unwrap();
    let core = core_on(
        catalog,
        dir.path(),
        identity.clone(),
        max_file_bytes,
        fsync_interval_bytes,
        None,
    );
    Fixture {
        dir,
        core,
        identity,
    }
}

/// An ingest core on `catalog` with its spool and tenants file (the default quota)
/// under `dir`: one node of a cluster when the catalog is shared.
pub fn core_on(
    catalog: catalog::Catalog,
    dir: &std::path::Path,
    identity: Identity,
    max_file_bytes: u64,
    fsync_interval_bytes: u64,
    checkpoints: Option<Arc<super::checkpoint::Checkpoints>>,
) -> Arc<IngestCore> {
    let tenants = dir.join("tenants.toml");
    if !tenants.exists() {
        std::fs::write(
            &tenants,
            format!("[[tenant]]\ncode = \"{CODE}\"\nname = \"T\"\nprofile = \"generic\"\n"),
        )
        .unwrap();
    }
    let registry = Registry::load(&tenants).unwrap();
    let settings = IngestSettings {
        spool_dir: dir.join("spool"),
        max_file_bytes,
        fsync_interval_bytes,
        fsync_interval_secs: 10,
        header_policy: HeaderPolicy::default(),
        // Tests accept many uploads with no pipeline running: nobody waits at the door.
        max_backlog: 0,
        admission_wait: std::time::Duration::ZERO,
        requests: std::sync::Arc::new(super::request_rules(&Default::default())),
        checkpoints,
    };
    IngestCore::new(catalog, registry, identity, settings)
}

pub async fn fixture() -> Fixture {
    fixture_with(Quota::default(), 1 << 30, 1 << 20).await
}

pub fn who() -> Principal {
    Principal {
        tenant: CODE.into(),
        protocol: "test",
    }
}

pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

impl Fixture {
    pub fn seal(&self, len: usize) -> (Vec<u8>, String) {
        let pt = plaintext(len);
        let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &pt));
        (seal_to_vec(&[self.identity.to_public()], &pt).unwrap(), sha)
    }
}

impl Fixture {
    /// Seals `plaintext` and uploads it in one piece; returns the accepted upload.
    pub async fn upload(&self, name: &str, plaintext: &[u8]) -> super::Accepted {
        let sealed = seal_to_vec(&[self.identity.to_public()], plaintext).unwrap();
        let mut u = self.core.open(&who(), name, None).await.unwrap();
        u.write_at(0, sealed).await.unwrap();
        u.finish().await.unwrap()
    }
}
