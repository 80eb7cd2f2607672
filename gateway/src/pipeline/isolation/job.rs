//! What an inspector is asked to do and what it answers: plain data, so the same job
//! runs in a worker process (the default) or in the gateway itself (`isolation =
//! "in-process"`, for comparison and for unit tests). Everything here parses bytes a
//! hospital sent; nothing here may hold the gateway's identity or touch the catalog.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::checks::{Check, Severity};
use crate::config::InspectConfig;
use crate::pipeline::inspect::dicom;
use crate::pipeline::inspect::dicomdir::{self, SetFiles};
use crate::pipeline::inspect::{self, Inspection};
use crate::pipeline::manifest::{self, Manifest};
use crate::sealed::{SealedReader, UnlockedKey};
use crate::tenants::Profile;

/// A sealed file an inspector may open, with that one file's payload key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedFile {
    pub path: PathBuf,
    pub key: UnlockedKey,
}

impl SealedFile {
    fn open(&self) -> std::io::Result<SealedReader<File>> {
        SealedReader::with_key(File::open(&self.path)?, &self.key).map_err(|e| match e {
            crate::sealed::SealedError::Io(e) => e,
            e => std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Job {
    /// Inspect one accepted upload (or read its batch manifest).
    Upload {
        file: SealedFile,
        plaintext_len: u64,
        name: String,
        tenant: String,
        profile: Profile,
        window: crate::pipeline::request::RecordWindow,
        cfg: InspectConfig,
    },
    /// Validate a folder-tree DICOMDIR set: the DICOMDIR and the files of its folder
    /// (paths relative to the folder).
    FolderSet {
        directory: SealedFile,
        members: Vec<(String, SealedFile)>,
        limits: dicom::HeaderLimits,
    },
}

/// The inspection (and, for a manifest, the manifest), or the one finding that fails
/// the upload before inspection could run.
pub type Inspected = Result<(Inspection, Option<Manifest>), Check>;

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Upload(Inspected),
    FolderSet {
        meta: serde_json::Value,
        checks: Vec<Check>,
    },
    /// Plain I/O trouble: retried later, never blamed on the upload.
    Io(String),
}

/// A finding that the sealed bytes no longer match what was accepted.
pub fn integrity_check(why: impl Into<String>) -> Check {
    Check::new("integrity.altered", Severity::Error, why)
}

/// Does `job`; what a worker process runs for each request.
pub fn run(job: &Job) -> Reply {
    match job {
        Job::Upload { .. } => match inspect_upload(job) {
            Ok(r) => Reply::Upload(r),
            Err(e) => Reply::Io(e.to_string()),
        },
        Job::FolderSet {
            directory,
            members,
            limits,
        } => folder_set(directory, members, *limits),
    }
}

fn inspect_upload(job: &Job) -> std::io::Result<Inspected> {
    let Job::Upload {
        file,
        plaintext_len,
        name,
        tenant,
        profile,
        window,
        cfg,
    } = job
    else {
        return Err(std::io::Error::other("not an upload job"));
    };
    let mut plain = match file.open() {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            return Ok(Err(integrity_check(format!(
                "the stored file no longer opens: {e}"
            ))));
        }
        Err(e) => return Err(e),
    };
    if plain.plaintext_len() != *plaintext_len {
        return Ok(Err(integrity_check(format!(
            "{} plaintext bytes on disk, {plaintext_len} accepted",
            plain.plaintext_len()
        ))));
    }
    let result = if manifest::batch_prefix(name).is_some() {
        manifest::read(&mut plain).map(|m| {
            m.map(|m| {
                let i = Inspection {
                    media_type: inspect::MediaType::Json,
                    checks: Vec::new(),
                    metadata: serde_json::json!({ "manifest": { "files": m.files.len() } }),
                    instances: Vec::new(),
                    directory: false,
                };
                (i, Some(m))
            })
        })
    } else {
        let subject = inspect::Subject {
            name,
            tenant,
            profile: *profile,
            window,
        };
        inspect::inspect(&mut plain, *plaintext_len, subject, cfg).map(|i| Ok((i, None)))
    };
    match result {
        Ok(r) => Ok(r),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Ok(Err(integrity_check(format!(
            "the stored file changed after acceptance: {e}"
        )))),
        Err(e) => Err(e),
    }
}

/// The members of a folder set, opened with their own keys.
struct Members<'a>(&'a [(String, SealedFile)]);

impl SetFiles for Members<'_> {
    fn paths(&self) -> Vec<String> {
        self.0.iter().map(|(p, _)| p.clone()).collect()
    }

    fn open(&mut self, path: &str) -> std::io::Result<Box<dyn Read + '_>> {
        let (_, f) =
            self.0.iter().find(|(p, _)| p == path).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, path.to_string())
            })?;
        Ok(Box::new(f.open()?))
    }
}

fn folder_set(
    directory: &SealedFile,
    members: &[(String, SealedFile)],
    limits: dicom::HeaderLimits,
) -> Reply {
    let mut bytes = Vec::new();
    let read = directory
        .open()
        .and_then(|p| p.take(limits.max_bytes).read_to_end(&mut bytes));
    if let Err(e) = read {
        return Reply::Io(e.to_string());
    }
    let (facts, checks) = dicomdir::validate(&bytes, &mut Members(members), limits);
    let meta = serde_json::json!({
        "patients": facts.patients, "studies": facts.studies,
        "series": facts.series, "instances": facts.instances.len(),
        "files": members.len(),
    });
    Reply::FolderSet { meta, checks }
}
