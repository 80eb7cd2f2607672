//! Naming the failure when a chunk does not authenticate in the position it holds.
//! Only runs on the failure path, so it may spend a few extra decryptions.

use super::error::SealedError;
use super::primitives::{PayloadKey, SEALED_CHUNK, TAG};

/// Appended-garbage detection looks this many bytes back from the end of the last chunk.
const TRAILING_PROBE: usize = 256;

/// Chunk `index` was not the last one but did not open as a middle chunk.
pub(crate) fn middle_chunk(
    key: &PayloadKey,
    index: u64,
    chunk: &[u8],
    bytes_after: u64,
) -> SealedError {
    if key.verifies(index, true, chunk) {
        // A genuine final chunk with more data behind it.
        SealedError::TrailingData { extra: bytes_after }
    } else {
        SealedError::ChunkAuthFailed { index }
    }
}

/// The last chunk (`chunk`, with tag) did not open as the final chunk.
pub(crate) fn last_chunk(key: &PayloadKey, index: u64, chunk: &[u8], verified: u64) -> SealedError {
    if chunk.len() < TAG {
        return SealedError::Truncated { verified };
    }
    if chunk.len() == SEALED_CHUNK && key.verifies(index, false, chunk) {
        // A full middle chunk, and the stream stops there: the final chunk is missing.
        return SealedError::Truncated { verified };
    }
    let max_cut = TRAILING_PROBE.min(chunk.len() - TAG);
    for cut in 1..=max_cut {
        if key.verifies(index, true, &chunk[..chunk.len() - cut]) {
            return SealedError::TrailingData { extra: cut as u64 };
        }
    }
    SealedError::ChunkAuthFailed { index }
}
