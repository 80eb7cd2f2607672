//! Index stage: one catalog transaction records the file, the findings (including
//! duplicate detection, rule 4) and the `file.indexed` event for hand-off.

use crate::backends::catalog::{CatalogError, FileIndex, NewFile, UploadRow};
use crate::checks::{Check, Severity};

/// A finding when the tenant already has a current file with the same content.
pub async fn duplicate_check(
    catalog: &dyn FileIndex,
    tenant: &str,
    sha256: &str,
) -> Result<Option<Check>, CatalogError> {
    let Some(same) = catalog.same_content(tenant, sha256).await? else {
        return Ok(None);
    };
    let when = crate::util::rfc3339(same.indexed_at);
    Ok(Some(
        Check::new(
            "duplicate.same_content",
            Severity::Warning,
            format!(
                "same content as file {} (`{}`) accepted at {when}",
                same.file_id, same.name
            ),
        )
        .with_detail(
            serde_json::json!({ "file_id": same.file_id, "name": same.name, "indexed_at": when }),
        ),
    ))
}

pub async fn index(
    catalog: &dyn FileIndex,
    upload: &UploadRow,
    file: &NewFile,
    checks: &[Check],
) -> Result<(), CatalogError> {
    let event = file.indexed_event(upload, checks);
    catalog.index_upload(upload, file, checks, &event).await
}
