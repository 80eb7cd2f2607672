//! One SSH connection: public-key login as the hospital code (user, source address, key,
//! in that order, each refusal counted by the defender), then session channels that
//! may run only the SFTP subsystem.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use russh::keys::HashAlg;
use russh::server::{Auth, Msg, Session};
use russh::{Channel, ChannelId};
use tokio::sync::watch;

use crate::session::{IngestCore, Principal};
use crate::telemetry::events::{AuthRefusal, InternalEvent, SshAuthRefused, SshLockout, SshLogin};
use crate::telemetry::metrics::METRICS;
use crate::tenants::Registry;

use super::{audit, defender, revoke, server, upload, window};

pub(super) struct Connection {
    pub(super) defender: Arc<defender::Defender>,
    /// Whether an attempt was refused (for the defender's count).
    pub(super) refused: bool,
    pub(super) peer: SocketAddr,
    pub(super) tenants: Registry,
    pub(super) core: Arc<IngestCore>,
    /// The tenant code once logged in.
    pub(super) tenant: Option<String>,
    /// Session channels opened but not yet given a subsystem.
    pub(super) channels: HashMap<ChannelId, Channel<Msg>>,
    /// SFTP subsystems running on this connection.
    pub(super) serving: Arc<AtomicUsize>,
    pub(super) max_channels: usize,
    /// Set once a login succeeded (the login deadline no longer applies).
    pub(super) logged_in: Arc<AtomicBool>,
    /// The listener's write-buffer pool.
    pub(super) pool: Arc<tokio::sync::Semaphore>,
    /// The listener's window shares, and this connection's place in them.
    pub(super) windows: Arc<window::Windows>,
    #[allow(dead_code)] // held for its Drop
    pub(super) counted: window::Counted,
    pub(super) temp_suffixes: Arc<[String]>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) in_flight: upload::InFlight,
    pub(super) login_key: revoke::LoginKey,
}

impl Connection {
    /// Checks user, source address and key, in that order; the first failure names the refusal.
    fn check(
        &self,
        user: &str,
        key: &russh::keys::PublicKey,
    ) -> Result<Option<String>, AuthRefusal> {
        let snapshot = self.tenants.snapshot();
        snapshot
            .ssh_login(user, key, self.peer.ip(), crate::util::unix_now())
            .map_err(|r| refusal(&r))
    }

    fn refuse(&mut self, user: &str, reason: AuthRefusal) -> Auth {
        // A tenant at its session limit is not guessing keys: no brute-force count.
        // Nor is a suspended one.
        self.refused |= !matches!(
            reason,
            AuthRefusal::TooManySessions | AuthRefusal::Suspended
        );
        SshAuthRefused {
            user,
            ip: Some(self.peer.ip()),
            reason,
        }
        .emit();
        let detail = serde_json::json!({ "user": user, "ip": self.peer.ip().to_string(), "reason": reason.as_str() });
        audit(&self.core, "ssh", "ssh.refused", detail);
        Auth::reject()
    }
}

/// The telemetry name of a tenants refusal.
pub(super) fn refusal(r: &crate::tenants::Refusal) -> AuthRefusal {
    use crate::tenants::Refusal;
    match r {
        Refusal::UnknownTenant => AuthRefusal::UnknownUser,
        Refusal::IpNotAllowed => AuthRefusal::IpNotAllowed,
        Refusal::KeyNotAuthorized => AuthRefusal::KeyNotAuthorized,
        Refusal::Suspended(_) => AuthRefusal::Suspended,
        Refusal::VendorNotAllowed => AuthRefusal::VendorNotAllowed,
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(tenant) = &self.tenant {
            METRICS.sessions_active.with_label_values(&["sftp"]).dec();
            self.defender.logout(tenant);
        }
        let ip = self.peer.ip();
        let now = std::time::Instant::now();
        if let Some(d) = self
            .defender
            .ended(ip, self.tenant.is_some(), self.refused, now)
        {
            SshLockout {
                ip,
                seconds: d.as_secs(),
            }
            .emit();
            let detail = serde_json::json!({ "ip": ip.to_string(), "seconds": d.as_secs() });
            audit(&self.core, "ssh", "ssh.lockout", detail);
        }
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    fn adjust_window(&mut self, _channel: ChannelId, _current: u32) -> u32 {
        self.windows.target()
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(match self.check(user, offer.public_key) {
            Ok(_) => Auth::Accept,
            Err(reason) => self.refuse(user, reason),
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let vendor = match self.check(user, key.public_key) {
            Ok(v) => v,
            Err(reason) => return Ok(self.refuse(user, reason)),
        };
        if self.tenant.is_some() {
            return Ok(Auth::Accept);
        }
        if !self.defender.login(user) {
            return Ok(self.refuse(user, AuthRefusal::TooManySessions));
        }
        let fingerprint = key.public_key.fingerprint(HashAlg::Sha256).to_string();
        SshLogin {
            tenant: user,
            ip: Some(self.peer.ip()),
            key_fingerprint: &fingerprint,
        }
        .emit();
        let detail = serde_json::json!({ "ip": self.peer.ip().to_string(), "key": fingerprint, "vendor": vendor });
        // A vendor acts with the hospital: the audit actor names both (rule 17).
        let actor = match &vendor {
            Some(v) => format!("{user} via vendor {v}"),
            None => user.to_string(),
        };
        audit(&self.core, &actor, "ssh.login", detail);
        METRICS.sessions_active.with_label_values(&["sftp"]).inc();
        self.tenant = Some(user.to_string());
        self.login_key
            .set(user, key.public_key.to_openssh().unwrap_or_default());
        self.logged_in.store(true, Ordering::Relaxed);
        Ok(Auth::Accept)
    }

    async fn auth_password(&mut self, user: &str, _password: &str) -> Result<Auth, Self::Error> {
        Ok(self.refuse(user, AuthRefusal::MethodNotAllowed))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() + self.serving.load(Ordering::Relaxed) >= self.max_channels {
            reply
                .reject(russh::ChannelOpenFailure::ResourceShortage)
                .await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        if name == "sftp"
            && let (Some(tenant), Some(ch)) = (self.tenant.clone(), self.channels.remove(&channel))
        {
            session.channel_success(channel)?;
            let ctx = server::ChannelContext {
                core: self.core.clone(),
                who: Principal {
                    tenant,
                    protocol: "sftp",
                },
                peer: self.peer.ip(),
                temp_suffixes: self.temp_suffixes.clone(),
                stop: self.stop.clone(),
                in_flight: self.in_flight.clone(),
                pool: self.pool.clone(),
            };
            let serving = self.serving.clone();
            serving.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                server::serve(ch.into_stream(), ctx).await;
                serving.fetch_sub(1, Ordering::Relaxed);
            });
            return Ok(());
        }
        session.channel_success(channel)?;
        let msg = format!("gateway: unknown subsystem `{name}`; only sftp is offered\r\n");
        end_channel(channel, session, &msg)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        end_channel(
            channel,
            session,
            "gateway: no shell here; use an SFTP client\r\n",
        )
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        end_channel(
            channel,
            session,
            "gateway: no commands here; use an SFTP client\r\n",
        )
    }
}

fn end_channel(channel: ChannelId, session: &mut Session, msg: &str) -> Result<(), russh::Error> {
    session.extended_data(channel, 1, msg.as_bytes().to_vec())?;
    session.exit_status_request(channel, 1)?;
    session.eof(channel)?;
    session.close(channel)?;
    Ok(())
}
