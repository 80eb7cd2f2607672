//! Decrypt stage: the accepted (already verified while it arrived) sealed spool file is
//! opened again, in parallel across cores, into a plaintext work file. Verification runs
//! a second time on the way; its digest must match the one recorded at acceptance.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::sealed::{HeaderPolicy, Identity, ParallelOptions, SealedError, StreamOpener, parallel};

/// Below this, waking a thread pool costs more than it saves: open on this thread.
const PARALLEL_FROM: u64 = 4 << 20;

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
    let report = if std::fs::metadata(spool)?.len() >= PARALLEL_FROM {
        let opts = ParallelOptions {
            hash: true,
            ..ParallelOptions::default()
        };
        parallel::open_file(spool, &path, identity, policy, &opts)?
    } else {
        let out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut opener = StreamOpener::new(identity.clone(), policy.clone(), out);
        opener.push(&std::fs::read(spool)?)?;
        let (report, mut out) = opener.finish()?;
        out.flush()?;
        report
    };
    let sha = report.sha256.map(hex::encode).unwrap_or_default();
    Ok(Plaintext {
        path,
        len: report.plaintext_len,
        sha256: sha,
    })
}
