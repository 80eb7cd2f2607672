//! Folder sets (DICOMDIR sets sent as folder trees): a set's checks wait until what
//! it references has arrived and been checked (`set_wait.rs`), then the DICOMDIR is
//! validated against the stored files of its folder (`folder_set.rs`).

use super::*;

/// Where a folder set's validation stands.
pub(super) enum SetStep {
    Done(serde_json::Value, Vec<Check>),
    Failed(Check),
    /// Files it references may still come, or are still being checked.
    Wait(set_wait::Waits),
}

impl Pipeline {
    /// Waits until the uploads accepted before `upload` that a comparison depends on
    /// (same content, or the same batch folder) are checked. Workers check several
    /// uploads at once; without this wait a duplicate or a manifest could be compared
    /// with a state that arrival order says it must see. Claims follow arrival order,
    /// so the earliest pending upload never waits and the wait always ends; the
    /// deadline only bounds a stuck check elsewhere.
    pub(super) async fn wait_for_earlier(
        &self,
        upload: &UploadRow,
        prefix: Option<&str>,
        sha256: Option<&str>,
    ) -> Result<(), PipelineError> {
        let Some(seq) = upload.accept_seq else {
            return Ok(());
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        while self
            .catalog
            .earlier_pending(&upload.tenant, seq, prefix, sha256)
            .await?
            > 0
        {
            if tokio::time::Instant::now() > deadline {
                tracing::warn!(upload = %upload.id, "earlier checks still pending after 10 minutes; going on");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Whether a loose DICOM file of an `nhi-review` hospital belongs to a set: `Some(true)`
    /// when a DICOMDIR is arriving or uploaded around it, `Some(false)` when none can
    /// come (STOW-RS) or its folder went quiet without one, `None` to wait (see
    /// [`set_wait`]).
    pub(super) async fn member_of_a_set(
        &self,
        upload: &UploadRow,
    ) -> Result<Option<bool>, PipelineError> {
        if upload.name.starts_with("dicomweb/") {
            return Ok(Some(false));
        }
        let catalog = &self.catalog;
        let folders = set_wait::set_folders(&upload.name);
        if catalog.dicomdir_in(&upload.tenant, &folders).await? {
            return Ok(Some(true));
        }
        let activity = catalog
            .folder_activity(
                &upload.tenant,
                &set_wait::folder_of(&upload.name),
                &upload.id,
            )
            .await?;
        let now = crate::util::unix_now();
        Ok(set_wait::quiet(&activity, upload, now, self.set_quiet_secs).then_some(false))
    }

    /// Puts a check that waits for the rest of its set back in the queue.
    pub(super) async fn defer(
        &self,
        upload: &UploadRow,
        waits: set_wait::Waits,
    ) -> Result<Outcome, PipelineError> {
        let after = crate::util::unix_now().saturating_add(set_wait::RECHECK_SECS);
        self.catalog
            .defer_check(&upload.id, after, waits.as_str())
            .await?;
        Ok(Outcome::Deferred {
            upload_id: upload.id.clone(),
        })
    }

    /// Validates the folder-tree set of a DICOMDIR uploaded on its own (see
    /// [`folder_set`]) once its folder holds the files it references, checked — or waits
    /// for them while they may still come ([`set_wait`]).
    pub(super) async fn folder_set(
        &self,
        upload: &UploadRow,
        sealed: &std::path::Path,
    ) -> Result<SetStep, PipelineError> {
        let prefix = folder_set::prefix(&upload.name);
        let activity = self
            .catalog
            .folder_activity(&upload.tenant, &prefix, &upload.id)
            .await?;
        let quiet = set_wait::quiet(
            &activity,
            upload,
            crate::util::unix_now(),
            self.set_quiet_secs,
        );
        // Files whose own checks are still to run are never counted missing.
        if activity.pending > 0 {
            return Ok(SetStep::Wait(set_wait::Waits::Checks));
        }
        let current = self
            .catalog
            .current_files_under(&upload.tenant, &prefix)
            .await?;
        let (identity, policy) = (self.identity.clone(), self.header_policy.clone());
        let scratch = self.work_dir.join(format!("{}.set", upload.id));
        let members = folder_set::members(
            current,
            &prefix,
            &self.objects,
            &identity,
            &policy,
            &scratch,
        )
        .await;
        let directory = folder_set::unlocked(sealed.to_owned(), identity, policy).await;
        let (members, directory) = match (members, directory) {
            (Ok(m), Ok(d)) => (m, d),
            (Err(e), _) | (_, Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                let why = format!("a file of the set no longer opens: {e}");
                return Ok(SetStep::Failed(job::integrity_check(why)));
            }
            (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        };
        let job = isolation::Job::FolderSet {
            directory,
            members,
            limits: inspect::dicom::HeaderLimits::of(&self.inspect),
        };
        let reply = self.isolated(upload, job).await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        Ok(match reply? {
            Ok(isolation::Reply::FolderSet { meta, checks }) => {
                let missing = checks
                    .iter()
                    .any(|c| c.code == "dicomdir.missing_file" && c.severity == Severity::Error);
                if missing && !quiet {
                    SetStep::Wait(set_wait::Waits::Members)
                } else {
                    SetStep::Done(meta, checks)
                }
            }
            Ok(other) => return Err(unexpected(&other)),
            Err(check) => SetStep::Failed(check),
        })
    }
}
