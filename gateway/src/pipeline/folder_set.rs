//! DICOMDIR sets uploaded as a folder tree (OpenSSH `put -r`, rclone, WinSCP), one file
//! per upload. The rule, documented for hospitals in docs/sftp.md: **a set is the folder
//! its DICOMDIR is uploaded into**, sent in any order ([`super::set_wait`] decides when
//! the DICOMDIR's check can run). Its members are the current files in that folder and
//! below; the same walk as for a ZIP batch runs over the stored objects, decrypting only
//! the headers it reads.
//!
//! Each member file was indexed when it arrived, so the set adds its checks and counts
//! but indexes no instance a second time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::isolation::SealedFile;
use crate::backends::catalog::CurrentFile;
use crate::backends::objects::{ObjectKey, ObjectStore};
use crate::sealed::{HeaderPolicy, Identity};

/// The folder a DICOMDIR named `name` describes: `case-7/DICOMDIR` → `case-7/`.
pub fn prefix(name: &str) -> String {
    name.rsplit_once('/')
        .map(|(dir, _)| format!("{dir}/"))
        .unwrap_or_default()
}

fn is_dicomdir(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .unwrap_or(path)
        .eq_ignore_ascii_case("DICOMDIR")
}

/// The current files under `prefix` (the DICOMDIRs excepted), each as a sealed file an
/// inspector can open with that file's own key. Objects of a store without local files
/// are copied under `scratch` first (the caller removes it).
pub async fn members(
    current: Vec<CurrentFile>,
    prefix: &str,
    objects: &Arc<dyn ObjectStore>,
    identity: &Identity,
    policy: &HeaderPolicy,
    scratch: &Path,
) -> std::io::Result<Vec<(String, SealedFile)>> {
    let mut out = Vec::new();
    for f in current {
        let Some(rel) = f.name.strip_prefix(prefix) else {
            continue;
        };
        if is_dicomdir(rel) {
            continue;
        }
        let key = ObjectKey::for_sha256(&f.sha256).map_err(std::io::Error::other)?;
        let path = match objects.local_path(&key) {
            Some(p) => p,
            None => copy_out(objects, &key, scratch, out.len()).await?,
        };
        let file = unlocked(path, identity.clone(), policy.clone()).await?;
        out.push((rel.to_string(), file));
    }
    Ok(out)
}

async fn copy_out(
    objects: &Arc<dyn ObjectStore>,
    key: &ObjectKey,
    scratch: &Path,
    n: usize,
) -> std::io::Result<PathBuf> {
    tokio::fs::create_dir_all(scratch).await?;
    let path = scratch.join(format!("{n}.sealed"));
    let mut reader = objects
        .get(key, None)
        .await
        .map_err(std::io::Error::other)?;
    let mut out = tokio::fs::File::create(&path).await?;
    tokio::io::copy(&mut reader, &mut out).await?;
    Ok(path)
}

/// Unlocks the header of the sealed file at `path` (the gateway's identity stays here).
pub async fn unlocked(
    path: PathBuf,
    identity: Identity,
    policy: HeaderPolicy,
) -> std::io::Result<SealedFile> {
    tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(&path)?;
        let key = crate::sealed::unlock(&mut f, &identity, &policy).map_err(|e| match e {
            crate::sealed::SealedError::Io(e) => e,
            e => std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        Ok(SealedFile { path, key })
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_set_is_the_folder_of_its_dicomdir() {
        assert_eq!(super::prefix("case-7/DICOMDIR"), "case-7/");
        assert_eq!(super::prefix("a/b/DICOMDIR"), "a/b/");
        assert_eq!(super::prefix("DICOMDIR"), "");
        assert!(super::is_dicomdir("x/dicomdir") && !super::is_dicomdir("x/IM1"));
    }
}
