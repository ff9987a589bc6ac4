//! Requests counted in groups: what a hook that only counts (metrics) hears, once per
//! batch of a connection's ends, instead of one record per request
//! ([`crate::RequestHook::on_requests_counted`]).

use crate::Outcome;

/// Upper bounds of the latency buckets, in nanoseconds: from half a millisecond (a
/// proxied call on one machine) to ten seconds (a slow upstream near its deadline).
pub const LATENCY_BOUNDS_NANOS: [u64; 14] = [
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Buckets of a [`Latencies`]: one per bound, then one past the last.
pub const LATENCY_BUCKETS: usize = LATENCY_BOUNDS_NANOS.len() + 1;

/// Durations counted by [`LATENCY_BOUNDS_NANOS`] bucket, with their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latencies {
    /// How many durations fell in each bucket (each counts only its own range: up to
    /// its bound and above the one before; the last, everything past the last bound).
    pub buckets: [u32; LATENCY_BUCKETS],
    /// Their sum, in nanoseconds.
    pub sum_nanos: u64,
}

impl Latencies {
    /// Counts one duration of `nanos` nanoseconds.
    #[inline]
    pub fn add(&mut self, nanos: u64) {
        if let Some(count) = self.buckets.get_mut(bucket(nanos)) {
            *count += 1;
        }
        self.sum_nanos = self.sum_nanos.wrapping_add(nanos);
    }

    /// How many durations were counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|n| u64::from(*n)).sum()
    }
}

/// The bucket of a duration of `nanos` nanoseconds.
#[inline]
pub fn bucket(nanos: u64) -> usize {
    LATENCY_BOUNDS_NANOS
        .iter()
        .position(|bound| nanos <= *bound)
        .unwrap_or(LATENCY_BOUNDS_NANOS.len())
}

/// Requests of one route, cluster, host and outcome that ended in one batch of a
/// connection, with their bytes and times when a hook asked for them
/// ([`crate::RequestHook::wants_counts`]; zero otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCount {
    /// The route's position in its listener's table ([`RequestCount::NONE`]: none
    /// matched).
    pub route: u32,
    /// The cluster's position in the configuration ([`RequestCount::NONE`]: none).
    pub cluster: u32,
    /// The host's position in its cluster ([`RequestCount::NONE`]: none was tried).
    pub host: u32,
    /// How they ended.
    pub outcome: Outcome,
    /// How many.
    pub n: u64,
    /// Bytes of the requests as received.
    pub request_bytes: u64,
    /// Bytes of the answers sent to callers.
    pub response_bytes: u64,
    /// From each request's decoded head to its outcome.
    pub total: Latencies,
    /// From each request's last write upstream to its outcome, for those written.
    pub upstream: Latencies,
}

impl RequestCount {
    /// "None" for `route`, `cluster` and `host`.
    pub const NONE: u32 = u32::MAX;

    /// No request yet of (`route`, `cluster`, `host`, `outcome`).
    pub fn new(route: u32, cluster: u32, host: u32, outcome: Outcome) -> Self {
        RequestCount {
            route,
            cluster,
            host,
            outcome,
            n: 0,
            request_bytes: 0,
            response_bytes: 0,
            total: Latencies::default(),
            upstream: Latencies::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_bucket() {
        let mut l = Latencies::default();
        l.add(400_000); // <= 0.5 ms
        l.add(500_000); // a bound is inclusive (le)
        l.add(3_000_000); // <= 5 ms
        l.add(60_000_000_000); // past the last bound
        assert_eq!(l.buckets[0], 2);
        assert_eq!(l.buckets[3], 1);
        assert_eq!(l.buckets[LATENCY_BUCKETS - 1], 1);
        assert_eq!(l.count(), 4);
        assert_eq!(l.sum_nanos, 60_003_900_000);
    }
}
