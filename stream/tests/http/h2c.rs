//! HTTP/2 by `Upgrade: h2c` (RFC 7540 §3.2), checked frame by frame: no HTTP/2 client
//! library can adopt stream 1 after an upgrade.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// One HTTP/2 frame as read off the wire.
#[derive(Debug)]
pub struct RawFrame {
    pub kind: u8,
    pub flags: u8,
    pub stream_id: u32,
    pub payload: Vec<u8>,
}

/// Reads HTTP/2 frames from a byte stream.
pub struct FrameReader<R> {
    read: R,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(read: R) -> Self {
        FrameReader { read }
    }

    pub async fn next(&mut self) -> Option<RawFrame> {
        let mut header = [0u8; 9];
        self.read.read_exact(&mut header).await.ok()?;
        let len =
            usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
        let mut payload = vec![0u8; len];
        self.read.read_exact(&mut payload).await.ok()?;
        Some(RawFrame {
            kind: header[3],
            flags: header[4],
            stream_id: u32::from_be_bytes([header[5], header[6], header[7], header[8]])
                & 0x7fff_ffff,
            payload,
        })
    }
}

/// One frame's bytes.
pub fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The client preface and an empty SETTINGS frame.
pub fn client_preface() -> Vec<u8> {
    let mut out = strait_codec_http::H2_PREFACE.to_vec();
    out.extend_from_slice(&frame(0x4, 0, 0, &[]));
    out
}

/// An HPACK block of literals without indexing (names and values under 127 bytes).
pub fn encode_literal_headers(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.push(0x00);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.push(value.len() as u8);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Reads an HTTP/1 response head byte by byte (so nothing after it is consumed).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Collects the DATA of `stream_id` up to END_STREAM, answering SETTINGS on the way,
/// and returns (first header-block byte, data).
async fn read_stream<R: AsyncRead + Unpin>(
    frames: &mut FrameReader<R>,
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
    stream_id: u32,
) -> (u8, Vec<u8>) {
    let mut first_header_byte = None;
    let mut data = Vec::new();
    loop {
        let f = frames.next().await.expect("connection closed early");
        if f.kind == 0x4 && f.flags & 0x1 == 0 {
            write.write_all(&frame(0x4, 0x1, 0, &[])).await.unwrap();
        }
        if f.stream_id != stream_id {
            continue;
        }
        match f.kind {
            0x1 => first_header_byte = first_header_byte.or(f.payload.first().copied()),
            0x0 => data.extend_from_slice(&f.payload),
            0x3 => panic!("stream {stream_id} reset"),
            _ => {}
        }
        if f.flags & 0x1 != 0 {
            return (first_header_byte.expect("no HEADERS"), data);
        }
    }
}

#[tokio::test]
async fn upgrade_answers_stream_1_then_speaks_h2() {
    let server = server().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"GET /info HTTP/1.1\r\nHost: up.example\r\nConnection: Upgrade, HTTP2-Settings\r\n\
              Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nAccept: */*\r\n\r\n",
        )
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(
        head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("upgrade: h2c\r\n"),
        "{head}"
    );

    let (read, mut write) = stream.into_split();
    let mut frames = FrameReader::new(read);
    write.write_all(&client_preface()).await.unwrap();
    // Stream 1 is the upgraded request, answered over HTTP/2.
    let (status, body) = read_stream(&mut frames, &mut write, 1).await;
    assert_eq!(status, 0x88, "indexed :status 200");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "GET http://up.example/info HTTP/2.0 HTTP/2.0"
    );
    // The connection goes on as HTTP/2: stream 3.
    let block = encode_literal_headers(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "up.example"),
        (":path", "/info?n=3"),
    ]);
    write.write_all(&frame(0x1, 0x5, 3, &block)).await.unwrap();
    let (status, body) = read_stream(&mut frames, &mut write, 3).await;
    assert_eq!(status & 0x80, 0x80, "an indexed :status");
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "GET http://up.example/info?n=3 HTTP/2.0 HTTP/2.0"
    );
    // The HPACK tables are in sync after the injection: stream 5 adds `x-test: v` to
    // the dynamic table (literal with incremental indexing), stream 7 refers to it by
    // index 62, and the server decodes both.
    let mut block = encode_literal_headers(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "up.example"),
        (":path", "/headers"),
    ]);
    block.extend_from_slice(&[0x40, 6]);
    block.extend_from_slice(b"x-test");
    block.extend_from_slice(&[1, b'v']);
    write.write_all(&frame(0x1, 0x5, 5, &block)).await.unwrap();
    let (_, body) = read_stream(&mut frames, &mut write, 5).await;
    assert!(String::from_utf8(body).unwrap().contains("\nx-test: v"));
    let mut block = encode_literal_headers(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "up.example"),
        (":path", "/headers"),
    ]);
    block.push(0x80 | 62);
    write.write_all(&frame(0x1, 0x5, 7, &block)).await.unwrap();
    let (_, body) = read_stream(&mut frames, &mut write, 7).await;
    assert!(String::from_utf8(body).unwrap().contains("\nx-test: v"));
}

#[tokio::test]
async fn upgrade_with_a_body_is_served_as_http1() {
    let server = server().await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(
            b"POST /stream HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
              Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await
        .unwrap();
    let response = read_response(&mut conn, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "got 5 bytes");
}

#[tokio::test]
async fn upgrade_without_settings_header_is_served_as_http1() {
    let server = server().await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(b"GET /info HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut conn, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "GET /info HTTP/1.1 HTTP/1.1");
}

#[tokio::test]
async fn upgrade_not_listed_in_connection_is_served_as_http1() {
    // A sender of Upgrade must list it in Connection (RFC 9110 §7.8); without that
    // option the request is plain HTTP/1.1, settings or not.
    let server = server().await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(
            b"GET /info HTTP/1.1\r\nHost: a\r\nConnection: HTTP2-Settings\r\nUpgrade: h2c\r\n\
              HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
        )
        .await
        .unwrap();
    let response = read_response(&mut conn, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "GET /info HTTP/1.1 HTTP/1.1");
}
