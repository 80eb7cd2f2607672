//! The brute-force defender: source addresses whose logins keep failing are refused
//! for a while, longer each time; and no address holds more than a set number of
//! sessions at once, nor any tenant from all its addresses together.
//!
//! A failure is a connection that ended without logging in after at least one refused
//! attempt, so a client trying its several keys in turn counts once, not once per key.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub max_failures: u32,
    pub lockout: Duration,
    pub max_lockout: Duration,
    pub max_sessions_per_ip: u32,
    pub max_sessions_per_tenant: u32,
}

impl Rules {
    pub fn from_config(c: &crate::config::SftpConfig) -> Rules {
        Rules {
            max_failures: c.max_auth_failures.max(1),
            lockout: Duration::from_secs(c.lockout_secs),
            max_lockout: Duration::from_secs(c.max_lockout_secs.max(c.lockout_secs)),
            max_sessions_per_ip: c.max_sessions_per_ip,
            max_sessions_per_tenant: c.max_sessions_per_tenant,
        }
    }
}

#[derive(Default)]
struct Entry {
    failures: u32,
    lockouts: u32,
    locked_until: Option<Instant>,
    sessions: u32,
}

pub struct Defender {
    rules: Rules,
    by_ip: Mutex<HashMap<IpAddr, Entry>>,
    by_tenant: Mutex<HashMap<String, u32>>,
}

/// Why a connection is turned away before its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Locked(Duration),
    TooManySessions,
}

impl Defender {
    pub fn new(rules: Rules) -> Defender {
        Defender {
            rules,
            by_ip: Mutex::new(HashMap::new()),
            by_tenant: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<IpAddr, Entry>) -> T) -> T {
        let mut g = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// A new connection from `ip`: admitted (and counted) or refused.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let max = self.rules.max_sessions_per_ip;
        self.with(|m| {
            let e = m.entry(ip).or_default();
            if let Some(until) = e.locked_until {
                if until > now {
                    return Err(Refusal::Locked(until - now));
                }
                e.locked_until = None;
            }
            if max > 0 && e.sessions >= max {
                return Err(Refusal::TooManySessions);
            }
            e.sessions += 1;
            Ok(())
        })
    }

    /// `tenant` logged in: counted, or `false` when it holds its limit of sessions.
    pub fn login(&self, tenant: &str) -> bool {
        let max = self.rules.max_sessions_per_tenant;
        let mut m = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(tenant.to_string()).or_default();
        if max > 0 && *n >= max {
            return false;
        }
        *n += 1;
        true
    }

    /// A session of `tenant` (one `login` let in) ended.
    pub fn logout(&self, tenant: &str) {
        let mut m = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(tenant);
            }
        }
    }

    /// A connection from `ip` ended; `failed` if it never logged in after a refusal.
    /// Returns the lockout this failure started, if any.
    pub fn ended(
        &self,
        ip: IpAddr,
        logged_in: bool,
        failed: bool,
        now: Instant,
    ) -> Option<Duration> {
        let rules = self.rules;
        self.with(|m| {
            let e = m.entry(ip).or_default();
            e.sessions = e.sessions.saturating_sub(1);
            if logged_in {
                e.failures = 0;
                e.lockouts = 0;
            } else if failed {
                e.failures += 1;
                if e.failures >= rules.max_failures {
                    let factor = 1u32.checked_shl(e.lockouts.min(16)).unwrap_or(u32::MAX);
                    let d = rules.lockout.saturating_mul(factor).min(rules.max_lockout);
                    e.failures = 0;
                    e.lockouts += 1;
                    e.locked_until = Some(now + d);
                    return Some(d);
                }
            }
            if e.sessions == 0 && e.failures == 0 && e.lockouts == 0 {
                m.remove(&ip);
            }
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lock_out_longer_each_time_and_a_login_resets() {
        let d = Defender::new(Rules {
            max_failures: 3,
            lockout: Duration::from_secs(10),
            max_lockout: Duration::from_secs(25),
            max_sessions_per_ip: 2,
            max_sessions_per_tenant: 2,
        });
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..3 {
            d.admit(ip, t0).unwrap();
            let lock = d.ended(ip, false, true, t0);
            assert_eq!(lock.is_some(), i == 2);
        }
        assert!(matches!(d.admit(ip, t0), Err(Refusal::Locked(_))));
        let later = t0 + Duration::from_secs(11);
        for _ in 0..3 {
            d.admit(ip, later).unwrap();
            d.ended(ip, false, true, later);
        }
        assert_eq!(
            d.admit(ip, later + Duration::from_secs(19)),
            Err(Refusal::Locked(Duration::from_secs(1))),
            "20 s the second time"
        );
        let free = later + Duration::from_secs(21);
        d.admit(ip, free).unwrap();
        d.admit(ip, free).unwrap();
        assert_eq!(d.admit(ip, free), Err(Refusal::TooManySessions));
        d.ended(ip, true, false, free);
        d.ended(ip, false, false, free);
        assert!(d.admit(ip, free).is_ok(), "a login clears the record");
    }

    #[test]
    fn a_tenant_holds_at_most_its_limit_of_sessions() {
        let d = Defender::new(Rules {
            max_failures: 3,
            lockout: Duration::from_secs(10),
            max_lockout: Duration::from_secs(25),
            max_sessions_per_ip: 0,
            max_sessions_per_tenant: 2,
        });
        assert!(d.login("a") && d.login("a"));
        assert!(!d.login("a"), "a third session is refused");
        assert!(d.login("b"), "other tenants are not affected");
        d.logout("a");
        assert!(d.login("a"), "a session ended makes room");
    }
}
