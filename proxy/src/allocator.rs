//! The global allocator (mimalloc, feature `mimalloc`) and how it gives memory back.
//!
//! mimalloc purges freed pages after a delay (1 s, ×10 for its arenas, in v3), and only
//! when the allocator is next busy. A proxy whose connections have all gone idle is not
//! busy: the memory its busy connections used stayed resident for good (0.62 KiB per
//! idle HTTP/1.1 connection, `bench/http/idle_conns.py` with 10,000 connections).
//! Purging at once fixes that but costs a page fault per HTTP request (a page that
//! empties between two requests is purged and faulted in again): a quarter of the
//! HTTP/1.1 throughput. So the delay stays, and [`trim_periodically`] forces the purge
//! once a second, which costs a few page faults a second under load.

use std::time::Duration;

// mimalloc: bench/run measured 2.63M Bolt requests per CPU-second with it against 2.21M
// with glibc malloc (the hot path allocates a frame box per message), for ~10 MiB more
// resident memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    // Provided by the mimalloc library that `libmimalloc-sys` links.
    fn mi_collect(force: bool);
}

/// How often freed memory is handed back to the OS.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(1);

/// Hands freed memory back to the OS now: retired pages of this thread's heap, and every
/// free range of mimalloc's arenas (process-wide), whatever their purge delay.
pub fn trim() {
    // SAFETY: `mi_collect(bool)` is part of mimalloc's public API and may be called at
    // any time from any thread; Rust's `bool` is C's `bool`.
    unsafe { mi_collect(true) }
}

/// Runs [`trim`] every [`TRIM_INTERVAL`] until the runtime stops.
pub async fn trim_periodically() {
    let mut tick = tokio::time::interval(TRIM_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        trim();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS line")
    }

    /// Once many small allocations are freed, a trim brings the process's resident
    /// memory back down with no other allocator activity (the idle proxy's case); without
    /// it the freed pages stay resident.
    #[test]
    fn trim_hands_freed_memory_back() {
        // 64 MiB in 1 KiB pieces, each written so its page is resident.
        let pieces: Vec<Box<[u8; 1024]>> = (0..65_536).map(|_| Box::new([1u8; 1024])).collect();
        let peak = rss_kib();
        drop(pieces);
        trim();
        let after = rss_kib();
        assert!(
            after + 32 * 1024 < peak,
            "resident memory {peak} KiB before the free, {after} KiB after: freed pages stayed"
        );
    }
}
