//! The state file of `gateway push`: for each file being sent, its upload URL and the
//! seed that makes its sealing repeatable (see `sealed::SealedSource`), so that a
//! rerun after an interruption or a crash continues every upload where the gateway has
//! it. An entry is keyed by the file's path, size and modification time: a changed
//! file gets a new entry, and so a new seed (a seed is never used for two contents).
//! The file holds key material, so it is written with mode 0600, and entries are
//! removed as soon as their upload is accepted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::PushError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub url: Option<String>,
    /// Hex seed for on-the-fly sealing; absent for files that were sealed already.
    pub seed: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    uploads: BTreeMap<String, Entry>,
}

pub struct State {
    path: PathBuf,
    file: Mutex<File>,
}

/// The key of a local file: path, size and modification time.
pub fn key_of(path: &Path) -> Result<String, PushError> {
    let meta = std::fs::metadata(path).map_err(|e| PushError::Local(path.into(), e))?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    Ok(format!("{}|{}|{modified}", abs.display(), meta.len()))
}

impl State {
    /// Loads `path` (a missing file is an empty state).
    pub fn load(path: &Path) -> Result<State, PushError> {
        let file = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| PushError::State(path.into(), e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(e) => return Err(PushError::Local(path.into(), e)),
        };
        Ok(State {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    pub fn get(&self, key: &str) -> Option<Entry> {
        let f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.uploads.get(key).cloned()
    }

    /// Records `entry` (or with `None`, forgets `key`) and writes the file at once.
    pub fn set(&self, key: &str, entry: Option<Entry>) -> Result<(), PushError> {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        match entry {
            Some(e) => f.uploads.insert(key.to_string(), e),
            None => f.uploads.remove(key),
        };
        let text = serde_json::to_vec_pretty(&*f)
            .map_err(|e| PushError::State(self.path.clone(), e.to_string()))?;
        write_private(&self.path, &text).map_err(|e| PushError::Local(self.path.clone(), e))
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename), mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_a_reload_and_the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("push.json");
        let s = State::load(&path).unwrap();
        let e = Entry {
            name: "a.pdf".into(),
            url: Some("https://g/v1/uploads/1".into()),
            seed: Some("00".repeat(32)),
        };
        s.set("k", Some(e.clone())).unwrap();
        assert_eq!(State::load(&path).unwrap().get("k"), Some(e));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        s.set("k", None).unwrap();
        assert_eq!(State::load(&path).unwrap().get("k"), None);
    }
}
