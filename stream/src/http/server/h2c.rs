//! HTTP/2 over cleartext by `Upgrade: h2c` (RFC 7540 §3.2), which hyper does not do.
//!
//! The HTTP/1.1 server answers `101 Switching Protocols`; the upgraded connection is
//! then served by the HTTP/2 server through [`InjectStream1`], which passes the client's
//! preface and first SETTINGS frame through and then inserts a HEADERS frame for stream
//! 1 carrying the original request. The HTTP/2 server thus sees stream 1 exactly as if
//! the client had sent it, and answers it on stream 1, as the client expects. The header
//! block uses only HPACK literals without indexing, so neither side's dynamic table
//! changes and later header blocks decode as the client encoded them.
//!
//! A request with a body is not upgraded (it is served as plain HTTP/1.1): stream 1 is
//! half-closed from the client and its body would have to be replayed too.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, HOST, UPGRADE};
use http::request::Parts;
use http::{HeaderName, Method, Version};
use tokio::io::{AsyncRead, ReadBuf};

use crate::http::Scheme;
use strait_codec_http::H2_PREFACE;
use strait_codec_http::{list_contains, remove_hop_by_hop};

const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");
/// The smallest SETTINGS_MAX_FRAME_SIZE, which every HTTP/2 server accepts.
const MAX_FRAME: usize = 16_384;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FRAME_SETTINGS: u8 = 0x4;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;

/// Whether `req` asks to upgrade to h2c and can be (RFC 7540 §3.2): HTTP/1.1,
/// `Upgrade` naming `h2c`, exactly one valid `HTTP2-Settings`, and no body.
pub(crate) fn wants_h2c(req: &Parts, has_body: bool) -> bool {
    if req.version != Version::HTTP_11
        || req.method == Method::CONNECT
        || has_body
        || !req.headers.contains_key(UPGRADE)
        || !list_contains(&req.headers, &UPGRADE, "h2c")
    {
        return false;
    }
    let mut settings = req.headers.get_all(HTTP2_SETTINGS).iter();
    let (Some(value), None) = (settings.next(), settings.next()) else {
        return false;
    };
    let base64url = value
        .as_bytes()
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=');
    base64url && !req.headers.contains_key(http::header::TRANSFER_ENCODING)
}

/// The `101 Switching Protocols` answer to an h2c upgrade.
pub(crate) fn switching_protocols() -> http::Response<crate::http::Body> {
    let mut response = http::Response::new(crate::http::Body::Empty);
    *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    response
        .headers_mut()
        .insert(CONNECTION, http::HeaderValue::from_static("Upgrade"));
    response
        .headers_mut()
        .insert(UPGRADE, http::HeaderValue::from_static("h2c"));
    response
}

fn hpack_int(out: &mut BytesMut, mut value: usize) {
    // 7-bit prefix, H (Huffman) bit clear.
    if value < 0x7f {
        out.put_u8(value as u8);
        return;
    }
    out.put_u8(0x7f);
    value -= 0x7f;
    while value >= 0x80 {
        out.put_u8((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

fn hpack_literal(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    // Literal Header Field without Indexing, New Name (RFC 7541 §6.2.2): 0000 0000.
    out.put_u8(0x00);
    hpack_int(out, name.len());
    out.put_slice(name);
    hpack_int(out, value.len());
    out.put_slice(value);
}

/// The HEADERS (+ CONTINUATION) frames of stream 1 carrying the upgraded request, with
/// END_STREAM (the request had no body).
pub(crate) fn stream1_frames(mut parts: Parts, scheme: Scheme) -> Bytes {
    let authority = match parts.uri.authority() {
        Some(a) => Some(Bytes::copy_from_slice(a.as_str().as_bytes())),
        None => parts
            .headers
            .get(HOST)
            .map(|h| Bytes::copy_from_slice(h.as_bytes())),
    };
    remove_hop_by_hop(&mut parts.headers, true, false);
    parts.headers.remove(HOST);
    parts.headers.remove(HTTP2_SETTINGS);
    let path = match parts.uri.path_and_query() {
        Some(pq) => pq.as_str(),
        None => "/",
    };
    let mut block = BytesMut::with_capacity(256);
    hpack_literal(&mut block, b":method", parts.method.as_str().as_bytes());
    let scheme = parts.uri.scheme_str().unwrap_or(scheme.as_str());
    hpack_literal(&mut block, b":scheme", scheme.as_bytes());
    if let Some(authority) = &authority {
        hpack_literal(&mut block, b":authority", authority);
    }
    hpack_literal(&mut block, b":path", path.as_bytes());
    for (name, value) in &parts.headers {
        hpack_literal(&mut block, name.as_str().as_bytes(), value.as_bytes());
    }

    let block = block.freeze();
    let mut frames = BytesMut::with_capacity(block.len() + 9 * (1 + block.len() / MAX_FRAME));
    let mut chunks = block.chunks(MAX_FRAME).peekable();
    let mut first = true;
    loop {
        let chunk = chunks.next().unwrap_or(&[]);
        let last = chunks.peek().is_none();
        let (kind, mut flags) = if first {
            (FRAME_HEADERS, FLAG_END_STREAM)
        } else {
            (FRAME_CONTINUATION, 0)
        };
        if last {
            flags |= FLAG_END_HEADERS;
        }
        frames.put_uint(chunk.len() as u64, 3);
        frames.put_u8(kind);
        frames.put_u8(flags);
        frames.put_u32(1);
        frames.put_slice(chunk);
        first = false;
        if last {
            break;
        }
    }
    frames.freeze()
}

enum Phase {
    /// Passing the preface and the first SETTINGS frame through.
    Preface,
    /// Handing out the injected frames.
    Inject,
    /// Plain pass-through.
    Pass,
}

/// Reads the client's preface and first SETTINGS frame from `inner`, then the injected
/// stream-1 frames, then the rest of `inner`. Writes go straight to `inner`. If the
/// client does not start with the preface and a SETTINGS frame, nothing is injected
/// (the HTTP/2 server will reject the connection anyway).
pub(crate) struct InjectStream1<T> {
    inner: T,
    phase: Phase,
    inject: Bytes,
    /// The first 33 bytes read: preface and the SETTINGS frame header.
    head: [u8; 33],
    passed: usize,
    boundary: Option<usize>,
}

impl<T> InjectStream1<T> {
    pub(crate) fn new(inner: T, inject: Bytes) -> Self {
        InjectStream1 {
            inner,
            phase: Phase::Preface,
            inject,
            head: [0; 33],
            passed: 0,
            boundary: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for InjectStream1<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match this.phase {
                Phase::Pass => return Pin::new(&mut this.inner).poll_read(cx, buf),
                Phase::Inject => {
                    if this.inject.is_empty() {
                        this.phase = Phase::Pass;
                        continue;
                    }
                    let n = this.inject.len().min(buf.remaining());
                    buf.put_slice(&this.inject.split_to(n));
                    return Poll::Ready(Ok(()));
                }
                Phase::Preface => {
                    let limit = this.boundary.unwrap_or(this.head.len()) - this.passed;
                    if limit == 0 {
                        this.phase = Phase::Inject;
                        continue;
                    }
                    let mut tmp = [0u8; 512];
                    let want = limit.min(buf.remaining()).min(tmp.len());
                    let mut read = ReadBuf::new(&mut tmp[..want]);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
                    let got = read.filled();
                    if got.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    if this.passed < this.head.len() {
                        let n = got.len().min(this.head.len() - this.passed);
                        this.head[this.passed..this.passed + n].copy_from_slice(&got[..n]);
                    }
                    this.passed += got.len();
                    if this.boundary.is_none() && this.passed >= this.head.len() {
                        let h = &this.head;
                        if &h[..24] == H2_PREFACE && h[27] == FRAME_SETTINGS {
                            let len = usize::from(h[24]) << 16
                                | usize::from(h[25]) << 8
                                | usize::from(h[26]);
                            this.boundary = Some(this.head.len() + len);
                        } else {
                            this.phase = Phase::Pass;
                        }
                    }
                    buf.put_slice(got);
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

// Writes pass straight through: only reads are watched.
crate::http::write_through!(InjectStream1, inner);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn hpack_integers() {
        let mut out = BytesMut::new();
        hpack_int(&mut out, 10);
        assert_eq!(&out[..], &[10]);
        let mut out = BytesMut::new();
        hpack_int(&mut out, 127);
        assert_eq!(&out[..], &[0x7f, 0x00]);
        let mut out = BytesMut::new();
        // RFC 7541 C.1.2 uses a 5-bit prefix; with 7 bits, 1337 = 127 + 1210.
        hpack_int(&mut out, 1337);
        assert_eq!(&out[..], &[0x7f, 0xba, 0x09]);
    }

    #[test]
    fn stream1_headers_frame() {
        let (parts, ()) = http::Request::get("/index?x=1")
            .header("host", "example.com")
            .header("connection", "Upgrade, HTTP2-Settings")
            .header("upgrade", "h2c")
            .header("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA")
            .header("accept", "*/*")
            .body(())
            .unwrap()
            .into_parts();
        let frames = stream1_frames(parts, Scheme::Http);
        let len =
            usize::from(frames[0]) << 16 | usize::from(frames[1]) << 8 | usize::from(frames[2]);
        assert_eq!(len, frames.len() - 9);
        assert_eq!(frames[3], FRAME_HEADERS);
        assert_eq!(frames[4], FLAG_END_STREAM | FLAG_END_HEADERS);
        assert_eq!(&frames[5..9], &[0, 0, 0, 1]);
        let mut expected = BytesMut::new();
        hpack_literal(&mut expected, b":method", b"GET");
        hpack_literal(&mut expected, b":scheme", b"http");
        hpack_literal(&mut expected, b":authority", b"example.com");
        hpack_literal(&mut expected, b":path", b"/index?x=1");
        hpack_literal(&mut expected, b"accept", b"*/*");
        assert_eq!(&frames[9..], &expected[..]);
    }

    #[test]
    fn large_header_block_uses_continuation() {
        let big = "v".repeat(20_000);
        let (parts, ()) = http::Request::get("/")
            .header("host", "h")
            .header("x-big", big.as_str())
            .body(())
            .unwrap()
            .into_parts();
        let frames = stream1_frames(parts, Scheme::Http);
        assert_eq!(frames[3], FRAME_HEADERS);
        assert_eq!(frames[4], FLAG_END_STREAM);
        let first = usize::from(frames[1]) << 8 | usize::from(frames[2]);
        assert_eq!(first, MAX_FRAME);
        let second = &frames[9 + MAX_FRAME..];
        assert_eq!(second[3], FRAME_CONTINUATION);
        assert_eq!(second[4], FLAG_END_HEADERS);
    }

    #[tokio::test]
    async fn injects_after_first_settings_frame() {
        let mut client = H2_PREFACE.to_vec();
        client.extend_from_slice(&[0, 0, 6, FRAME_SETTINGS, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
        client.extend_from_slice(b"REST");
        let inner: &[u8] = &client;
        let mut io = InjectStream1::new(inner, Bytes::from_static(b"<INJECTED>"));
        let mut out = Vec::new();
        io.read_to_end(&mut out).await.unwrap();
        let mut expected = client[..39].to_vec();
        expected.extend_from_slice(b"<INJECTED>REST");
        assert_eq!(out, expected);
    }

    /// Yields one byte per read: the injection point is found across any split.
    struct OneByte<'a>(&'a [u8]);

    impl AsyncRead for OneByte<'_> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if let Some((&first, rest)) = self.0.split_first() {
                buf.put_slice(&[first]);
                self.0 = rest;
            }
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn injects_after_first_settings_frame_read_byte_by_byte() {
        let mut client = H2_PREFACE.to_vec();
        client.extend_from_slice(&[0, 0, 0, FRAME_SETTINGS, 0, 0, 0, 0, 0]);
        client.extend_from_slice(&[0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let mut io = InjectStream1::new(OneByte(&client), Bytes::from_static(b"<H>"));
        let mut out = Vec::new();
        io.read_to_end(&mut out).await.unwrap();
        let mut expected = client[..33].to_vec();
        expected.extend_from_slice(b"<H>");
        expected.extend_from_slice(&client[33..]);
        assert_eq!(out, expected);
    }

    #[tokio::test]
    async fn no_injection_without_preface() {
        let inner: &[u8] = &[b'x'; 40];
        let mut io = InjectStream1::new(inner, Bytes::from_static(b"<INJECTED>"));
        let mut out = Vec::new();
        io.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, vec![b'x'; 40]);
    }
}
