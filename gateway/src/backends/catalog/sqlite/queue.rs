//! The check queue: accepted uploads claimed for checking one at a time, in their
//! acceptance order (a small-file lane may skip large ones), requeued after an error or
//! a restart. Claims and requeues are lazy commits (`write_lazy`): a power cut can only
//! lose a claim, which `requeue_checking` puts right at start-up.

use rusqlite::{OptionalExtension, params};

use super::SqliteCatalog;
use super::uploads::{record_state_detail, upload_columns, upload_row};
use crate::backends::catalog::{CatalogError, UploadRow, UploadState};
use crate::util::unix_now;

impl SqliteCatalog {
    /// After a restart: uploads caught mid-check go back to the queue, in their order.
    pub async fn requeue_checking(&self) -> Result<u64, CatalogError> {
        self.write(|c| {
            let n = c.execute(
                "UPDATE uploads SET state = 'accepted' WHERE state = 'checking'",
                [],
            )?;
            Ok(n as u64)
        })
        .await
    }

    /// A check that ended in an error (not a finding) goes back to the queue, to be
    /// claimed again no earlier than `after` (unix seconds); `false` if it was no
    /// longer being checked.
    pub async fn requeue_upload(&self, id: &str, after: i64) -> Result<bool, CatalogError> {
        let id = id.to_string();
        self.write_lazy(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE uploads SET state = 'accepted', check_after = ? \
                     WHERE id = ? AND state = 'checking'",
                )?
                .execute(params![after, id])?;
            Ok(n == 1)
        })
        .await
    }

    /// Takes the oldest accepted upload for checking (`accepted` → `checking`) in one
    /// write transaction, so concurrent workers never take the same upload.
    pub async fn claim_next_accepted(&self) -> Result<Option<UploadRow>, CatalogError> {
        self.claim_next_small(i64::MAX as u64).await
    }

    /// The oldest accepted upload of at most `max_bytes` (plaintext), taken for
    /// checking: the small-file lane, which large files ahead in the queue do not hold up.
    pub async fn claim_next_small(
        &self,
        max_bytes: u64,
    ) -> Result<Option<UploadRow>, CatalogError> {
        let max = i64::try_from(max_bytes).unwrap_or(i64::MAX);
        self.write_lazy(move |c| {
            let row = c
                .prepare_cached(concat!(
                    "SELECT ",
                    upload_columns!(),
                    " FROM uploads WHERE state = 'accepted' AND COALESCE(plaintext_len, 0) <= ? \
                     AND check_after <= ? ORDER BY accept_seq LIMIT 1"
                ))?
                .query_row(params![max, unix_now()], upload_row)
                .optional()?;
            let Some(row) = row else {
                return Ok(None);
            };
            // The attempt is counted with the claim, before the check starts: a check that
            // takes the process down still counts (see `requeue_checking`).
            c.prepare_cached(
                "UPDATE uploads SET state = 'checking', updated_at = ?, \
                 check_attempts = check_attempts + 1 WHERE id = ?",
            )?
            .execute(params![unix_now(), row.id])?;
            record_state_detail(c, &row.id, UploadState::Checking, &serde_json::Value::Null)?;
            Ok(Some(UploadRow {
                state: UploadState::Checking,
                check_attempts: row.check_attempts.saturating_add(1),
                ..row
            }))
        })
        .await
    }
}
