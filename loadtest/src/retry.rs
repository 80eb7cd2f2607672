//! Riding out a gateway restart (`retry_seconds` in the scenario): after a failure a
//! transfer waits a moment and resumes from what the gateway says it holds, as a
//! hospital's client does, until it has gone `retry_seconds` without progress.

use std::time::{Duration, Instant};

/// How long a transfer may still try, since its last progress.
pub struct Patience {
    window: Duration,
    /// Set at the first failure since the last progress.
    since: Option<Instant>,
}

/// Pause between attempts: a restarting gateway is back in well under a second.
const PAUSE: Duration = Duration::from_millis(150);

impl Patience {
    pub fn new(retry_seconds: u64) -> Patience {
        Patience {
            window: Duration::from_secs(retry_seconds),
            since: None,
        }
    }

    /// Whether to try again after a failure; waits before saying yes. Always no when
    /// retries are off.
    pub async fn again(&mut self) -> bool {
        if self.window.is_zero() {
            return false;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.window {
            return false;
        }
        tokio::time::sleep(PAUSE).await;
        true
    }

    /// The transfer moved on: the window starts afresh at the next failure.
    pub fn progress(&mut self) {
        self.since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn off_means_no_retry_and_the_window_restarts_on_progress() {
        assert!(!Patience::new(0).again().await);
        let mut p = Patience::new(1);
        assert!(p.again().await);
        p.since = Some(Instant::now() - Duration::from_secs(2));
        assert!(!p.again().await);
        p.progress();
        assert!(p.again().await);
    }
}
