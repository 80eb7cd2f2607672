//! Per-tenant request rate (`quota.requests_per_second`): a token bucket per hospital,
//! refilled continuously, holding at most two seconds' worth, so a client may burst a
//! little but not flood. Kept in memory: a restart only forgives a moment's excess.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Limiter {
    /// Takes one token for `tenant` at `rate` per second; `false` when none is left.
    pub fn allow(&self, tenant: &str, rate: u32, now: Instant) -> bool {
        if rate == 0 {
            return true;
        }
        let cap = 2.0 * f64::from(rate);
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, at) = b.entry(tenant.to_string()).or_insert((cap, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * f64::from(rate)).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_of_twice_the_rate_then_the_rate() {
        let l = Limiter::default();
        let t0 = Instant::now();
        let burst = (0..100).take_while(|_| l.allow("a", 10, t0)).count();
        assert_eq!(burst, 20);
        assert!(l.allow("b", 10, t0), "tenants have their own buckets");
        let later = t0 + Duration::from_millis(500);
        let refill = (0..100).take_while(|_| l.allow("a", 10, later)).count();
        assert_eq!(refill, 5, "ten per second");
        assert!(l.allow("a", 0, later), "0 = unlimited");
    }
}
