//! How a check ends when it does not end indexed: rejected with its findings (the
//! spool file kept for quarantine), retried later with a backoff after an error, or
//! given up (`check.interrupted`) after `max_check_attempts`.

use super::*;

impl Pipeline {
    /// A check that ended in an error (I/O, catalog busy, no worker) goes back to the
    /// queue with an exponential backoff, or is given up at the last attempt.
    pub(super) async fn retry_later(
        &self,
        upload: &UploadRow,
        error: PipelineError,
    ) -> Result<Outcome, PipelineError> {
        // The catalog being busy or locked, or the object store not answering, is no
        // fault of the file: the check waits and the attempt is given back, so an
        // overload or an outage never turns a valid file into a poison upload
        // (`check.interrupted`).
        if error.is_unavailable() {
            let after = crate::util::unix_now().saturating_add(2);
            crate::telemetry::events::CheckRetried {
                upload: &upload.id,
                attempts: upload.check_attempts,
                backoff_secs: Some(2),
                error: &error.to_string(),
                code: error.code(),
            }
            .emit();
            self.catalog.defer_check(&upload.id, after, "").await?;
            return Err(error);
        }
        if upload.check_attempts >= self.max_attempts {
            return self.give_up(upload, &error.to_string()).await;
        }
        let backoff = 1u64 << upload.check_attempts.clamp(1, 8);
        let backoff = backoff.min(300);
        crate::telemetry::events::CheckRetried {
            upload: &upload.id,
            attempts: upload.check_attempts,
            backoff_secs: Some(backoff),
            error: &error.to_string(),
            code: error.code(),
        }
        .emit();
        let after = crate::util::unix_now().saturating_add(backoff as i64);
        self.catalog.requeue_upload(&upload.id, after).await?;
        Err(error)
    }

    /// The upload's checks could not finish `max_check_attempts` times: it fails with
    /// `check.interrupted` instead of coming back for ever.
    pub(super) async fn give_up(
        &self,
        upload: &UploadRow,
        why: &str,
    ) -> Result<Outcome, PipelineError> {
        crate::telemetry::events::CheckRetried {
            upload: &upload.id,
            attempts: upload.check_attempts,
            backoff_secs: None,
            error: why,
            code: "check.interrupted",
        }
        .emit();
        let check = Check::new(
            "check.interrupted",
            Severity::Error,
            format!(
                "the checks of this file could not finish after {} attempts; send it again",
                upload.check_attempts
            ),
        )
        .with_detail(serde_json::json!({ "attempts": upload.check_attempts }));
        self.reject(upload, vec![check]).await
    }

    pub(super) async fn reject(
        &self,
        upload: &UploadRow,
        checks: Vec<Check>,
    ) -> Result<Outcome, PipelineError> {
        let codes = checks
            .iter()
            .filter(|c| c.severity == Severity::Error)
            .map(|c| c.code.clone())
            .collect();
        // The spool file stays: rejected uploads are kept for inspection (quarantine).
        if upload.is_precheck() {
            self.catalog
                .finish_precheck(&upload.id, false, &checks)
                .await?;
        } else {
            self.catalog
                .reject_upload(
                    &upload.id,
                    &checks,
                    &Event::upload_rejected(&upload.tenant, &upload.id, &upload.name, &checks),
                )
                .await?;
        }
        Ok(Outcome::Rejected {
            upload_id: upload.id.clone(),
            codes,
        })
    }
}
