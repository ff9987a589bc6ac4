//! Per-thread free lists of I/O buffers, lent to a connection only while it has bytes to
//! read or write. An idle connection holds no buffer, and a busy one allocates none once
//! the lists are warm: every driver (multiplexed, one request at a time, HTTP/2) draws
//! from here.

use std::cell::RefCell;

use bytes::BytesMut;

/// Which size of buffer a driver wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferClass {
    /// 32 KiB: reads and writes of multiplexed RPC connections, where one read carries
    /// many frames.
    Frames,
    /// 8 KiB: message heads of request-at-a-time connections.
    Heads,
}

impl BufferClass {
    /// Capacity of a buffer of this class.
    pub const fn size(self) -> usize {
        match self {
            BufferClass::Frames => 32 * 1024,
            BufferClass::Heads => 8 * 1024,
        }
    }

    /// Most buffers of this class kept per thread: [`KEEP_BYTES`] worth. A burst may
    /// take more; the excess is freed when it comes back.
    pub const fn max_kept(self) -> usize {
        KEEP_BYTES / self.size()
    }

    const fn slot(self) -> usize {
        match self {
            BufferClass::Frames => 0,
            BufferClass::Heads => 1,
        }
    }
}

/// Bytes of buffers kept per class and thread. Every busy request-at-a-time connection
/// holds two `Heads` buffers and gives both back each time it waits for its next
/// request, so 64 connections answered in one wake-up return 128 of them at once: a
/// list shorter than such a burst frees the excess, and the next burst allocates it
/// again (a large, slow allocation per request). 2 MiB keeps 256 `Heads` or 64
/// `Frames` buffers; an idle connection still holds none.
pub const KEEP_BYTES: usize = 2 * 1024 * 1024;

thread_local! {
    static FREE: RefCell<[Vec<BytesMut>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// An empty buffer of at least `class.size()` capacity, from the free list when it has
/// one.
pub fn take(class: BufferClass) -> BytesMut {
    FREE.try_with(|free| free.borrow_mut()[class.slot()].pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| BytesMut::with_capacity(class.size()))
}

/// Returns a buffer. It is freed instead when a `Bytes` split off it is still alive (a
/// frame in flight holds its memory), when it grew past four times its class (one large
/// message must not pin memory), or when the list is full.
pub fn give(class: BufferClass, mut buf: BytesMut) {
    buf.clear();
    if !buf.try_reclaim(class.size()) || buf.capacity() > 4 * class.size() {
        return;
    }
    let _ = FREE.try_with(|free| {
        let list = &mut free.borrow_mut()[class.slot()];
        if list.len() < class.max_kept() {
            list.push(buf);
        }
    });
}

/// Gives `buf` back if it is empty, leaving an unallocated buffer in its place.
pub fn give_if_empty(class: BufferClass, buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > 0 {
        give(class, std::mem::take(buf));
    }
}

/// Makes sure `buf` has room to read into: an unallocated buffer is replaced by one from
/// the list.
pub fn ensure(class: BufferClass, buf: &mut BytesMut) {
    if buf.capacity() == 0 {
        *buf = take(class);
    }
}

/// Buffers of `class` currently kept on this thread.
pub fn kept(class: BufferClass) -> usize {
    FREE.try_with(|free| free.borrow()[class.slot()].len())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use bytes::BufMut;

    use super::*;

    #[test]
    fn buffers_come_back_and_are_reused() {
        let class = BufferClass::Heads;
        let before = kept(class);
        let mut buf = take(class);
        assert!(buf.capacity() >= class.size());
        buf.put_slice(b"hello");
        give(class, buf);
        assert_eq!(kept(class), before + 1);
        let again = take(class);
        assert!(again.is_empty(), "a returned buffer comes back cleared");
        assert_eq!(kept(class), before);
    }

    #[test]
    fn a_burst_of_busy_connections_is_kept_up_to_the_class_budget() {
        // 128 request-at-a-time connections going idle in one wake-up: their 256 head
        // buffers all come back, and the next burst allocates none.
        let class = BufferClass::Heads;
        assert_eq!(class.max_kept(), 256);
        let burst: Vec<BytesMut> = (0..class.max_kept() + 10).map(|_| take(class)).collect();
        let addresses: Vec<usize> = burst.iter().map(|b| b.as_ptr() as usize).collect();
        for buf in burst {
            give(class, buf);
        }
        assert_eq!(
            kept(class),
            class.max_kept(),
            "the excess past the budget is freed"
        );
        let again: Vec<BytesMut> = (0..class.max_kept()).map(|_| take(class)).collect();
        assert!(
            again
                .iter()
                .all(|b| addresses.contains(&(b.as_ptr() as usize)))
        );
        assert_eq!(kept(class), 0);
        assert_eq!(BufferClass::Frames.max_kept(), 64);
    }

    #[test]
    fn a_buffer_still_referenced_is_not_kept() {
        let class = BufferClass::Frames;
        let before = kept(class);
        let mut buf = take(class);
        buf.put_slice(b"frame bytes");
        let frame = buf.split_to(5).freeze(); // a frame in flight
        give(class, buf);
        assert_eq!(
            kept(class),
            before,
            "its memory is the frame's until the frame drops"
        );
        drop(frame);
    }

    #[test]
    fn give_if_empty_leaves_nothing_allocated() {
        let class = BufferClass::Frames;
        let mut buf = take(class);
        give_if_empty(class, &mut buf);
        assert_eq!(buf.capacity(), 0);
        ensure(class, &mut buf);
        assert!(buf.capacity() >= class.size());
        buf.put_u8(1);
        give_if_empty(class, &mut buf);
        assert_eq!(buf.len(), 1, "a buffer holding bytes is kept");
    }
}
