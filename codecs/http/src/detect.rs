//! Telling HTTP/1 and HTTP/2 apart from the first bytes of a connection.

use strait_codec_framework::Detect;

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The longest method token accepted before the space (`VERSION-CONTROL` is 15).
const MAX_METHOD_LEN: usize = 24;

/// Which HTTP a connection prefix starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpDetect {
    /// The HTTP/2 connection preface (prior knowledge).
    Http2,
    /// An HTTP/1 request line: a method token followed by a space.
    Http1,
    /// Not HTTP.
    NoMatch,
    /// A prefix of either; read more.
    NeedMore,
}

/// Whether `prefix` starts an HTTP connection: the full HTTP/2 preface (a partial one
/// needs more bytes, up to 24), or an HTTP/1 request line's method token (any RFC 9110
/// token, `GET`, `OPTIONS`... or an extension method) followed by a space.
pub fn detect(prefix: &[u8]) -> Detect {
    match detect_version(prefix) {
        HttpDetect::Http1 | HttpDetect::Http2 => Detect::Match,
        HttpDetect::NoMatch => Detect::NoMatch,
        HttpDetect::NeedMore => Detect::NeedMore,
    }
}

/// Like [`detect`], telling which HTTP version matched.
pub fn detect_version(prefix: &[u8]) -> HttpDetect {
    if prefix.is_empty() {
        return HttpDetect::NeedMore;
    }
    let n = prefix.len().min(H2_PREFACE.len());
    if prefix[..n] == H2_PREFACE[..n] {
        return if n == H2_PREFACE.len() {
            HttpDetect::Http2
        } else {
            HttpDetect::NeedMore
        };
    }
    for (i, &b) in prefix.iter().enumerate().take(MAX_METHOD_LEN + 1) {
        if b == b' ' {
            return if i == 0 {
                HttpDetect::NoMatch
            } else {
                HttpDetect::Http1
            };
        }
        if !is_tchar(b) || i == MAX_METHOD_LEN {
            return HttpDetect::NoMatch;
        }
    }
    HttpDetect::NeedMore
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// wire-formats §6.3 A4: the preface one byte at a time needs more until 24 bytes.
    #[test]
    fn a4_h2_preface_split() {
        for n in 1..H2_PREFACE.len() {
            assert_eq!(detect(&H2_PREFACE[..n]), Detect::NeedMore, "{n} bytes");
        }
        assert_eq!(detect(H2_PREFACE), Detect::Match);
        assert_eq!(detect_version(H2_PREFACE), HttpDetect::Http2);
        let mut more = H2_PREFACE.to_vec();
        more.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        assert_eq!(detect_version(&more), HttpDetect::Http2);
    }

    /// A5: `GE` needs more; `GET /` and `OPTIONS * HTTP/1.1` are HTTP/1.
    #[test]
    fn a5_http1() {
        assert_eq!(detect(b""), Detect::NeedMore);
        assert_eq!(detect(b"GE"), Detect::NeedMore);
        assert_eq!(detect(b"GET"), Detect::NeedMore);
        assert_eq!(detect(b"GET /"), Detect::Match);
        assert_eq!(detect_version(b"GET /"), HttpDetect::Http1);
        assert_eq!(detect(b"OPTIONS * HTTP/1.1"), Detect::Match);
        for m in [
            "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT", "PATCH", "PROPFIND",
        ] {
            assert_eq!(
                detect(format!("{m} /x HTTP/1.1\r\n").as_bytes()),
                Detect::Match,
                "{m}"
            );
        }
        // `PRI` diverging from the preface is an ordinary (extension) method.
        assert_eq!(detect(b"PRI /x HTTP/1.1"), Detect::Match);
        assert_eq!(detect_version(b"PRI /x HTTP/1.1"), HttpDetect::Http1);
    }

    /// A7: unknown bytes are no match; so are Bolt, Dubbo and TLS starts.
    #[test]
    fn a7_unknown() {
        assert_eq!(detect(&[0xff, 0, 0, 0, 0, 0, 0, 0]), Detect::NoMatch);
        assert_eq!(detect(&[0x01, 0x01, 0x00, 0x01]), Detect::NoMatch);
        assert_eq!(detect(&[0xda, 0xbb]), Detect::NoMatch);
        assert_eq!(detect(&[0x16, 0x03, 0x01, 0x00, 0xc8]), Detect::NoMatch);
        assert_eq!(detect(b" GET /"), Detect::NoMatch);
        assert_eq!(detect(b"GET\r\n"), Detect::NoMatch);
        assert_eq!(detect(&[b'A'; 40]), Detect::NoMatch);
        assert_eq!(detect(&[b'A'; 10]), Detect::NeedMore);
    }
}
