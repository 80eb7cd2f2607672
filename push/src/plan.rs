//! Which files `gateway push` sends, under which names, in which order.
//!
//! Files given directly keep their file name; a folder keeps its own name and the
//! paths below it (`case-7/IMAGES/IM1`). Files that close a set — a `DICOMDIR`, a batch
//! `*.manifest.json` — go in a second round, after every other file has been accepted,
//! because the gateway checks a set against the files that arrived before it.

use std::path::{Path, PathBuf};

use super::PushError;

/// One file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub local: PathBuf,
    /// The name at the gateway (`/`-separated, with the optional prefix).
    pub name: String,
}

/// Whether `name` closes a set and so goes last.
pub fn closes_a_set(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.eq_ignore_ascii_case("DICOMDIR") || base.ends_with(".manifest.json")
}

/// The files under `paths`, named for the gateway: (first round, last round).
pub fn plan(paths: &[PathBuf], prefix: &str) -> Result<(Vec<Item>, Vec<Item>), PushError> {
    let mut items = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| PushError::Local(p.clone(), e))?;
        let base = p
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| PushError::Name(p.display().to_string()))?
            .to_string();
        if meta.is_dir() {
            walk(p, &base, &mut items)?;
        } else {
            items.push(Item {
                local: p.clone(),
                name: base,
            });
        }
    }
    let prefix = prefix.trim_matches('/');
    for i in &mut items {
        if !prefix.is_empty() {
            i.name = format!("{prefix}/{}", i.name);
        }
    }
    items.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(items.into_iter().partition(|i| !closes_a_set(&i.name)))
}

fn walk(dir: &Path, name: &str, out: &mut Vec<Item>) -> Result<(), PushError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PushError::Local(dir.into(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PushError::Local(dir.into(), e))?;
        let path = entry.path();
        let child = entry
            .file_name()
            .to_str()
            .map(|c| format!("{name}/{c}"))
            .ok_or_else(|| PushError::Name(path.display().to_string()))?;
        let kind = entry
            .file_type()
            .map_err(|e| PushError::Local(path.clone(), e))?;
        if kind.is_dir() {
            walk(&path, &child, out)?;
        } else if kind.is_file() {
            out.push(Item {
                local: path,
                name: child,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_keep_their_tree_and_sets_close_last() {
        let dir = tempfile::tempdir().unwrap();
        let set = dir.path().join("case-7");
        std::fs::create_dir_all(set.join("IMAGES")).unwrap();
        for f in ["DICOMDIR", "IMAGES/IM2", "IMAGES/IM1"] {
            std::fs::write(set.join(f), b"x").unwrap();
        }
        let single = dir.path().join("12A03123345.pdf");
        std::fs::write(&single, b"x").unwrap();
        let (first, last) = plan(&[set, single], "in").unwrap();
        let names: Vec<_> = first.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "in/12A03123345.pdf",
                "in/case-7/IMAGES/IM1",
                "in/case-7/IMAGES/IM2"
            ]
        );
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].name, "in/case-7/DICOMDIR");
        assert!(closes_a_set("b/batch-1.manifest.json"));
    }
}
