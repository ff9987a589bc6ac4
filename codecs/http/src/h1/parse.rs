//! Message heads (RFC 9112 §2–§5) and message length (§6) from a read buffer.
//!
//! [`request`] and [`response`] take a complete head off the front of the buffer and
//! leave everything after it (the body, a pipelined request) untouched. `Ok(None)` means
//! "need more bytes" (the buffer is then untouched). Header values and the request target
//! are not copied: they are slices of the frozen head. After an error the head may have
//! been taken off the buffer; the connection is closed anyway.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{
    ACCEPT, ACCEPT_ENCODING, ACCEPT_LANGUAGE, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH,
    CONTENT_TYPE, DATE, EXPECT, HOST, SERVER, TE, TRANSFER_ENCODING, UPGRADE, USER_AGENT,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};

use super::error::ParseError;
use super::framing::{fold_content_length, has_token, request_body, response_body};

/// Hard cap on header fields per head, whatever [`HeadLimits::max_headers`] says.
pub const MAX_HEADERS_CAP: usize = 128;

/// Size limits of a head; the defaults are `ServerOptions`' (64 KiB, 100 fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Largest head in bytes, request/status line and final CRLF included.
    pub max_head_bytes: usize,
    /// Most header fields (capped at [`MAX_HEADERS_CAP`]).
    pub max_headers: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self {
            max_head_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// How a message's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body (also `Content-Length: 0`).
    None,
    /// Exactly this many bytes (never 0).
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (responses only; never reusable).
    Eof,
}

/// A request head with its framing and connection flags.
#[derive(Debug)]
pub struct ParsedRequest {
    /// Method, target, version (1.0 or 1.1) and header fields as received.
    pub parts: http::request::Parts,
    /// Framing of the body that follows.
    pub body: BodyKind,
    /// The client allows the connection to be reused (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// HTTP/1.1 with `Expect: 100-continue`.
    pub expect_continue: bool,
    /// HTTP/1.1 with `Connection: upgrade` and an `Upgrade` field, or CONNECT.
    pub upgrade: bool,
    /// `TE` lists `trailers`: response trailers may be sent.
    pub te_trailers: bool,
    /// The method is HEAD: the response has no body whatever its headers say.
    pub is_head: bool,
}

impl ParsedRequest {
    /// What decides the response's framing ([`super::encode::response_framing`]).
    pub fn facts(&self) -> super::encode::RequestFacts {
        super::encode::RequestFacts {
            version: self.parts.version,
            is_head: self.is_head,
            keep_alive: self.keep_alive,
            te_trailers: self.te_trailers,
        }
    }
}

/// A response head with its framing and connection flags.
#[derive(Debug)]
pub struct ParsedResponse {
    /// Status, version (1.0 or 1.1) and header fields (obs-folds replaced by spaces).
    pub parts: http::response::Parts,
    /// Framing of the body that follows.
    pub body: BodyKind,
    /// The upstream allows the connection to be reused (false for [`BodyKind::Eof`]).
    pub keep_alive: bool,
    /// 101, or a 2xx answer to CONNECT: the connection now belongs to the tunnel.
    pub upgraded: bool,
}

/// Where a header line sits in the buffer, so the values can be sliced after freezing.
#[derive(Clone, Copy)]
struct Span {
    name: (usize, usize),
    value: (usize, usize),
}

fn offset_in(base: &[u8], part: &[u8]) -> (usize, usize) {
    // `part` is a sub-slice of `base` (httparse returns borrows of its input).
    let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
    (start, start + part.len())
}

/// Parses a request head off the front of `buf` (the downstream side).
pub fn request(
    buf: &mut BytesMut,
    limits: &HeadLimits,
) -> Result<Option<ParsedRequest>, ParseError> {
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let mut req = httparse::Request::new(&mut []);
    let (len, method, path, minor, spans) =
        match req.parse_with_uninit_headers(&buf[..], &mut headers[..max_headers]) {
            Ok(httparse::Status::Complete(len)) => {
                let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
                    .map_err(|_| ParseError::Malformed("method"))?;
                let path = offset_in(buf, req.path.unwrap_or_default().as_bytes());
                (
                    len,
                    method,
                    path,
                    req.version.unwrap_or(1),
                    spans_in(buf, req.headers),
                )
            }
            Ok(httparse::Status::Partial) => return partial(buf, limits),
            Err(e) => return Err(map_error(e, buf, max_headers, limits)),
        };
    if len > limits.max_head_bytes {
        return Err(ParseError::HeadTooLarge {
            max: limits.max_head_bytes,
        });
    }
    let head = buf.split_to(len).freeze();
    let (headers, seen) = build_headers(&head, &spans)?;
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let uri = Uri::from_maybe_shared(sub(&head, path)?)
        .map_err(|_| ParseError::Malformed("request target"))?;
    check_target(&method, &uri)?;
    if seen.hosts > 1 {
        return Err(ParseError::DuplicateHost);
    }
    if seen.hosts == 0 && version == Version::HTTP_11 {
        return Err(ParseError::MissingHost);
    }
    let body = request_body(&headers, &seen, version)?;
    let close = seen.close;
    let keep_alive = match version {
        Version::HTTP_11 => !close,
        _ => !close && seen.keep_alive,
    };
    let is11 = version == Version::HTTP_11;
    let expect_continue = is11
        && seen.expect
        && headers
            .get_all(EXPECT)
            .iter()
            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let upgrade = method == Method::CONNECT || (is11 && seen.upgrade && seen.connection_upgrade);
    let te_trailers = seen.te && has_token(&headers, TE, "trailers");
    let is_head = method == Method::HEAD;
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(ParsedRequest {
        parts,
        body,
        keep_alive,
        expect_continue,
        upgrade,
        te_trailers,
        is_head,
    }))
}

/// Parses a response head off the front of `buf` (the upstream side). `method` is the
/// request's: HEAD and CONNECT change the framing. Obs-folds are replaced by spaces.
pub fn response(
    buf: &mut BytesMut,
    limits: &HeadLimits,
    method: &Method,
) -> Result<Option<ParsedResponse>, ParseError> {
    let max_headers = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let mut res = httparse::Response::new(&mut []);
    let mut config = httparse::ParserConfig::default();
    config.allow_obsolete_multiline_headers_in_responses(true);
    let parsed =
        config.parse_response_with_uninit_headers(&mut res, &buf[..], &mut headers[..max_headers]);
    let (len, code, minor, spans) = match parsed {
        Ok(httparse::Status::Complete(len)) => (
            len,
            res.code.unwrap_or_default(),
            res.version.unwrap_or(1),
            spans_in(buf, res.headers),
        ),
        Ok(httparse::Status::Partial) => return partial(buf, limits),
        Err(e) => return Err(map_error(e, buf, max_headers, limits)),
    };
    if len > limits.max_head_bytes {
        return Err(ParseError::HeadTooLarge {
            max: limits.max_head_bytes,
        });
    }
    // Unfold in place: a fold's CR, LF (and the folding whitespace) become spaces. Only
    // a folded value holds a line break (the search is word-wide; the rewrite is not).
    for span in &spans {
        if let Some(value) = buf.get_mut(span.value.0..span.value.1)
            && value.contains(&b'\n')
        {
            for b in value.iter_mut().filter(|b| **b == b'\r' || **b == b'\n') {
                *b = b' ';
            }
        }
    }
    let head = buf.split_to(len).freeze();
    let (headers, seen) = build_headers(&head, &spans)?;
    let status = StatusCode::from_u16(code).map_err(|_| ParseError::Malformed("status code"))?;
    let version = if minor == 0 {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let upgraded = status == StatusCode::SWITCHING_PROTOCOLS
        || (*method == Method::CONNECT && status.is_success());
    let body = if upgraded
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || *method == Method::HEAD
    {
        BodyKind::None
    } else {
        response_body(&headers, &seen, version)?
    };
    let close = seen.close;
    let keep_alive = body != BodyKind::Eof
        && !upgraded
        && match version {
            Version::HTTP_11 => !close,
            _ => !close && seen.keep_alive,
        };
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    Ok(Some(ParsedResponse {
        parts,
        body,
        keep_alive,
        upgraded,
    }))
}

fn partial<T>(buf: &BytesMut, limits: &HeadLimits) -> Result<Option<T>, ParseError> {
    if buf.len() >= limits.max_head_bytes {
        Err(ParseError::HeadTooLarge {
            max: limits.max_head_bytes,
        })
    } else {
        Ok(None)
    }
}

fn map_error(
    e: httparse::Error,
    buf: &[u8],
    max_headers: usize,
    limits: &HeadLimits,
) -> ParseError {
    if e == httparse::Error::TooManyHeaders {
        return ParseError::TooManyHeaders { max: max_headers };
    }
    // A line starting with SP/HT inside the head is an obs-fold (httparse reports it as a
    // bad header name); tell it apart for the logs, both are 400.
    let head_end = find(buf, b"\r\n\r\n").map_or(buf.len(), |i| i + 2);
    let head = &buf[..head_end.min(limits.max_head_bytes).min(buf.len())];
    if find(head, b"\n ").is_some() || find(head, b"\n\t").is_some() {
        return ParseError::ObsFold;
    }
    ParseError::Malformed(match e {
        httparse::Error::HeaderName => "header name",
        httparse::Error::HeaderValue => "header value",
        httparse::Error::NewLine => "line ending",
        httparse::Error::Status => "status",
        httparse::Error::Token => "token",
        httparse::Error::Version => "version",
        _ => "head",
    })
}

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `head[start..end]` without copying; out of range (never, for httparse's borrows) is an error,
/// not a panic.
fn sub(head: &Bytes, (start, end): (usize, usize)) -> Result<Bytes, ParseError> {
    if start <= end && end <= head.len() {
        Ok(head.slice(start..end))
    } else {
        Err(ParseError::Malformed("head"))
    }
}

/// Where each parsed field lies in `buf`. A list of just the fields parsed: a fixed
/// array of `MAX_HEADERS_CAP` spans cost two 4 KiB memsets per proxied request.
fn spans_in(buf: &[u8], headers: &[httparse::Header<'_>]) -> Vec<Span> {
    headers
        .iter()
        .map(|h| Span {
            name: offset_in(buf, h.name.as_bytes()),
            value: offset_in(buf, h.value),
        })
        .collect()
}

/// Which of the fields that frame a message or steer its connection a head has, noted
/// while its map is built: the checks that follow look up only those present (most
/// heads have none but `Host` and `Content-Length`), and the two fields nearly every
/// head carries, `Content-Length` and `Connection`, are read here once, from the bytes
/// at hand, instead of being looked up in the map again.
pub(super) struct Seen {
    /// `Host` fields (more than one is an error).
    pub(super) hosts: u8,
    pub(super) expect: bool,
    pub(super) upgrade: bool,
    pub(super) te: bool,
    pub(super) content_length: bool,
    pub(super) transfer_encoding: bool,
    /// The `Content-Length` fields' value, folded as they came (RFC 9110 §8.6).
    pub(super) length: Result<Option<u64>, ParseError>,
    /// `Connection` lists `close`, `keep-alive`, `upgrade` (in any of its fields).
    pub(super) close: bool,
    pub(super) keep_alive: bool,
    pub(super) connection_upgrade: bool,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            hosts: 0,
            expect: false,
            upgrade: false,
            te: false,
            content_length: false,
            transfer_encoding: false,
            length: Ok(None),
            close: false,
            keep_alive: false,
            connection_upgrade: false,
        }
    }
}

impl Seen {
    fn note(&mut self, name: &HeaderName, value: &[u8]) {
        // By length first: one compare for most fields, and none of these names share
        // a length.
        match name.as_str().len() {
            2 if *name == TE => self.te = true,
            4 if *name == HOST => self.hosts = self.hosts.saturating_add(1),
            6 if *name == EXPECT => self.expect = true,
            7 if *name == UPGRADE => self.upgrade = true,
            10 if *name == CONNECTION => {
                for token in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                    if token.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        self.keep_alive = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        self.connection_upgrade = true;
                    }
                }
            }
            14 if *name == CONTENT_LENGTH => {
                self.content_length = true;
                if let Ok(found) = self.length {
                    self.length = fold_content_length(found, value);
                }
            }
            17 if *name == TRANSFER_ENCODING => self.transfer_encoding = true,
            _ => {}
        }
    }
}

/// The fields most heads carry, spelled as clients and servers usually send them (as
/// registered, or all lower case): named without `HeaderName::from_bytes`, which
/// lower-cases the name into a scratch buffer and then matches it against every
/// standard name (about 110 instructions a field). Any other spelling takes that path.
pub(crate) fn common_name(raw: &[u8]) -> Option<HeaderName> {
    let name = match raw {
        b"Host" | b"host" => HOST,
        b"Date" | b"date" => DATE,
        b"Accept" | b"accept" => ACCEPT,
        b"Server" | b"server" => SERVER,
        b"Connection" | b"connection" => CONNECTION,
        b"User-Agent" | b"user-agent" => USER_AGENT,
        b"Content-Type" | b"content-type" => CONTENT_TYPE,
        b"Cache-Control" | b"cache-control" => CACHE_CONTROL,
        b"Content-Length" | b"content-length" => CONTENT_LENGTH,
        b"Accept-Encoding" | b"accept-encoding" => ACCEPT_ENCODING,
        b"Accept-Language" | b"accept-language" => ACCEPT_LANGUAGE,
        b"Transfer-Encoding" | b"transfer-encoding" => TRANSFER_ENCODING,
        _ => return None,
    };
    Some(name)
}

fn build_headers(head: &Bytes, spans: &[Span]) -> Result<(HeaderMap, Seen), ParseError> {
    let mut map = HeaderMap::with_capacity(spans.len() + 4);
    let mut seen = Seen::default();
    for span in spans {
        let raw = head.get(span.name.0..span.name.1).unwrap_or_default();
        let name = match common_name(raw) {
            Some(name) => name,
            None => {
                HeaderName::from_bytes(raw).map_err(|_| ParseError::Malformed("header name"))?
            }
        };
        let value = sub(head, span.value)?;
        seen.note(&name, &value);
        let value = HeaderValue::from_maybe_shared(value)
            .map_err(|_| ParseError::Malformed("header value"))?;
        map.append(name, value);
    }
    Ok((map, seen))
}

fn check_target(method: &Method, uri: &Uri) -> Result<(), ParseError> {
    let authority_form = uri.scheme().is_none() && uri.authority().is_some();
    let asterisk = uri.scheme().is_none() && uri.authority().is_none() && uri.path() == "*";
    let ok = if *method == Method::CONNECT {
        authority_form
    } else if asterisk {
        *method == Method::OPTIONS
    } else {
        !authority_form
    };
    if ok {
        Ok(())
    } else {
        Err(ParseError::BadTarget)
    }
}
