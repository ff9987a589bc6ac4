//! [`RequestHead`]: an HTTP request head as the router sees it.

use std::any::Any;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_TYPE, HOST};
use http::request::Parts;
use http::uri::Authority;
use http::{HeaderName, HeaderValue, Uri};
use strait_codec_framework::{CodecError, Frame, FrameKind, HeaderIter, RequestId};

/// The scheme a request arrived with (`http` on plain listeners, `https` behind TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scheme {
    /// Plain text.
    #[default]
    Http,
    /// TLS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// The matching `http` crate scheme.
    pub fn to_uri_scheme(self) -> http::uri::Scheme {
        match self {
            Scheme::Http => http::uri::Scheme::HTTP,
            Scheme::Https => http::uri::Scheme::HTTPS,
        }
    }
}

/// Whether a `content-type` value is gRPC's (`application/grpc`, `application/grpc+proto`...).
pub fn is_grpc_content_type(value: &[u8]) -> bool {
    const GRPC: &[u8] = b"application/grpc";
    value.len() >= GRPC.len() && value[..GRPC.len()].eq_ignore_ascii_case(GRPC)
}

/// Whether the request headers say gRPC.
pub fn is_grpc_request(headers: &http::HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| is_grpc_content_type(v.as_bytes()))
}

/// Parses a `grpc-timeout` value per the gRPC HTTP/2 spec: 1 to 8 ASCII digits (a
/// positive integer) then one unit, `H` `M` `S` `m` `u` `n`. Anything else is `None`.
pub fn parse_grpc_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    if n == 0 {
        return None;
    }
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Splits a gRPC path `/pkg.Service/Method` into `("pkg.Service", "Method")`.
pub fn split_grpc_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((service, method))
}

/// `host[:port]` without its port (`[v6]:port` keeps its brackets).
pub fn strip_port(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.find(']') {
            Some(end) => &authority[..end + 2],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    }
}

/// An HTTP request head as a [`Frame`], so the router reads HTTP requests through the
/// same view as every other protocol.
///
/// It owns the request's [`Parts`] (the body travels separately) plus the peer address
/// and scheme. It is never encoded: once routed, [`RequestHead::into_parts`] gives the
/// parts back to be sent as an `http::Request`.
///
/// Headers (`header`, `set_header`, `remove_header`) are the real header map, looked up
/// case-insensitively by hash. Variables: `path` (without the query), `query` (the raw
/// query string), `authority` (`:authority` or `Host`), `host` (the same without port),
/// `http_method`, `scheme`, `protocol` (`grpc` for `application/grpc*` content, else
/// `http`), and for gRPC `service` and `method` from `/pkg.Service/Method`.
#[derive(Debug)]
pub struct RequestHead {
    parts: Parts,
    peer: SocketAddr,
    scheme: Scheme,
    grpc: bool,
}

impl RequestHead {
    /// Wraps a request head received from `peer` over `scheme`.
    pub fn new(parts: Parts, peer: SocketAddr, scheme: Scheme) -> Self {
        let grpc = is_grpc_request(&parts.headers);
        RequestHead {
            parts,
            peer,
            scheme,
            grpc,
        }
    }

    /// The request parts.
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// The request parts, to edit (a path rewrite, say). Changing `content-type` here
    /// does not change [`RequestHead::is_grpc`].
    pub fn parts_mut(&mut self) -> &mut Parts {
        &mut self.parts
    }

    /// Gives the parts back, to forward the request.
    pub fn into_parts(self) -> Parts {
        self.parts
    }

    /// The downstream peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The scheme the request arrived with.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Whether this is a gRPC request (`content-type: application/grpc*`).
    pub fn is_grpc(&self) -> bool {
        self.grpc
    }

    /// The request's authority: the URI's (HTTP/2 `:authority`, absolute-form HTTP/1),
    /// else the `Host` header.
    pub fn authority(&self) -> Option<&str> {
        authority_of(&self.parts)
    }

    /// The gRPC `(service, method)` of the path, for gRPC requests.
    pub fn grpc_service_method(&self) -> Option<(&str, &str)> {
        if self.grpc {
            split_grpc_path(self.parts.uri.path())
        } else {
            None
        }
    }

    fn set_authority(&mut self, value: &str) {
        let Ok(header) = HeaderValue::from_str(value) else {
            return;
        };
        if self.parts.uri.authority().is_some() {
            let Ok(authority) =
                Authority::from_maybe_shared(Bytes::copy_from_slice(value.as_bytes()))
            else {
                return;
            };
            let mut uri_parts = std::mem::take(&mut self.parts.uri).into_parts();
            uri_parts.authority = Some(authority);
            // Replacing a valid authority in a URI that had scheme and authority keeps it
            // valid; should it not, the URI falls back to its path.
            self.parts.uri = Uri::from_parts(uri_parts).unwrap_or_default();
        }
        if self.parts.headers.contains_key(HOST) || self.parts.uri.authority().is_none() {
            self.parts.headers.insert(HOST, header);
        }
    }
}

/// The authority of a request: the URI's, else the `Host` header.
pub fn authority_of(parts: &Parts) -> Option<&str> {
    match parts.uri.authority() {
        Some(a) => Some(a.as_str()),
        None => parts.headers.get(HOST).and_then(|v| v.to_str().ok()),
    }
}

fn value_str(value: &HeaderValue) -> Option<&str> {
    std::str::from_utf8(value.as_bytes()).ok()
}

impl Frame for RequestHead {
    fn kind(&self) -> FrameKind {
        FrameKind::Request
    }

    /// HTTP has no request id: always 0.
    fn request_id(&self) -> RequestId {
        0
    }

    /// HTTP has no request id: does nothing.
    fn set_request_id(&mut self, _id: RequestId) {}

    fn timeout(&self) -> Option<Duration> {
        self.parts
            .headers
            .get("grpc-timeout")
            .and_then(|v| parse_grpc_timeout(v.as_bytes()))
    }

    /// A header by name, case-insensitively (first value; `None` unless it is visible
    /// ASCII or UTF-8). The HTTP/2 pseudo-headers `:authority`, `:path` (with query),
    /// `:method` and `:scheme` read the request line on every version.
    fn header(&self, name: &str) -> Option<&str> {
        if let Some(pseudo) = name.strip_prefix(':') {
            return match pseudo {
                "authority" => self.authority(),
                "path" => Some(match self.parts.uri.path_and_query() {
                    Some(pq) => pq.as_str(),
                    None => "/",
                }),
                "method" => Some(self.parts.method.as_str()),
                "scheme" => Some(self.parts.uri.scheme_str().unwrap_or(self.scheme.as_str())),
                _ => None,
            };
        }
        self.parts.headers.get(name).and_then(value_str)
    }

    /// Sets a header; `host` and `:authority` rewrite the request's authority (URI and
    /// `Host`). Invalid names or values are ignored.
    fn set_header(&mut self, name: &str, value: &str) {
        if name.eq_ignore_ascii_case("host") || name == ":authority" {
            self.set_authority(value);
            return;
        }
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return;
        };
        self.parts.headers.insert(name, value);
    }

    fn remove_header(&mut self, name: &str) -> bool {
        self.parts.headers.remove(name).is_some()
    }

    fn for_each_header(&self, f: HeaderIter<'_>) {
        for (name, value) in &self.parts.headers {
            if let Some(value) = value_str(value) {
                f(name.as_str(), value);
            }
        }
    }

    fn variable(&self, name: &str) -> Option<Cow<'_, str>> {
        let value = match name {
            "path" => self.parts.uri.path(),
            "query" => self.parts.uri.query()?,
            "authority" => self.authority()?,
            "host" => strip_port(self.authority()?),
            "http_method" => self.parts.method.as_str(),
            "scheme" => match self.parts.uri.scheme_str() {
                Some(s) => s,
                None => self.scheme.as_str(),
            },
            "protocol" => {
                if self.grpc {
                    "grpc"
                } else {
                    "http"
                }
            }
            "service" => self.grpc_service_method()?.0,
            "method" => self.grpc_service_method()?.1,
            _ => return None,
        };
        Some(Cow::Borrowed(value))
    }

    /// HTTP bodies travel separately: always empty.
    fn body(&self) -> Bytes {
        Bytes::new()
    }

    /// HTTP heads are never encoded as frames: always an error.
    fn encode(&self, _dst: &mut BytesMut) -> Result<(), CodecError> {
        Err(CodecError::Encode(
            "HTTP request heads are forwarded as http::Request, never encoded as frames".into(),
        ))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(req: http::Request<()>) -> RequestHead {
        let (parts, ()) = req.into_parts();
        RequestHead::new(parts, "10.0.0.1:4000".parse().unwrap(), Scheme::Http)
    }

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout(b"3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout(b"5S"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_grpc_timeout(b"100m"),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            parse_grpc_timeout(b"250u"),
            Some(Duration::from_micros(250))
        );
        assert_eq!(
            parse_grpc_timeout(b"99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        assert_eq!(
            parse_grpc_timeout(b"99999999H"),
            Some(Duration::from_secs(99_999_999 * 3600))
        );
    }

    #[test]
    fn grpc_timeout_invalid() {
        for bad in [
            &b""[..],
            b"S",
            b"100",
            b"100s",
            b"100x",
            b"123456789S",
            b"-1S",
            b"1.5S",
            b" 1S",
            b"0S",
            b"1SS",
            "１S".as_bytes(),
        ] {
            assert_eq!(
                parse_grpc_timeout(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn http_variables() {
        let h = head(
            http::Request::get("/foo/bar?x=1&y=2")
                .header("Host", "example.com:8080")
                .header("X-Env", "canary")
                .body(())
                .unwrap(),
        );
        assert_eq!(h.kind(), FrameKind::Request);
        assert_eq!(h.variable("path").as_deref(), Some("/foo/bar"));
        assert_eq!(h.variable("query").as_deref(), Some("x=1&y=2"));
        assert_eq!(h.variable("authority").as_deref(), Some("example.com:8080"));
        assert_eq!(h.variable("host").as_deref(), Some("example.com"));
        assert_eq!(h.variable("http_method").as_deref(), Some("GET"));
        assert_eq!(h.variable("scheme").as_deref(), Some("http"));
        assert_eq!(h.variable("protocol").as_deref(), Some("http"));
        assert_eq!(h.variable("service"), None);
        assert_eq!(h.variable("method"), None);
        assert_eq!(h.variable("nope"), None);
        assert_eq!(h.header("x-env"), Some("canary"));
        assert_eq!(h.header("X-ENV"), Some("canary"));
        assert_eq!(h.header("x-missing"), None);
        assert_eq!(h.header(":authority"), Some("example.com:8080"));
        assert_eq!(h.header(":path"), Some("/foo/bar?x=1&y=2"));
        assert_eq!(h.header(":method"), Some("GET"));
        assert_eq!(h.header(":scheme"), Some("http"));
        assert_eq!(h.header(":status"), None);
        assert_eq!(h.timeout(), None);
        assert_eq!(h.request_id(), 0);
        assert!(h.body().is_empty());
        assert!(matches!(
            h.encode(&mut BytesMut::new()),
            Err(CodecError::Encode(_))
        ));
    }

    #[test]
    fn no_query_is_none() {
        let h = head(http::Request::get("/").body(()).unwrap());
        assert_eq!(h.variable("query"), None);
        assert_eq!(h.variable("authority"), None);
        assert_eq!(h.variable("host"), None);
    }

    #[test]
    fn grpc_variables_and_timeout() {
        let h = head(
            http::Request::post("http://svc.local/helloworld.Greeter/SayHello")
                .version(http::Version::HTTP_2)
                .header("content-type", "application/grpc+proto")
                .header("grpc-timeout", "250m")
                .body(())
                .unwrap(),
        );
        assert!(h.is_grpc());
        assert_eq!(h.variable("protocol").as_deref(), Some("grpc"));
        assert_eq!(h.variable("service").as_deref(), Some("helloworld.Greeter"));
        assert_eq!(h.variable("method").as_deref(), Some("SayHello"));
        assert_eq!(h.variable("authority").as_deref(), Some("svc.local"));
        assert_eq!(h.variable("host").as_deref(), Some("svc.local"));
        assert_eq!(h.timeout(), Some(Duration::from_millis(250)));
    }

    #[test]
    fn non_utf8_header_is_none() {
        let mut req = http::Request::get("/").body(()).unwrap();
        req.headers_mut()
            .insert("x-bin", HeaderValue::from_bytes(&[0xff, 0xfe]).unwrap());
        req.headers_mut().insert(
            "x-utf8",
            HeaderValue::from_bytes("héllo".as_bytes()).unwrap(),
        );
        let h = head(req);
        assert_eq!(h.header("x-bin"), None);
        assert_eq!(h.header("x-utf8"), Some("héllo"));
    }

    #[test]
    fn set_and_remove_headers_edit_the_map() {
        let mut h = head(http::Request::get("/").header("a", "1").body(()).unwrap());
        h.set_header("B", "2");
        h.set_header("a", "3");
        h.set_header("bad name", "x");
        h.set_header("c", "bad\nvalue");
        assert!(h.remove_header("A"));
        assert!(!h.remove_header("a"));
        let mut seen = Vec::new();
        h.for_each_header(&mut |n, v| seen.push(format!("{n}={v}")));
        assert_eq!(seen, ["b=2"]);
        let parts = h.into_parts();
        assert_eq!(parts.headers["b"], "2");
    }

    #[test]
    fn host_rewrite_updates_uri_and_host() {
        let mut h = head(
            http::Request::get("http://old.example/x")
                .header("host", "old.example")
                .body(())
                .unwrap(),
        );
        h.set_header("host", "new.example:81");
        assert_eq!(h.variable("authority").as_deref(), Some("new.example:81"));
        assert_eq!(h.parts().headers["host"], "new.example:81");
        assert_eq!(h.parts().uri, "http://new.example:81/x");

        let mut h = head(http::Request::get("/x").body(()).unwrap());
        h.set_header(":authority", "a.example");
        assert_eq!(h.parts().headers["host"], "a.example");
    }

    #[test]
    fn strip_port_cases() {
        assert_eq!(strip_port("a.com"), "a.com");
        assert_eq!(strip_port("a.com:80"), "a.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
        assert_eq!(strip_port("a.com:"), "a.com:");
        assert_eq!(strip_port("[::1"), "[::1");
    }

    #[test]
    fn grpc_path_split() {
        assert_eq!(split_grpc_path("/a.B/C"), Some(("a.B", "C")));
        assert_eq!(split_grpc_path("/a.B/"), None);
        assert_eq!(split_grpc_path("/a.B"), None);
        assert_eq!(split_grpc_path("/a/b/c"), None);
        assert_eq!(split_grpc_path("a/b"), None);
    }
}
