//! SFTP version 3 (draft-ietf-secsh-filexfer-02, what OpenSSH speaks) on the wire:
//! requests decoded from a packet, replies encoded into one.
//!
//! Hand-written rather than russh-sftp's types: russh-sftp's server answers one request
//! at a time and copies every write payload while decoding, while the gateway keeps many
//! requests of a channel in flight (OpenSSH's client sends up to 64) and hands write
//! payloads to the session without a copy. The protocol is small — a dozen request types
//! of length-prefixed fields — so owning the codec costs less than working around it.

mod decode;
mod reply;

pub use decode::decode;
pub use reply::*;

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
