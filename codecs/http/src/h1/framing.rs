//! Message length and persistence fields (RFC 9112 §6.1–§6.3, RFC 9110 §8.6): which
//! `Transfer-Encoding` / `Content-Length` combinations frame a body, and which are errors.

use http::header::TRANSFER_ENCODING;
use http::{HeaderMap, HeaderName, Version};

use super::error::ParseError;
use super::parse::{BodyKind, Seen};

/// Comma-separated tokens of every field `name`, trimmed, parameters kept.
fn tokens<'a>(headers: &'a HeaderMap, name: HeaderName) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

pub(super) fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

const KNOWN_CODINGS: [&[u8]; 6] = [
    b"gzip",
    b"x-gzip",
    b"deflate",
    b"compress",
    b"x-compress",
    b"identity",
];

/// `true` if `chunked` is the final coding, appears once and has no parameters, `false`
/// if not (400 for a request); [`ParseError::UnknownTransferCoding`] for an unknown coding
/// before a final `chunked` (501).
fn chunked_final(headers: &HeaderMap) -> Result<bool, ParseError> {
    let mut chunked_seen = 0usize;
    let mut last_chunked = false;
    let mut unknown = false;
    for t in tokens(headers, TRANSFER_ENCODING) {
        let coding = t
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let chunked = coding.eq_ignore_ascii_case(b"chunked");
        // `chunked` defines no parameters and their presence SHOULD be an error (RFC 9112
        // §7); hyper does not take `chunked;x` for chunked either, so neither may we.
        last_chunked = chunked && !t.contains(&b';');
        if chunked {
            chunked_seen += 1;
        } else if !KNOWN_CODINGS.iter().any(|k| coding.eq_ignore_ascii_case(k)) {
            unknown = true;
        }
    }
    if !last_chunked || chunked_seen > 1 {
        return Ok(false);
    }
    if unknown {
        return Err(ParseError::UnknownTransferCoding);
    }
    Ok(true)
}

/// Content-Length per RFC 9110 §8.6, one field at a time: `found` is what the fields
/// before gave (`None`: none yet); every value (in one list or in several fields) must
/// be `1*DIGIT` and all must be equal.
pub(super) fn fold_content_length(
    mut found: Option<u64>,
    field: &[u8],
) -> Result<Option<u64>, ParseError> {
    for t in field.split(|b| *b == b',') {
        let t = t.trim_ascii();
        if t.is_empty() {
            return Err(ParseError::InvalidContentLength);
        }
        let mut n: u64 = 0;
        for d in t {
            if !d.is_ascii_digit() {
                return Err(ParseError::InvalidContentLength);
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(ParseError::InvalidContentLength)?;
        }
        match found {
            Some(prev) if prev != n => return Err(ParseError::ConflictingContentLength),
            _ => found = Some(n),
        }
    }
    Ok(found)
}

fn length(n: u64) -> BodyKind {
    if n == 0 {
        BodyKind::None
    } else {
        BodyKind::Length(n)
    }
}

/// How a request's body is framed; `seen` says which framing fields the head has.
pub(super) fn request_body(
    headers: &HeaderMap,
    seen: &Seen,
    version: Version,
) -> Result<BodyKind, ParseError> {
    if seen.transfer_encoding {
        if version == Version::HTTP_10 {
            return Err(ParseError::TransferEncodingInHttp10);
        }
        if seen.content_length {
            return Err(ParseError::TransferEncodingWithContentLength);
        }
        return match chunked_final(headers)? {
            true => Ok(BodyKind::Chunked),
            false => Err(ParseError::ChunkedNotFinal),
        };
    }
    if !seen.content_length {
        return Ok(BodyKind::None);
    }
    Ok(seen.length.clone()?.map_or(BodyKind::None, length))
}

/// How a response's body is framed; `seen` says which framing fields the head has.
pub(super) fn response_body(
    headers: &HeaderMap,
    seen: &Seen,
    version: Version,
) -> Result<BodyKind, ParseError> {
    if seen.transfer_encoding {
        if seen.content_length {
            return Err(ParseError::TransferEncodingWithContentLength);
        }
        // HTTP/1.0 with TE: faulty framing, read to EOF (RFC 9112 §6.1). An unknown
        // coding before `chunked` is forwarded as is: the proxy only removes `chunked`.
        let chunked = version == Version::HTTP_11 && chunked_final(headers).unwrap_or(true);
        return Ok(if chunked {
            BodyKind::Chunked
        } else {
            BodyKind::Eof
        });
    }
    if !seen.content_length {
        return Ok(BodyKind::Eof);
    }
    Ok(seen.length.clone()?.map_or(BodyKind::Eof, length))
}
