//! Frames between the gateway and a worker: a 4-byte big-endian length, then JSON.
//! JSON because the facts are already serde types and a frame per upload costs
//! microseconds next to the parsing it carries.

use std::io::{self, Read, Write};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame either side accepts: a ZIP batch of 100,000 DICOM instances
/// answers with tens of MiB of facts.
pub const MAX_FRAME: u32 = 256 << 20;

fn too_large(len: u32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("frame of {len} bytes exceeds {MAX_FRAME}"),
    )
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(too_large(len));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

pub fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| too_large(u32::MAX))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(body)?;
    w.flush()
}

pub async fn read_frame_async(r: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let len = r.read_u32().await?;
    if len > MAX_FRAME {
        return Err(too_large(len));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

pub async fn write_frame_async(w: &mut (impl AsyncWrite + Unpin), body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len()).map_err(|_| too_large(u32::MAX))?;
    w.write_u32(len).await?;
    w.write_all(body).await?;
    w.flush().await
}
