//! The spool: `data_dir/spool/<tenant>/<upload-id>.part`, the sealed bytes of an upload
//! as they arrive. Appends go to the page cache; `sync` makes them durable. The catalog
//! records the durable length only after the fsync, so after a crash the file is at
//! least that long and is cut back to it: what a client resumes from is always on disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub struct SpoolFile {
    path: PathBuf,
    file: File,
    len: u64,
    durable: u64,
}

pub fn spool_path(spool_dir: &Path, tenant: &str, id: &str) -> PathBuf {
    spool_dir.join(tenant).join(format!("{id}.part"))
}

impl SpoolFile {
    /// A new, empty spool file; its directory entry is made durable too.
    pub fn create(spool_dir: &Path, tenant: &str, id: &str) -> io::Result<SpoolFile> {
        let path = spool_path(spool_dir, tenant, id);
        let dir = path.parent().unwrap_or(spool_dir);
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&path)?;
        File::open(dir)?.sync_all()?;
        Ok(SpoolFile {
            path,
            file,
            len: 0,
            durable: 0,
        })
    }

    /// Reopens a partial upload, cut back to its last durable length.
    pub fn reopen(spool_dir: &Path, tenant: &str, id: &str, durable: u64) -> io::Result<SpoolFile> {
        let path = spool_path(spool_dir, tenant, id);
        let file = OpenOptions::new().read(true).append(true).open(&path)?;
        let on_disk = file.metadata()?.len();
        if on_disk < durable {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} holds {on_disk} bytes, the catalog promised {durable}",
                    path.display()
                ),
            ));
        }
        if on_disk > durable {
            file.set_len(durable)?;
            file.sync_all()?;
        }
        Ok(SpoolFile {
            path,
            file,
            len: durable,
            durable,
        })
    }

    pub fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// fsync; returns the new durable length.
    pub fn sync(&mut self) -> io::Result<u64> {
        if self.durable != self.len {
            self.file.sync_data()?;
            self.durable = self.len;
        }
        Ok(self.durable)
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn unsynced(&self) -> u64 {
        self.len - self.durable
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader over the bytes written so far (to rebuild verification on resume).
    pub fn reader(&self) -> io::Result<File> {
        File::open(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_cuts_back_to_the_durable_length() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SpoolFile::create(dir.path(), "3501200000", "u1").unwrap();
        s.append(b"hello ").unwrap();
        assert_eq!(s.sync().unwrap(), 6);
        s.append(b"world").unwrap();
        assert_eq!(s.unsynced(), 5);
        drop(s);
        let s = SpoolFile::reopen(dir.path(), "3501200000", "u1", 6).unwrap();
        assert_eq!(s.len(), 6);
        assert_eq!(std::fs::read(s.path()).unwrap(), b"hello ");
        assert!(SpoolFile::reopen(dir.path(), "3501200000", "u1", 7).is_err());
        assert!(
            SpoolFile::create(dir.path(), "3501200000", "u1").is_err(),
            "never overwrite"
        );
    }
}
