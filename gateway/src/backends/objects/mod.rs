//! Object storage: where verified files end up. A small trait, so the embedded local
//! directory and a scale-out S3 store are interchangeable, and one contract suite
//! ([`contract`]) that every implementation must pass.
//!
//! Objects are opaque bytes here. Content addressing (plaintext SHA-256) and encryption
//! at rest (sealed to the gateway's storage recipient) are the store stage's business.

pub mod blocking;
pub mod local;
pub mod s3;

use std::future::Future;
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;

use tokio::io::AsyncRead;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
pub type ObjectReader = Box<dyn AsyncRead + Send + Unpin>;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("object key `{0}` is not valid")]
    BadKey(String),
    #[error("object `{0}` not found")]
    NotFound(String),
    #[error("range {start}..{end} is outside the object's {len} bytes")]
    BadRange { start: u64, end: u64, len: u64 },
    #[error("object storage I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The remote store refused or did not answer (after the client's own retries).
    #[error("object storage unavailable: {0}")]
    Backend(String),
}

impl ObjectError {
    pub fn code(&self) -> &'static str {
        match self {
            ObjectError::BadKey(_) => "objects.bad_key",
            ObjectError::NotFound(_) => "objects.not_found",
            ObjectError::BadRange { .. } => "objects.bad_range",
            ObjectError::Io(_) => "objects.io",
            ObjectError::Backend(_) => "objects.unavailable",
        }
    }
}

pub type Result<T, E = ObjectError> = std::result::Result<T, E>;

/// A key: `/`-separated components of ASCII letters, digits, `.`, `_`, `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(key: &str) -> Result<ObjectKey> {
        let ok = !key.is_empty()
            && key.len() <= 512
            && key.split('/').all(|c| {
                !c.is_empty()
                    && !c.starts_with('.')
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            });
        if ok {
            Ok(ObjectKey(key.into()))
        } else {
            Err(ObjectError::BadKey(key.into()))
        }
    }

    /// The content address of a plaintext digest: `sha256/ab/cd/abcd…`.
    pub fn for_sha256(hex: &str) -> Result<ObjectKey> {
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ObjectError::BadKey(hex.into()));
        }
        let h = hex.to_ascii_lowercase();
        ObjectKey::new(&format!("sha256/{}/{}/{h}", &h[..2], &h[2..4]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    pub len: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    /// The key already held an object; the existing one is kept (same content, by
    /// construction of content addresses), the new bytes are dropped.
    AlreadyPresent,
}

pub trait ObjectStore: Send + Sync {
    /// Stores the complete local file `src` under `key`, durably, consuming `src`
    /// (it is moved or removed). Existing keys are kept.
    fn put_file<'a>(
        &'a self,
        key: &'a ObjectKey,
        src: &'a Path,
    ) -> BoxFuture<'a, Result<PutOutcome>>;
    /// Reads all of an object, or the byte `range` of it.
    fn get<'a>(
        &'a self,
        key: &'a ObjectKey,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, Result<ObjectReader>>;
    fn head<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<Option<ObjectMeta>>>;
    /// Removes an object; `false` if there was none.
    fn delete<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<bool>>;
    /// Cheap readiness probe.
    fn probe(&self) -> BoxFuture<'_, Result<()>>;
    /// Where the object is, when objects are plain local files: blocking readers
    /// (downloads) then read the file directly, a window per `pread`, instead of
    /// through ranged async gets.
    fn local_path(&self, _key: &ObjectKey) -> Option<std::path::PathBuf> {
        None
    }
}

#[cfg(test)]
pub mod contract;
