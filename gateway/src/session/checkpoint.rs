//! Partial uploads that survive the loss of their node. With a shared catalog and a
//! shared object store (docs/scale-out.md), a partial upload's bytes are copied to the
//! object store before its durable offset advances in the catalog, so whichever node a
//! client reconnects to can rebuild the spool file up to that offset and carry on;
//! likewise an accepted upload's last bytes, so a node that claims its check after the
//! accepting node died finds them.
//!
//! Each checkpoint is one object holding the bytes from the previous durable offset to
//! the new one, named by where it starts: `partial/<tenant>/<upload>/<start, 16 hex>`.
//! The next one starts where this one ends, so the chain is followed with `head` alone
//! (the object-store contract has no listing). The node that rebuilds a spool file
//! trusts none of it: the session re-verifies every byte from the first (chunk
//! counter, tags, running SHA-256), as after any resume.
//!
//! What a client re-sends after its node is lost is bounded as after a crash: the
//! bytes after the last durable offset, at most `[ingest] fsync_interval_bytes` or
//! `fsync_interval_secs` worth (bench/RESULTS.md measures it).

use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backends::objects::{ObjectError, ObjectKey, ObjectStore};

pub struct Checkpoints {
    objects: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Checkpoints")
    }
}

/// Why a checkpoint could not be written or followed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error("checkpoint I/O: {0}")]
    Io(#[from] io::Error),
    /// The chain ends before the durable offset the catalog promised.
    #[error("the checkpoints of upload {id} end at byte {at}, before its durable offset {durable}")]
    Broken { id: String, at: u64, durable: u64 },
}

impl CheckpointError {
    pub fn code(&self) -> &'static str {
        match self {
            CheckpointError::Objects(e) => e.code(),
            CheckpointError::Io(_) => "ingest.io",
            CheckpointError::Broken { .. } => "ingest.checkpoint_lost",
        }
    }
}

type Result<T> = std::result::Result<T, CheckpointError>;

fn key(tenant: &str, id: &str, start: u64) -> Result<ObjectKey> {
    Ok(ObjectKey::new(&format!(
        "partial/{tenant}/{id}/{start:016x}"
    ))?)
}

impl Checkpoints {
    pub fn new(objects: Arc<dyn ObjectStore>) -> Checkpoints {
        Checkpoints { objects }
    }

    /// Stores bytes `from..to` of the spool file `spool` (already durable on disk) as
    /// the checkpoint starting at `from`. With `stale`, one may already be there (an
    /// attempt whose offset was never recorded): it is replaced. Without, the request
    /// that would look for it is spared (a small upload's share of requests to the
    /// store is most of its cost there: bench/RESULTS.md).
    pub async fn save(
        &self,
        spool: &Path,
        tenant: &str,
        id: &str,
        from: u64,
        to: u64,
        stale: bool,
    ) -> Result<()> {
        if to <= from {
            return Ok(());
        }
        let key = key(tenant, id, from)?;
        let part = part_path(spool, from);
        let (src, dst) = (spool.to_owned(), part.clone());
        tokio::task::spawn_blocking(move || copy_range(&src, &dst, from, to))
            .await
            .map_err(io::Error::other)??;
        if stale && self.objects.head(&key).await?.is_some() {
            self.objects.delete(&key).await?;
        }
        let stored = self.objects.put_file(&key, &part).await;
        let _ = std::fs::remove_file(&part);
        stored?;
        Ok(())
    }

    /// Rebuilds the spool file `spool` from the checkpoints, up to `durable` bytes,
    /// unless it already holds them. Returns whether it rebuilt it.
    pub async fn restore(
        &self,
        spool: &Path,
        tenant: &str,
        id: &str,
        durable: u64,
    ) -> Result<bool> {
        // (An upload whose node died before its first durable byte gets an empty
        // spool file here.)
        if let Ok(m) = std::fs::metadata(spool)
            && m.len() >= durable
        {
            return Ok(false);
        }
        if let Some(dir) = spool.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let rebuilt = part_path(spool, u64::MAX);
        let mut out = tokio::fs::File::create(&rebuilt).await?;
        let mut at = 0;
        while at < durable {
            let key = key(tenant, id, at)?;
            let Some(meta) = self.objects.head(&key).await? else {
                let _ = std::fs::remove_file(&rebuilt);
                return Err(CheckpointError::Broken {
                    id: id.into(),
                    at,
                    durable,
                });
            };
            let mut reader = self.objects.get(&key, None).await?;
            tokio::io::copy(&mut reader, &mut out).await?;
            at += meta.len;
        }
        // A checkpoint may reach past the durable offset (its offset was never
        // recorded): cut back to what the catalog promised.
        out.set_len(durable).await?;
        out.sync_all().await?;
        drop(out);
        tokio::fs::rename(&rebuilt, spool).await?;
        if let Some(dir) = spool.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(true)
    }

    /// Removes an upload's checkpoints (its check is recorded, or it expired).
    pub async fn remove(&self, tenant: &str, id: &str) -> Result<()> {
        let mut at = 0;
        loop {
            let key = key(tenant, id, at)?;
            let Some(meta) = self.objects.head(&key).await? else {
                return Ok(());
            };
            self.objects.delete(&key).await?;
            if meta.len == 0 {
                return Ok(());
            }
            at += meta.len;
        }
    }
}

/// Where a checkpoint is staged beside its spool file (the object store consumes it).
fn part_path(spool: &Path, from: u64) -> PathBuf {
    let mut name = spool.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".part-{from:016x}"));
    spool.with_file_name(name)
}

fn copy_range(src: &Path, dst: &Path, from: u64, to: u64) -> io::Result<()> {
    let mut input = std::fs::File::open(src)?;
    input.seek(io::SeekFrom::Start(from))?;
    let mut output = std::fs::File::create(dst)?;
    let copied = io::copy(&mut input.take(to - from), &mut output)?;
    if copied != to - from {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the spool file ends at {} before {to}", from + copied),
        ));
    }
    output.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> Arc<dyn ObjectStore> {
        Arc::new(crate::backends::objects::local::LocalStore::new(dir.join("objects")).unwrap())
    }

    /// Checkpoints saved as durable offsets advance rebuild the spool file on another
    /// node, cut back to the promised offset; a gap in the chain is a typed error.
    #[tokio::test]
    async fn checkpoints_rebuild_a_spool_file_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(store(dir.path()));
        let spool = dir.path().join("a/spool");
        std::fs::create_dir_all(spool.parent().unwrap()).unwrap();
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&spool, &bytes).unwrap();
        c.save(&spool, "t", "u1", 0, 100_000, false).await.unwrap();
        // An attempt whose offset was never recorded, then the one that was (by a
        // node that resumed the upload, and so looks for a stale checkpoint).
        c.save(&spool, "t", "u1", 100_000, 150_000, false)
            .await
            .unwrap();
        c.save(&spool, "t", "u1", 100_000, 250_000, true)
            .await
            .unwrap();
        let elsewhere = dir.path().join("b/spool");
        assert!(c.restore(&elsewhere, "t", "u1", 200_000).await.unwrap());
        assert_eq!(std::fs::read(&elsewhere).unwrap(), &bytes[..200_000]);
        assert!(
            !c.restore(&elsewhere, "t", "u1", 200_000).await.unwrap(),
            "already there"
        );
        let far = dir.path().join("c/spool");
        let e = c.restore(&far, "t", "u1", 290_000).await.unwrap_err();
        assert_eq!(e.code(), "ingest.checkpoint_lost");
        assert!(!far.exists(), "nothing half-built is left");
        c.remove("t", "u1").await.unwrap();
        let e = c.restore(&far, "t", "u1", 10).await.unwrap_err();
        assert!(matches!(e, CheckpointError::Broken { at: 0, .. }));
        // Created on a node that died before its first durable byte: resumed from 0
        // elsewhere, with an empty spool file to append to.
        assert!(c.restore(&far, "t", "u2", 0).await.unwrap());
        assert_eq!(std::fs::metadata(&far).unwrap().len(), 0);
    }
}
