//! Uploads over SFTP: opening a file for writing, the task that owns each open upload,
//! uploads under a temporary name that a `rename` completes, and `remove`.
//!
//! Each open upload has its own task holding the session's [`Upload`]: writes queue
//! there in arrival order (so one file's bytes stay ordered while the read loop goes on
//! decoding the client's next requests), neighbouring writes are coalesced into one
//! `write_at`, and the `close` reply is sent only once acceptance is durable.
//!
//! A file whose name ends in a temporary suffix (`[sftp] temp_suffixes`: WinSCP's
//! `.filepart`, rclone's `.partial`, …) is made durable at `close` but not accepted; the
//! client's `rename` to the final name is the commit, and its reply waits for acceptance.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use super::protocol::{self as p, Attrs, Code};
use super::server::{Replies, Sftp, ingest_error, ingest_status};
use super::vfs::{self, Place};
use crate::session::{Renamed, Upload};

/// Writes merged into one `write_at` at most (OpenSSH sends 255 KiB each). 1 MiB keeps
/// the per-write overhead small while an upload holds at most about that much plaintext
/// between writes (4 MiB made 100 concurrent uploads hold ~400 MiB).
const COALESCE_BYTES: usize = 1 << 20;

pub(super) enum UploadCmd {
    Write {
        id: u32,
        offset: u64,
        packet: Vec<u8>,
        start: usize,
        /// Its share of the listener's write-buffer pool, given back once written.
        held: tokio::sync::OwnedSemaphorePermit,
    },
    Fstat {
        id: u32,
    },
    Close {
        id: u32,
    },
}

/// Uploads in flight on one connection. At shutdown a connection is closed only once
/// its count is zero (or the grace period is over), so a file being closed is accepted.
#[derive(Clone)]
pub struct InFlight(Arc<watch::Sender<usize>>);

/// One upload counted in an [`InFlight`] until dropped.
pub(super) struct InFlightGuard(Arc<watch::Sender<usize>>);

impl InFlight {
    pub fn new() -> InFlight {
        InFlight(Arc::new(watch::channel(0).0))
    }

    pub(super) fn enter(&self) -> InFlightGuard {
        self.0.send_modify(|n| *n += 1);
        InFlightGuard(self.0.clone())
    }

    /// Returns once no upload has been in flight for `quiet`: long enough for the last
    /// `close` reply to reach the client before the connection is closed.
    pub async fn settled(&self, quiet: std::time::Duration) {
        let mut rx = self.0.subscribe();
        loop {
            let _ = rx.wait_for(|n| *n == 0).await;
            tokio::time::sleep(quiet).await;
            if *rx.borrow_and_update() == 0 {
                return;
            }
        }
    }
}

impl Default for InFlight {
    fn default() -> Self {
        InFlight::new()
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Temporary-named uploads that were closed and await their `rename`, by name. Holding
/// them spares re-reading the spooled bytes to rebuild the verifier at the rename.
pub(super) type Parked = Arc<Mutex<HashMap<String, Upload>>>;

pub(super) fn is_temp(name: &str, suffixes: &[String]) -> bool {
    suffixes
        .iter()
        .any(|s| !s.is_empty() && name.ends_with(s.as_str()))
}

fn park(parked: &Parked, up: Upload) {
    let mut m = parked.lock().unwrap_or_else(|p| p.into_inner());
    m.insert(up.name().to_string(), up);
}

fn unpark(parked: &Parked, name: &str) -> Option<Upload> {
    let mut m = parked.lock().unwrap_or_else(|p| p.into_inner());
    m.remove(name)
}

impl Sftp {
    /// Opens `rel` for writing (the session decides: resume, start over on truncate,
    /// or refuse an accepted name, rule 10).
    pub(super) async fn open_upload(
        &self,
        rel: &str,
        flags: u32,
    ) -> Result<Upload, (Code, String)> {
        if *self.ctx.stop.borrow() {
            let msg = "gateway.shutting_down: the gateway is restarting; resume in a moment";
            return Err((Code::Failure, msg.into()));
        }
        let held = unpark(&self.parked, rel);
        self.ctx
            .core
            .open_for_write(&self.ctx.who, rel, flags & p::FXF_TRUNC != 0, held)
            .await
            .map_err(|e| ingest_error(&e))
    }

    /// Starts the task that owns `upload`; returns the queue its writes go to.
    pub(super) fn spawn_upload(&self, upload: Upload, queue: usize) -> mpsc::Sender<UploadCmd> {
        let (tx, rx) = mpsc::channel(queue);
        let temp = is_temp(upload.name(), &self.ctx.temp_suffixes);
        let task = UploadTask {
            replies: self.replies.clone(),
            parked: temp.then(|| self.parked.clone()),
            _counted: self.ctx.in_flight.enter(),
        };
        tokio::spawn(task.run(upload, rx));
        tx
    }

    /// `rename` inside `/inbox`: gives a partial upload (typically one under a temporary
    /// name) its final name and, unless that is temporary too, commits it. The reply
    /// comes after acceptance. Accepted files are never renamed or replaced.
    pub(super) async fn rename(&mut self, id: u32, from: &str, to: &str) {
        let (Place::Inbox(from), Place::Inbox(to)) = (vfs::place(from), vfs::place(to)) else {
            let why = vfs::refusal(from, "files can be renamed in /inbox and /precheck only");
            let msg = vfs::refusal(to, &why);
            return self.deny(id, "rename", from, &msg).await;
        };
        if crate::session::names::is_precheck(&from) != crate::session::names::is_precheck(&to) {
            let msg = "a pre-check stays a pre-check: send the file to /inbox to submit it";
            return self.deny(id, "rename", &from, msg).await;
        }
        if from.is_empty() || to.is_empty() {
            return self.deny(id, "rename", &from, "/inbox itself stays").await;
        }
        if let Err(e) = self.ctx.core.may_rename(&self.ctx.who, &from, &to).await {
            let (code, msg) = ingest_error(&e);
            if code == Code::PermissionDenied {
                return self.deny(id, "rename", &from, &msg).await;
            }
            return self.status(id, code, &msg).await;
        }
        if self.open_names().any(|n| n == from) {
            let msg = "the file is still open; close it before renaming";
            return self.status(id, Code::Failure, msg).await;
        }
        let up = match unpark(&self.parked, &from) {
            Some(up) => Ok(up),
            None => self.ctx.core.open(&self.ctx.who, &from, None).await,
        };
        let reply = match up {
            Ok(up) => self.commit_renamed(id, up, &from, &to).await,
            Err(e) => ingest_status(id, &e),
        };
        self.audit(
            "sftp.rename",
            serde_json::json!({ "from": from, "to": to, "ok": p::is_ok(&reply) }),
        );
        self.reply(reply).await;
    }

    async fn commit_renamed(&self, id: u32, up: Upload, from: &str, to: &str) -> Vec<u8> {
        let keep = is_temp(to, &self.ctx.temp_suffixes);
        match up.rename_into_place(to, keep).await {
            Ok(Renamed::Committed) => p::status(id, Code::Ok, ""),
            Ok(Renamed::Kept(up)) => {
                park(&self.parked, *up);
                p::status(id, Code::Ok, "")
            }
            Err((e, held)) => {
                if let Some(up) = held.filter(|up| up.name() == from) {
                    park(&self.parked, *up);
                }
                ingest_status(id, &e)
            }
        }
    }

    pub(super) async fn remove(&mut self, id: u32, path: &str) {
        let Place::Inbox(rel) = vfs::place(path) else {
            let msg = vfs::refusal(path, "files can be removed in /inbox and /precheck only");
            return self.deny(id, "remove", path, &msg).await;
        };
        drop(unpark(&self.parked, &rel));
        match self.ctx.core.remove(&self.ctx.who, &rel).await {
            Ok(()) => self.status(id, Code::Ok, "").await,
            Err(e) => {
                let (code, msg) = ingest_error(&e);
                if code == Code::PermissionDenied {
                    return self.deny(id, "remove", &rel, &msg).await;
                }
                self.status(id, code, &msg).await
            }
        }
    }
}

/// Owns one open upload: applies its writes in order, coalescing neighbours, and
/// commits it on close. If the channel goes away without a close, what arrived is made
/// durable so that a later `reput` continues from it.
struct UploadTask {
    replies: Replies,
    /// Where a temporary-named upload waits for its rename after `close`.
    parked: Option<Parked>,
    _counted: InFlightGuard,
}

impl UploadTask {
    async fn run(self, mut up: Upload, mut rx: mpsc::Receiver<UploadCmd>) {
        let mut next = rx.recv().await;
        while let Some(cmd) = next.take() {
            match cmd {
                UploadCmd::Write {
                    id,
                    offset,
                    packet,
                    start,
                    held,
                } => {
                    let mut ids = vec![id];
                    let mut permits = vec![held];
                    // One copy per byte, from the packets into the buffer handed to the
                    // session. Sized for what is queued now, so it never grows (and copies).
                    let each = packet.len() - start;
                    let mut buf =
                        Vec::with_capacity((each * (1 + rx.len())).min(COALESCE_BYTES + each));
                    buf.extend_from_slice(&packet[start..]);
                    drop(packet);
                    while buf.len() < COALESCE_BYTES {
                        match rx.try_recv() {
                            Ok(UploadCmd::Write {
                                id,
                                offset: o,
                                packet,
                                start,
                                held,
                            }) if o == offset + buf.len() as u64 => {
                                buf.extend_from_slice(&packet[start..]);
                                ids.push(id);
                                permits.push(held);
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let result = up.write_at(offset, buf).await;
                    drop(permits);
                    for id in ids {
                        let reply = match &result {
                            Ok(()) => p::status(id, Code::Ok, ""),
                            Err(e) => ingest_status(id, e),
                        };
                        let _ = self.replies.send(reply).await;
                    }
                }
                UploadCmd::Fstat { id } => {
                    let a = Attrs::file(up.offset(), crate::util::unix_now() as u32);
                    let _ = self.replies.send(p::attrs(id, &a)).await;
                }
                UploadCmd::Close { id } => {
                    let reply = self.close(id, up).await;
                    let _ = self.replies.send(reply).await;
                    return;
                }
            }
            if next.is_none() {
                next = rx.recv().await;
            }
        }
        if let Err(e) = up.suspend().await {
            tracing::warn!(code = e.code(), error = %e, "could not make a suspended upload durable");
        }
    }

    /// `close`: the commit point, or for a temporary name, durable and parked.
    async fn close(&self, id: u32, mut up: Upload) -> Vec<u8> {
        let Some(parked) = &self.parked else {
            return match up.finish().await {
                Ok(_) => p::status(id, Code::Ok, ""),
                Err(e) => ingest_status(id, &e),
            };
        };
        match up.sync().await {
            Ok(_) => {
                park(parked, up);
                p::status(id, Code::Ok, "")
            }
            Err(e) => ingest_status(id, &e),
        }
    }
}
