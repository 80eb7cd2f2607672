//! Streaming open: feed ciphertext as it arrives, get verified plaintext out.
//!
//! At most one sealed chunk (64 KiB + 16) is buffered: a full chunk is held back
//! until the next byte shows it is not the final one. Plaintext reaches the sink only
//! after its chunk authenticated, so nothing unverified is ever emitted.

use std::io::Write;

use ring::digest;

use super::diagnose;
use super::error::{Result, SealedError};
use super::header::{self, HeaderPolicy};
use super::keys::Identity;
use super::primitives::{PAYLOAD_NONCE, PayloadKey, SEALED_CHUNK, TAG};

/// What an opened file turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    pub plaintext_len: u64,
    pub sealed_len: u64,
    pub chunks: u64,
    /// SHA-256 of the plaintext, when it was computed.
    pub sha256: Option<[u8; 32]>,
}

enum Phase {
    Header,
    Nonce,
    Payload(Box<PayloadKey>),
    Done,
}

pub struct StreamOpener<W: Write> {
    identity: Identity,
    policy: HeaderPolicy,
    phase: Phase,
    /// Header bytes, then nonce bytes, then the pending (last seen) chunk.
    pending: Vec<u8>,
    /// Where chunks are decrypted, so `pending` survives a failed attempt.
    scratch: Vec<u8>,
    probed_len: Option<(u64, usize)>,
    file_key: Option<super::primitives::FileKey>,
    chunk_index: u64,
    plaintext_len: u64,
    sealed_len: u64,
    /// `None` when the caller hashes the plaintext itself (see [`Self::without_hash`]).
    sha: Option<digest::Context>,
    out: W,
}

impl<W: Write> StreamOpener<W> {
    pub fn new(identity: Identity, policy: HeaderPolicy, out: W) -> Self {
        StreamOpener {
            identity,
            policy,
            phase: Phase::Header,
            pending: Vec::with_capacity(SEALED_CHUNK),
            scratch: Vec::with_capacity(SEALED_CHUNK),
            probed_len: None,
            file_key: None,
            chunk_index: 0,
            plaintext_len: 0,
            sealed_len: 0,
            sha: Some(digest::Context::new(&digest::SHA256)),
            out,
        }
    }

    /// Plaintext bytes verified and handed to the sink so far.
    pub fn verified_plaintext(&self) -> u64 {
        self.plaintext_len
    }

    /// Ciphertext bytes consumed so far (verified or pending).
    pub fn consumed(&self) -> u64 {
        self.sealed_len
    }

    /// Leaves hashing to the caller, who reads the plaintext from the sink anyway and
    /// can hash it on another core (the ingest session overlaps the SHA-256 of one
    /// write with the decryption of the next).
    pub fn without_hash(mut self) -> Self {
        self.sha = None;
        self
    }

    /// The sink, e.g. to take the plaintext verified so far out of a `Vec<u8>`.
    pub fn sink_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// SHA-256 of the plaintext verified so far (of the whole file once `final_seen`);
    /// `None` without hashing.
    pub fn sha256_so_far(&self) -> Option<[u8; 32]> {
        let mut d = [0u8; 32];
        d.copy_from_slice(self.sha.clone()?.finish().as_ref());
        Some(d)
    }

    /// True once the final chunk has authenticated.
    pub fn final_seen(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// True once the header verified (so the file is for us and intact so far).
    pub fn header_verified(&self) -> bool {
        matches!(self.phase, Phase::Nonce | Phase::Payload(_) | Phase::Done)
    }

    /// Consumes the next bytes of the sealed file.
    pub fn push(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let used = match &self.phase {
                Phase::Header => self.push_header(data)?,
                Phase::Nonce => self.push_nonce(data),
                Phase::Payload(_) => self.push_payload(data)?,
                Phase::Done => {
                    return Err(SealedError::TrailingData {
                        extra: data.len() as u64,
                    });
                }
            };
            self.sealed_len += used as u64;
            data = &data[used..];
        }
        Ok(())
    }

    fn push_header(&mut self, data: &[u8]) -> Result<usize> {
        // Copy in small steps so that the header's end is found without over-reading.
        let take = data.len().min(
            self.policy
                .max_header_bytes
                .saturating_sub(self.pending.len())
                .max(1),
        );
        let before = self.pending.len();
        self.pending.extend_from_slice(&data[..take]);
        let Some(h) = header::parse(&self.pending, &self.policy)? else {
            return Ok(take);
        };
        let key = h.unwrap_key(&self.pending, &self.identity, &self.policy)?;
        self.file_key = Some(key);
        self.phase = Phase::Nonce;
        let used = h.len - before;
        self.pending.clear();
        Ok(used)
    }

    fn push_nonce(&mut self, data: &[u8]) -> usize {
        let take = data.len().min(PAYLOAD_NONCE - self.pending.len());
        self.pending.extend_from_slice(&data[..take]);
        if self.pending.len() == PAYLOAD_NONCE {
            let mut nonce = [0u8; PAYLOAD_NONCE];
            nonce.copy_from_slice(&self.pending);
            if let Some(fk) = self.file_key.take() {
                self.phase = Phase::Payload(Box::new(PayloadKey::derive(&fk, &nonce)));
            }
            self.pending.clear();
        }
        take
    }

    fn push_payload(&mut self, data: &[u8]) -> Result<usize> {
        if self.pending.len() == SEALED_CHUNK {
            // More bytes follow, so the held chunk is a middle chunk.
            self.open_pending(false, data.len() as u64)?;
        }
        if self.pending.is_empty() && data.len() > SEALED_CHUNK {
            // A whole chunk with bytes after it is a middle chunk: open it straight from
            // `data` instead of copying it into `pending` first.
            self.open_chunk(
                &data[..SEALED_CHUNK],
                false,
                (data.len() - SEALED_CHUNK) as u64,
            )?;
            return Ok(SEALED_CHUNK);
        }
        let take = data.len().min(SEALED_CHUNK - self.pending.len());
        self.pending.extend_from_slice(&data[..take]);
        Ok(take)
    }

    fn open_pending(&mut self, last: bool, bytes_after: u64) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let result = self.open_chunk(&pending, last, bytes_after);
        self.pending = pending;
        if result.is_ok() {
            self.pending.clear();
        }
        result
    }

    fn open_chunk(&mut self, chunk: &[u8], last: bool, bytes_after: u64) -> Result<()> {
        let Phase::Payload(key) = &self.phase else {
            return Err(SealedError::Truncated { verified: 0 });
        };
        let index = self.chunk_index;
        if last && chunk.len() < TAG {
            return Err(SealedError::Truncated {
                verified: self.plaintext_len,
            });
        }
        // Decrypt a copy: on failure the ciphertext is still needed to name the cause.
        self.scratch.clear();
        self.scratch.extend_from_slice(chunk);
        if !key.open(index, last, &mut self.scratch) {
            return Err(if last {
                diagnose::last_chunk(key, index, chunk, self.plaintext_len)
            } else {
                diagnose::middle_chunk(key, index, chunk, bytes_after)
            });
        }
        let plain = &self.scratch[..self.scratch.len() - TAG];
        if last && plain.is_empty() && index > 0 {
            return Err(SealedError::EmptyFinalChunk { index });
        }
        if let Some(sha) = &mut self.sha {
            sha.update(plain);
        }
        self.out.write_all(plain)?;
        self.plaintext_len += plain.len() as u64;
        self.chunk_index += 1;
        if last {
            self.phase = Phase::Done;
        }
        Ok(())
    }

    /// Authenticates the pending bytes as the final chunk, if they are one, without
    /// waiting for the end of input. Returns whether the final chunk has been seen.
    /// Cheap to call repeatedly: the same pending length is never probed twice.
    pub fn probe_final(&mut self) -> bool {
        if let Phase::Payload(key) = &self.phase
            && self.pending.len() >= TAG
            && self.probed_len != Some((self.chunk_index, self.pending.len()))
        {
            self.probed_len = Some((self.chunk_index, self.pending.len()));
            if key.verifies(self.chunk_index, true, &self.pending) {
                return self.open_pending(true, 0).is_ok();
            }
        }
        self.final_seen()
    }

    /// Declares the end of input: the pending chunk must be the final one.
    pub fn finish(mut self) -> Result<(OpenReport, W)> {
        match &self.phase {
            Phase::Done => {}
            Phase::Payload(_) => self.open_pending(true, 0)?,
            Phase::Header | Phase::Nonce => {
                return Err(SealedError::Truncated { verified: 0 });
            }
        }
        self.out.flush()?;
        let sha = self.sha.map(|c| {
            let mut d = [0u8; 32];
            d.copy_from_slice(c.finish().as_ref());
            d
        });
        Ok((
            OpenReport {
                plaintext_len: self.plaintext_len,
                sealed_len: self.sealed_len,
                chunks: self.chunk_index,
                sha256: sha,
            },
            self.out,
        ))
    }
}
