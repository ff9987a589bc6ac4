//! Latency histograms kept in sharded counters: a record is two plain raises in the
//! recording thread's shard, no lock.

use std::time::Duration;

use crate::shards::{ShardedCounters, Writer};

/// Upper bounds of the latency buckets, in seconds: from half a millisecond (a proxied
/// call on one machine) to ten seconds (a slow upstream near its deadline).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// [`LATENCY_BUCKETS`] in nanoseconds, compared against on the request path.
const BOUNDS_NANOS: [u64; 14] = [
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

/// Counters one histogram takes in a [`ShardedCounters`]: a count per bucket (each
/// counts only its own range, the last everything past the last bound; the total is
/// their sum) and the sum of the durations in nanoseconds.
pub const CELLS: usize = BOUNDS_NANOS.len() + 2;

/// A histogram as Prometheus exposes it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Sum of the recorded durations, in seconds.
    pub sum: f64,
    /// How many durations were recorded.
    pub count: u64,
    /// Cumulative counts by upper bound in seconds, ending with `+Inf`.
    pub buckets: Vec<(f64, u64)>,
}

/// Counts one duration into the histogram at `base`: one bucket raise, one sum raise.
#[inline]
pub fn record(writer: &Writer<'_>, base: usize, duration: Duration) {
    let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
    let slot = BOUNDS_NANOS
        .iter()
        .position(|bound| nanos <= *bound)
        .unwrap_or(BOUNDS_NANOS.len());
    writer.add(base + slot, 1);
    writer.add(base + CELLS - 1, nanos);
}

/// The histogram at `base` so far, cumulative as the exposition format wants it.
pub fn snapshot(counters: &ShardedCounters, base: usize) -> HistogramSnapshot {
    let mut running = 0;
    let buckets = LATENCY_BUCKETS
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .enumerate()
        .map(|(i, bound)| {
            running += counters.get(base + i);
            (bound, running)
        })
        .collect();
    HistogramSnapshot {
        sum: counters.get(base + CELLS - 1) as f64 / 1e9,
        count: running,
        buckets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_bucket_and_counts_are_cumulative() {
        // A second histogram after the first: each keeps to its own cells.
        let counters = ShardedCounters::new(2 * CELLS);
        let w = counters.writer();
        record(&w, CELLS, Duration::from_micros(400)); // <= 0.5 ms
        record(&w, CELLS, Duration::from_micros(500)); // a bound is inclusive (le)
        record(&w, CELLS, Duration::from_millis(3)); // <= 5 ms
        record(&w, CELLS, Duration::from_secs(60)); // past the last bound
        assert_eq!(snapshot(&counters, 0).count, 0);
        let s = snapshot(&counters, CELLS);
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(s.buckets[0], (0.0005, 2));
        assert_eq!(s.buckets[2], (0.0025, 2));
        assert_eq!(s.buckets[3], (0.005, 3));
        assert_eq!(s.buckets[13], (10.0, 3));
        assert_eq!(s.buckets[14], (f64::INFINITY, 4));
        assert!((s.sum - 60.0039).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn nanosecond_bounds_match_the_second_bounds() {
        for (secs, nanos) in LATENCY_BUCKETS.iter().zip(BOUNDS_NANOS) {
            assert_eq!((secs * 1e9).round() as u64, nanos);
        }
    }
}
