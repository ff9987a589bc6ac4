//! The global allocator (mimalloc, feature `mimalloc`) and how it gives memory back.
//!
//! mimalloc keeps freed pages for `purge_delay` (1 s in v3) and purges them only on
//! later allocator activity. A proxy whose connections have all gone idle has no later
//! activity: the memory its busy connections used stays resident for good (measured:
//! 0.62 KiB per idle HTTP/1.1 connection with the default, 0.34 with immediate
//! purging, `bench/http/idle_conns.py`, 10,000 connections). So freed pages go back to
//! the OS at once, unless the operator sets `MIMALLOC_PURGE_DELAY` themselves. Under
//! load a page rarely becomes wholly free, so this costs few `madvise` calls
//! (`bench/run`'s throughput did not move).

use std::os::raw::{c_int, c_long};

// mimalloc: bench/run measured 2.63M Bolt requests per CPU-second with it against 2.21M
// with glibc malloc (the hot path allocates a frame box per message), for ~10 MiB more
// resident memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in `mimalloc.h` (the same index in v2 and v3).
const MI_OPTION_PURGE_DELAY: c_int = 15;

unsafe extern "C" {
    // Provided by the mimalloc library that `libmimalloc-sys` links.
    fn mi_option_set(option: c_int, value: c_long);
}

/// Makes freed memory go back to the OS at once, unless `MIMALLOC_PURGE_DELAY` is set.
pub fn return_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mimalloc's options are plain integers it reads atomically; setting one at
    // any time is supported (`mi_option_set` is part of its public API).
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
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

    /// What the option is for: once many small allocations are freed, the process's
    /// resident memory falls back without any later allocator activity. With mimalloc's
    /// default delay it stays up (the idle proxy's case).
    #[test]
    fn freed_memory_leaves_the_process_at_once() {
        return_freed_memory_at_once();
        // 64 MiB in 1 KiB pieces, each written so its page is resident.
        let pieces: Vec<Box<[u8; 1024]>> = (0..65_536).map(|_| Box::new([1u8; 1024])).collect();
        let peak = rss_kib();
        drop(pieces);
        let after = rss_kib();
        assert!(
            after + 32 * 1024 < peak,
            "resident memory {peak} KiB before the free, {after} KiB after: freed pages stayed"
        );
    }
}
