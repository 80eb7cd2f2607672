//! Gauges that are read rather than counted — the backlog by state, bytes held, free
//! space of the data directory — sampled every few seconds on their own task, so a
//! scrape never waits on the catalog or the file system.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::metrics::METRICS;
use crate::backends::catalog::UploadState;
use crate::session::IngestCore;

const EVERY: Duration = Duration::from_secs(5);

/// (free, size) bytes of the file system holding `path`.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| {
        let unit = st.f_frsize as u64;
        (st.f_bavail as u64 * unit, st.f_blocks as u64 * unit)
    })
}

async fn sample(core: &IngestCore, data_dir: &Path) {
    let catalog = core.catalog();
    for state in [
        UploadState::Receiving,
        UploadState::Accepted,
        UploadState::Checking,
    ] {
        if let Ok(n) = catalog.count_in_state(state).await {
            METRICS
                .uploads_in_state
                .with_label_values(&[state.as_str()])
                .set(n);
        }
    }
    // Admission keeps its own count; beside the catalog's states, a drift shows.
    METRICS
        .admission_backlog
        .set(i64::try_from(core.admission().backlog()).unwrap_or(i64::MAX));
    if let Ok(n) = catalog.spool_bytes().await {
        METRICS
            .spool_bytes
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    if let Ok(u) = catalog.usage_totals().await {
        METRICS
            .stored_bytes
            .set(i64::try_from(u.accepted_bytes).unwrap_or(i64::MAX));
    }
    if let Some((free, size)) = disk_space(data_dir) {
        METRICS
            .data_dir_free_bytes
            .set(i64::try_from(free).unwrap_or(i64::MAX));
        METRICS
            .data_dir_size_bytes
            .set(i64::try_from(size).unwrap_or(i64::MAX));
    }
}

/// Samples until `stop` turns true.
pub async fn run(core: Arc<IngestCore>, data_dir: PathBuf, mut stop: watch::Receiver<bool>) {
    loop {
        sample(&core, &data_dir).await;
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}
