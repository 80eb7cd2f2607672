//! Requests read from a packet: every length checked against what is left, write
//! payloads kept in the packet they came in (no copy).

use super::*;

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Result<u8, BadPacket> {
        let (&b, rest) = self.0.split_first().ok_or(BadPacket("short"))?;
        self.0 = rest;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32, BadPacket> {
        let b = self.0.get(..4).ok_or(BadPacket("short"))?;
        let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        self.0 = &self.0[4..];
        Ok(v)
    }
    fn u64(&mut self) -> Result<u64, BadPacket> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    fn bytes(&mut self) -> Result<&[u8], BadPacket> {
        let n = self.u32()? as usize;
        let b = self.0.get(..n).ok_or(BadPacket("string past the end"))?;
        let (b, rest) = (b, &self.0[n..]);
        self.0 = rest;
        Ok(b)
    }
    fn string(&mut self) -> Result<String, BadPacket> {
        // Paths that are not UTF-8 cannot name anything here; keep them visible in errors.
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }
    fn attrs(&mut self) -> Result<Attrs, BadPacket> {
        let flags = self.u32()?;
        let mut a = Attrs::default();
        if flags & 0x1 != 0 {
            a.size = Some(self.u64()?);
        }
        if flags & 0x2 != 0 {
            self.u32()?;
            self.u32()?;
        }
        if flags & 0x4 != 0 {
            a.permissions = Some(self.u32()?);
        }
        if flags & 0x8 != 0 {
            self.u32()?;
            a.mtime = Some(self.u32()?);
        }
        if flags & 0x8000_0000 != 0 {
            for _ in 0..self.u32()? {
                self.bytes()?;
                self.bytes()?;
            }
        }
        Ok(a)
    }
}

/// Decodes one packet (without its length prefix). A write keeps the packet buffer and
/// points at its payload, so the payload is copied only once, into the upload.
pub fn decode(mut packet: Vec<u8>) -> Result<Request, BadPacket> {
    let mut r = Reader(&packet);
    let kind = r.u8()?;
    if kind == INIT {
        return Ok(Request::Init { version: r.u32()? });
    }
    let id = r.u32()?;
    Ok(match kind {
        OPEN => {
            let path = r.string()?;
            let flags = r.u32()?;
            r.attrs()?;
            Request::Open { id, path, flags }
        }
        CLOSE => Request::Close {
            id,
            handle: r.bytes()?.to_vec(),
        },
        READ => Request::Read {
            id,
            handle: r.bytes()?.to_vec(),
            offset: r.u64()?,
            len: r.u32()?,
        },
        WRITE => {
            let handle = r.bytes()?.to_vec();
            let offset = r.u64()?;
            let n = r.u32()? as usize;
            let start = packet.len() - r.0.len();
            if r.0.len() < n {
                return Err(BadPacket("write data past the end"));
            }
            packet.truncate(start + n);
            Request::Write {
                id,
                handle,
                offset,
                packet,
                start,
            }
        }
        LSTAT => Request::Lstat {
            id,
            path: r.string()?,
        },
        FSTAT => Request::Fstat {
            id,
            handle: r.bytes()?.to_vec(),
        },
        SETSTAT => Request::Setstat {
            id,
            path: r.string()?,
            attrs: r.attrs()?,
        },
        FSETSTAT => Request::Fsetstat {
            id,
            handle: r.bytes()?.to_vec(),
            attrs: r.attrs()?,
        },
        OPENDIR => Request::Opendir {
            id,
            path: r.string()?,
        },
        READDIR => Request::Readdir {
            id,
            handle: r.bytes()?.to_vec(),
        },
        REMOVE => Request::Remove {
            id,
            path: r.string()?,
        },
        MKDIR => Request::Mkdir {
            id,
            path: r.string()?,
        },
        RMDIR => Request::Rmdir {
            id,
            path: r.string()?,
        },
        REALPATH => Request::Realpath {
            id,
            path: r.string()?,
        },
        STAT => Request::Stat {
            id,
            path: r.string()?,
        },
        RENAME => Request::Rename {
            id,
            from: r.string()?,
            to: r.string()?,
        },
        READLINK => Request::Readlink {
            id,
            path: r.string()?,
        },
        SYMLINK => Request::Symlink { id },
        EXTENDED => {
            let name = r.string()?;
            if name == "posix-rename@openssh.com" {
                return Ok(Request::Rename {
                    id,
                    from: r.string()?,
                    to: r.string()?,
                });
            }
            Request::Extended {
                id,
                name,
                data: r.0.to_vec(),
            }
        }
        other => Request::Unsupported { id, kind: other },
    })
}
