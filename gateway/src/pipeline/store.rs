//! Store stage: the plaintext is sealed again, to the gateway's storage recipient, and
//! put in the object store under its content address (plaintext SHA-256), so objects
//! stay encrypted at rest and identical content is stored once.

use std::io::Write;
use std::path::Path;

use crate::backends::objects::{ObjectError, ObjectKey, ObjectStore, PutOutcome};
use crate::sealed::{Recipient, SealedError, Sealer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sealed(#[from] SealedError),
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error("store I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn seal_file(plain: &Path, out: &Path, recipient: &Recipient) -> Result<(), StoreError> {
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let mut sealer = Sealer::new(std::slice::from_ref(recipient), file)?;
    std::io::copy(&mut std::fs::File::open(plain)?, &mut sealer)?;
    sealer.finish()?.flush()?;
    Ok(())
}

/// Seals `plain` to `recipient` and stores it; returns the key and whether it was new.
pub async fn store(
    objects: &dyn ObjectStore,
    plain: &Path,
    sha256: &str,
    recipient: &Recipient,
) -> Result<(ObjectKey, PutOutcome), StoreError> {
    let key = ObjectKey::for_sha256(sha256)?;
    if objects.head(&key).await?.is_some() {
        return Ok((key, PutOutcome::AlreadyPresent));
    }
    let sealed = plain.with_extension("sealed");
    let (p, s, r) = (plain.to_owned(), sealed.clone(), recipient.clone());
    tokio::task::spawn_blocking(move || seal_file(&p, &s, &r))
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
    let outcome = objects.put_file(&key, &sealed).await?;
    Ok((key, outcome))
}
