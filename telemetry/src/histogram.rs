//! Latency histograms kept in sharded counters: durations arrive bucketed
//! ([`Latencies`], counted per batch of a connection's requests) and are added with a
//! few plain raises in the recording thread's shard, no lock.

use strait_codec_framework::Latencies;

use crate::shards::{ShardedCounters, Writer};

/// Upper bounds of the latency buckets, in seconds: from half a millisecond (a proxied
/// call on one machine) to ten seconds (a slow upstream near its deadline).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counters one histogram takes in a [`ShardedCounters`]: a count per bucket (each
/// counts only its own range, the last everything past the last bound; the total is
/// their sum) and the sum of the durations in nanoseconds.
pub const CELLS: usize = LATENCY_BUCKETS_COUNT + 1;

/// Buckets per histogram (the bounds', then one past the last).
const LATENCY_BUCKETS_COUNT: usize = strait_codec_framework::LATENCY_BUCKETS;

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

/// Adds `latencies` (counted elsewhere, by the bounds of [`LATENCY_BUCKETS`]) to the
/// histogram at `base`: a raise per bucket that holds any, and one of the sum.
#[inline]
pub fn add(writer: &Writer<'_>, base: usize, latencies: &Latencies) {
    for (i, n) in latencies.buckets.iter().enumerate() {
        if *n != 0 {
            writer.add(base + i, u64::from(*n));
        }
    }
    writer.add(base + CELLS - 1, latencies.sum_nanos);
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
    use strait_codec_framework::LATENCY_BOUNDS_NANOS;

    use super::*;

    #[test]
    fn latencies_land_in_their_bucket_and_counts_are_cumulative() {
        // A second histogram after the first: each keeps to its own cells.
        let counters = ShardedCounters::new(2 * CELLS);
        let w = counters.writer();
        let mut l = Latencies::default();
        l.add(400_000); // <= 0.5 ms
        l.add(500_000); // a bound is inclusive (le)
        l.add(3_000_000); // <= 5 ms
        add(&w, CELLS, &l);
        let mut l = Latencies::default();
        l.add(60_000_000_000); // past the last bound
        add(&w, CELLS, &l);
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
        assert_eq!(LATENCY_BUCKETS.len(), LATENCY_BOUNDS_NANOS.len());
        for (secs, nanos) in LATENCY_BUCKETS.iter().zip(LATENCY_BOUNDS_NANOS) {
            assert_eq!((secs * 1e9).round() as u64, nanos);
        }
    }
}
