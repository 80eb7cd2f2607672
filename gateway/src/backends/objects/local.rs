//! The embedded object store: a directory tree under `data_dir/objects/`.
//! A put is a rename of an fsync'd file followed by an fsync of the directory, so an
//! object is either wholly there or not at all, across crashes.

use std::ops::Range;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{
    BoxFuture, ObjectError, ObjectKey, ObjectMeta, ObjectReader, ObjectStore, PutOutcome, Result,
};

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> std::io::Result<LocalStore> {
        let root = root.into();
        std::fs::create_dir_all(&root)?;
        Ok(LocalStore { root })
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

fn put_blocking(dest: &Path, src: &Path) -> Result<PutOutcome> {
    if dest.exists() {
        std::fs::remove_file(src)?;
        return Ok(PutOutcome::AlreadyPresent);
    }
    let dir = dest
        .parent()
        .ok_or_else(|| ObjectError::BadKey(dest.display().to_string()))?;
    std::fs::create_dir_all(dir)?;
    std::fs::File::open(src)?.sync_all()?;
    if std::fs::rename(src, dest).is_err() {
        // Another file system: copy to a temporary name beside the target, then rename.
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::copy(&mut std::fs::File::open(src)?, tmp.as_file_mut())?;
        tmp.as_file().sync_all()?;
        tmp.persist(dest).map_err(|e| ObjectError::Io(e.error))?;
        std::fs::remove_file(src)?;
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(PutOutcome::Stored)
}

impl ObjectStore for LocalStore {
    fn local_path(&self, key: &ObjectKey) -> Option<PathBuf> {
        Some(self.path(key))
    }

    fn put_file<'a>(
        &'a self,
        key: &'a ObjectKey,
        src: &'a Path,
    ) -> BoxFuture<'a, Result<PutOutcome>> {
        let (dest, src) = (self.path(key), src.to_owned());
        Box::pin(async move {
            tokio::task::spawn_blocking(move || put_blocking(&dest, &src))
                .await
                .map_err(|e| ObjectError::Io(std::io::Error::other(e)))?
        })
    }

    fn get<'a>(
        &'a self,
        key: &'a ObjectKey,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, Result<ObjectReader>> {
        Box::pin(async move {
            let mut f = match tokio::fs::File::open(self.path(key)).await {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ObjectError::NotFound(key.as_str().into()));
                }
                Err(e) => return Err(e.into()),
            };
            let len = f.metadata().await?.len();
            let Some(r) = range else {
                return Ok(Box::new(f) as ObjectReader);
            };
            if r.start > r.end || r.end > len {
                return Err(ObjectError::BadRange {
                    start: r.start,
                    end: r.end,
                    len,
                });
            }
            f.seek(std::io::SeekFrom::Start(r.start)).await?;
            Ok(Box::new(f.take(r.end - r.start)) as ObjectReader)
        })
    }

    fn head<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<Option<ObjectMeta>>> {
        Box::pin(async move {
            match tokio::fs::metadata(self.path(key)).await {
                Ok(m) => Ok(Some(ObjectMeta { len: m.len() })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(key)).await {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // Recreated if an operator removed it: an empty store is a valid store.
            tokio::fs::create_dir_all(&self.root).await?;
            let probe = self.root.join(".ready-probe");
            tokio::fs::write(&probe, b"ok").await?;
            tokio::fs::remove_file(&probe).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread")]
    async fn local_store_passes_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::LocalStore::new(dir.path().join("objects")).unwrap();
        super::super::contract::run(&store, dir.path()).await;
    }
}
