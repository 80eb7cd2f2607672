//! The SSH window each session is offered: its share of the listener's write-buffer
//! pool, between 2 and 16 MiB.
//!
//! Why it moves: the window is how much a client may send before the gateway reads it.
//! One session alone needs a wide one to keep the loopback pipe full (16 MiB measured
//! ≈ 0.96× stock OpenSSH for a 1 GiB put, 2 MiB 0.66×). With many sessions the pool
//! (`sftp.write_buffer_mib`) is what the gateway can hold, and whatever a window allows
//! beyond the pool's share waits in the *client's* buffers instead: OpenSSH's `ssh`
//! then spends its CPU compacting and faulting in its growing output buffer (perf: 50
//! sessions cost the clients 1.8× their CPU per byte with 16 MiB windows). So a
//! session's target is `pool / sessions`, read each time russh tops the window up.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const MIN: u32 = 2 << 20;
const MAX: u32 = 16 << 20;

/// The open connections of one listener and the pool they share.
#[derive(Debug)]
pub(super) struct Windows {
    pool_bytes: u64,
    sessions: AtomicUsize,
}

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
pub(super) struct Counted(Arc<Windows>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Windows {
    pub(super) fn new(pool_mib: u64) -> Arc<Windows> {
        Arc::new(Windows {
            pool_bytes: pool_mib.max(1).saturating_mul(1 << 20),
            sessions: AtomicUsize::new(0),
        })
    }

    /// The widest window, the listener's template.
    pub(super) const WIDEST: u32 = MAX;

    pub(super) fn join(self: &Arc<Self>) -> Counted {
        self.sessions.fetch_add(1, Ordering::Relaxed);
        Counted(self.clone())
    }

    /// The window the next top-up offers.
    pub(super) fn target(&self) -> u32 {
        self.share(self.sessions.load(Ordering::Relaxed))
    }

    fn share(&self, sessions: usize) -> u32 {
        let n = sessions.max(1) as u64;
        let share = self.pool_bytes / n;
        u32::try_from(share).unwrap_or(MAX).clamp(MIN, MAX)
    }
}

/// The listener's SSH config with another initial window, for one connection. russh's
/// `Config` is not `Clone`, so every field is copied here by name: a field added by a
/// russh upgrade fails to compile here rather than silently taking its default.
pub(super) fn config_with_window(t: &russh::server::Config, window: u32) -> russh::server::Config {
    use russh::SshId;
    let server_id = match &t.server_id {
        SshId::Standard(s) => SshId::Standard(s.clone()),
        SshId::Raw(s) => SshId::Raw(s.clone()),
    };
    russh::server::Config {
        server_id,
        methods: t.methods.clone(),
        auth_rejection_time: t.auth_rejection_time,
        auth_rejection_time_initial: t.auth_rejection_time_initial,
        keys: t.keys.clone(),
        certificates: t.certificates.clone(),
        limits: t.limits.clone(),
        window_size: window,
        maximum_packet_size: t.maximum_packet_size,
        channel_buffer_size: t.channel_buffer_size,
        event_buffer_size: t.event_buffer_size,
        preferred: t.preferred.clone(),
        max_auth_attempts: t.max_auth_attempts,
        inactivity_timeout: t.inactivity_timeout,
        keepalive_interval: t.keepalive_interval,
        keepalive_max: t.keepalive_max,
        nodelay: t.nodelay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_narrows_with_sessions_within_its_bounds() {
        let w = Windows::new(32);
        assert_eq!(w.target(), MAX, "alone: the widest window");
        let a = w.join();
        let b = w.join();
        assert_eq!(w.target(), MAX, "two share 32 MiB: 16 each");
        let more: Vec<_> = (0..6).map(|_| w.join()).collect();
        assert_eq!(w.target(), 4 << 20, "eight share 32 MiB");
        let many: Vec<_> = (0..100).map(|_| w.join()).collect();
        assert_eq!(w.target(), MIN, "never below the floor");
        drop((a, b, more, many));
        assert_eq!(w.target(), MAX, "uncounted when sessions end");
    }
}
