//! Serialising heads and chunked bodies (RFC 9112 §3, §4, §7).
//!
//! The encoder owns the framing headers: `content-length`, `transfer-encoding` (and
//! `connection` when it writes one) from the `Parts` are replaced by what [`Framing`] says,
//! except with [`Framing::AsIs`], which writes the fields unchanged (HEAD, 204, 304, 1xx).

use bytes::{BufMut, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Version};

/// How the body after a head is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body bytes follow; the header fields are written as they are (a HEAD response
    /// keeps the upstream's `content-length`; a request's `content-length: 0` stays).
    AsIs,
    /// `content-length: n`.
    Length(u64),
    /// `transfer-encoding: chunked`; body written with [`chunk_header`]/[`CHUNK_END`]/[`last_chunk`].
    Chunked,
    /// Close-delimited (responses only): no length field, `connection: close`.
    Close,
}

/// The `connection` field the encoder writes (persistence, RFC 9112 §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionField {
    /// None written (fields from `Parts` kept).
    Keep,
    /// `connection: close` (replaces any from `Parts`).
    Close,
    /// `connection: keep-alive` (for HTTP/1.0 peers; replaces any from `Parts`).
    KeepAlive,
}

/// Appends `n` in decimal.
pub fn put_decimal(dst: &mut BytesMut, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.put_slice(&tmp[i..]);
}

/// Writes a response head. The status line is always `HTTP/1.1` (RFC 9110 §2.5: a server
/// sends its own highest version), whatever `parts.version` says. `date` (from
/// [`super::date::now`]) is written first unless the fields already have a `date`.
pub fn response_head(
    parts: &http::response::Parts,
    framing: Framing,
    connection: ConnectionField,
    date: Option<&HeaderValue>,
    dst: &mut BytesMut,
) {
    dst.put_slice(b"HTTP/1.1 ");
    dst.put_slice(parts.status.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    dst.put_slice(b"\r\n");
    if let Some(date) = date
        && !parts.headers.contains_key(DATE)
    {
        dst.put_slice(b"date: ");
        dst.put_slice(date.as_bytes());
        dst.put_slice(b"\r\n");
    }
    fields(&parts.headers, framing, connection, dst);
}

/// Writes a request head to an upstream: origin-form target (authority-form for CONNECT,
/// `*` kept for OPTIONS), `HTTP/1.1` (or `HTTP/1.0` if `parts.version` is 1.0), and `host`
/// from the URI's authority when the fields have none.
pub fn request_head(
    parts: &http::request::Parts,
    framing: Framing,
    connection: ConnectionField,
    dst: &mut BytesMut,
) {
    dst.put_slice(parts.method.as_str().as_bytes());
    dst.put_u8(b' ');
    if parts.method == Method::CONNECT {
        let authority = parts.uri.authority().map_or("", |a| a.as_str());
        dst.put_slice(authority.as_bytes());
    } else {
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        dst.put_slice(if target.is_empty() {
            b"/"
        } else {
            target.as_bytes()
        });
    }
    dst.put_slice(if parts.version == Version::HTTP_10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    // The URI first: an origin-form target (the usual one) has no authority, and then
    // the fields are not searched.
    if let Some(authority) = parts.uri.authority()
        && !parts.headers.contains_key(HOST)
    {
        dst.put_slice(b"host: ");
        dst.put_slice(authority.as_str().as_bytes());
        dst.put_slice(b"\r\n");
    }
    fields(&parts.headers, framing, connection, dst);
}

fn fields(headers: &HeaderMap, framing: Framing, connection: ConnectionField, dst: &mut BytesMut) {
    let own_framing = framing != Framing::AsIs;
    let own_connection = connection != ConnectionField::Keep || framing == Framing::Close;
    for (name, value) in headers {
        if own_framing && (name == CONTENT_LENGTH || name == TRANSFER_ENCODING) {
            continue;
        }
        if own_connection && name == CONNECTION {
            continue;
        }
        dst.put_slice(name.as_str().as_bytes());
        dst.put_slice(b": ");
        dst.put_slice(value.as_bytes());
        dst.put_slice(b"\r\n");
    }
    match framing {
        Framing::AsIs | Framing::Close => {}
        Framing::Length(n) => {
            dst.put_slice(b"content-length: ");
            put_decimal(dst, n);
            dst.put_slice(b"\r\n");
        }
        Framing::Chunked => dst.put_slice(b"transfer-encoding: chunked\r\n"),
    }
    if framing == Framing::Close || connection == ConnectionField::Close {
        dst.put_slice(b"connection: close\r\n");
    } else if connection == ConnectionField::KeepAlive {
        dst.put_slice(b"connection: keep-alive\r\n");
    }
    dst.put_slice(b"\r\n");
}

/// The chunk-size line for `len` bytes of data (`len` > 0), e.g. `1a\r\n`: written before
/// the data, which is followed by [`CHUNK_END`]. The returned buffer is on the stack so the
/// three parts can be sent with one vectored write, the data not copied.
pub fn chunk_header(len: u64) -> ChunkHeader {
    let mut bytes = [0u8; 18];
    let digits = (16 - len.leading_zeros() as usize / 4).max(1);
    for (i, b) in bytes.iter_mut().take(digits).enumerate() {
        let nibble = (len >> ((digits - 1 - i) * 4)) & 0xf;
        *b = b"0123456789abcdef"[nibble as usize];
    }
    bytes[digits] = b'\r';
    bytes[digits + 1] = b'\n';
    ChunkHeader {
        bytes,
        len: digits as u8 + 2,
    }
}

/// A chunk-size line (at most 16 hex digits + CRLF).
#[derive(Debug, Clone, Copy)]
pub struct ChunkHeader {
    bytes: [u8; 18],
    len: u8,
}

impl AsRef<[u8]> for ChunkHeader {
    fn as_ref(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// What follows each chunk's data.
pub const CHUNK_END: &[u8] = b"\r\n";

/// Appends one whole chunk (size line, data, CRLF); nothing for empty data, which would
/// end the body.
pub fn chunk(data: &[u8], dst: &mut BytesMut) {
    if data.is_empty() {
        return;
    }
    dst.put_slice(chunk_header(data.len() as u64).as_ref());
    dst.put_slice(data);
    dst.put_slice(CHUNK_END);
}

/// Appends the last chunk, the trailer fields (if any) and the final CRLF. Framing fields
/// and `host`/`trailer`/`te` in `trailers` are not written.
pub fn last_chunk(trailers: Option<&HeaderMap>, dst: &mut BytesMut) {
    dst.put_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        if [
            CONTENT_LENGTH,
            TRANSFER_ENCODING,
            HOST,
            http::header::TRAILER,
            http::header::TE,
        ]
        .contains(name)
        {
            continue;
        }
        dst.put_slice(name.as_str().as_bytes());
        dst.put_slice(b": ");
        dst.put_slice(value.as_bytes());
        dst.put_slice(b"\r\n");
    }
    dst.put_slice(b"\r\n");
}

/// What is known of a body's length before it is sent (from `Body::is_end_stream` /
/// `size_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body at all (`Body::Empty`).
    Empty,
    /// Exactly this many bytes.
    Exact(u64),
    /// Not known in advance.
    Unknown,
}

/// The request facts that decide a response's framing (from [`super::ParsedRequest`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts {
    /// The request's version (the response is framed for what the client understands).
    pub version: Version,
    /// The request was HEAD.
    pub is_head: bool,
    /// The client allows reuse.
    pub keep_alive: bool,
    /// The client sent `TE: trailers`.
    pub te_trailers: bool,
}

/// How to write a response downstream (RFC 9112 §6.3, §9.3; design §4.3, §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFraming {
    /// The body's framing.
    pub framing: Framing,
    /// The `connection` field to write.
    pub connection: ConnectionField,
    /// The connection stays open for the next request after this response.
    pub keep_alive: bool,
    /// Trailers may be written (chunked, and the client sent `TE: trailers`).
    pub send_trailers: bool,
}

/// Decides a downstream response's framing: 1xx/204/304 and HEAD → no body bytes, fields
/// as they are; exact length → `content-length`; else chunked for HTTP/1.1 and
/// close-delimited for HTTP/1.0. `close` forces `connection: close` (a 400/431 answer,
/// draining, an unconsumed request body). A 101 keeps its fields (`connection: upgrade`)
/// and ends the HTTP exchange.
pub fn response_framing(
    req: RequestFacts,
    status: http::StatusCode,
    body: BodyLength,
    close: bool,
) -> ResponseFraming {
    if status == http::StatusCode::SWITCHING_PROTOCOLS {
        return ResponseFraming {
            framing: Framing::AsIs,
            connection: ConnectionField::Keep,
            keep_alive: false,
            send_trailers: false,
        };
    }
    let bodyless = req.is_head
        || status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED;
    let framing = match body {
        _ if bodyless => Framing::AsIs,
        BodyLength::Empty => Framing::Length(0),
        BodyLength::Exact(n) => Framing::Length(n),
        BodyLength::Unknown if req.version == Version::HTTP_10 => Framing::Close,
        BodyLength::Unknown => Framing::Chunked,
    };
    let keep_alive = req.keep_alive && !close && framing != Framing::Close;
    let connection = if !keep_alive {
        ConnectionField::Close
    } else if req.version == Version::HTTP_10 {
        ConnectionField::KeepAlive
    } else {
        ConnectionField::Keep
    };
    ResponseFraming {
        framing,
        connection,
        keep_alive,
        send_trailers: framing == Framing::Chunked && req.te_trailers,
    }
}

/// Decides an upstream request's framing: no body → fields as they are (a client's
/// `content-length: 0` stays), exact length → `content-length`, else chunked (trailers
/// always allowed towards the upstream).
pub fn request_framing(body: BodyLength) -> Framing {
    match body {
        BodyLength::Empty => Framing::AsIs,
        BodyLength::Exact(n) => Framing::Length(n),
        BodyLength::Unknown => Framing::Chunked,
    }
}
