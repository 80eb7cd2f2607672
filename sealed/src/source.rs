//! A sealed file produced on demand from its plaintext, at any offset: what `gateway
//! push` sends. Sealing is made deterministic by deriving the file key, the payload
//! nonce and the ephemeral X25519 secrets from one random 32-byte seed, so that after
//! an interruption (even a restart of the client) the same seed re-creates exactly the
//! bytes the gateway already holds, and the upload continues at the gateway's offset
//! without sealing, storing or re-sending anything before it. Any chunk can be sealed
//! on its own, so continuing at offset *n* costs one chunk, not *n* bytes.
//!
//! The seed is as secret as the file key it yields, and must never be used for two
//! different plaintexts (the keystream would repeat): the caller draws a fresh seed for
//! every new file or changed file, and keeps it only as long as the upload runs.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::error::Result;
use super::header;
use super::keys::Recipient;
use super::primitives::{CHUNK, FileKey, PAYLOAD_NONCE, PayloadKey, SEALED_CHUNK, TAG, hkdf};

pub struct SealedSource {
    /// Header and payload nonce.
    head: Vec<u8>,
    key: PayloadKey,
    plain: File,
    plain_len: u64,
    chunks: u64,
}

impl SealedSource {
    /// The sealed form of the file at `path` for `recipients`, from `seed`.
    pub fn open(path: &Path, recipients: &[Recipient], seed: &[u8; 32]) -> Result<SealedSource> {
        let plain = File::open(path)?;
        let plain_len = plain.metadata()?.len();
        let file_key = FileKey(hkdf::<16>(b"gateway push", seed, b"file key"));
        let nonce: [u8; PAYLOAD_NONCE] = hkdf(b"gateway push", seed, b"payload nonce");
        let mut head = header::write_with(&file_key, recipients, &mut |i| {
            Ok(hkdf::<32>(&(i as u64).to_be_bytes(), seed, b"ephemeral"))
        })?;
        head.extend_from_slice(&nonce);
        Ok(SealedSource {
            head,
            key: PayloadKey::derive(&file_key, &nonce),
            plain,
            plain_len,
            // An empty file is one empty final chunk.
            chunks: plain_len.div_ceil(CHUNK as u64).max(1),
        })
    }

    /// Length of the sealed file.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.plain_len + self.chunks * TAG as u64
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Sealed bytes from `offset`, at most `max` of them (fewer only at the end).
    pub fn read_at(&mut self, offset: u64, max: usize) -> io::Result<Vec<u8>> {
        let end = self.len().min(offset.saturating_add(max as u64));
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        let head = self.head.len() as u64;
        let mut at = offset;
        if at < head {
            let stop = end.min(head);
            out.extend_from_slice(&self.head[at as usize..stop as usize]);
            at = stop;
        }
        let mut chunk = Vec::with_capacity(SEALED_CHUNK);
        while at < end {
            let index = (at - head) / SEALED_CHUNK as u64;
            let skip = ((at - head) % SEALED_CHUNK as u64) as usize;
            self.seal_chunk(index, &mut chunk)?;
            let take = chunk.len().saturating_sub(skip).min((end - at) as usize);
            if take == 0 {
                break;
            }
            out.extend_from_slice(&chunk[skip..skip + take]);
            at += take as u64;
        }
        Ok(out)
    }

    fn seal_chunk(&mut self, index: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        let start = index * CHUNK as u64;
        let len = (self.plain_len.saturating_sub(start)).min(CHUNK as u64) as usize;
        buf.clear();
        buf.resize(len, 0);
        self.plain.seek(SeekFrom::Start(start))?;
        self.plain.read_exact(buf)?;
        buf.resize(len + TAG, 0);
        self.key.seal(index, index + 1 == self.chunks, buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HeaderPolicy, Identity, StreamOpener};

    fn open_all(identity: &Identity, sealed: &[u8]) -> Vec<u8> {
        let mut o = StreamOpener::new(identity.clone(), HeaderPolicy::default(), Vec::new());
        o.push(sealed).unwrap();
        o.finish().unwrap().1
    }

    #[test]
    fn any_offset_gives_the_same_bytes_and_they_open() {
        let id = Identity::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        for len in [0usize, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let path = dir.path().join(format!("p{len}"));
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            std::fs::write(&path, &plain).unwrap();
            let seed = [7u8; 32];
            let mut s = SealedSource::open(&path, &[id.to_public()], &seed).unwrap();
            let whole = s.read_at(0, usize::MAX).unwrap();
            assert_eq!(whole.len() as u64, s.len());
            assert_eq!(open_all(&id, &whole), plain, "len {len}");
            // Pieces at odd offsets, from a fresh source (a restarted client), agree.
            let mut again = SealedSource::open(&path, &[id.to_public()], &seed).unwrap();
            let mut pieces = Vec::new();
            let mut at = 0u64;
            while at < again.len() {
                let piece = again.read_at(at, 40_000).unwrap();
                at += piece.len() as u64;
                pieces.extend(piece);
            }
            assert_eq!(pieces, whole, "len {len}");
            let other = SealedSource::open(&path, &[id.to_public()], &[8u8; 32]).unwrap();
            assert_eq!(other.len(), s.len());
        }
    }
}
