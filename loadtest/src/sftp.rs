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
/// starts with one (`sealed.not_for_us: …`), else the SFTP status.
fn code(e: russh_sftp::client::error::Error) -> anyhow::Error {
    match e {
        russh_sftp::client::error::Error::Status(s) => match gateway_code(&s.error_message) {
            Some(c) => anyhow::anyhow!("{c}"),
            None => anyhow::anyhow!("sftp.{:?}", s.status_code),
        },
        other => anyhow::anyhow!("sftp.{other}"),
    }
}

/// The gateway's code (`sealed.not_for_us`) at the front of a status message, if any.
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

    async fn drop_connection(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "cut", "")
            .await;
    }
}

/// Sends `src` to `path` (under `/inbox`), cut once half-way and resumed when `cut`.
/// `conn` is the session to use and is replaced after a cut.
pub async fn upload(
    login: &Login,
    conn: &mut Option<Box<Conn>>,
    path: &str,
    src: &mut SealedSource,
    mut cut: bool,
    link_mb_per_s: f64,
    rec: &mut Record,
) -> Result<()> {
    let len = src.len();
    rec.sealed_bytes = len;
    let started = Instant::now();
    let mut offset = 0u64;
    // Bytes sent before the cut, while the resume is pending.
    let mut cut_at: Option<u64> = None;
    loop {
        if conn.is_none() {
            *conn = Some(Box::new(login.connect().await?));
        }
        let Some(c) = conn.as_ref() else { continue };
        let mut file = open(c, path, cut_at.is_some()).await?;
        if let Some(sent) = cut_at.take() {
            offset = held(c, path).await?;
            rec.retransmitted += sent.saturating_sub(offset);
            file.seek(SeekFrom::Start(offset)).await?;
        }
        while offset < len {
            let piece = tokio::task::block_in_place(|| src.read_at(offset, CHUNK))?;
            let n = piece.len() as u64;
            if cut && offset + n >= len / 2 {
                cut = false;
                let half = piece.len() / 2;
                file.write_all(&piece[..half]).await?;
                cut_at = Some(offset + half as u64);
                if let Some(c) = conn.take() {
                    c.drop_connection().await;
                }
                rec.resumed = true;
                break;
            }
            file.write_all(&piece).await?;
            offset += n;
            pace(started, offset, link_mb_per_s).await;
        }
        if cut_at.is_some() {
            continue;
        }
        // The close is the commit: its answer comes once the upload is accepted.
        return file.shutdown().await.map_err(|e| {
            let msg = e.to_string();
            // The I/O error wraps the status: its text may start with a prefix.
            let code = msg.split([':', ' ']).find(|w| gateway_code(w).is_some());
            anyhow::anyhow!("{}", code.unwrap_or("sftp.close_failed"))
        });
    }
}

/// How many bytes the gateway holds of `path` (`ls -l /inbox`).
async fn held(conn: &Conn, path: &str) -> Result<u64> {
    Ok(conn
        .sftp
        .metadata(path)
        .await
        .map_err(code)?
        .size
        .unwrap_or(0))
}

/// Opens `path` for writing: fresh (create, truncate) or to resume. Right after a cut
/// the gateway may still be closing the cut session's upload; the open is retried
/// (bounded) as a client's `reput` would be by its user.
async fn open(conn: &Conn, path: &str, resume: bool) -> Result<russh_sftp::client::fs::File> {
    let flags = if resume {
        OpenFlags::WRITE
    } else {
        OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE
    };
    let mut tries = 0;
    loop {
        match conn.sftp.open_with_flags(path, flags).await {
            Ok(f) => return Ok(f),
            Err(_) if resume && tries < 40 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(code(e)),
        }
    }
}
