use std::time::Duration;

use tokio::time::Instant;

/// Exponential backoff between failed connection attempts to one host.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
}

impl Backoff {
    const BASE: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(10);

    /// Whether a connection attempt may be made now.
    pub(crate) fn ready(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    /// Counts a failed attempt; returns the failures in a row, this one included.
    pub(crate) fn failed(&mut self, now: Instant) -> u32 {
        self.failures = self.failures.saturating_add(1);
        let factor = 1u32 << self.failures.min(7).saturating_sub(1);
        let delay = (Self::BASE * factor).min(Self::MAX);
        self.retry_at = Some(now + delay);
        self.failures
    }

    /// Resets after a successful attempt; returns the failures in a row before it.
    pub(crate) fn succeeded(&mut self) -> u32 {
        self.retry_at = None;
        std::mem::take(&mut self.failures)
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_and_cap() {
        let now = Instant::now();
        let mut b = Backoff::default();
        assert!(b.ready(now));
        assert_eq!(b.failed(now), 1);
        assert!(!b.ready(now + Duration::from_millis(99)));
        assert!(b.ready(now + Duration::from_millis(100)));
        b.failed(now);
        assert!(!b.ready(now + Duration::from_millis(199)));
        for _ in 0..20 {
            b.failed(now);
        }
        assert!(b.ready(now + Backoff::MAX));
        assert_eq!(
            b.succeeded(),
            22,
            "the failures in a row before the success"
        );
        assert!(b.ready(now));
        assert_eq!(b.failures(), 0);
    }
}
