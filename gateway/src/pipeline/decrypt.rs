//! Decrypt stage: the accepted (already verified while it arrived) sealed spool file is
//! opened again, in parallel across cores, into a plaintext work file. Verification runs
//! a second time on the way; its digest must match the one recorded at acceptance.

use std::path::{Path, PathBuf};

use crate::sealed::{HeaderPolicy, Identity, ParallelOptions, SealedError, parallel};

pub struct Plaintext {
    pub path: PathBuf,
    pub len: u64,
    pub sha256: String,
}

pub fn decrypt(
    spool: &Path,
    work_dir: &Path,
    upload_id: &str,
    identity: &Identity,
    policy: &HeaderPolicy,
) -> Result<Plaintext, SealedError> {
    std::fs::create_dir_all(work_dir)?;
    let path = work_dir.join(format!("{upload_id}.plain"));
    let opts = ParallelOptions {
        hash: true,
        ..ParallelOptions::default()
    };
    let report = parallel::open_file(spool, &path, identity, policy, &opts)?;
    let sha = report.sha256.map(hex::encode).unwrap_or_default();
    Ok(Plaintext {
        path,
        len: report.plaintext_len,
        sha256: sha,
    })
}
