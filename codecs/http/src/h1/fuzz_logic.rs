//! Properties of the HTTP/1.1 codec on arbitrary input, shared by the cargo-fuzz crate
//! (`codecs/http/fuzz`) and the bounded run in the unit tests: parsing never panics, a
//! need-more answer leaves the buffer untouched, how the bytes are split between reads
//! changes nothing, and no accepted head is framed two ways.
//!
//! A panic is how this module reports a broken property to the fuzzer: its `assert`s and
//! `panic!`s are the checks themselves, not error handling. Compiled for tests and with
//! the `fuzzing` feature only, so it never ships in the proxy.

use bytes::BytesMut;
use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Method, StatusCode, Version};

use super::decode::{ChunkLimits, Decoded, Decoder};
use super::error::{DecodeError, ParseError};
use super::parse::{self, BodyKind, HeadLimits, ParsedRequest, ParsedResponse};

/// Head limits while fuzzing: small, so the 431 paths are reached by short inputs.
const HEAD_LIMITS: HeadLimits = HeadLimits {
    max_head_bytes: 1024,
    max_headers: 16,
};

/// Body limits while fuzzing, small for the same reason.
const CHUNK_LIMITS: ChunkLimits = ChunkLimits {
    max_extension_bytes: 64,
    max_trailer_bytes: 256,
    max_trailers: 8,
};

/// A head parse reduced to what must not depend on how the bytes arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    NeedMore,
    Rejected,
    Parsed { len: usize, body: BodyKind },
}

/// A body decode reduced likewise: data, trailers, bytes consumed, and how it ended
/// (`Ok(true)` done, `Ok(false)` waiting for more).
#[derive(Debug, PartialEq, Eq)]
struct Body {
    data: Vec<u8>,
    trailers: Vec<HeaderMap>,
    consumed: usize,
    end: Result<bool, DecodeError>,
}

/// Parses `data` as a stream of pipelined requests, each head followed by its body, and
/// checks every property on each. Panics (which the fuzzer reports) if one does not hold.
/// Returns how many heads parsed, so tests can tell their inputs reach the body paths.
pub fn parse_request(data: &[u8]) -> usize {
    let mut rest = data;
    let mut heads = 0;
    loop {
        let parse = |buf: &mut BytesMut| parse::request(buf, &HEAD_LIMITS);
        let (head, req) = head_at(rest, rest.len(), parse, |r| r.body);
        let again = head_at(rest, split_point(rest), parse, |r| r.body).0;
        assert_eq!(again, head, "a split changed the head's outcome");
        let (Head::Parsed { len, body }, Some(req)) = (head, req) else {
            return heads;
        };
        heads += 1;
        check_request(&req);
        let after = &rest[len..];
        let decoded = body_at(body, after, after.len());
        assert_eq!(
            body_at(body, after, split_point(after)),
            decoded,
            "a split changed the body"
        );
        if decoded.end != Ok(true) {
            return heads;
        }
        rest = &after[decoded.consumed..];
    }
}

/// Parses `data` as a response head and body to a GET, a HEAD and a CONNECT request, and
/// checks every property. Panics if one does not hold. Returns how many heads parsed.
pub fn parse_response(data: &[u8]) -> usize {
    let mut heads = 0;
    for method in [Method::GET, Method::HEAD, Method::CONNECT] {
        let parse = |buf: &mut BytesMut| parse::response(buf, &HEAD_LIMITS, &method);
        let (head, res) = head_at(data, data.len(), parse, |r| r.body);
        let again = head_at(data, split_point(data), parse, |r| r.body).0;
        assert_eq!(again, head, "a split changed the head's outcome");
        let (Head::Parsed { len, body }, Some(res)) = (head, res) else {
            continue;
        };
        heads += 1;
        check_response(&res, &method);
        let after = &data[len..];
        let decoded = body_at(body, after, after.len());
        assert_eq!(
            body_at(body, after, split_point(after)),
            decoded,
            "a split changed the body"
        );
    }
    heads
}

/// A split point derived from the data (FNV-1a), so the fuzzer explores splits too.
fn split_point(data: &[u8]) -> usize {
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % (data.len() as u64 + 1)) as usize
}

/// Parses `data` fed as `data[..split]` and then, if that needed more, all of it.
fn head_at<T>(
    data: &[u8],
    split: usize,
    mut parse: impl FnMut(&mut BytesMut) -> Result<Option<T>, ParseError>,
    body: impl Fn(&T) -> BodyKind,
) -> (Head, Option<T>) {
    let mut buf = BytesMut::from(&data[..split]);
    let mut fed = split;
    loop {
        match parse(&mut buf) {
            Ok(Some(head)) => {
                let len = fed - buf.len();
                assert!(len > 0, "a head consumed no bytes");
                assert_eq!(&buf[..], &data[len..fed], "bytes after the head changed");
                return (
                    Head::Parsed {
                        len,
                        body: body(&head),
                    },
                    Some(head),
                );
            }
            Ok(None) => {
                assert_eq!(&buf[..], &data[..fed], "need-more changed the buffer");
                if fed == data.len() {
                    return (Head::NeedMore, None);
                }
                buf.extend_from_slice(&data[fed..]);
                fed = data.len();
            }
            Err(e) => {
                let status = e.status();
                assert!(
                    [
                        StatusCode::BAD_REQUEST,
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        StatusCode::NOT_IMPLEMENTED,
                    ]
                    .contains(&status),
                    "{e:?} answers {status}"
                );
                return (Head::Rejected, None);
            }
        }
    }
}

/// A request head is framed one way only (RFC 9112 §6.3), and carries what §3.2 requires.
fn check_request(req: &ParsedRequest) {
    let headers = &req.parts.headers;
    let te = headers.contains_key(TRANSFER_ENCODING);
    let cl = headers.contains_key(CONTENT_LENGTH);
    assert!(
        !(te && cl),
        "accepted with both Transfer-Encoding and Content-Length"
    );
    match req.body {
        BodyKind::Chunked => {
            assert!(te, "chunked without Transfer-Encoding");
            assert_eq!(
                req.parts.version,
                Version::HTTP_11,
                "chunked HTTP/1.0 request"
            );
        }
        BodyKind::Length(n) => assert!(cl && n > 0, "length {n} without Content-Length"),
        BodyKind::None => assert!(!te, "Transfer-Encoding without a body"),
        BodyKind::Eof => panic!("a close-delimited request"),
    }
    let hosts = headers.get_all(HOST).iter().count();
    assert!(hosts <= 1, "{hosts} Host fields");
    if req.parts.version == Version::HTTP_11 {
        assert_eq!(hosts, 1, "HTTP/1.1 without Host");
    }
    assert_eq!(req.is_head, req.parts.method == Method::HEAD);
}

/// A response head's framing follows the request method and its status (RFC 9112 §6.3).
fn check_response(res: &ParsedResponse, method: &Method) {
    let headers = &res.parts.headers;
    let te = headers.contains_key(TRANSFER_ENCODING);
    let cl = headers.contains_key(CONTENT_LENGTH);
    let status = res.parts.status;
    let bodyless = *method == Method::HEAD
        || res.upgraded
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if bodyless {
        assert_eq!(res.body, BodyKind::None, "{status} to {method} has a body");
    } else {
        assert!(
            !(te && cl),
            "accepted with both Transfer-Encoding and Content-Length"
        );
    }
    if res.body == BodyKind::Chunked {
        assert_eq!(
            res.parts.version,
            Version::HTTP_11,
            "chunked HTTP/1.0 response"
        );
    }
    if res.body == BodyKind::Eof || res.upgraded {
        assert!(
            !res.keep_alive,
            "a connection that cannot be reused is kept"
        );
    }
}

/// Decodes `data` as a body of `kind`, fed as `data[..split]` then the rest.
fn body_at(kind: BodyKind, data: &[u8], split: usize) -> Body {
    let mut dec = Decoder::new(kind, CHUNK_LIMITS);
    let mut buf = BytesMut::new();
    let mut out = Body {
        data: Vec::new(),
        trailers: Vec::new(),
        consumed: 0,
        end: Ok(false),
    };
    let mut fed = 0;
    'feed: for piece in [&data[..split], &data[split..]] {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(Decoded::Data(d))) => {
                    assert!(!d.is_empty(), "an empty data frame");
                    out.data.extend_from_slice(&d);
                }
                Ok(Some(Decoded::Trailers(t))) => {
                    assert!(!t.is_empty(), "an empty trailers frame");
                    assert_eq!(kind, BodyKind::Chunked, "trailers outside a chunked body");
                    out.trailers.push(t);
                }
                Ok(None) if dec.is_done() => break 'feed,
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
                    out.end = Err(e);
                    break 'feed;
                }
            }
        }
    }
    // After an error the buffer is dead (the connection closes), and how much of a bad
    // size line was taken depends on the split: `consumed` then stays 0.
    if out.end.is_ok() {
        out.end = Ok(dec.is_done());
        out.consumed = fed - buf.len();
    }
    assert!(out.data.len() <= fed, "more data than bytes read");
    match kind {
        BodyKind::Length(n) => {
            assert!(out.data.len() as u64 <= n, "more than Content-Length");
            if out.end == Ok(true) {
                assert_eq!(out.data.len() as u64, n, "done before Content-Length");
            }
        }
        BodyKind::None => assert_eq!(out.end, Ok(true), "a body-less message waits"),
        BodyKind::Eof => assert_eq!(out.consumed, data.len(), "a close-delimited body held back"),
        BodyKind::Chunked => {}
    }
    out
}
