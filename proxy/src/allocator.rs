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

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;
use std::time::Duration;

// mimalloc: bench/run measured 2.63M Bolt requests per CPU-second with it against 2.21M
// with glibc malloc (the hot path allocates a frame box per message), for ~10 MiB more
// resident memory.
#[global_allocator]
static GLOBAL: Mimalloc = Mimalloc;

// Links the mimalloc library (built and linked by `libmimalloc-sys`, through the
// `mimalloc` crate) whose functions are declared below.
extern crate mimalloc as _;

unsafe extern "C" {
    // Provided by the mimalloc library that `libmimalloc-sys` links.
    fn mi_collect(force: bool);
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_zalloc(size: usize) -> *mut c_void;
    fn mi_realloc(p: *mut c_void, newsize: usize) -> *mut c_void;
    fn mi_free(p: *mut c_void);
    fn mi_malloc_aligned(size: usize, alignment: usize) -> *mut c_void;
    fn mi_zalloc_aligned(size: usize, alignment: usize) -> *mut c_void;
    fn mi_realloc_aligned(p: *mut c_void, newsize: usize, alignment: usize) -> *mut c_void;
}

/// Every mimalloc block is at least word-aligned (block sizes are whole words).
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc, called the way std's `System` calls malloc: plain `mi_malloc` when the
/// layout asks for no more than the word alignment every block has, the aligned entry
/// points otherwise. (The `mimalloc` crate's `MiMalloc` always takes
/// `mi_malloc_aligned`, whose fast path some sizes miss: a 96-byte frame box cost about
/// 200 instructions more per proxied Bolt request that way, measured with cachegrind.)
struct Mimalloc;

// SAFETY: every method forwards to the mimalloc function with the same contract (a
// pointer to at least `size` bytes aligned as asked, or null; frees and reallocations
// of pointers mimalloc returned), and only skips the alignment argument when mimalloc's
// word alignment already satisfies the layout.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl; the sizes and alignments come from a valid `Layout`.
        unsafe {
            if layout.align() <= WORD {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe {
            if layout.align() <= WORD {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`; the new block keeps its
        // alignment (word alignment, or the aligned entry point).
        unsafe {
            if layout.align() <= WORD {
                mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
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
    /// Over- and under-aligned layouts, zeroed and grown blocks: each as asked.
    #[test]
    fn allocations_are_aligned_as_asked() {
        for align in [1, 2, 4, 8, 16, 64, 4096] {
            for size in [1, 7, 8, 24, 96, 100, 5000] {
                let layout = Layout::from_size_align(size, align).expect("a valid layout");
                // SAFETY: a non-zero-sized layout; the blocks are freed with it.
                unsafe {
                    let p = GLOBAL.alloc(layout);
                    assert!(
                        !p.is_null() && (p as usize).is_multiple_of(align),
                        "{size}/{align}"
                    );
                    let z = GLOBAL.alloc_zeroed(layout);
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|b| *b == 0));
                    let grown = GLOBAL.realloc(p, layout, size * 3);
                    assert!(
                        !grown.is_null() && (grown as usize).is_multiple_of(align),
                        "{size}/{align} grown"
                    );
                    GLOBAL.dealloc(
                        grown,
                        Layout::from_size_align(size * 3, align).expect("valid"),
                    );
                    GLOBAL.dealloc(z, layout);
                }
            }
        }
    }

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
