//! Replies written into a packet, each carrying its own length.

use super::*;

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
