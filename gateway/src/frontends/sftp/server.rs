//! One SFTP channel: reads requests as fast as they arrive and keeps them moving.
//!
//! Requests that only look at the catalog are answered in order on the read loop;
//! writes go to the task that owns their upload ([`super::upload`]), so one file's bytes
//! stay ordered while the loop goes on decoding the client's next requests. Replies go
//! through one writer task. A full upload queue stops the read loop, which stops the
//! SSH window, which slows the client: backpressure end to end, nothing dropped.
//!
//! Every file operation that changes something, and every refusal, is written to the
//! catalog's audit log (actor = the tenant).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use super::protocol::{self as p, Attrs, Code, Entry, Request};
use super::upload::{InFlight, Parked, UploadCmd};
use super::vfs::{self, Place};
use crate::session::{IngestCore, IngestError, Principal};

mod listing;

/// Writes queued per open upload before the read loop waits: 32 of up to 255 KiB,
/// 8 MiB per upload, enough to keep the disk busy while bounding what a client can
/// make the gateway hold.
const UPLOAD_QUEUE: usize = 32;
/// Names one listing shows at most.
const LIST_LIMIT: i64 = 100_000;

pub(super) type Replies = mpsc::Sender<Vec<u8>>;

/// What one SFTP channel needs from its connection and the gateway.
pub struct ChannelContext {
    pub core: Arc<IngestCore>,
    pub who: Principal,
    pub peer: IpAddr,
    /// Name endings of temporary upload names (`[sftp] temp_suffixes`).
    pub temp_suffixes: Arc<[String]>,
    /// Turns true at shutdown: no new uploads start.
    pub stop: watch::Receiver<bool>,
    pub in_flight: InFlight,
    /// The listener's pool of write buffers (KiB permits), shared by every session.
    pub pool: Arc<tokio::sync::Semaphore>,
}

enum Handle {
    Upload(mpsc::Sender<UploadCmd>, String),
    File(Arc<Vec<u8>>),
    Dir(Option<Vec<Entry>>),
}

pub(super) struct Sftp {
    pub(super) ctx: ChannelContext,
    pub(super) replies: Replies,
    handles: HashMap<u32, Handle>,
    next_handle: u32,
    /// Folders made with `mkdir` in this session (others exist through their files).
    made_dirs: HashSet<String>,
    started: u32,
    pub(super) parked: Parked,
}

/// Serves one channel until the client closes it.
pub async fn serve<S>(stream: S, ctx: ChannelContext)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut read, write) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Vec<u8>>(1024);
    let writer = tokio::spawn(write_replies(write, rx));
    let mut s = Sftp {
        ctx,
        replies: tx,
        handles: HashMap::new(),
        next_handle: 1,
        made_dirs: HashSet::new(),
        started: crate::util::unix_now() as u32,
        parked: Parked::default(),
    };
    loop {
        let mut len = [0u8; 4];
        if read.read_exact(&mut len).await.is_err() {
            break;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > p::MAX_PACKET {
            tracing::warn!(tenant = %s.ctx.who.tenant, len, "sftp packet too large; closing");
            break;
        }
        // Read into spare capacity: zeroing a fresh buffer per packet showed up in the
        // profile (memset, ~4 % of a 1 GiB upload).
        let mut packet = Vec::with_capacity(len);
        match (&mut read).take(len as u64).read_to_end(&mut packet).await {
            Ok(n) if n == len => {}
            _ => break,
        }
        match p::decode(packet) {
            Ok(req) => s.dispatch(req).await,
            Err(e) => {
                tracing::warn!(tenant = %s.ctx.who.tenant, error = %e, "closing sftp channel");
                break;
            }
        }
    }
    // Dropping the upload queues lets each upload task make what arrived durable.
    s.handles.clear();
    drop(s);
    let _ = writer.await;
}

async fn write_replies<W: AsyncWrite + Unpin>(write: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut w = tokio::io::BufWriter::with_capacity(256 << 10, write);
    while let Some(first) = rx.recv().await {
        if w.write_all(&first).await.is_err() {
            return;
        }
        // Flush once per burst, not once per reply.
        while let Ok(more) = rx.try_recv() {
            if w.write_all(&more).await.is_err() {
                return;
            }
        }
        if w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// The SFTP status for a refused session call, with the stable code in the message.
pub(super) fn ingest_error(e: &IngestError) -> (Code, String) {
    let code = match e {
        IngestError::NotFound(_) => Code::NoSuchFile,
        IngestError::Accepted { .. }
        | IngestError::NameNotAllowed { .. }
        | IngestError::QuotaBytes { .. }
        | IngestError::QuotaFiles { .. }
        | IngestError::TooManyUploads { .. } => Code::PermissionDenied,
        _ => Code::Failure,
    };
    (code, format!("{}: {e}", e.code()))
}

pub(super) fn ingest_status(id: u32, e: &IngestError) -> Vec<u8> {
    let (code, msg) = ingest_error(e);
    p::status(id, code, &msg)
}

impl Sftp {
    pub(super) async fn reply(&self, packet: Vec<u8>) {
        let _ = self.replies.send(packet).await;
    }

    pub(super) async fn status(&self, id: u32, code: Code, msg: &str) {
        self.reply(p::status(id, code, msg)).await;
    }

    /// Refuses `op` on `path` with PERMISSION_DENIED, and records the refusal.
    pub(super) async fn deny(&self, id: u32, op: &str, path: &str, msg: &str) {
        self.audit(
            "sftp.denied",
            serde_json::json!({ "op": op, "path": path, "why": msg }),
        );
        self.status(id, Code::PermissionDenied, msg).await;
    }

    /// Appends to the audit log without holding up the reply.
    pub(super) fn audit(&self, action: &'static str, mut detail: serde_json::Value) {
        detail["ip"] = self.ctx.peer.to_string().into();
        super::audit(&self.ctx.core, &self.ctx.who.tenant, action, detail);
    }

    /// Names of the uploads open on this channel.
    pub(super) fn open_names(&self) -> impl Iterator<Item = &str> {
        self.handles.values().filter_map(|h| match h {
            Handle::Upload(_, name) => Some(name.as_str()),
            _ => None,
        })
    }

    fn new_handle(&mut self, h: Handle) -> Vec<u8> {
        let n = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(n, h);
        n.to_be_bytes().to_vec()
    }

    fn handle_id(h: &[u8]) -> u32 {
        h.try_into().map(u32::from_be_bytes).unwrap_or(0)
    }

    async fn dispatch(&mut self, req: Request) {
        match req {
            Request::Init { .. } => {
                let ext: &[(&str, &[u8])] = &[
                    ("limits@openssh.com", b"1"),
                    ("fsync@openssh.com", b"1"),
                    ("posix-rename@openssh.com", b"1"),
                ];
                self.reply(p::version(ext)).await;
            }
            Request::Realpath { id, path } => {
                let norm = vfs::normalize(&path);
                self.reply(p::name(id, &[vfs::dir_entry(&norm, self.started)]))
                    .await;
            }
            Request::Stat { id, path } | Request::Lstat { id, path } => {
                match self.stat(&path).await {
                    Ok(a) => self.reply(p::attrs(id, &a)).await,
                    Err((code, msg)) => self.status(id, code, &msg).await,
                }
            }
            Request::Open { id, .. } | Request::Opendir { id, .. }
                if self.handles.len() >= p::MAX_HANDLES =>
            {
                let msg = format!(
                    "sftp.too_many_handles: at most {} open handles per session; close some first",
                    p::MAX_HANDLES
                );
                self.status(id, Code::Failure, &msg).await;
            }
            Request::Open { id, path, flags } => self.open(id, &path, flags).await,
            Request::Write {
                id,
                handle,
                offset,
                packet,
                start,
            } => match self.handles.get(&Self::handle_id(&handle)) {
                Some(Handle::Upload(q, _)) => {
                    let q = q.clone();
                    // Queued data is held against the listener's pool: with many
                    // sessions at once, a session waits here (and TCP pushes back on its
                    // client) instead of every session holding its own full queue.
                    let kib = u32::try_from((packet.len() - start) / 1024 + 1).unwrap_or(u32::MAX);
                    let Ok(held) = self.ctx.pool.clone().acquire_many_owned(kib).await else {
                        self.status(id, Code::Failure, "the gateway is stopping")
                            .await;
                        return;
                    };
                    let cmd = UploadCmd::Write {
                        id,
                        offset,
                        packet,
                        start,
                        held,
                    };
                    if q.send(cmd).await.is_err() {
                        self.status(id, Code::Failure, "the upload has ended").await;
                    }
                }
                Some(_) => {
                    self.status(id, Code::PermissionDenied, "not open for writing")
                        .await
                }
                None => self.status(id, Code::Failure, "no such handle").await,
            },
            Request::Read {
                id,
                handle,
                offset,
                len,
            } => {
                let reply = match self.handles.get(&Self::handle_id(&handle)) {
                    Some(Handle::File(bytes)) => {
                        let start = usize::try_from(offset)
                            .unwrap_or(usize::MAX)
                            .min(bytes.len());
                        let end = start.saturating_add(len as usize).min(bytes.len());
                        if start >= bytes.len() {
                            p::status(id, Code::Eof, "end of file")
                        } else {
                            p::data(id, &bytes[start..end])
                        }
                    }
                    Some(_) => p::status(id, Code::PermissionDenied, "not open for reading"),
                    None => p::status(id, Code::Failure, "no such handle"),
                };
                self.reply(reply).await;
            }
            Request::Fstat { id, handle } => match self.handles.get(&Self::handle_id(&handle)) {
                Some(Handle::Upload(q, _)) => {
                    let _ = q.send(UploadCmd::Fstat { id }).await;
                }
                Some(Handle::File(b)) => {
                    self.reply(p::attrs(id, &Attrs::file(b.len() as u64, self.started)))
                        .await
                }
                Some(Handle::Dir(_)) => self.reply(p::attrs(id, &Attrs::dir(self.started))).await,
                None => self.status(id, Code::Failure, "no such handle").await,
            },
            Request::Close { id, handle } => match self.handles.remove(&Self::handle_id(&handle)) {
                Some(Handle::Upload(q, _)) => {
                    if q.send(UploadCmd::Close { id }).await.is_err() {
                        self.status(id, Code::Failure, "the upload has ended").await;
                    }
                }
                Some(_) => self.status(id, Code::Ok, "").await,
                None => self.status(id, Code::Failure, "no such handle").await,
            },
            Request::Opendir { id, path } => match self.list(&path).await {
                Ok(entries) => {
                    let h = self.new_handle(Handle::Dir(Some(entries)));
                    self.reply(p::handle(id, &h)).await;
                }
                Err((code, msg)) => self.status(id, code, &msg).await,
            },
            Request::Readdir { id, handle } => {
                let reply = match self.handles.get_mut(&Self::handle_id(&handle)) {
                    Some(Handle::Dir(entries)) => match entries.take() {
                        Some(e) => p::name(id, &e),
                        None => p::status(id, Code::Eof, "end of directory"),
                    },
                    _ => p::status(id, Code::Failure, "no such handle"),
                };
                self.reply(reply).await;
            }
            Request::Mkdir { id, path } => match vfs::place(&path) {
                Place::Inbox(rel) if !rel.is_empty() => match crate::session::names::check(&rel) {
                    Ok(()) => {
                        self.audit("sftp.mkdir", serde_json::json!({ "path": rel }));
                        self.made_dirs.insert(rel);
                        self.status(id, Code::Ok, "").await;
                    }
                    Err(why) => {
                        let msg = format!("ingest.name_not_allowed: {why}");
                        self.deny(id, "mkdir", &rel, &msg).await
                    }
                },
                _ => {
                    let msg = vfs::refusal(&path, "folders can be made in /inbox only");
                    self.deny(id, "mkdir", &path, &msg).await
                }
            },
            Request::Remove { id, path } => self.remove(id, &path).await,
            Request::Setstat { id, attrs, .. } | Request::Fsetstat { id, attrs, .. } => {
                // Times and modes are accepted and ignored (`put -p`); a size change
                // would truncate, which never happens to received bytes.
                if attrs.size.is_some() {
                    self.deny(id, "setstat", "", "received files cannot be truncated")
                        .await;
                } else {
                    self.status(id, Code::Ok, "").await;
                }
            }
            Request::Rmdir { id, path } => {
                self.deny(id, "rmdir", &path, "folders are not removed")
                    .await
            }
            Request::Rename { id, from, to } => self.rename(id, &from, &to).await,
            Request::Readlink { id, .. } | Request::Symlink { id } => {
                self.status(id, Code::OpUnsupported, "links are not supported")
                    .await
            }
            Request::Extended { id, name, .. } => match name.as_str() {
                "limits@openssh.com" => self.reply(p::limits(id)).await,
                // Every close of a complete file is an fsync already.
                "fsync@openssh.com" => self.status(id, Code::Ok, "").await,
                _ => {
                    self.status(id, Code::OpUnsupported, "unsupported extension")
                        .await
                }
            },
            Request::Unsupported { id, kind } => {
                self.status(
                    id,
                    Code::OpUnsupported,
                    &format!("request type {kind} is not supported"),
                )
                .await
            }
        }
    }

    async fn open(&mut self, id: u32, path: &str, flags: u32) {
        let writing = flags & (p::FXF_WRITE | p::FXF_APPEND | p::FXF_CREAT | p::FXF_TRUNC) != 0;
        match (vfs::place(path), writing) {
            (Place::Results(rel), false) => match self.result_file(&rel).await {
                Ok(Some(bytes)) => {
                    let h = self.new_handle(Handle::File(Arc::new(bytes)));
                    self.reply(p::handle(id, &h)).await;
                }
                Ok(None) => {
                    self.status(
                        id,
                        Code::NoSuchFile,
                        &format!("/results/{rel}: no result (yet)"),
                    )
                    .await
                }
                Err((code, msg)) => self.status(id, code, &msg).await,
            },
            (Place::Results(_), true) => self.deny(id, "open", path, "/results is read-only").await,
            (Place::Inbox(rel), true) if !rel.is_empty() => {
                match self.open_upload(&rel, flags).await {
                    Ok(upload) => {
                        self.audit(
                            "sftp.open",
                            serde_json::json!({ "path": rel, "offset": upload.offset() }),
                        );
                        let tx = self.spawn_upload(upload, UPLOAD_QUEUE);
                        let h = self.new_handle(Handle::Upload(tx, rel));
                        self.reply(p::handle(id, &h)).await;
                    }
                    Err((Code::PermissionDenied, msg)) => self.deny(id, "open", &rel, &msg).await,
                    Err((code, msg)) => self.status(id, code, &msg).await,
                }
            }
            (Place::Inbox(_), false) => {
                let msg = "uploads cannot be read back; see /results";
                self.deny(id, "open", path, msg).await
            }
            _ => {
                let msg = vfs::refusal(path, "files can be written in /inbox and /precheck only");
                self.deny(id, "open", path, &msg).await
            }
        }
    }
}
