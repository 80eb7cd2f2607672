//! Streaming seal: a `Write` that turns plaintext into an age v1 file.

use std::io::{self, Write};

use super::error::Result;
use super::header;
use super::keys::{Recipient, random_bytes};
use super::primitives::{CHUNK, FileKey, PAYLOAD_NONCE, PayloadKey, TAG};

pub struct Sealer<W: Write> {
    key: PayloadKey,
    /// Plaintext of the chunk being filled, with room for its tag.
    buf: Vec<u8>,
    index: u64,
    out: W,
}

impl<W: Write> Sealer<W> {
    /// Writes the header and payload nonce for `recipients` and returns the sealer.
    pub fn new(recipients: &[Recipient], mut out: W) -> Result<Sealer<W>> {
        let file_key = FileKey(random_bytes::<16>()?);
        out.write_all(&header::write(&file_key, recipients)?)?;
        let nonce = random_bytes::<PAYLOAD_NONCE>()?;
        out.write_all(&nonce)?;
        Ok(Sealer {
            key: PayloadKey::derive(&file_key, &nonce),
            buf: Vec::with_capacity(CHUNK + TAG),
            index: 0,
            out,
        })
    }

    fn seal_buffered(&mut self, last: bool) -> io::Result<()> {
        let len = self.buf.len();
        self.buf.resize(len + TAG, 0);
        self.key.seal(self.index, last, &mut self.buf);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the final chunk and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.seal_buffered(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk is sealed only once more data shows it is not the last.
        if self.buf.len() == CHUNK {
            self.seal_buffered(false)?;
        }
        let take = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..take]);
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
