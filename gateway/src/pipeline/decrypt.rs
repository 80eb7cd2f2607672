//! Decrypt stage: gives the later stages the plaintext of an accepted upload without
//! writing it anywhere.
//!
//! The session already authenticated every chunk and hashed the plaintext while the
//! bytes arrived (that is what acceptance means), so decrypting the whole file again
//! here would only repeat work: on the 1 GiB benchmark that second pass was half of the
//! time to *indexed*. Instead the stage opens a [`SealedReader`] over the sealed file,
//! which decrypts (and re-authenticates) just the chunks an inspector reads.

use std::fs::File;
use std::path::Path;

use crate::sealed::{HeaderPolicy, Identity, SealedError, SealedReader};

/// The plaintext of the sealed file at `sealed`, decrypted on demand.
pub fn open(
    sealed: &Path,
    identity: &Identity,
    policy: &HeaderPolicy,
) -> Result<SealedReader<File>, SealedError> {
    SealedReader::new(File::open(sealed)?, identity, policy)
}
