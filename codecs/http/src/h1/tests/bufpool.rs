use crate::h1::bufpool::{self, BUF_SIZE, MAX_KEPT, MAX_KEPT_CAPACITY};

// Each test runs on its own thread (nextest: own process), so the list starts empty.

#[test]
fn buffers_are_reused_on_the_same_thread() {
    std::thread::spawn(|| {
        let mut a = bufpool::take();
        assert!(a.is_empty() && a.capacity() >= BUF_SIZE);
        a.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let ptr = a.as_ptr();
        bufpool::give(a);
        assert_eq!(bufpool::kept(), 1);
        let b = bufpool::take();
        assert!(b.is_empty());
        assert_eq!(b.as_ptr(), ptr, "the same allocation comes back");
        assert_eq!(bufpool::kept(), 0);
    })
    .join()
    .unwrap();
}

#[test]
fn a_buffer_with_a_live_slice_is_not_kept() {
    std::thread::spawn(|| {
        let mut a = bufpool::take();
        a.extend_from_slice(b"head");
        let head = a.split_to(4).freeze();
        bufpool::give(a);
        assert_eq!(bufpool::kept(), 0);
        assert_eq!(&head[..], b"head");
    })
    .join()
    .unwrap();
}

#[test]
fn the_list_and_the_buffers_are_bounded() {
    std::thread::spawn(|| {
        let mut big = bufpool::take();
        big.reserve(MAX_KEPT_CAPACITY * 2);
        bufpool::give(big);
        assert_eq!(bufpool::kept(), 0, "grown buffer freed");
        let many: Vec<_> = (0..MAX_KEPT + 10).map(|_| bufpool::take()).collect();
        many.into_iter().for_each(bufpool::give);
        assert_eq!(bufpool::kept(), MAX_KEPT);
    })
    .join()
    .unwrap();
}
