//! Store stage: the sealed file as received — already sealed, by the hospital, to the
//! gateway's recipient — is moved from the spool into the object store under the
//! content address of its plaintext (SHA-256). So objects stay encrypted at rest
//! without a second encryption pass, identical content is stored once, and a put is a
//! rename on the same file system rather than a copy.
//!
//! Measured on the 1 GiB benchmark (bench/RESULTS.md): re-sealing the plaintext to a
//! separate storage key instead cost a full encryption pass plus a second 1 GiB write
//! and fsync. A distinct storage key (for key rotation) would bring that cost back.

use std::path::Path;

use crate::backends::objects::{ObjectError, ObjectKey, ObjectStore, PutOutcome};

/// Moves the sealed `spool` file into `objects` under the address of `sha256`.
pub async fn store(
    objects: &dyn ObjectStore,
    spool: &Path,
    sha256: &str,
) -> Result<(ObjectKey, PutOutcome), ObjectError> {
    let key = ObjectKey::for_sha256(sha256)?;
    let outcome = objects.put_file(&key, spool).await?;
    Ok((key, outcome))
}
