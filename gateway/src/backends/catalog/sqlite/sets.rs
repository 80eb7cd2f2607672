//! What DICOMDIR sets sent as folder trees need from the catalog: whether a folder is
//! still busy (uploads waiting for their checks, bytes still arriving), when anything
//! last arrived in it, whether a DICOMDIR is on its way around a file, and putting a
//! check back in the queue for later without counting it as an attempt.

use sqlx::Row;

use super::{SqliteCatalog, bind_tenant_prefix};
use crate::backends::catalog::{CatalogError, FolderActivity};
use crate::util::unix_now;

impl SqliteCatalog {
    /// The uploads under `prefix` other than `except`: how many wait for a check
    /// (accepted or being checked), and when the last of them arrived or received bytes
    /// (unix seconds). A check's own claims do not count as arrivals.
    pub async fn folder_activity(
        &self,
        tenant: &str,
        prefix: &str,
        except: &str,
    ) -> Result<FolderActivity, CatalogError> {
        let row = bind_tenant_prefix(
            sqlx::query(
                "SELECT COALESCE(SUM(state IN ('accepted', 'checking')), 0) AS pending, \
                 MAX(CASE WHEN state = 'receiving' THEN updated_at \
                          ELSE COALESCE(accepted_at, created_at) END) AS last \
                 FROM uploads WHERE tenant = ? AND substr(name, 1, ?) = ? AND name >= ? \
                 AND name < ? || char(1114111) AND id != ? \
                 AND state IN ('receiving', 'accepted', 'checking', 'indexed')",
            ),
            tenant,
            prefix,
        )
        .bind(except)
        .fetch_one(&self.pool)
        .await?;
        let pending: i64 = row.try_get("pending")?;
        let last: Option<i64> = row.try_get("last")?;
        Ok(FolderActivity {
            pending: u64::try_from(pending).unwrap_or(0),
            last_arrival: last,
        })
    }

    /// Whether a DICOMDIR is uploaded, arriving or waiting in one of `folders` (each
    /// `""` or ending in `/`): a DICOM file there may be a member of its set.
    pub async fn dicomdir_in(
        &self,
        tenant: &str,
        folders: &[String],
    ) -> Result<bool, CatalogError> {
        for folder in folders {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM uploads WHERE tenant = ? AND name IN (?, ?, ?) \
                 AND state IN ('receiving', 'accepted', 'checking', 'indexed') LIMIT 1",
            )
            .bind(tenant)
            .bind(format!("{folder}DICOMDIR"))
            .bind(format!("{folder}dicomdir"))
            .bind(format!("{folder}DicomDir"))
            .fetch_optional(&self.pool)
            .await?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A check that must wait for other files (a set still arriving) goes back to the
    /// queue until `after` (unix seconds); the claim's attempt is given back, since
    /// waiting is not a failure. `false` if it was no longer being checked.
    pub async fn defer_check(
        &self,
        id: &str,
        after: i64,
        waits_for: &str,
    ) -> Result<bool, CatalogError> {
        let (id, waits_for) = (id.to_string(), waits_for.to_string());
        self.write_lazy(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE uploads SET state = 'accepted', check_after = ?, updated_at = ?, \
                     waits_for = ?, check_attempts = MAX(check_attempts - 1, 0) \
                     WHERE id = ? AND state = 'checking'",
                )?
                .execute(rusqlite::params![after, unix_now(), waits_for, id])?;
            Ok(n == 1)
        })
        .await
    }
}
