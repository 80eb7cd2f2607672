//! DICOMDIR sets uploaded as a folder tree (OpenSSH `put -r`, rclone, WinSCP), one file
//! per upload. The rule, documented for hospitals in docs/sftp.md: **a set is the folder
//! its DICOMDIR is uploaded into, and the DICOMDIR is uploaded last.** When the DICOMDIR
//! is checked, the files accepted before it in that folder and below are the set: their
//! own checks are awaited first, then the same walk as for a ZIP batch runs over the
//! stored objects, decrypting only the headers it reads.
//!
//! Each member file was indexed when it arrived, so the set adds its checks and counts
//! but indexes no instance a second time.

use std::io::Read;
use std::sync::Arc;

use super::inspect::dicomdir::{self, SetFiles};
use crate::backends::catalog::CurrentFile;
use crate::backends::objects::blocking::BlockingObject;
use crate::backends::objects::{ObjectKey, ObjectStore};
use crate::checks::Check;
use crate::sealed::{HeaderPolicy, Identity, SealedReader};

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

/// The current files under a folder, read from the object store.
pub struct StoredSet {
    /// (path relative to the folder, plaintext SHA-256 = object address)
    files: Vec<(String, String)>,
    objects: Arc<dyn ObjectStore>,
    identity: Identity,
    policy: HeaderPolicy,
    rt: tokio::runtime::Handle,
}

impl StoredSet {
    pub fn new(
        current: Vec<CurrentFile>,
        prefix: &str,
        objects: Arc<dyn ObjectStore>,
        identity: Identity,
        policy: HeaderPolicy,
    ) -> StoredSet {
        let files = current
            .into_iter()
            .filter_map(|f| {
                let rel = f.name.strip_prefix(prefix)?.to_string();
                (!is_dicomdir(&rel)).then_some((rel, f.sha256))
            })
            .collect();
        StoredSet {
            files,
            objects,
            identity,
            policy,
            rt: tokio::runtime::Handle::current(),
        }
    }

    /// Validates the set against the DICOMDIR bytes `directory`; must run on a
    /// blocking thread. Returns the set's metadata and checks.
    pub fn validate(
        mut self,
        directory: &[u8],
        max_header: u64,
    ) -> (serde_json::Value, Vec<Check>) {
        let (facts, checks) = dicomdir::validate(directory, &mut self, max_header);
        let meta = serde_json::json!({
            "patients": facts.patients, "studies": facts.studies,
            "series": facts.series, "instances": facts.instances.len(),
            "files": self.files.len(),
        });
        (meta, checks)
    }
}

impl SetFiles for StoredSet {
    fn paths(&self) -> Vec<String> {
        self.files.iter().map(|(p, _)| p.clone()).collect()
    }

    fn open(&mut self, path: &str) -> std::io::Result<Box<dyn Read + '_>> {
        let sha = self
            .files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, s)| s.as_str())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, path.to_string()))?;
        let key = ObjectKey::for_sha256(sha).map_err(std::io::Error::other)?;
        let object = BlockingObject::open(self.objects.clone(), key, self.rt.clone())?;
        let plain = SealedReader::new(object, &self.identity, &self.policy)
            .map_err(std::io::Error::other)?;
        Ok(Box::new(plain))
    }
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
