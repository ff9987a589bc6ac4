//! Request smuggling: raw downstream bytes → what the codec must make of them. The
//! codec's tests run the table at every split; the server driver's tests in `stream/`
//! replay it over a connection.
//!
//! Each reject case must end in an error (400; 431 for the head limits; 501 for the one
//! unknown-coding case) from [`crate::h1::parse::request`] or, where the defect is in the
//! body, from the body [`crate::h1::Decoder`]: never a parsed request, never a quietly accepted body. The accept
//! cases prove the table is not vacuous. Every case is also fed in two parts split at every
//! byte, and must come out exactly as it does in one read, so a split never turns a reject
//! into an accept.

use http::StatusCode;

use crate::h1::parse::{BodyKind, HeadLimits};
use crate::h1::{DecodeError as D, ParseError as E};

/// What one connection's bytes came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// [`crate::h1::parse::request`] rejected the head.
    HeadErr(E),
    /// The head parsed with this framing, then the body decoder rejected the body
    /// ([`D::Incomplete`]: the input, taken as the connection's EOF, ended inside it).
    BodyErr(BodyKind, D),
    /// One complete request: its framing, body bytes, trailer names and bytes left after it.
    Request {
        body: BodyKind,
        data: Vec<u8>,
        trailers: Vec<String>,
        rest: usize,
    },
    /// The input ended inside a head.
    Pending,
}

pub struct Case {
    pub name: &'static str,
    pub raw: Vec<u8>,
    pub limits: HeadLimits,
    pub want: Outcome,
    /// The answer to the downstream; `None` for an accepted request.
    pub status: Option<StatusCode>,
}

const BAD: Option<StatusCode> = Some(StatusCode::BAD_REQUEST);

/// Limits small enough that the 431 cases stay short (every split is tried).
const SMALL: HeadLimits = HeadLimits {
    max_head_bytes: 64,
    max_headers: 4,
};

/// `POST / HTTP/1.1` with `Host: a`, then `fields` (one line each), then `body`.
fn post(fields: &[&str], body: &str) -> Vec<u8> {
    let mut raw = String::from("POST / HTTP/1.1\r\nHost: a\r\n");
    for f in fields {
        raw.push_str(f);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    raw.into_bytes()
}

fn chunked(body: &str) -> Vec<u8> {
    post(&["Transfer-Encoding: chunked"], body)
}

fn head(name: &'static str, raw: impl Into<Vec<u8>>, err: E) -> Case {
    Case {
        name,
        raw: raw.into(),
        limits: HeadLimits::default(),
        want: Outcome::HeadErr(err),
        status: BAD,
    }
}

fn body(name: &'static str, raw: impl Into<Vec<u8>>, kind: BodyKind, err: D) -> Case {
    Case {
        name,
        raw: raw.into(),
        limits: HeadLimits::default(),
        want: Outcome::BodyErr(kind, err),
        status: BAD,
    }
}

fn accept(
    name: &'static str,
    raw: impl Into<Vec<u8>>,
    kind: BodyKind,
    data: &str,
    trailers: &[&str],
) -> Case {
    Case {
        name,
        raw: raw.into(),
        limits: HeadLimits::default(),
        want: Outcome::Request {
            body: kind,
            data: data.into(),
            trailers: trailers.iter().map(|t| t.to_string()).collect(),
            rest: 0,
        },
        status: None,
    }
}

/// The table, replayed by the bounded fuzz run and against the server driver too.
pub fn cases() -> Vec<Case> {
    use BodyKind::{Chunked, Length};
    let te_cl = E::TransferEncodingWithContentLength;
    let not_final = E::ChunkedNotFinal;
    let bad_cl = E::InvalidContentLength;
    let malformed = E::Malformed;
    vec![
        // CL.TE and TE.CL: both framings present is a 400 whatever the order or values
        // (RFC 9112 §6.3 item 3 lets a server reject; design §4.2 does).
        head(
            "cl.te",
            post(&["Content-Length: 5", "Transfer-Encoding: chunked"], ""),
            te_cl.clone(),
        ),
        head(
            "te.cl",
            post(&["Transfer-Encoding: chunked", "Content-Length: 5"], ""),
            te_cl.clone(),
        ),
        head(
            "cl.te with the classic payload",
            post(
                &["Content-Length: 13", "Transfer-Encoding: chunked"],
                "0\r\n\r\nSMUGGLED",
            ),
            te_cl.clone(),
        ),
        head(
            "te.cl with content-length 0",
            post(&["Transfer-Encoding: chunked", "Content-Length: 0"], ""),
            te_cl.clone(),
        ),
        head(
            "te.cl with an invalid content-length",
            post(&["Transfer-Encoding: chunked", "Content-Length: x"], ""),
            te_cl,
        ),
        // TE.TE: anything but one final, parameterless `chunked` (RFC 9112 §6.3 item 4).
        head(
            "te: chunked, identity",
            post(&["Transfer-Encoding: chunked, identity"], ""),
            not_final.clone(),
        ),
        head(
            "te: xchunked",
            post(&["Transfer-Encoding: xchunked"], ""),
            not_final.clone(),
        ),
        head(
            "te: chunked then te: identity",
            post(
                &["Transfer-Encoding: chunked", "Transfer-Encoding: identity"],
                "",
            ),
            not_final.clone(),
        ),
        head(
            "te: chunked twice",
            post(
                &["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
                "",
            ),
            not_final.clone(),
        ),
        head(
            "te: chunked with trailing junk",
            post(&["Transfer-Encoding: chunked junk"], ""),
            not_final.clone(),
        ),
        // Needed a fix: `chunked;x=1` was taken for chunked (RFC 9112 §7: chunked has no
        // parameters, their presence SHOULD be an error; hyper rejects it too).
        head(
            "te: chunked with a parameter",
            post(&["Transfer-Encoding: chunked;x=1"], ""),
            not_final.clone(),
        ),
        head(
            "te: chunked with an empty parameter",
            post(&["Transfer-Encoding: chunked;"], ""),
            not_final.clone(),
        ),
        head(
            "te: quoted chunked",
            post(&["Transfer-Encoding: \"chunked\""], ""),
            not_final.clone(),
        ),
        head(
            "te: empty",
            post(&["Transfer-Encoding: "], ""),
            not_final.clone(),
        ),
        head(
            "te: chunked, gzip",
            post(&["Transfer-Encoding: chunked, gzip"], ""),
            not_final,
        ),
        head(
            "te: chunked then a vertical tab",
            post(&["Transfer-Encoding: chunked\x0b"], ""),
            malformed("header value"),
        ),
        Case {
            // RFC 9112 §6.1: an unknown coding is 501, not 400; still never framed.
            status: Some(StatusCode::NOT_IMPLEMENTED),
            ..head(
                "te: unknown coding before chunked",
                post(&["Transfer-Encoding: foo, chunked"], ""),
                E::UnknownTransferCoding,
            )
        },
        head(
            "te in an http/1.0 request",
            &b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            E::TransferEncodingInHttp10,
        ),
        // Whitespace before the colon (RFC 9112 §5.1: MUST reject), in any field.
        head(
            "te with a space before the colon",
            post(&["Transfer-Encoding : chunked"], "0\r\n\r\n"),
            malformed("header name"),
        ),
        head(
            "te with a tab before the colon",
            post(&["Transfer-Encoding\t: chunked"], "0\r\n\r\n"),
            malformed("header name"),
        ),
        head(
            "content-length with a space before the colon",
            post(&["Content-Length : 5"], "hello"),
            malformed("header name"),
        ),
        head(
            "host with a space before the colon",
            &b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"[..],
            malformed("header name"),
        ),
        // Content-Length (RFC 9110 §8.6): 1*DIGIT, equal values only, fits in u64.
        head(
            "two differing content-length fields",
            post(&["Content-Length: 5", "Content-Length: 6"], "hello!"),
            E::ConflictingContentLength,
        ),
        head(
            "content-length list 5, 6",
            post(&["Content-Length: 5, 6"], "hello!"),
            E::ConflictingContentLength,
        ),
        head(
            "content-length +5",
            post(&["Content-Length: +5"], "hello"),
            bad_cl.clone(),
        ),
        head(
            "content-length -1",
            post(&["Content-Length: -1"], ""),
            bad_cl.clone(),
        ),
        head(
            "content-length 0x5",
            post(&["Content-Length: 0x5"], "hello"),
            bad_cl.clone(),
        ),
        head(
            "content-length ' 5 5'",
            post(&["Content-Length:  5 5"], "hello"),
            bad_cl.clone(),
        ),
        head(
            "content-length 5,",
            post(&["Content-Length: 5,"], "hello"),
            bad_cl.clone(),
        ),
        head(
            "content-length empty",
            post(&["Content-Length: "], ""),
            bad_cl.clone(),
        ),
        head(
            "content-length u64::MAX + 1",
            post(&["Content-Length: 18446744073709551616"], ""),
            bad_cl.clone(),
        ),
        head(
            "content-length far over u64",
            post(&["Content-Length: 99999999999999999999999999"], ""),
            bad_cl,
        ),
        // obs-fold in a request: 400 (RFC 9112 §5.2 allows it, design §4.1 does it).
        head(
            "obs-fold with a space",
            post(&["X-A: b\r\n c"], ""),
            E::ObsFold,
        ),
        head(
            "obs-fold with a tab",
            post(&["X-A: b\r\n\tc"], ""),
            E::ObsFold,
        ),
        head(
            "obs-fold continuing content-length",
            post(&["Content-Length: 5\r\n 6"], "hello"),
            E::ObsFold,
        ),
        head(
            "obs-fold continuing transfer-encoding",
            post(&["Transfer-Encoding: identity\r\n chunked"], "0\r\n\r\n"),
            E::ObsFold,
        ),
        head(
            "obs-fold after a bare lf",
            &b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\n c\r\n\r\n"[..],
            E::ObsFold,
        ),
        head(
            "whitespace before the first field",
            &b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n"[..],
            E::ObsFold,
        ),
        // A bare CR is never a line break (RFC 9112 §2.2: replace or reject; httparse rejects).
        head(
            "bare cr inside a field value",
            &b"GET / HTTP/1.1\r\nHost: a\r\nX: b\rc\r\n\r\n"[..],
            malformed("header value"),
        ),
        head(
            "bare cr as a field separator",
            &b"GET / HTTP/1.1\r\nHost: a\rTransfer-Encoding: chunked\r\n\r\n"[..],
            malformed("header value"),
        ),
        head(
            "bare cr after the request line",
            &b"GET / HTTP/1.1\rHost: a\r\n\r\n"[..],
            malformed("line ending"),
        ),
        head(
            "bare cr in the final empty line",
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\r\n"[..],
            malformed("line ending"),
        ),
        head(
            "bare cr in the target",
            &b"GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            malformed("token"),
        ),
        // Request lines (RFC 9112 §3: method SP target SP HTTP-version, exactly).
        head(
            "request line without version",
            &b"GET /\r\nHost: a\r\n\r\n"[..],
            malformed("token"),
        ),
        head(
            "request line with an empty version",
            &b"GET / \r\nHost: a\r\n\r\n"[..],
            malformed("version"),
        ),
        head(
            "HTTP/1.2",
            &b"GET / HTTP/1.2\r\nHost: a\r\n\r\n"[..],
            malformed("version"),
        ),
        head(
            "HTTP/2.0 as text",
            &b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"[..],
            malformed("version"),
        ),
        head(
            "lowercase http/1.1",
            &b"GET / http/1.1\r\nHost: a\r\n\r\n"[..],
            malformed("version"),
        ),
        head(
            "two spaces after the method",
            &b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            malformed("token"),
        ),
        head(
            "two spaces before the version",
            &b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            malformed("version"),
        ),
        head(
            "space after the version",
            &b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n"[..],
            malformed("line ending"),
        ),
        head(
            "tab as a delimiter",
            &b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            malformed("token"),
        ),
        head(
            "leading space",
            &b" GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            malformed("token"),
        ),
        head(
            "a status line sent as a request",
            &b"HTTP/1.1 200 OK\r\nHost: a\r\n\r\n"[..],
            malformed("token"),
        ),
        head(
            "nul in the target",
            &b"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            malformed("token"),
        ),
        head(
            "absolute junk",
            &b"\xff\xfe\x00junk\r\n\r\n"[..],
            malformed("token"),
        ),
        head(
            "nul as a field name",
            &b"GET / HTTP/1.1\r\nHost: a\r\n\x00\r\n\r\n"[..],
            malformed("header name"),
        ),
        head(
            "empty field name",
            &b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"[..],
            malformed("header name"),
        ),
        // Host confusion (RFC 9112 §3.2).
        head(
            "two hosts",
            &b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"[..],
            E::DuplicateHost,
        ),
        head(
            "no host in http/1.1",
            &b"GET / HTTP/1.1\r\n\r\n"[..],
            E::MissingHost,
        ),
        // Head limits: 431.
        Case {
            limits: SMALL,
            status: Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            ..head(
                "too many fields",
                &b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"[..],
                E::TooManyHeaders { max: 4 },
            )
        },
        Case {
            limits: SMALL,
            status: Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            ..head(
                "complete head over the size limit",
                format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", "h".repeat(50)),
                E::HeadTooLarge { max: 64 },
            )
        },
        Case {
            limits: SMALL,
            status: Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
            ..head(
                "endless head",
                format!("GET /{} HTTP/1.1\r\nHost: a\r\n", "a".repeat(60)),
                E::HeadTooLarge { max: 64 },
            )
        },
        // Chunked framing (RFC 9112 §7.1; design §4.2: ≤ 16 hex digits, CRLF required).
        body(
            "chunk size of 17 hex digits",
            chunked("fffffffffffffffff\r\n"),
            Chunked,
            D::ChunkSizeOverflow,
        ),
        body(
            "chunk size 2^64",
            chunked("10000000000000000\r\nx\r\n0\r\n\r\n"),
            Chunked,
            D::ChunkSizeOverflow,
        ),
        body(
            "chunk size with 17 digits of leading zeros",
            chunked("00000000000000005\r\nhello\r\n0\r\n\r\n"),
            Chunked,
            D::ChunkSizeOverflow,
        ),
        body(
            "chunk size not hex",
            chunked("g\r\nx\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        body(
            "chunk size 0x5",
            chunked("0x5\r\nhello\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        body(
            "chunk size -1",
            chunked("-1\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        body(
            "chunk size +5",
            chunked("+5\r\nhello\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        body(
            "chunk size with a leading space",
            chunked(" 5\r\nhello\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        body(
            "chunk size 5 5",
            chunked("5 5\r\nhello\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        body(
            "empty chunk size",
            chunked("\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        body(
            "chunk data not followed by crlf",
            chunked("5\r\nhelloX\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkEnd,
        ),
        body(
            "chunk data longer than its size",
            chunked("5\r\nhello!\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkEnd,
        ),
        body(
            "bare lf after the chunk size",
            chunked("5\nhello\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        body(
            "bare lf after a chunk extension",
            chunked("5;a=b\nhello\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        body(
            "bare cr after the chunk size",
            chunked("5\r\rhello\r\n0\r\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        body(
            "bare lf after chunk data",
            chunked("5\r\nhello\n0\r\n\r\n"),
            Chunked,
            D::BadChunkEnd,
        ),
        body(
            "bare lf after the last chunk size",
            chunked("0\n\r\n"),
            Chunked,
            D::BadChunkSize,
        ),
        // A bare LF as the final line does not end the body: the decoder waits for a CRLF
        // CRLF, so the next request is taken for a (bad) trailer section, and at EOF the
        // body is incomplete. Either way a 400, never a body end.
        body(
            "bare lf ending the body, then a request",
            chunked("0\r\n\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"),
            Chunked,
            D::BadTrailers,
        ),
        body(
            "bare lf ending the body, then eof",
            chunked("0\r\n\n"),
            Chunked,
            D::Incomplete,
        ),
        body(
            "chunked body cut short",
            chunked("5\r\nhel"),
            Chunked,
            D::Incomplete,
        ),
        body(
            "content-length body cut short",
            post(&["Content-Length: 10"], "hello"),
            Length(10),
            D::Incomplete,
        ),
        // Accepted: the table is not vacuous.
        accept(
            "content-length",
            post(&["Content-Length: 5"], "hello"),
            Length(5),
            "hello",
            &[],
        ),
        accept(
            "identical content-length fields",
            post(&["Content-Length: 5", "Content-Length: 5"], "hello"),
            Length(5),
            "hello",
            &[],
        ),
        accept(
            "identical content-length list",
            post(&["Content-Length: 5, 5"], "hello"),
            Length(5),
            "hello",
            &[],
        ),
        accept(
            "content-length with leading zeros",
            post(&["Content-Length: 005"], "hello"),
            Length(5),
            "hello",
            &[],
        ),
        accept(
            "content-length 0",
            post(&["Content-Length: 0"], ""),
            BodyKind::None,
            "",
            &[],
        ),
        accept(
            "chunked",
            chunked("5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"),
            Chunked,
            "hello world",
            &[],
        ),
        accept(
            "chunked with trailers, framing fields dropped",
            chunked("5\r\nhello\r\n0\r\nX-Sum: 1\r\nContent-Length: 5\r\n\r\n"),
            Chunked,
            "hello",
            &["x-sum"],
        ),
        accept(
            "chunk size of 16 digits with leading zeros",
            chunked("0000000000000005\r\nhello\r\n0\r\n\r\n"),
            Chunked,
            "hello",
            &[],
        ),
        accept(
            "te: CHUNKED",
            post(&["Transfer-Encoding: CHUNKED"], "0\r\n\r\n"),
            Chunked,
            "",
            &[],
        ),
        accept(
            "te: gzip, chunked",
            post(&["Transfer-Encoding: gzip, chunked"], "1\r\nz\r\n0\r\n\r\n"),
            Chunked,
            "z",
            &[],
        ),
        // RFC 9110 §5.6.3: OWS is SP or HTAB, so a tab after the colon is valid.
        accept(
            "te with a tab after the colon",
            post(&["Transfer-Encoding:\tchunked"], "0\r\n\r\n"),
            Chunked,
            "",
            &[],
        ),
        // RFC 9112 §2.2: a recipient MAY take a bare LF for a line end in the head (and
        // ignore a CR before it). httparse does, so the codec does: the head is rebuilt,
        // never forwarded as received, so no other parser sees the bare LFs.
        accept(
            "bare lf line ends in the head",
            &b"GET / HTTP/1.1\nHost: a\n\n"[..],
            BodyKind::None,
            "",
            &[],
        ),
        accept(
            "bare lf head with a content-length body",
            &b"POST / HTTP/1.1\nHost: a\nContent-Length: 3\n\nabc"[..],
            Length(3),
            "abc",
            &[],
        ),
        accept(
            "bare lf head with a chunked body",
            &b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n3\r\nabc\r\n0\r\n\r\n"[..],
            Chunked,
            "abc",
            &[],
        ),
        accept(
            "mixed crlf and lf in the head",
            &b"GET / HTTP/1.1\r\nHost: a\n\r\n"[..],
            BodyKind::None,
            "",
            &[],
        ),
    ]
}
