//! DICOMDIR sets sent as folder trees arrive in whatever order the client chooses
//! (rule 16): `lftp mirror -R`, WinSCP, FileZilla and rclone send the DICOMDIR
//! before, between or after its images, and after an interruption send the rest in yet
//! another order. So neither side of a set fails for what has not arrived yet:
//!
//! - a **DICOMDIR** waits while files in its folder wait for their own checks
//!   (`checks`) and while files it references are missing (`members`), and is validated as soon as the folder holds them
//!   all; it fails with `dicomdir.missing_file` only once its folder has been quiet for
//!   `pipeline.set_quiet_secs`;
//! - for `nhi-review`, where DICOM reaches the review channel only as a set, a **loose
//!   DICOM file** waits (`dicomdir`) until a DICOMDIR is arriving or uploaded in its
//!   folder or a folder above, and fails with `dicom.not_in_set` once its folder has
//!   been quiet that long without one. A STOW-RS instance belongs to no folder set and
//!   fails at once.
//!
//! A waiting check goes back to the queue (`defer_check`, the attempt given back) and is
//! looked at again every few seconds with one catalog query, not inspected again until
//! something it waits for has arrived.

use crate::backends::catalog::{Catalog, CatalogError, FolderActivity, UploadRow};
use crate::checks::{Check, Severity};

/// Seconds before a waiting check is looked at again.
pub const RECHECK_SECS: i64 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waits {
    /// A DICOMDIR, for the checks of files in its folder to finish.
    Checks,
    /// A DICOMDIR, for files it references that are not there yet.
    Members,
    /// A loose DICOM file, for a DICOMDIR around it.
    Dicomdir,
}

impl Waits {
    pub fn as_str(self) -> &'static str {
        match self {
            Waits::Checks => "checks",
            Waits::Members => "members",
            Waits::Dicomdir => "dicomdir",
        }
    }

    pub fn parse(s: &str) -> Option<Waits> {
        match s {
            "checks" => Some(Waits::Checks),
            "members" => Some(Waits::Members),
            "dicomdir" => Some(Waits::Dicomdir),
            _ => None,
        }
    }
}

/// The folder `name` is in (`""` or ending in `/`).
pub fn folder_of(name: &str) -> String {
    name.rsplit_once('/')
        .map(|(dir, _)| format!("{dir}/"))
        .unwrap_or_default()
}

/// The folders a DICOMDIR of `name`'s set may be in: its own and every one above.
pub fn set_folders(name: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut at = 0;
    while let Some(i) = name[at..].find('/') {
        out.push(name[..at + i + 1].to_string());
        at += i + 1;
    }
    out
}

/// Whether nothing has arrived in the folder (nor the upload itself) for `quiet_secs`.
pub fn quiet(activity: &FolderActivity, upload: &UploadRow, now: i64, quiet_secs: u64) -> bool {
    let last = activity
        .last_arrival
        .unwrap_or(0)
        .max(upload.accepted_at.unwrap_or(0));
    now.saturating_sub(last) >= i64::try_from(quiet_secs).unwrap_or(i64::MAX)
}

/// A loose DICOM file that belongs to no set.
pub fn not_in_set(name: &str, stow: bool) -> Check {
    let why = if stow {
        "DICOM reaches the review channel only as a DICOMDIR set (a CAB or ZIP archive, or \
         a folder with its DICOMDIR); a single STOW-RS instance is none"
    } else {
        "DICOM reaches the review channel only as a DICOMDIR set, and no DICOMDIR arrived \
         in this folder or above it before the folder went quiet"
    };
    Check::new("dicom.not_in_set", Severity::Error, why)
        .with_detail(serde_json::json!({ "name": name }))
}

/// For a check claimed again while it waits: whether it must go on waiting — files in
/// its folder still wait for their checks, or nothing it waits for has arrived and its
/// folder is not quiet yet.
pub async fn still_waiting(
    catalog: &Catalog,
    upload: &UploadRow,
    waits: Waits,
    now: i64,
    quiet_secs: u64,
) -> Result<bool, CatalogError> {
    let folder = folder_of(&upload.name);
    let activity = catalog
        .folder_activity(&upload.tenant, &folder, &upload.id)
        .await?;
    let quiet = quiet(&activity, upload, now, quiet_secs);
    Ok(match waits {
        // The gateway's own checks are never what makes a set fail: they always end.
        Waits::Checks => activity.pending > 0,
        // The claim hands back the row as it was deferred: its `updated_at` is when.
        // Only a file that arrived since can be one of those missing.
        Waits::Members => {
            activity.pending > 0
                || (!quiet && activity.last_arrival.unwrap_or(0) < upload.updated_at)
        }
        Waits::Dicomdir => {
            !quiet
                && !catalog
                    .dicomdir_in(&upload.tenant, &set_folders(&upload.name))
                    .await?
        }
    })
}

/// A DICOMDIR sent as a pre-check on its own: its folder's files are pre-checks too,
/// never indexed, so there is no set to validate it against.
pub fn precheck_folder_set() -> Check {
    Check::new(
        "precheck.folder_set",
        Severity::Error,
        "a DICOMDIR set cannot be pre-checked file by file; pre-check it as one CAB or ZIP \
         archive holding the DICOMDIR and its files",
    )
}

/// A DICOMDIR stored with STOW-RS: a media directory is no instance, and a STOW-RS
/// part belongs to no folder its files could arrive in, so it would wait for ever.
pub fn stow_directory() -> Check {
    Check::new(
        "dicomweb.directory",
        Severity::Error,
        "a DICOMDIR is a media directory, not an instance: STOW-RS stores instances; send \
         the set (the DICOMDIR with its files) over SFTP or tus, or as one ZIP or CAB archive",
    )
}

/// A loose DICOM file sent as a pre-check (`nhi-review`): the file itself is checked;
/// whether it belongs to a set cannot be, as pre-checks are never indexed.
pub fn precheck_loose_dicom() -> Check {
    Check::new(
        "precheck.set_not_checked",
        Severity::Warning,
        "the DICOM file itself passed; submitted, it must be part of a DICOMDIR set \
         (CAB, ZIP or a folder with its DICOMDIR), which a pre-check of one file cannot show",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_set_may_be_rooted_in_any_folder_above_it() {
        assert_eq!(set_folders("IM1"), [""]);
        assert_eq!(set_folders("case/DICOM/IM1"), ["", "case/", "case/DICOM/"]);
        assert_eq!(folder_of("case/DICOM/IM1"), "case/DICOM/");
        assert_eq!(folder_of("IM1"), "");
    }

    #[test]
    fn quiet_counts_from_the_last_arrival_or_the_upload_itself() {
        let upload = UploadRow {
            id: "u".into(),
            tenant: "t".into(),
            name: "a/b".into(),
            protocol: "sftp".into(),
            state: crate::backends::catalog::UploadState::Checking,
            declared_len: None,
            durable_offset: 0,
            plaintext_len: None,
            plaintext_sha256: None,
            accept_seq: None,
            accepted_at: Some(100),
            updated_at: 100,
            check_attempts: 1,
            waits_for: None,
            request_id: None,
        };
        let none = FolderActivity::default();
        assert!(!quiet(&none, &upload, 150, 60));
        assert!(quiet(&none, &upload, 160, 60));
        let busy = FolderActivity {
            pending: 0,
            last_arrival: Some(140),
        };
        assert!(!quiet(&busy, &upload, 160, 60));
        assert!(quiet(&busy, &upload, 200, 60));
    }
}
