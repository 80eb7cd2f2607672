//! Why an upload call was refused. Codes are stable: hospitals see them.

use crate::backends::catalog::CatalogError;
use crate::sealed::SealedError;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("write at offset {got}, but the upload continues at offset {expected}")]
    OffsetMismatch { expected: u64, got: u64 },
    #[error("file name `{name}` is not allowed: {reason}")]
    NameNotAllowed { name: String, reason: &'static str },
    #[error("file is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("upload would exceed the declared length of {declared} bytes")]
    LengthExceeded { declared: u64 },
    #[error("upload ended at {got} bytes, but {declared} were declared")]
    LengthShort { declared: u64, got: u64 },
    #[error("tenant storage quota of {limit} bytes would be exceeded")]
    QuotaBytes { limit: u64 },
    #[error("tenant quota of {limit} files reached")]
    QuotaFiles { limit: u64 },
    #[error("{limit} uploads are already in progress for this tenant")]
    TooManyUploads { limit: u32 },
    #[error("unknown tenant `{0}`")]
    UnknownTenant(String),
    #[error("no upload `{0}` for this tenant")]
    NotFound(String),
    #[error("upload `{0}` is no longer receiving")]
    NotReceiving(String),
    #[error("upload `{0}` is in use by another connection; retry in a moment")]
    Busy(String),
    #[error("`{name}` was accepted: accepted files cannot be {refused} (rule 10)")]
    Accepted { name: String, refused: &'static str },
    #[error(transparent)]
    Sealed(#[from] SealedError),
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A partial upload's checkpoint in the shared object store (`checkpoint.rs`)
    /// could not be written or read back: the client resumes later.
    #[error(transparent)]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
}

impl IngestError {
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::OffsetMismatch { .. } => "ingest.offset_mismatch",
            IngestError::NameNotAllowed { .. } => "ingest.name_not_allowed",
            IngestError::TooLarge { .. } => "ingest.too_large",
            IngestError::LengthExceeded { .. } => "ingest.length_exceeded",
            IngestError::LengthShort { .. } => "ingest.length_short",
            IngestError::QuotaBytes { .. } => "ingest.quota_bytes",
            IngestError::QuotaFiles { .. } => "ingest.quota_files",
            IngestError::TooManyUploads { .. } => "ingest.too_many_uploads",
            IngestError::UnknownTenant(_) => "ingest.unknown_tenant",
            IngestError::NotFound(_) => "ingest.not_found",
            IngestError::NotReceiving(_) => "ingest.not_receiving",
            IngestError::Busy(_) => "ingest.busy",
            IngestError::Accepted { .. } => "ingest.accepted",
            _ if self.is_disk_full() => "ingest.disk_full",
            IngestError::Sealed(e) => e.code(),
            IngestError::Io(_) => "ingest.io",
            IngestError::Catalog(e) => e.code(),
            IngestError::Checkpoint(e) => e.code(),
        }
    }

    /// The gateway's disk is full: nothing was lost (the upload stays receiving at its
    /// durable offset); the client resumes once space is freed.
    pub fn is_disk_full(&self) -> bool {
        let io = match self {
            IngestError::Io(e) => Some(e),
            IngestError::Sealed(SealedError::Io(e)) => Some(e),
            _ => None,
        };
        if let IngestError::Catalog(c) = self {
            return c.is_disk_full();
        }
        io.is_some_and(|e| {
            e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(libc::ENOSPC)
        })
    }

    /// True when the client can fix this by resuming (the upload stays receiving).
    pub fn is_resumable(&self) -> bool {
        matches!(
            self,
            IngestError::OffsetMismatch { .. }
                | IngestError::LengthShort { .. }
                | IngestError::Sealed(SealedError::Truncated { .. })
        )
    }
}
