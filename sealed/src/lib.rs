//! Sealed files: the age v1 format (C2SP), implemented on `ring`.
//!
//! Hospitals seal every file to the gateway's `age1…` recipient with any age tool;
//! the gateway opens it either while it streams in ([`StreamOpener`]) or, once it is
//! complete, in parallel across cores ([`parallel::open_file`]). The format is the
//! published one so that any vendor can produce it; the implementation is our own
//! because every existing one decrypts sequentially. See `docs/sealed-files.md`.

pub mod armor;
mod diagnose;
mod error;
pub mod header;
mod keys;
pub mod parallel;
mod primitives;
mod reader;
mod seal;
mod source;
mod stream;

pub use error::{Result, SealedError};
pub use header::HeaderPolicy;
pub use keys::{Identity, Recipient};
pub use parallel::ParallelOptions;
pub use primitives::{CHUNK, SEALED_CHUNK};
pub use reader::{SealedReader, UnlockedKey, unlock};
pub use seal::Sealer;
pub use source::SealedSource;
pub use stream::{OpenReport, StreamOpener};

/// 32 bytes from the system CSPRNG (for other keys the gateway generates).
pub fn random_seed() -> Result<[u8; 32]> {
    keys::random_bytes::<32>()
}

/// Seals `plaintext` in memory (tests and small payloads).
pub fn seal_to_vec(recipients: &[Recipient], plaintext: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut s = Sealer::new(recipients, Vec::with_capacity(plaintext.len() + 256))?;
    s.write_all(plaintext)?;
    Ok(s.finish()?)
}

/// Opens `sealed` in memory with the streaming opener (tests and small payloads).
pub fn open_to_vec(
    identity: &Identity,
    policy: &HeaderPolicy,
    sealed: &[u8],
) -> Result<(Vec<u8>, OpenReport)> {
    let mut o = StreamOpener::new(identity.clone(), policy.clone(), Vec::new());
    o.push(sealed)?;
    let (report, out) = o.finish()?;
    Ok((out, report))
}

#[cfg(test)]
mod tests;
