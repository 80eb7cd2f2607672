//! The check queue on PostgreSQL, claimed by the pipeline workers of every node at
//! once: `FOR UPDATE SKIP LOCKED` gives each claim the oldest upload no other claim
//! holds, so two nodes never check the same upload and none waits for another. Also
//! what DICOMDIR sets sent as folder trees ask of the queue (`sqlite/sets.rs` says why).

use super::PgCatalog;
use crate::backends::catalog::rows::{self, upload_columns};
use crate::backends::catalog::{CatalogError, FolderActivity, UploadRow};
use crate::util::unix_now;

impl PgCatalog {
    /// After a restart: uploads caught mid-check go back to the queue. In a cluster a
    /// check is held by its node's lease (`leases.rs`), which that node renews while it
    /// runs: this node's own checks go back, and those whose lease lapsed (their node
    /// died or was cut off); another live node's checks in flight are left alone. (A
    /// node killed and started again is a new holder: its old checks go back when
    /// their lease lapses, here or at the next claim of any node.)
    pub async fn requeue_checking(&self) -> Result<u64, CatalogError> {
        let done = sqlx::query(
            "UPDATE uploads SET state = 'accepted' WHERE state = 'checking' \
             AND (lease_holder IS NULL OR lease_holder = $1 OR lease_until < $2)",
        )
        .bind(self.node())
        .bind(unix_now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn requeue_upload(&self, id: &str, after: i64) -> Result<bool, CatalogError> {
        self.let_go(id);
        let done = sqlx::query(
            "UPDATE uploads SET state = 'accepted', check_after = $1, lease_holder = NULL \
             WHERE id = $2 AND state = 'checking'",
        )
        .bind(after)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn claim_next_accepted(&self) -> Result<Option<UploadRow>, CatalogError> {
        self.claim_next_small(i64::MAX as u64).await
    }

    /// Takes the oldest accepted upload of at most `max_bytes` that no other claim
    /// holds, counting the attempt and recording the claiming node (which renews its
    /// lease while the check runs: `leases.rs`), in one statement. A check whose node
    /// died (its lease lapsed) is taken over the same way, without waiting for a restart.
    pub async fn claim_next_small(
        &self,
        max_bytes: u64,
    ) -> Result<Option<UploadRow>, CatalogError> {
        let now = unix_now();
        let row = sqlx::query(concat!(
            "WITH c AS (SELECT id FROM uploads WHERE ((state = 'accepted' AND check_after <= $2) \
             OR (state = 'checking' AND lease_until < $2)) AND COALESCE(plaintext_len, 0) <= $1 \
             ORDER BY accept_seq LIMIT 1 FOR UPDATE SKIP LOCKED), \
             u AS (UPDATE uploads SET state = 'checking', updated_at = $2, \
             check_attempts = check_attempts + 1, lease_holder = $3, lease_until = $2 + $4 \
             FROM c WHERE uploads.id = c.id RETURNING uploads.*), \
             s AS (INSERT INTO upload_states (upload_id, state, at, detail) \
             SELECT id, 'checking', $2, 'null' FROM u) \
             SELECT ",
            upload_columns!(),
            " FROM u"
        ))
        .bind(i64::try_from(max_bytes).unwrap_or(i64::MAX))
        .bind(now)
        .bind(self.node())
        .bind(super::leases::LEASE_SECS)
        .fetch_optional(&self.pool)
        .await?;
        let claimed = row.as_ref().map(rows::upload).transpose()?;
        if let Some(r) = &claimed {
            self.keep(&r.id);
        }
        Ok(claimed)
    }

    pub async fn defer_check(
        &self,
        id: &str,
        after: i64,
        waits_for: &str,
    ) -> Result<bool, CatalogError> {
        self.let_go(id);
        let done = sqlx::query(
            "UPDATE uploads SET state = 'accepted', check_after = $1, updated_at = $2, \
             waits_for = $3, check_attempts = GREATEST(check_attempts - 1, 0), lease_holder = NULL \
             WHERE id = $4 AND state = 'checking'",
        )
        .bind(after)
        .bind(unix_now())
        .bind(waits_for)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn folder_activity(
        &self,
        tenant: &str,
        prefix: &str,
        except: &str,
    ) -> Result<FolderActivity, CatalogError> {
        let (pending, last): (i64, Option<i64>) = sqlx::query_as(concat!(
            "SELECT COUNT(*) FILTER (WHERE state IN ('accepted', 'checking')), \
             MAX(CASE WHEN state = 'receiving' THEN updated_at \
                      ELSE COALESCE(accepted_at, created_at) END) \
             FROM uploads WHERE tenant = $1 AND ",
            super::under_prefix!("name", "$2"),
            " AND id <> $3 AND state IN ('receiving', 'accepted', 'checking', 'indexed')"
        ))
        .bind(tenant)
        .bind(prefix)
        .bind(except)
        .fetch_one(&self.pool)
        .await?;
        Ok(FolderActivity {
            pending: u64::try_from(pending).unwrap_or(0),
            last_arrival: last,
        })
    }

    pub async fn dicomdir_in(
        &self,
        tenant: &str,
        folders: &[String],
    ) -> Result<bool, CatalogError> {
        let names: Vec<String> = folders
            .iter()
            .flat_map(|f| ["DICOMDIR", "dicomdir", "DicomDir"].map(|d| format!("{f}{d}")))
            .collect();
        if names.is_empty() {
            return Ok(false);
        }
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM uploads WHERE tenant = $1 AND name = ANY($2) \
             AND state IN ('receiving', 'accepted', 'checking', 'indexed') LIMIT 1",
        )
        .bind(tenant)
        .bind(names)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    pub async fn earlier_pending(
        &self,
        tenant: &str,
        seq: i64,
        prefix: Option<&str>,
        sha256: Option<&str>,
    ) -> Result<i64, CatalogError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM uploads WHERE tenant = $1 AND accept_seq < $2 \
             AND state IN ('accepted', 'checking') AND starts_with(name, $3) \
             AND ($4 = '' OR plaintext_sha256 = $4)",
        )
        .bind(tenant)
        .bind(seq)
        .bind(prefix.unwrap_or(""))
        .bind(sha256.unwrap_or(""))
        .fetch_one(&self.pool)
        .await?)
    }
}
