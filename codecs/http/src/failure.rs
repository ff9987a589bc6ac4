//! Local answers: proxy failures, direct responses and redirects.
//!
//! Generic over the body type `B`, which the driver supplies: `B::default()` must be no
//! body at all (an HTTP/2 HEADERS frame with END_STREAM, as a gRPC trailers-only answer
//! needs), `B::from(bytes)` a complete one.

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use strait_codec_framework::ProxyFailure;

use crate::head::{authority_of, is_grpc_request};

/// `x-strait-error`: on a proxy-generated failure, which failure it was
/// ([`ProxyFailure::as_str`]), so clients and tests can tell it from an upstream's answer.
pub const X_STRAIT_ERROR: HeaderName = HeaderName::from_static("x-strait-error");
/// `grpc-status`.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// `grpc-message`.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
const APPLICATION_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");

/// The HTTP status of a proxy failure for plain HTTP requests.
pub fn failure_status(failure: ProxyFailure) -> StatusCode {
    match failure {
        ProxyFailure::NoRoute => StatusCode::NOT_FOUND,
        ProxyFailure::NoHealthyUpstream | ProxyFailure::ConnectFailure => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ProxyFailure::Overflow => StatusCode::SERVICE_UNAVAILABLE,
        ProxyFailure::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ProxyFailure::UpstreamReset => StatusCode::BAD_GATEWAY,
        ProxyFailure::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ProxyFailure::CodecError => StatusCode::BAD_REQUEST,
    }
}

/// The gRPC status code of a proxy failure for gRPC requests.
pub fn failure_grpc_status(failure: ProxyFailure) -> u8 {
    match failure {
        ProxyFailure::NoRoute => 12, // UNIMPLEMENTED
        ProxyFailure::NoHealthyUpstream
        | ProxyFailure::ConnectFailure
        | ProxyFailure::UpstreamReset => 14, // UNAVAILABLE
        ProxyFailure::Timeout => 4,  // DEADLINE_EXCEEDED
        ProxyFailure::Overflow | ProxyFailure::RateLimited => 8, // RESOURCE_EXHAUSTED
        ProxyFailure::CodecError => 13, // INTERNAL
    }
}

fn failure_text(failure: ProxyFailure) -> &'static str {
    match failure {
        ProxyFailure::NoRoute => "no route for ",
        ProxyFailure::NoHealthyUpstream => "no healthy upstream",
        ProxyFailure::ConnectFailure => "upstream connect failure",
        ProxyFailure::Timeout => "upstream request timeout",
        ProxyFailure::UpstreamReset => "upstream reset",
        ProxyFailure::Overflow => "upstream overflow",
        ProxyFailure::RateLimited => "rate limited",
        ProxyFailure::CodecError => "bad request",
    }
}

fn failure_message(req: &Parts, failure: ProxyFailure, detail: &str) -> String {
    let mut text = String::with_capacity(64);
    text.push_str(failure_text(failure));
    if failure == ProxyFailure::NoRoute {
        text.push_str(authority_of(req).unwrap_or(""));
        text.push_str(req.uri.path());
    }
    if !detail.is_empty() {
        text.push_str(" (");
        text.push_str(detail);
        text.push(')');
    }
    text
}

/// The answer to a request the proxy failed. Plain HTTP: NoRoute 404,
/// NoHealthyUpstream/ConnectFailure 503, Timeout 504, UpstreamReset 502, Overflow 503,
/// RateLimited 429, CodecError 400, with a one-line `text/plain` body naming the cause
/// (`no route for example.com/foo\n`, `upstream connect failure (detail)\n`).
/// gRPC requests (`content-type: application/grpc*`) get a trailers-only response:
/// HTTP 200, `content-type: application/grpc`, `grpc-status` (NoRoute 12 UNIMPLEMENTED,
/// NoHealthyUpstream/ConnectFailure/UpstreamReset 14 UNAVAILABLE, Timeout 4
/// DEADLINE_EXCEEDED, Overflow/RateLimited 8 RESOURCE_EXHAUSTED, CodecError 13 INTERNAL)
/// and a percent-encoded `grpc-message`, all in the one HEADERS frame with END_STREAM
/// (the body is empty). Both carry `x-strait-error: <failure>`. Use
/// [`crate::RequestHead::parts`] to answer a routed head.
pub fn failure_response<B: Default + From<Bytes>>(
    req: &Parts,
    failure: ProxyFailure,
    detail: &str,
) -> Response<B> {
    let message = failure_message(req, failure, detail);
    let mut response = Response::new(B::default());
    let headers = response.headers_mut();
    headers.insert(X_STRAIT_ERROR, HeaderValue::from_static(failure.as_str()));
    if is_grpc_request(&req.headers) {
        headers.insert(CONTENT_TYPE, APPLICATION_GRPC);
        headers.insert(
            GRPC_STATUS,
            HeaderValue::from_static(match failure_grpc_status(failure) {
                4 => "4",
                8 => "8",
                12 => "12",
                13 => "13",
                _ => "14",
            }),
        );
        headers.insert(GRPC_MESSAGE, grpc_message_value(&message));
        return response;
    }
    let mut body = message.into_bytes();
    body.push(b'\n');
    headers.insert(CONTENT_TYPE, TEXT_PLAIN);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    *response.status_mut() = failure_status(failure);
    *response.body_mut() = B::from(Bytes::from(body));
    response
}

/// Percent-encodes a `grpc-message` per the gRPC spec: bytes outside `0x20..=0x7e`, and
/// `%`, become `%XX`.
pub fn grpc_message_value(message: &str) -> HeaderValue {
    let mut out = BytesMut::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.put_u8(b);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.put_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
    // Only visible ASCII remains, always a valid header value.
    HeaderValue::from_maybe_shared(out.freeze()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A local answer with `status` and a `text/plain` `body` (a route's direct response).
pub fn direct_response<B: Default + From<Bytes>>(
    status: StatusCode,
    body: impl Into<Bytes>,
) -> Response<B> {
    let body = body.into();
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if !body.is_empty() {
        headers.insert(CONTENT_TYPE, TEXT_PLAIN);
    }
    if !(status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED)
    {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    }
    *response.body_mut() = B::from(body);
    response
}

/// A redirect to `location` with `status` (301, 302, 303, 307, 308), no body.
pub fn redirect<B: Default>(status: StatusCode, location: HeaderValue) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response.headers_mut().insert(LOCATION, location);
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(uri: &str, host: &str) -> Parts {
        http::Request::get(uri)
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn grpc() -> Parts {
        http::Request::post("http://g.local/pkg.Svc/Call")
            .version(http::Version::HTTP_2)
            .header("content-type", "application/grpc+proto")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn text(response: Response<Bytes>) -> String {
        String::from_utf8(response.into_body().to_vec()).unwrap()
    }

    #[test]
    fn plain_http_failures() {
        let req = plain("/foo?q=1", "example.com");
        let cases = [
            (ProxyFailure::NoRoute, 404, "no route for example.com/foo\n"),
            (
                ProxyFailure::NoHealthyUpstream,
                503,
                "no healthy upstream\n",
            ),
            (
                ProxyFailure::ConnectFailure,
                503,
                "upstream connect failure\n",
            ),
            (ProxyFailure::Timeout, 504, "upstream request timeout\n"),
            (ProxyFailure::UpstreamReset, 502, "upstream reset\n"),
            (ProxyFailure::Overflow, 503, "upstream overflow\n"),
            (ProxyFailure::RateLimited, 429, "rate limited\n"),
            (ProxyFailure::CodecError, 400, "bad request\n"),
        ];
        for (failure, status, body) in cases {
            let r: Response<Bytes> = failure_response(&req, failure, "");
            assert_eq!(r.status().as_u16(), status, "{failure}");
            assert_eq!(r.headers()["content-type"], "text/plain");
            assert_eq!(
                r.headers()["content-length"],
                body.len().to_string().as_str()
            );
            assert_eq!(r.headers()["x-strait-error"], failure.as_str());
            assert!(!r.headers().contains_key("grpc-status"));
            assert_eq!(text(r), body);
        }
        let r: Response<Bytes> = failure_response(&req, ProxyFailure::ConnectFailure, "strait");
        assert_eq!(text(r), "upstream connect failure (strait)\n");
    }

    #[test]
    fn grpc_failures_are_trailers_only() {
        let req = grpc();
        let cases = [
            (
                ProxyFailure::NoRoute,
                "12",
                "no route for g.local/pkg.Svc/Call",
            ),
            (ProxyFailure::NoHealthyUpstream, "14", "no healthy upstream"),
            (
                ProxyFailure::ConnectFailure,
                "14",
                "upstream connect failure",
            ),
            (ProxyFailure::UpstreamReset, "14", "upstream reset"),
            (ProxyFailure::Timeout, "4", "upstream request timeout"),
            (ProxyFailure::Overflow, "8", "upstream overflow"),
            (ProxyFailure::RateLimited, "8", "rate limited"),
            (ProxyFailure::CodecError, "13", "bad request"),
        ];
        for (failure, status, message) in cases {
            let r: Response<Bytes> = failure_response(&req, failure, "");
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(r.headers()["content-type"], "application/grpc");
            assert_eq!(r.headers()["grpc-status"], status, "{failure}");
            assert_eq!(r.headers()["grpc-message"], message);
            assert!(!r.headers().contains_key("content-length"));
            assert!(r.body().is_empty(), "trailers-only: no body");
        }
        let r: Response<Bytes> =
            failure_response(&req, ProxyFailure::Timeout, "100% done, ünïcode");
        assert_eq!(
            r.headers()["grpc-message"],
            "upstream request timeout (100%25 done, %C3%BCn%C3%AFcode)"
        );
    }

    #[test]
    fn direct_and_redirect() {
        let r: Response<Bytes> = direct_response(StatusCode::IM_A_TEAPOT, "short and stout");
        assert_eq!(r.status(), 418);
        assert_eq!(r.headers()["content-length"], "15");
        assert_eq!(text(r), "short and stout");
        let r: Response<Bytes> = direct_response(StatusCode::NO_CONTENT, Bytes::new());
        assert!(!r.headers().contains_key("content-type"));
        assert!(!r.headers().contains_key("content-length"));
        let r: Response<Bytes> = redirect(
            StatusCode::MOVED_PERMANENTLY,
            HeaderValue::from_static("https://x.example/"),
        );
        assert_eq!(r.status(), 301);
        assert_eq!(r.headers()["location"], "https://x.example/");
        assert_eq!(r.headers()["content-length"], "0");
        assert!(r.body().is_empty());
    }
}
