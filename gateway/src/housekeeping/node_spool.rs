//! Each node's own spool, in a cluster. Housekeeping's sweep runs on one node at a time
//! (the `housekeeping` lease) and removes the spool files *it* has; but a partial upload
//! may have left a working copy on every node a client reached (resumed elsewhere after
//! a node was lost, say). So every node also walks its own spool and removes the files
//! of uploads that are finished with: indexed, expired, pre-checked, rejected past
//! their quarantine, or unknown to the catalog for an hour (a spool file is created a
//! moment before its catalog row). Uploads still receiving, accepted or being checked
//! keep theirs: a client or a check may come back to this node.

use std::time::{Duration, SystemTime};

use super::{Grounds, Policy};
use crate::backends::catalog::{CatalogError, UploadState};
use crate::telemetry::events::{InternalEvent, UploadCleanedUp};

/// A spool file without a catalog row is left this long.
const ORPHAN_AFTER: Duration = Duration::from_secs(3600);

/// Removes this node's spool files of finished uploads; returns how many.
pub async fn sweep(g: &Grounds, policy: &Policy, now: i64) -> Result<usize, CatalogError> {
    let mut removed = 0;
    for (tenant, id, path, age) in spool_files(&g.spool_dir) {
        let finished = match g.catalog.upload(&id).await? {
            None => age > ORPHAN_AFTER,
            Some(up) if up.tenant != tenant => false,
            Some(up) => match up.state {
                UploadState::Indexed | UploadState::Expired | UploadState::Prechecked => true,
                UploadState::Rejected => up.updated_at < now - super::secs(policy.quarantine),
                UploadState::Receiving | UploadState::Accepted | UploadState::Checking => false,
            },
        };
        if !finished {
            continue;
        }
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if std::fs::remove_file(&path).is_ok() {
            removed += 1;
            UploadCleanedUp {
                tenant: &tenant,
                upload: &id,
                action: "node_spool",
                bytes,
            }
            .emit();
        }
    }
    Ok(removed)
}

/// (tenant, upload id, path, age) of every `<tenant>/<id>.part` under `spool_dir`.
fn spool_files(spool_dir: &std::path::Path) -> Vec<(String, String, std::path::PathBuf, Duration)> {
    let mut out = Vec::new();
    let Ok(tenants) = std::fs::read_dir(spool_dir) else {
        return out;
    };
    for t in tenants.flatten() {
        let tenant = t.file_name().to_string_lossy().into_owned();
        let Ok(files) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".part") else {
                continue;
            };
            let age = f
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
            out.push((tenant.clone(), id.to_string(), f.path(), age));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::spool::spool_path;
    use crate::session::testing::{CODE, fixture, who};

    /// A node's working copies of finished uploads go; those a client or a check may
    /// still come back for stay, as does a file whose catalog row is a moment away.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_node_clears_its_copies_of_finished_uploads_only() {
        let f = fixture().await;
        let g = Grounds::of(&f.core);
        let policy = Policy {
            partial_expiry: Duration::from_secs(3600),
            quarantine: Duration::from_secs(86_400),
            precheck: Duration::from_secs(3600),
            interval: Duration::from_secs(1),
        };
        let (sealed, _) = f.seal(10_000);
        let mut partial = f.core.open(&who(), "partial.pdf", None).await.unwrap();
        partial.write_at(0, sealed[..4000].to_vec()).await.unwrap();
        let partial_id = partial.id().to_string();
        partial.suspend().await.unwrap();
        let accepted = f.upload("done.pdf", b"%PDF-1.7 done").await;
        let spool = |id: &str| spool_path(&g.spool_dir, CODE, id);
        // Indexed elsewhere: stand in with its catalog state.
        let elsewhere = f.upload("indexed.pdf", b"%PDF-1.7 indexed").await;
        g.catalog
            .abandon_upload(
                &g.catalog.upload(&partial_id).await.unwrap().unwrap(),
                "test",
            )
            .await
            .unwrap();
        std::fs::write(spool(&partial_id), b"left behind").unwrap();
        let claimed = g.catalog.claim_next_accepted().await.unwrap().unwrap();
        assert_eq!(claimed.id, accepted.id);
        let file = crate::backends::catalog::NewFile {
            id: "f1".into(),
            name: claimed.name.clone(),
            sha256: "ab".repeat(32),
            size: 1,
            media_type: "application/pdf".into(),
            object_key: format!("sha256/{}", "ab".repeat(32)),
            metadata: serde_json::json!({}),
            retain_secs: None,
            instances: Vec::new(),
            request_id: None,
        };
        let event = file.indexed_event(&claimed, &[]);
        g.catalog
            .index_upload(&claimed, &file, &[], &event)
            .await
            .unwrap();
        std::fs::write(spool("0000unknown"), b"row to come").unwrap();
        let removed = sweep(&g, &policy, crate::util::unix_now()).await.unwrap();
        assert_eq!(removed, 2, "the expired and the indexed upload's copies");
        assert!(!spool(&partial_id).exists() && !spool(&accepted.id).exists());
        assert!(
            spool(&elsewhere.id).exists(),
            "accepted, waiting for its check here"
        );
        assert!(spool("0000unknown").exists(), "too young to be an orphan");
    }
}
