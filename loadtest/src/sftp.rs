//! SFTP as a hospital's client does it: russh (key login) and russh-sftp (pipelined
//! writes). A cut drops the connection mid-file; the resume logs in again, asks how many
//! bytes the gateway holds (`stat`, as OpenSSH `reput` does) and writes on from there.

use std::io::SeekFrom;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use gateway::sealed::SealedSource;
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::OpenFlags;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::report::Record;
use crate::retry::Patience;
use crate::run::{CHUNK, pace};

/// One hospital's SFTP login.
pub struct Login {
    pub addr: SocketAddr,
    pub user: String,
    pub key: Arc<PrivateKey>,
}

struct Client;

impl russh::client::Handler for Client {
    type Error = russh::Error;

    /// The load generator targets a gateway on loopback only (`main` refuses anything
    /// else), so its host key is taken as offered.
    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// A logged-in SFTP session.
pub struct Conn {
    handle: russh::client::Handle<Client>,
    sftp: SftpSession,
}

/// An SFTP failure as a short code: the gateway's own code when its status message
/// starts with one (`sealed.not_a_recipient: …`), else the SFTP status.
fn code(e: russh_sftp::client::error::Error) -> anyhow::Error {
    match e {
        russh_sftp::client::error::Error::Status(s) => match gateway_code(&s.error_message) {
            Some(c) => anyhow::anyhow!("{c}"),
            None => anyhow::anyhow!("sftp.{:?}", s.status_code),
        },
        other => anyhow::anyhow!("sftp.{other}"),
    }
}

/// The gateway's code (`sealed.not_a_recipient`) at the front of a status message, if any.
fn gateway_code(msg: &str) -> Option<&str> {
    msg.split([':', ' '])
        .find(|w| !w.is_empty())
        .filter(|w| w.contains('.'))
}

impl Login {
    pub async fn connect(&self) -> Result<Conn> {
        let config = Arc::new(russh::client::Config {
            window_size: 16 << 20,
            ..Default::default()
        });
        let mut handle = russh::client::connect(config, self.addr, Client).await?;
        let key = PrivateKeyWithHashAlg::new(self.key.clone(), None);
        let auth = handle.authenticate_publickey(&self.user, key).await?;
        anyhow::ensure!(auth.success(), "sftp.auth_refused");
        let channel = handle.channel_open_session().await?;
        channel.request_subsystem(true, "sftp").await?;
        let sftp = SftpSession::new(channel.into_stream())
            .await
            .map_err(code)?;
        sftp.set_timeout(120);
        Ok(Conn { handle, sftp })
    }
}

impl Conn {
    pub async fn mkdir(&self, path: &str) -> Result<()> {
        self.sftp.create_dir(path).await.map_err(code)
    }

    pub async fn exists(&self, path: &str) -> bool {
        self.sftp.metadata(path).await.is_ok()
    }

    async fn drop_connection(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "cut", "")
            .await;
    }
}

/// Why an attempt ended: refused by the gateway (final), or the connection was lost
/// (resumable with `retry_seconds`).
enum Stop {
    Refused(anyhow::Error),
    Lost(anyhow::Error),
}

impl Stop {
    /// A failure of the session or its connection: final when the gateway's own code
    /// says so, resumable otherwise — and for the codes that say "not now" (a restart,
    /// the upload still held by a connection another node is closing, the catalog or
    /// the store unreachable for a moment), which a hospital's client retries.
    fn of(e: anyhow::Error) -> Stop {
        let text = e.to_string();
        let code = text
            .split([':', ' '])
            .find(|w| gateway_code(w).is_some() && !w.starts_with("sftp."));
        match code {
            Some(c) if !NOT_NOW.contains(&c) => Stop::Refused(e),
            _ => Stop::Lost(e),
        }
    }
}

/// The gateway's codes for a refusal that holds only for now.
const NOT_NOW: [&str; 5] = [
    "gateway.shutting_down",
    "ingest.busy",
    "ingest.io",
    "catalog.unavailable",
    "objects.unavailable",
];

/// Where one transfer is.
struct Transfer<'a> {
    path: &'a str,
    len: u64,
    offset: u64,
    /// The connection was cut (on purpose or not) after sending this much: the next
    /// attempt resumes from what the gateway holds.
    resume: Option<u64>,
    cut: bool,
    link_mb_per_s: f64,
    started: Instant,
}

/// Sends `src` to `path` (under `/inbox`), cut once half-way and resumed when `cut`;
/// with `retry_seconds`, a lost connection is resumed the same way. `conn` is the
/// session to use and is replaced after a cut.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    login: &Login,
    conn: &mut Option<Box<Conn>>,
    path: &str,
    src: &mut SealedSource,
    cut: bool,
    link_mb_per_s: f64,
    rec: &mut Record,
    retry_seconds: u64,
) -> Result<()> {
    let mut t = Transfer {
        path,
        len: src.len(),
        offset: 0,
        resume: None,
        cut,
        link_mb_per_s,
        started: Instant::now(),
    };
    rec.sealed_bytes = t.len;
    let mut patience = Patience::new(retry_seconds);
    loop {
        match attempt(login, conn, &mut t, src, rec).await {
            Ok(true) => return Ok(()),
            Ok(false) => patience.progress(),
            Err(Stop::Lost(e)) => {
                if !patience.again().await {
                    return Err(e);
                }
                if let Some(c) = conn.take() {
                    c.drop_connection().await;
                }
                rec.resumed = true;
                t.resume = Some(t.offset);
            }
            Err(Stop::Refused(e)) => return Err(e),
        }
    }
}

/// One session's go at the transfer: `Ok(true)` once the close (the commit) is
/// answered, `Ok(false)` after a deliberate cut.
async fn attempt(
    login: &Login,
    conn: &mut Option<Box<Conn>>,
    t: &mut Transfer<'_>,
    src: &mut SealedSource,
    rec: &mut Record,
) -> Result<bool, Stop> {
    if conn.is_none() {
        *conn = Some(Box::new(login.connect().await.map_err(Stop::Lost)?));
    }
    let Some(c) = conn.as_ref() else {
        return Ok(false);
    };
    // Resuming: open first (the gateway may still be closing the cut session's upload,
    // and until then the name is not free), then ask how much it holds.
    let mut file = match t.resume.take() {
        Some(sent) => match open(c, t.path, true).await? {
            Opened::File(file) => {
                let mut file = *file;
                let held = held(c, t.path).await?.unwrap_or(0);
                rec.resent(sent.saturating_sub(held));
                t.offset = held;
                file.seek(SeekFrom::Start(held))
                    .await
                    .map_err(|e| Stop::Lost(e.into()))?;
                file
            }
            // Accepted before the close's answer was lost: nothing left to send.
            Opened::Accepted if held(c, t.path).await? == Some(t.len) => return Ok(true),
            Opened::Accepted => {
                return Err(Stop::Refused(anyhow::anyhow!("sftp.PermissionDenied")));
            }
            // Lost before it was opened at all: start it.
            Opened::Absent => fresh(c, t).await?,
        },
        None => fresh(c, t).await?,
    };
    while t.offset < t.len {
        let piece = tokio::task::block_in_place(|| src.read_at(t.offset, CHUNK))
            .map_err(|e| Stop::Refused(e.into()))?;
        let n = piece.len() as u64;
        if t.cut && t.offset + n >= t.len / 2 {
            t.cut = false;
            let half = piece.len() / 2;
            file.write_all(&piece[..half])
                .await
                .map_err(|e| Stop::of(e.into()))?;
            t.resume = Some(t.offset + half as u64);
            if let Some(c) = conn.take() {
                c.drop_connection().await;
            }
            rec.resumed = true;
            return Ok(false);
        }
        file.write_all(&piece)
            .await
            .map_err(|e| Stop::of(e.into()))?;
        t.offset += n;
        pace(t.started, t.offset, t.link_mb_per_s).await;
    }
    // The close is the commit: its answer comes once the upload is accepted.
    file.shutdown().await.map_err(|e| {
        let msg = e.to_string();
        // The I/O error wraps the status: its text may start with a prefix.
        let code = msg.split([':', ' ']).find(|w| gateway_code(w).is_some());
        Stop::of(anyhow::anyhow!("{}", code.unwrap_or("sftp.close_failed")))
    })?;
    Ok(true)
}

/// How many bytes the gateway holds of `path` (`ls -l /inbox`); `None` when it has
/// no such upload (the connection was lost before it was opened).
async fn held(conn: &Conn, path: &str) -> Result<Option<u64>, Stop> {
    match conn.sftp.metadata(path).await {
        Ok(m) => Ok(Some(m.size.unwrap_or(0))),
        Err(russh_sftp::client::error::Error::Status(s))
            if s.status_code == russh_sftp::protocol::StatusCode::NoSuchFile =>
        {
            Ok(None)
        }
        Err(e) => Err(Stop::of(code(e))),
    }
}

async fn fresh(c: &Conn, t: &mut Transfer<'_>) -> Result<russh_sftp::client::fs::File, Stop> {
    t.offset = 0;
    match open(c, t.path, false).await? {
        Opened::File(f) => Ok(*f),
        _ => Err(Stop::Refused(anyhow::anyhow!("sftp.PermissionDenied"))),
    }
}

/// What opening for writing found.
enum Opened {
    File(Box<russh_sftp::client::fs::File>),
    /// Refused as a file already accepted (rule 10).
    Accepted,
    /// No such upload (only when resuming).
    Absent,
}

/// Opens `path` for writing: fresh (create, truncate) or to resume. Right after a cut
/// the gateway may still be closing the cut session's upload; the open is retried
/// (bounded) as a client's `reput` would be by its user.
async fn open(conn: &Conn, path: &str, resume: bool) -> Result<Opened, Stop> {
    use russh_sftp::protocol::StatusCode;
    let flags = if resume {
        OpenFlags::WRITE
    } else {
        OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE
    };
    let mut tries = 0;
    loop {
        match conn.sftp.open_with_flags(path, flags).await {
            Ok(f) => return Ok(Opened::File(Box::new(f))),
            Err(russh_sftp::client::error::Error::Status(s))
                if s.status_code == StatusCode::PermissionDenied =>
            {
                return Ok(Opened::Accepted);
            }
            Err(russh_sftp::client::error::Error::Status(s))
                if resume && s.status_code == StatusCode::NoSuchFile && tries >= 40 =>
            {
                return Ok(Opened::Absent);
            }
            Err(_) if resume && tries < 40 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(Stop::of(code(e))),
        }
    }
}
