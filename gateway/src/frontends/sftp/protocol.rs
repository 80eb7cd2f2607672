//! SFTP version 3 (draft-ietf-secsh-filexfer-02, what OpenSSH speaks) on the wire:
//! requests decoded from a packet, replies encoded into one.
//!
//! Hand-written rather than russh-sftp's types: russh-sftp's server answers one request
//! at a time and copies every write payload while decoding, while the gateway keeps many
//! requests of a channel in flight (OpenSSH's client sends up to 64) and hands write
//! payloads to the session without a copy. The protocol is small — a dozen request types
//! of length-prefixed fields — so owning the codec costs less than working around it.

use std::fmt;

pub const VERSION: u32 = 3;
/// Largest packet accepted: a 255 KiB write plus headers (what `limits@openssh.com`
/// advertises, as OpenSSH's own server does).
pub const MAX_PACKET: usize = 256 * 1024 + 1024;
pub const MAX_WRITE: u64 = 255 * 1024;
/// Open handles one session may hold (told to clients by `limits@openssh.com`).
pub const MAX_HANDLES: usize = 1024;

// Packet types.
const INIT: u8 = 1;
const VERSION_T: u8 = 2;
const OPEN: u8 = 3;
const CLOSE: u8 = 4;
const READ: u8 = 5;
const WRITE: u8 = 6;
const LSTAT: u8 = 7;
const FSTAT: u8 = 8;
const SETSTAT: u8 = 9;
const FSETSTAT: u8 = 10;
const OPENDIR: u8 = 11;
const READDIR: u8 = 12;
const REMOVE: u8 = 13;
const MKDIR: u8 = 14;
const RMDIR: u8 = 15;
const REALPATH: u8 = 16;
const STAT: u8 = 17;
const RENAME: u8 = 18;
const READLINK: u8 = 19;
const SYMLINK: u8 = 20;
const STATUS: u8 = 101;
const HANDLE: u8 = 102;
const DATA: u8 = 103;
const NAME: u8 = 104;
const ATTRS: u8 = 105;
const EXTENDED: u8 = 200;
const EXTENDED_REPLY: u8 = 201;

// Open flags.
pub const FXF_READ: u32 = 0x01;
pub const FXF_WRITE: u32 = 0x02;
pub const FXF_APPEND: u32 = 0x04;
pub const FXF_CREAT: u32 = 0x08;
pub const FXF_TRUNC: u32 = 0x10;
pub const FXF_EXCL: u32 = 0x20;

/// Status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Code {
    Ok = 0,
    Eof = 1,
    NoSuchFile = 2,
    PermissionDenied = 3,
    Failure = 4,
    BadMessage = 5,
    OpUnsupported = 8,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub permissions: Option<u32>,
    pub mtime: Option<u32>,
}

impl Attrs {
    pub fn file(size: u64, mtime: u32) -> Attrs {
        Attrs {
            size: Some(size),
            permissions: Some(0o100644),
            mtime: Some(mtime),
        }
    }

    pub fn dir(mtime: u32) -> Attrs {
        Attrs {
            size: Some(0),
            permissions: Some(0o040755),
            mtime: Some(mtime),
        }
    }
}

#[derive(Debug)]
pub enum Request {
    Init {
        version: u32,
    },
    Open {
        id: u32,
        path: String,
        flags: u32,
    },
    Close {
        id: u32,
        handle: Vec<u8>,
    },
    Read {
        id: u32,
        handle: Vec<u8>,
        offset: u64,
        len: u32,
    },
    /// The payload is `packet[start..]`: left in place, not moved to the front.
    Write {
        id: u32,
        handle: Vec<u8>,
        offset: u64,
        packet: Vec<u8>,
        start: usize,
    },
    Lstat {
        id: u32,
        path: String,
    },
    Fstat {
        id: u32,
        handle: Vec<u8>,
    },
    Setstat {
        id: u32,
        path: String,
        attrs: Attrs,
    },
    Fsetstat {
        id: u32,
        handle: Vec<u8>,
        attrs: Attrs,
    },
    Opendir {
        id: u32,
        path: String,
    },
    Readdir {
        id: u32,
        handle: Vec<u8>,
    },
    Remove {
        id: u32,
        path: String,
    },
    Mkdir {
        id: u32,
        path: String,
    },
    Rmdir {
        id: u32,
        path: String,
    },
    Realpath {
        id: u32,
        path: String,
    },
    Stat {
        id: u32,
        path: String,
    },
    Rename {
        id: u32,
        from: String,
        to: String,
    },
    Readlink {
        id: u32,
        path: String,
    },
    Symlink {
        id: u32,
    },
    Extended {
        id: u32,
        name: String,
        data: Vec<u8>,
    },
    Unsupported {
        id: u32,
        kind: u8,
    },
}

#[derive(Debug)]
pub struct BadPacket(pub &'static str);

impl fmt::Display for BadPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed SFTP packet: {}", self.0)
    }
}

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

/// A reply under construction; `finish` adds the length prefix.
pub struct Reply(Vec<u8>);

impl Reply {
    fn new(kind: u8, id: Option<u32>) -> Reply {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&[0, 0, 0, 0, kind]);
        if let Some(id) = id {
            b.extend_from_slice(&id.to_be_bytes());
        }
        Reply(b)
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bytes(self, b: &[u8]) -> Self {
        let mut s = self.u32(b.len() as u32);
        s.0.extend_from_slice(b);
        s
    }
    fn attrs(self, a: &Attrs) -> Self {
        let flags = u32::from(a.size.is_some())
            | (u32::from(a.permissions.is_some()) << 2)
            | (u32::from(a.mtime.is_some()) << 3);
        let mut s = self.u32(flags);
        if let Some(v) = a.size {
            s = s.u64(v);
        }
        if let Some(v) = a.permissions {
            s = s.u32(v);
        }
        if let Some(v) = a.mtime {
            s = s.u32(v).u32(v);
        }
        s
    }
    pub fn finish(mut self) -> Vec<u8> {
        let n = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&n.to_be_bytes());
        self.0
    }
}

pub fn version(extensions: &[(&str, &[u8])]) -> Vec<u8> {
    let mut r = Reply::new(VERSION_T, None).u32(VERSION);
    for (name, data) in extensions {
        r = r.bytes(name.as_bytes()).bytes(data);
    }
    r.finish()
}

pub fn status(id: u32, code: Code, message: &str) -> Vec<u8> {
    Reply::new(STATUS, Some(id))
        .u32(code as u32)
        .bytes(message.as_bytes())
        .bytes(b"en")
        .finish()
}

/// Whether a finished reply is a status `OK` (for audit records of what was done).
pub fn is_ok(reply: &[u8]) -> bool {
    reply.len() >= 13 && reply[4] == STATUS && reply[9..13] == [0, 0, 0, 0]
}

pub fn handle(id: u32, h: &[u8]) -> Vec<u8> {
    Reply::new(HANDLE, Some(id)).bytes(h).finish()
}

pub fn data(id: u32, d: &[u8]) -> Vec<u8> {
    Reply::new(DATA, Some(id)).bytes(d).finish()
}

pub fn attrs(id: u32, a: &Attrs) -> Vec<u8> {
    Reply::new(ATTRS, Some(id)).attrs(a).finish()
}

/// A directory entry: name, `ls -l` style long name, attributes.
pub struct Entry {
    pub name: String,
    pub attrs: Attrs,
}

pub fn name(id: u32, entries: &[Entry]) -> Vec<u8> {
    let mut r = Reply::new(NAME, Some(id)).u32(entries.len() as u32);
    for e in entries {
        r = r
            .bytes(e.name.as_bytes())
            .bytes(long_name(e).as_bytes())
            .attrs(&e.attrs);
    }
    r.finish()
}

pub fn extended_reply(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut r = Reply::new(EXTENDED_REPLY, Some(id));
    r.0.extend_from_slice(payload);
    r.finish()
}

/// `limits@openssh.com` reply: max packet, read, write lengths and open handles.
pub fn limits(id: u32) -> Vec<u8> {
    let mut p = Vec::with_capacity(32);
    for v in [MAX_PACKET as u64, MAX_WRITE, MAX_WRITE, MAX_HANDLES as u64] {
        p.extend_from_slice(&v.to_be_bytes());
    }
    extended_reply(id, &p)
}

fn long_name(e: &Entry) -> String {
    let dir = e.attrs.permissions.is_some_and(|p| p & 0o040000 != 0);
    let mode = if dir { "drwxr-xr-x" } else { "-rw-r--r--" };
    let when = e
        .attrs
        .mtime
        .map(|t| crate::util::rfc3339(i64::from(t)))
        .unwrap_or_default();
    let when = when.get(..16).unwrap_or(&when).replace('T', " ");
    format!(
        "{mode} 1 gateway gateway {:>12} {when} {}",
        e.attrs.size.unwrap_or(0),
        e.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![kind];
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn write_payload_is_taken_without_a_copy_and_bounds_are_checked() {
        let mut body = 7u32.to_be_bytes().to_vec();
        body.extend_from_slice(&2u32.to_be_bytes());
        body.extend_from_slice(b"h1");
        body.extend_from_slice(&1000u64.to_be_bytes());
        body.extend_from_slice(&5u32.to_be_bytes());
        body.extend_from_slice(b"hello");
        match decode(packet(WRITE, &body)).unwrap() {
            Request::Write {
                id,
                handle,
                offset,
                packet,
                start,
            } => {
                let data = &packet[start..];
                assert_eq!(
                    (id, handle.as_slice(), offset, data),
                    (7, &b"h1"[..], 1000, &b"hello"[..])
                );
            }
            other => panic!("{other:?}"),
        }
        body.truncate(body.len() - 1);
        assert!(decode(packet(WRITE, &body)).is_err());
        assert!(decode(vec![]).is_err());
    }

    #[test]
    fn replies_carry_their_length() {
        let s = status(9, Code::PermissionDenied, "no");
        assert_eq!(
            u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize,
            s.len() - 4
        );
        assert_eq!(s[4], STATUS);
        let n = name(
            1,
            &[Entry {
                name: "inbox".into(),
                attrs: Attrs::dir(0),
            }],
        );
        assert!(String::from_utf8_lossy(&n).contains("drwxr-xr-x"));
    }
}
