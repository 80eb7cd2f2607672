//! A stored object as a synchronous `Read + Seek`, for code that runs on a blocking
//! thread (inspectors, the sealed-file reader) and reads only parts of an object: each
//! read fetches one ranged block, so a DICOM header costs a block, not the whole file,
//! on every backend.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::runtime::Handle;

use super::{ObjectKey, ObjectStore};

/// Bytes fetched per ranged read.
const BLOCK: u64 = 256 << 10;

pub struct BlockingObject {
    store: Arc<dyn ObjectStore>,
    key: ObjectKey,
    rt: Handle,
    len: u64,
    pos: u64,
    /// The last block fetched and where it starts.
    block: Vec<u8>,
    block_at: u64,
}

impl BlockingObject {
    /// Opens `key`; must be called on a blocking thread of the runtime `rt`.
    pub fn open(store: Arc<dyn ObjectStore>, key: ObjectKey, rt: Handle) -> io::Result<Self> {
        let meta = rt
            .block_on(store.head(&key))
            .map_err(io::Error::other)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, key.as_str().to_string()))?;
        Ok(BlockingObject {
            store,
            key,
            rt,
            len: meta.len,
            pos: 0,
            block: Vec::new(),
            block_at: 0,
        })
    }

    fn fetch(&mut self) -> io::Result<()> {
        let end = (self.pos + BLOCK).min(self.len);
        let (store, key) = (&self.store, &self.key);
        let mut block = Vec::with_capacity((end - self.pos) as usize);
        let range = self.pos..end;
        self.rt.block_on(async {
            let mut r = store
                .get(key, Some(range))
                .await
                .map_err(io::Error::other)?;
            r.read_to_end(&mut block).await
        })?;
        self.block = block;
        self.block_at = self.pos;
        Ok(())
    }
}

impl Read for BlockingObject {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let in_block =
            self.pos >= self.block_at && self.pos < self.block_at + self.block.len() as u64;
        if !in_block {
            self.fetch()?;
        }
        let from = (self.pos - self.block_at) as usize;
        let n = buf.len().min(self.block.len() - from);
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "object shorter than its length",
            ));
        }
        buf[..n].copy_from_slice(&self.block[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlockingObject {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))?;
        Ok(self.pos)
    }
}
