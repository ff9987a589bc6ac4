//! Counters that worker threads raise without atomic read-modify-writes: each thread
//! that records gets a shard of its own and is its only writer, so a raise is a plain
//! load and store (no `lock` prefix, no cache line shared with another writer); a
//! scrape sums the shards. Threads past [`OWN_SHARDS`] share the last shard and raise it
//! with atomic adds, so no count is ever lost.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Threads that get a shard of their own (a proxy runs one worker per core).
pub const OWN_SHARDS: usize = 15;
/// Shards in all: the owned ones and the shared one.
const SHARDS: usize = OWN_SHARDS + 1;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's shard: its own while there are any left, then the shared one.
fn shard() -> usize {
    SHARD.with(|s| {
        let mine = s.get();
        if mine != usize::MAX {
            return mine;
        }
        let mine = NEXT_SHARD.fetch_add(1, Ordering::Relaxed).min(OWN_SHARDS);
        s.set(mine);
        mine
    })
}

/// A fixed set of `u64` counters, one copy per shard.
#[derive(Debug)]
pub struct ShardedCounters {
    /// Counters per shard, rounded up to whole cache lines.
    stride: usize,
    cells: Box<[AtomicU64]>,
}

impl ShardedCounters {
    /// `len` counters, all zero.
    pub fn new(len: usize) -> Self {
        let stride = len.div_ceil(8) * 8;
        ShardedCounters {
            stride,
            cells: (0..stride * SHARDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The calling thread's writer of these counters.
    #[inline]
    pub fn writer(&self) -> Writer<'_> {
        let shard = shard();
        Writer {
            shared: shard == OWN_SHARDS,
            cells: &self.cells[shard * self.stride..(shard + 1) * self.stride],
        }
    }

    /// Counter `i`, summed over the shards.
    pub fn get(&self, i: usize) -> u64 {
        (0..SHARDS)
            .map(|s| self.cells[s * self.stride + i].load(Ordering::Relaxed))
            .fold(0u64, u64::wrapping_add)
    }
}

/// One thread's view of a [`ShardedCounters`].
pub struct Writer<'a> {
    shared: bool,
    cells: &'a [AtomicU64],
}

impl Writer<'_> {
    /// Adds `n` to counter `i` (past the end: ignored).
    #[inline]
    pub fn add(&self, i: usize, n: u64) {
        let Some(cell) = self.cells.get(i) else {
            return;
        };
        if self.shared {
            cell.fetch_add(n, Ordering::Relaxed);
        } else {
            // This thread is the shard's only writer: no read-modify-write needed.
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_threads_lose_no_count() {
        let counters = std::sync::Arc::new(ShardedCounters::new(3));
        // More threads than own shards: the rest share one, atomically.
        let threads: Vec<_> = (0..OWN_SHARDS + 9)
            .map(|_| {
                let c = counters.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        let w = c.writer();
                        w.add(0, 1);
                        w.add(2, 2);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = (OWN_SHARDS as u64 + 9) * 10_000;
        assert_eq!(counters.get(0), n);
        assert_eq!(counters.get(1), 0);
        assert_eq!(counters.get(2), 2 * n);
    }
}
