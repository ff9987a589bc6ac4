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

    pub(crate) fn failed(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        let factor = 1u32 << self.failures.min(7).saturating_sub(1);
        let delay = (Self::BASE * factor).min(Self::MAX);
        self.retry_at = Some(now + delay);
    }

    pub(crate) fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
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
        b.failed(now);
        assert!(!b.ready(now + Duration::from_millis(99)));
        assert!(b.ready(now + Duration::from_millis(100)));
        b.failed(now);
        assert!(!b.ready(now + Duration::from_millis(199)));
        for _ in 0..20 {
            b.failed(now);
        }
        assert!(b.ready(now + Backoff::MAX));
        b.succeeded();
        assert!(b.ready(now));
        assert_eq!(b.failures(), 0);
    }
}
