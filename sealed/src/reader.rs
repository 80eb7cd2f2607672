//! Random access to the plaintext of a complete sealed file, decrypting only the
//! chunks that are read.
//!
//! The ingest session verifies every chunk (and hashes the plaintext) while an upload
//! arrives, so the pipeline need not decrypt an accepted file a second time just to
//! look at it: a type check reads one chunk, a DICOM header a few, and only inspectors
//! that need the whole document (PDF) read it all. Every chunk read is authenticated
//! again on the way, so a file altered on disk after acceptance still fails loudly.

use std::io::{self, Read, Seek, SeekFrom};

use super::error::{Result, SealedError};
use super::header::{self, HeaderPolicy};
use super::keys::Identity;
use super::primitives::{CHUNK, PAYLOAD_NONCE, PayloadKey, SEALED_CHUNK, TAG};

/// What opening one sealed file's payload takes, and nothing more: the payload key and
/// where the payload starts. The gateway unlocks the header with its identity and hands
/// this to an isolated inspector, so a compromised parser learns one file's key at most.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct UnlockedKey {
    #[serde(with = "hex_key")]
    pub payload_key: [u8; 32],
    pub payload_start: u64,
}

impl std::fmt::Debug for UnlockedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnlockedKey")
            .field("payload_start", &self.payload_start)
            .finish_non_exhaustive()
    }
}

mod hex_key {
    pub fn serialize<S: serde::Serializer>(k: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(k))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}

/// Reads and checks the header of the sealed file in `inner` and unwraps its file key
/// with `identity`.
pub fn unlock<R: Read + Seek>(
    inner: &mut R,
    identity: &Identity,
    policy: &HeaderPolicy,
) -> Result<UnlockedKey> {
    let sealed_len = inner.seek(SeekFrom::End(0))?;
    inner.seek(SeekFrom::Start(0))?;
    let want = (policy.max_header_bytes + PAYLOAD_NONCE) as u64;
    let mut head = Vec::new();
    inner.take(want.min(sealed_len)).read_to_end(&mut head)?;
    let h = header::parse(&head, policy)?.ok_or(SealedError::Truncated { verified: 0 })?;
    let file_key = h.unwrap_key(&head, identity, policy)?;
    let nonce: &[u8; PAYLOAD_NONCE] = head
        .get(h.len..h.len + PAYLOAD_NONCE)
        .and_then(|n| n.try_into().ok())
        .ok_or(SealedError::Truncated { verified: 0 })?;
    Ok(UnlockedKey {
        payload_key: PayloadKey::derive_bytes(&file_key, nonce),
        payload_start: (h.len + PAYLOAD_NONCE) as u64,
    })
}

pub struct SealedReader<R> {
    inner: R,
    key: PayloadKey,
    /// Where the first payload chunk starts in `inner`.
    payload_start: u64,
    chunks: u64,
    plaintext_len: u64,
    pos: u64,
    /// The decrypted chunk `current` (plaintext only).
    buf: Vec<u8>,
    current: Option<u64>,
}

impl<R: Read + Seek> SealedReader<R> {
    /// Reads and checks the header of the complete sealed file in `inner`.
    pub fn new(mut inner: R, identity: &Identity, policy: &HeaderPolicy) -> Result<Self> {
        let key = unlock(&mut inner, identity, policy)?;
        Self::with_key(inner, &key)
    }

    /// Opens the payload of a sealed file whose header was unlocked elsewhere (see
    /// [`unlock`]): what an inspector worker does, holding one file's key only.
    pub fn with_key(mut inner: R, key: &UnlockedKey) -> Result<Self> {
        let sealed_len = inner.seek(SeekFrom::End(0))?;
        let payload_start = key.payload_start;
        let body = sealed_len
            .checked_sub(payload_start)
            .ok_or(SealedError::Truncated { verified: 0 })?;
        if body < TAG as u64 {
            return Err(SealedError::Truncated { verified: 0 });
        }
        let chunks = body.div_ceil(SEALED_CHUNK as u64);
        let last = body - (chunks - 1) * SEALED_CHUNK as u64;
        if last < TAG as u64 {
            return Err(SealedError::Truncated {
                verified: (chunks - 1) * CHUNK as u64,
            });
        }
        Ok(SealedReader {
            inner,
            key: PayloadKey::from_bytes(&key.payload_key),
            payload_start,
            chunks,
            plaintext_len: (chunks - 1) * CHUNK as u64 + last - TAG as u64,
            pos: 0,
            buf: Vec::with_capacity(SEALED_CHUNK),
            current: None,
        })
    }

    /// Length of the plaintext, known from the sealed length alone.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    fn load(&mut self, index: u64) -> io::Result<()> {
        if self.current == Some(index) {
            return Ok(());
        }
        self.current = None;
        let start = self.payload_start + index * SEALED_CHUNK as u64;
        self.inner.seek(SeekFrom::Start(start))?;
        self.buf.resize(SEALED_CHUNK, 0);
        let last = index + 1 == self.chunks;
        let mut filled = 0;
        while filled < SEALED_CHUNK {
            let n = self.inner.read(&mut self.buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        self.buf.truncate(filled);
        if filled < TAG
            || (!last && filled < SEALED_CHUNK)
            || !self.key.open(index, last, &mut self.buf)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                SealedError::ChunkAuthFailed { index },
            ));
        }
        self.buf.truncate(filled - TAG);
        self.current = Some(index);
        Ok(())
    }
}

impl<R: Read + Seek> SealedReader<R> {
    /// Appends the plaintext of chunks `first .. first + n` to `out`, reading their
    /// ciphertext in one go and decrypting the chunks in parallel (rayon): a streamed
    /// download then costs one read and one decrypt pass spread over the cores, not a
    /// read and a copy per 64 KiB. The chunks are decrypted in `out` itself and the
    /// tags squeezed out in place, so the plaintext is never copied to another buffer.
    /// Every chunk is authenticated, as in `read`.
    pub fn read_chunks(&mut self, first: u64, n: u64, out: &mut Vec<u8>) -> io::Result<()> {
        use rayon::prelude::*;
        let n = n.min(self.chunks.saturating_sub(first));
        if n == 0 {
            return Ok(());
        }
        let start = self.payload_start + first * SEALED_CHUNK as u64;
        self.inner.seek(SeekFrom::Start(start))?;
        let base = out.len();
        let want = n as usize * SEALED_CHUNK;
        out.reserve(want);
        (&mut self.inner).take(want as u64).read_to_end(out)?;
        let filled = out.len() - base;
        let chunks = self.chunks;
        let key = &self.key;
        let bad = |index| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                SealedError::ChunkAuthFailed { index },
            )
        };
        // Each chunk is complete except possibly the file's last one.
        if filled < (n as usize - 1) * SEALED_CHUNK + TAG {
            out.truncate(base);
            return Err(bad(first + n - 1));
        }
        let opened = out[base..]
            .par_chunks_mut(SEALED_CHUNK)
            .enumerate()
            .try_for_each(|(i, chunk)| {
                let index = first + i as u64;
                let last = index + 1 == chunks;
                let complete = last || chunk.len() == SEALED_CHUNK;
                (complete && chunk.len() >= TAG && key.open(index, last, chunk))
                    .then_some(())
                    .ok_or(index)
            });
        if let Err(index) = opened {
            out.truncate(base);
            return Err(bad(index));
        }
        // Squeeze out the tags: chunk i's plaintext moves to base + i * CHUNK.
        let mut at = base;
        for i in 0..n as usize {
            let from = base + i * SEALED_CHUNK;
            let len = (filled - i * SEALED_CHUNK).min(SEALED_CHUNK) - TAG;
            out.copy_within(from..from + len, at);
            at += len;
        }
        out.truncate(at);
        Ok(())
    }
}

impl<R: Read + Seek> Read for SealedReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.plaintext_len || out.is_empty() {
            return Ok(0);
        }
        let index = self.pos / CHUNK as u64;
        self.load(index)?;
        let at = (self.pos - index * CHUNK as u64) as usize;
        let n = out.len().min(self.buf.len() - at);
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for SealedReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.plaintext_len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )
        })?;
        self.pos = target;
        Ok(target)
    }
}
