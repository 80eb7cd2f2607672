//! Parallel open of a complete sealed file: chunk `i` sits at a computable offset,
//! so batches of chunks are decrypted on a rayon pool, each written at its own
//! plaintext offset. Windows of batches are processed in order; while one window is
//! decrypted, the previous one is hashed (SHA-256 is inherently sequential), so the
//! hash costs one core only where a core is free. The output becomes visible
//! (renamed into place) only after every chunk authenticated.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;
use ring::digest;

use super::diagnose;
use super::error::{Result, SealedError};
use super::header::{self, HeaderPolicy};
use super::keys::Identity;
use super::primitives::{CHUNK, PAYLOAD_NONCE, PayloadKey, SEALED_CHUNK, TAG};
use super::stream::OpenReport;

#[derive(Debug, Clone)]
pub struct ParallelOptions {
    /// Chunks per rayon task. Measured on 2 cores (bench/RESULTS.md): 4 (256 KiB,
    /// stays in a core's L2) is as fast as 1 and faster than 16 or 64.
    pub batch_chunks: usize,
    /// Chunks per window when hashing; two windows of plaintext are in memory at once.
    pub window_chunks: usize,
    /// Compute the plaintext SHA-256.
    pub hash: bool,
    /// fsync the output before it is renamed into place.
    pub sync: bool,
}

impl Default for ParallelOptions {
    fn default() -> Self {
        ParallelOptions {
            batch_chunks: 4,
            window_chunks: 128,
            hash: true,
            sync: false,
        }
    }
}

/// Where the payload's chunks are, once the header is known.
struct Layout<'a> {
    body: &'a [u8],
    chunks: u64,
    plaintext_len: u64,
}

fn layout(body: &[u8]) -> Result<Layout<'_>> {
    if body.is_empty() {
        return Err(SealedError::Truncated { verified: 0 });
    }
    let chunks = body.len().div_ceil(SEALED_CHUNK) as u64;
    let last_len = body.len() - (chunks as usize - 1) * SEALED_CHUNK;
    let plaintext_len = (chunks - 1) * CHUNK as u64 + last_len.saturating_sub(TAG) as u64;
    Ok(Layout {
        body,
        chunks,
        plaintext_len,
    })
}

impl Layout<'_> {
    fn chunk(&self, i: u64) -> &[u8] {
        let start = i as usize * SEALED_CHUNK;
        &self.body[start..(start + SEALED_CHUNK).min(self.body.len())]
    }

    /// Decrypts chunks `first..first+count` into `out` (their plaintext, contiguous).
    fn open_batch(
        &self,
        key: &PayloadKey,
        first: u64,
        count: u64,
        out: &mut [u8],
    ) -> Result<usize> {
        let mut written = 0;
        for i in first..first + count {
            let chunk = self.chunk(i);
            let last = i + 1 == self.chunks;
            if chunk.len() < TAG {
                return Err(SealedError::Truncated {
                    verified: i * CHUNK as u64,
                });
            }
            let (ct, tag) = chunk.split_at(chunk.len() - TAG);
            let dst = &mut out[written..written + ct.len()];
            dst.copy_from_slice(ct);
            let tag: &[u8; TAG] = tag
                .try_into()
                .map_err(|_| SealedError::Truncated { verified: 0 })?;
            if !key.open_separate(i, last, dst, tag) {
                return Err(self.diagnose(key, i, last));
            }
            if last && ct.is_empty() && i > 0 {
                return Err(SealedError::EmptyFinalChunk { index: i });
            }
            written += ct.len();
        }
        Ok(written)
    }

    fn diagnose(&self, key: &PayloadKey, i: u64, last: bool) -> SealedError {
        let chunk = self.chunk(i);
        if last {
            diagnose::last_chunk(key, i, chunk, i * CHUNK as u64)
        } else {
            let after = self.body.len() - (i as usize + 1) * SEALED_CHUNK;
            diagnose::middle_chunk(key, i, chunk, after as u64)
        }
    }
}

/// Opens the sealed bytes `sealed` into `out` (written with positional writes).
pub fn open_slice(
    sealed: &[u8],
    identity: &Identity,
    policy: &HeaderPolicy,
    out: &File,
    opts: &ParallelOptions,
) -> Result<OpenReport> {
    let h = header::parse(sealed, policy)?.ok_or(SealedError::Truncated { verified: 0 })?;
    let file_key = h.unwrap_key(sealed, identity, policy)?;
    let rest = &sealed[h.len..];
    if rest.len() < PAYLOAD_NONCE {
        return Err(SealedError::Truncated { verified: 0 });
    }
    let (nonce, body) = rest.split_at(PAYLOAD_NONCE);
    let nonce: &[u8; PAYLOAD_NONCE] = nonce
        .try_into()
        .map_err(|_| SealedError::Truncated { verified: 0 })?;
    let key = PayloadKey::derive(&file_key, nonce);
    let lay = layout(body)?;

    let batch = opts.batch_chunks.max(1) as u64;
    if !opts.hash {
        open_all_unhashed(&lay, &key, batch, out)?;
        if opts.sync {
            out.sync_all()?;
        }
        return Ok(OpenReport {
            plaintext_len: lay.plaintext_len,
            sealed_len: sealed.len() as u64,
            chunks: lay.chunks,
            sha256: None,
        });
    }
    let window_chunks = (opts.window_chunks as u64).max(batch);
    let window_bytes = (window_chunks as usize) * CHUNK;
    let mut bufs = [
        vec![0u8; window_bytes.min(lay.plaintext_len as usize + CHUNK)],
        Vec::new(),
    ];
    if opts.hash {
        bufs[1] = vec![0u8; bufs[0].len()];
    }
    let mut sha = digest::Context::new(&digest::SHA256);
    let mut hash_len = 0usize; // bytes of the previous window still to hash
    let mut first = 0u64;
    let mut cur = 0usize;
    while first < lay.chunks {
        let count = window_chunks.min(lay.chunks - first);
        let (a, b) = bufs.split_at_mut(1);
        let (work, prev) = if cur == 0 {
            (&mut a[0], &mut b[0])
        } else {
            (&mut b[0], &mut a[0])
        };
        let (decrypted, ()) = rayon::join(
            || open_window(&lay, &key, first, count, batch, work, out),
            || {
                if hash_len > 0 {
                    sha.update(&prev[..hash_len]);
                }
            },
        );
        hash_len = if opts.hash {
            decrypted?
        } else {
            decrypted.map(|_| 0)?
        };
        first += count;
        if opts.hash {
            cur ^= 1;
        }
    }
    if hash_len > 0 {
        sha.update(&bufs[cur ^ 1][..hash_len]);
    }
    if opts.sync {
        out.sync_all()?;
    }
    let mut d = [0u8; 32];
    d.copy_from_slice(sha.finish().as_ref());
    let sha256 = Some(d);
    Ok(OpenReport {
        plaintext_len: lay.plaintext_len,
        sealed_len: sealed.len() as u64,
        chunks: lay.chunks,
        sha256,
    })
}

/// Without a hash nothing needs the plaintext once it is written, so each worker
/// decrypts a batch into its own (cache-hot) buffer and writes it at its offset.
///
/// Buffered writes to one file serialise on the inode lock, and with every worker
/// writing, a profile showed ~18 % of the time spinning on it (`rwsem_spin_on_owner`).
/// So at most one worker writes at a time: a worker that finds the write token taken
/// parks its buffer in `parked` and moves on with a spare one; the token holder writes
/// parked buffers too before it lets go. A plain writer thread avoided the spinning as
/// well but cost ~10 % of throughput in cross-core buffer traffic.
fn open_all_unhashed(lay: &Layout<'_>, key: &PayloadKey, batch: u64, out: &File) -> Result<()> {
    let batches = lay.chunks.div_ceil(batch);
    let cap = batch as usize * CHUNK;
    let writes = Writes {
        out,
        token: Mutex::new(()),
        parked: Mutex::new(Vec::new()),
        spare: Mutex::new(Vec::new()),
        error: Mutex::new(None),
    };
    // Every failing batch is collected and the lowest wins, so the reported chunk does
    // not depend on scheduling.
    let failures: Vec<(u64, SealedError)> = (0..batches)
        .into_par_iter()
        .map_init(
            || vec![0u8; cap],
            |buf, b| {
                let start = b * batch;
                let n = batch.min(lay.chunks - start);
                match lay.open_batch(key, start, n, buf) {
                    Ok(len) => {
                        writes.submit(buf, len, start * CHUNK as u64, cap);
                        None
                    }
                    Err(e) => Some((b, e)),
                }
            },
        )
        .flatten()
        .collect();
    writes.drain();
    if let Some((_, e)) = failures.into_iter().min_by_key(|(b, _)| *b) {
        return Err(e);
    }
    match writes.error.into_inner().ok().flatten() {
        Some(e) => Err(SealedError::Io(e)),
        None => Ok(()),
    }
}

/// The one-writer-at-a-time scheme of [`open_all_unhashed`].
struct Writes<'a> {
    out: &'a File,
    token: Mutex<()>,
    parked: Mutex<Vec<(u64, Vec<u8>)>>,
    spare: Mutex<Vec<Vec<u8>>>,
    error: Mutex<Option<std::io::Error>>,
}

impl Writes<'_> {
    fn submit(&self, buf: &mut Vec<u8>, len: usize, offset: u64, cap: usize) {
        if let Ok(_token) = self.token.try_lock() {
            self.write(&buf[..len], offset);
            self.drain_locked();
            return;
        }
        // Someone is writing: park this buffer, continue with a spare.
        let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
        let mut full = std::mem::replace(buf, spare.unwrap_or_else(|| vec![0u8; cap]));
        full.truncate(len);
        if let Ok(mut p) = self.parked.lock() {
            p.push((offset, full));
        }
    }

    /// Writes parked buffers; the caller holds the token.
    fn drain_locked(&self) {
        loop {
            let batch = match self.parked.lock() {
                Ok(mut p) if !p.is_empty() => std::mem::take(&mut *p),
                _ => return,
            };
            for (offset, mut buf) in batch {
                self.write(&buf, offset);
                buf.resize(buf.capacity(), 0);
                if let Ok(mut s) = self.spare.lock() {
                    s.push(buf);
                }
            }
        }
    }

    /// After all workers finished: whatever is still parked.
    fn drain(&self) {
        if let Ok(_token) = self.token.lock() {
            self.drain_locked();
        }
    }

    fn write(&self, data: &[u8], offset: u64) {
        if let Err(e) = self.out.write_all_at(data, offset)
            && let Ok(mut slot) = self.error.lock()
        {
            slot.get_or_insert(e);
        }
    }
}

/// Decrypts one window in parallel batches and writes each batch at its offset.
/// Returns the window's plaintext length. The lowest failing chunk wins.
fn open_window(
    lay: &Layout<'_>,
    key: &PayloadKey,
    first: u64,
    count: u64,
    batch: u64,
    buf: &mut [u8],
    out: &File,
) -> Result<usize> {
    let results: Vec<Result<usize>> = buf[..(count as usize) * CHUNK]
        .par_chunks_mut(batch as usize * CHUNK)
        .enumerate()
        .map(|(b, dst)| {
            let start = first + b as u64 * batch;
            let n = batch.min(first + count - start);
            let len = lay.open_batch(key, start, n, dst)?;
            out.write_all_at(&dst[..len], start * CHUNK as u64)?;
            Ok(len)
        })
        .collect();
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok(total)
}

/// Opens the sealed file `input` into `output`, which appears only if every chunk
/// authenticated (written to a temporary file beside it, then renamed).
pub fn open_file(
    input: &Path,
    output: &Path,
    identity: &Identity,
    policy: &HeaderPolicy,
    opts: &ParallelOptions,
) -> Result<OpenReport> {
    let file = File::open(input)?;
    // SAFETY: the map is read-only and the gateway owns its spool files; a concurrent
    // truncation by another process would fault (SIGBUS), which is why callers only
    // pass complete, closed files.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let _ = map.advise(memmap2::Advice::Sequential);
    let dir = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    let report = open_slice(&map, identity, policy, tmp.as_file(), opts)?;
    tmp.persist(output).map_err(|e| SealedError::Io(e.error))?;
    Ok(report)
}
