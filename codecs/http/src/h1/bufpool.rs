//! Per-thread free list of 8 KiB buffers, taken only while a connection is busy (design
//! §1.3): an idle connection holds no buffer, and a busy period allocates none once the
//! list is warm.

use std::cell::RefCell;

use bytes::BytesMut;

/// Capacity of a pooled buffer.
pub const BUF_SIZE: usize = 8 * 1024;
/// Most buffers kept per thread.
pub const MAX_KEPT: usize = 64;
/// Buffers that grew beyond this (a large head) are freed, not kept.
pub const MAX_KEPT_CAPACITY: usize = 4 * BUF_SIZE;

thread_local! {
    static FREE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with at least [`BUF_SIZE`] capacity, from the list when it has one.
pub fn take() -> BytesMut {
    FREE.try_with(|free| free.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| BytesMut::with_capacity(BUF_SIZE))
}

/// Returns a buffer to the list. It is dropped instead when a `Bytes` split off it is still
/// alive (its memory is not reclaimable), when it grew past [`MAX_KEPT_CAPACITY`], or when
/// the list is full.
pub fn give(mut buf: BytesMut) {
    buf.clear();
    if !buf.try_reclaim(BUF_SIZE) || buf.capacity() > MAX_KEPT_CAPACITY {
        return;
    }
    let _ = FREE.try_with(|free| {
        let mut free = free.borrow_mut();
        if free.len() < MAX_KEPT {
            free.push(buf);
        }
    });
}

/// Buffers currently kept on this thread.
pub fn kept() -> usize {
    FREE.try_with(|free| free.borrow().len()).unwrap_or(0)
}
