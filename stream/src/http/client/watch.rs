//! Reading GOAWAY and the stream limit off an HTTP/2 server's frames.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::http2::H2Shared;

/// Watches the frames an HTTP/2 server sends, by walking frame headers (9 bytes each)
/// as the bytes go by: GOAWAY marks the connection as going away, and the
/// `SETTINGS_MAX_CONCURRENT_STREAMS` entries of SETTINGS frames are recorded. Other
/// payloads are skipped; nothing is copied or buffered.
///
/// (hyper applies the server's settings inside the connection task and exposes the
/// stream limit only on the connection future, which that task owns.)
pub(super) struct GoAwayWatch<T> {
    inner: T,
    shared: Arc<H2Shared>,
    header: [u8; 9],
    header_len: usize,
    /// Payload bytes of the current frame still to go by.
    skip: usize,
    /// Whether the current payload is SETTINGS entries.
    in_settings: bool,
    entry: [u8; 6],
    entry_len: usize,
}

const FRAME_SETTINGS: u8 = 0x4;
const FRAME_GOAWAY: u8 = 0x7;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

impl<T> GoAwayWatch<T> {
    pub(super) fn new(inner: T, shared: Arc<H2Shared>) -> Self {
        GoAwayWatch {
            inner,
            shared,
            header: [0; 9],
            header_len: 0,
            skip: 0,
            in_settings: false,
            entry: [0; 6],
            entry_len: 0,
        }
    }

    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                if self.in_settings {
                    self.settings_entries(&bytes[..n]);
                }
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len == 9 {
                let h = &self.header;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                let stream_zero = h[5..9].iter().all(|&b| b & 0x7f == 0);
                // A SETTINGS frame that is not an ACK.
                self.in_settings = h[3] == FRAME_SETTINGS && h[4] & 0x1 == 0 && stream_zero;
                self.entry_len = 0;
                if h[3] == FRAME_GOAWAY {
                    self.shared.go_away.store(true, Ordering::Release);
                }
                self.header_len = 0;
            }
        }
    }

    fn settings_entries(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = (6 - self.entry_len).min(bytes.len());
            self.entry[self.entry_len..self.entry_len + n].copy_from_slice(&bytes[..n]);
            self.entry_len += n;
            bytes = &bytes[n..];
            if self.entry_len == 6 {
                let e = &self.entry;
                let id = u16::from_be_bytes([e[0], e[1]]);
                let value = u32::from_be_bytes([e[2], e[3], e[4], e[5]]);
                if id == SETTINGS_MAX_CONCURRENT_STREAMS {
                    let value = usize::try_from(value).unwrap_or(usize::MAX);
                    self.shared.max_streams.store(value, Ordering::Release);
                }
                self.entry_len = 0;
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GoAwayWatch<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let this = &mut *self;
            let filled = buf.filled();
            if filled.len() > before {
                this.scan(&filled[before..]);
            }
        }
        result
    }
}

// Writes pass straight through: only reads are watched.
crate::http::write_through!(GoAwayWatch, inner);

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<H2Shared> {
        Arc::new(H2Shared::new())
    }

    #[test]
    fn go_away_seen_across_split_reads() {
        let s = shared();
        let mut watch = GoAwayWatch::new((), s.clone());
        // SETTINGS (6-byte payload), DATA (3 bytes), then GOAWAY split mid-header.
        let mut bytes = vec![0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100];
        bytes.extend_from_slice(&[0, 0, 3, 0, 1, 0, 0, 0, 1, 7, 7, 7]);
        bytes.extend_from_slice(&[0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        for chunk in bytes[..30].chunks(4) {
            watch.scan(chunk);
        }
        assert!(!s.go_away.load(Ordering::Acquire));
        watch.scan(&bytes[30..]);
        assert!(s.go_away.load(Ordering::Acquire));
    }

    #[test]
    fn max_concurrent_streams_read_from_settings_split_anywhere() {
        // SETTINGS: INITIAL_WINDOW_SIZE 65535, MAX_CONCURRENT_STREAMS 7; then an ACK.
        let mut bytes = vec![0, 0, 12, 4, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0, 4, 0, 0, 0xff, 0xff, 0, 3, 0, 0, 0, 7]);
        bytes.extend_from_slice(&[0, 0, 0, 4, 1, 0, 0, 0, 0]);
        for split in 1..bytes.len() {
            let s = shared();
            let mut watch = GoAwayWatch::new((), s.clone());
            watch.scan(&bytes[..split]);
            watch.scan(&bytes[split..]);
            assert_eq!(s.max_streams.load(Ordering::Acquire), 7, "split at {split}");
        }
        // A later SETTINGS lowers it.
        let s = shared();
        let mut watch = GoAwayWatch::new((), s.clone());
        watch.scan(&bytes);
        watch.scan(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1]);
        assert_eq!(s.max_streams.load(Ordering::Acquire), 1);
        assert!(!s.go_away.load(Ordering::Acquire));
    }

    /// Arbitrary bytes in arbitrary splits never panic the frame walker.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let s = shared();
            let mut watch = GoAwayWatch::new((), s.clone());
            let len = (next() % 4096) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = 1 + (next() as usize % rest.len());
                watch.scan(&rest[..n]);
                rest = &rest[n..];
            }
        }
    }

    #[test]
    fn data_bytes_looking_like_go_away_are_skipped() {
        let s = shared();
        let mut watch = GoAwayWatch::new((), s.clone());
        // A DATA frame whose payload contains a GOAWAY-like header.
        watch.scan(&[0, 0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 8, 7, 0, 0, 0, 0, 0]);
        assert!(!s.go_away.load(Ordering::Acquire));
    }
}
