//! Turning a downstream request into an upstream one and back (RFC 9110 §7.6).

use bytes::{BufMut, BytesMut};
use http::header::{CONNECTION, EXPECT, Entry, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, Version, request, response};

use crate::ConnectionInfo;

/// `x-forwarded-for`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `x-forwarded-proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

/// Whether a comma-separated header list contains `token` (case-insensitive).
pub fn list_contains(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Whether the request asks for a protocol upgrade that can be tunnelled to an
/// HTTP/1.1 upstream: `Connection: upgrade` plus an `Upgrade` other than `h2c`
/// (which Strait handles itself, hop by hop).
pub fn is_upgrade_request(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE)
        && list_contains(headers, &CONNECTION, "upgrade")
        && !list_contains(headers, &UPGRADE, "h2c")
}

/// Removes the hop-by-hop headers (RFC 9110 §7.6.1): every header the `Connection`
/// header names, then `Connection`, `Keep-Alive`, `Proxy-Connection`,
/// `Transfer-Encoding`, `TE` (unless `keep_te_trailers` and it names `trailers`, then it
/// becomes exactly `te: trailers`), and `Upgrade` (unless `keep_upgrade`: then `Upgrade`
/// stays and `Connection` becomes `upgrade`).
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_te_trailers: bool, keep_upgrade: bool) {
    let present = Present::of(headers);
    remove_present_hop_by_hop(headers, &present, keep_te_trailers, keep_upgrade);
}

/// Which of the fields a proxy edits a head has: one pass over its names, rather than a
/// hash lookup per name on every proxied head (most have none of them).
#[derive(Debug, Default)]
struct Present {
    connection: bool,
    keep_alive: bool,
    proxy_connection: bool,
    transfer_encoding: bool,
    te: bool,
    upgrade: bool,
    http2_settings: bool,
    expect: bool,
    x_forwarded_for: bool,
}

impl Present {
    fn of(headers: &HeaderMap) -> Present {
        let mut p = Present::default();
        for name in headers.keys() {
            let flag = if *name == CONNECTION {
                &mut p.connection
            } else if *name == TRANSFER_ENCODING {
                &mut p.transfer_encoding
            } else if *name == TE {
                &mut p.te
            } else if *name == UPGRADE {
                &mut p.upgrade
            } else if *name == EXPECT {
                &mut p.expect
            } else if *name == KEEP_ALIVE {
                &mut p.keep_alive
            } else if *name == PROXY_CONNECTION {
                &mut p.proxy_connection
            } else if *name == HTTP2_SETTINGS {
                &mut p.http2_settings
            } else if *name == X_FORWARDED_FOR {
                &mut p.x_forwarded_for
            } else {
                continue;
            };
            *flag = true;
        }
        p
    }
}

/// [`remove_hop_by_hop`] for a head whose fields `present` lists (a field absent there
/// is not looked up; one present may have gone since, removing it again is harmless).
fn remove_present_hop_by_hop(
    headers: &mut HeaderMap,
    present: &Present,
    keep_te_trailers: bool,
    keep_upgrade: bool,
) {
    if present.connection {
        // The field's values are taken out first (the map cannot be edited while they
        // are borrowed), then each name they list is removed by its text: no name is
        // built, so `Connection: keep-alive` (one value, a name the map rarely has)
        // costs no allocation.
        let mut first = None;
        let mut more = Vec::new();
        if let Entry::Occupied(entry) = headers.entry(CONNECTION) {
            for value in entry.remove_entry_mult().1 {
                match first {
                    None => first = Some(value),
                    Some(_) => more.push(value),
                }
            }
        }
        for value in first.iter().chain(&more) {
            for token in value.as_bytes().split(|&b| b == b',') {
                // A token that is not UTF-8 is no field name: nothing to remove.
                let Ok(token) = std::str::from_utf8(token.trim_ascii()) else {
                    continue;
                };
                let protected = (keep_upgrade && token.eq_ignore_ascii_case("upgrade"))
                    || (keep_te_trailers && token.eq_ignore_ascii_case("te"));
                // `keep-alive`, the usual token, names a field removed below when the
                // head has one: no lookup by its text.
                let keep_alive = token.eq_ignore_ascii_case("keep-alive");
                if !token.is_empty() && !protected && !keep_alive {
                    headers.remove(token);
                }
            }
        }
    }
    if present.keep_alive {
        headers.remove(KEEP_ALIVE);
    }
    if present.proxy_connection {
        headers.remove(PROXY_CONNECTION);
    }
    if present.transfer_encoding {
        headers.remove(TRANSFER_ENCODING);
    }
    if present.te && headers.contains_key(TE) {
        let trailers = keep_te_trailers && list_contains(headers, &TE, "trailers");
        headers.remove(TE);
        if trailers {
            headers.insert(TE, HeaderValue::from_static("trailers"));
        }
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else if present.upgrade {
        headers.remove(UPGRADE);
    }
}

/// Prepares a downstream request's head to be sent upstream over `upstream_version`
/// (`HTTP_11` or `HTTP_2`):
///
/// - hop-by-hop headers removed (see RFC 9110 §7.6.1): `Connection` and every header
///   it names, `Keep-Alive`, `Proxy-Connection`, `Transfer-Encoding`, `HTTP2-Settings`,
///   `TE` except `te: trailers` towards HTTP/2 (gRPC needs it), `Upgrade` except when
///   tunnelling an upgrade (WebSocket...) to an HTTP/1.1 upstream, and `Expect`
///   (Strait answers `100-continue` itself, when it starts reading the body);
/// - the peer IP appended to `x-forwarded-for`, `x-forwarded-proto` set to the
///   downstream scheme;
/// - the version converted: towards HTTP/1.1 the URI becomes origin-form and `Host`
///   is set from the authority when missing; towards HTTP/2 the URI becomes absolute
///   (scheme and authority from `Host`) and `Host` is removed.
pub fn prepare_upstream_request(
    parts: &mut request::Parts,
    ctx: &ConnectionInfo,
    upstream_version: Version,
) {
    let to_h2 = upstream_version == Version::HTTP_2;
    let present = Present::of(&parts.headers);
    let keep_upgrade = !to_h2
        && parts.version != Version::HTTP_2
        && present.upgrade
        && is_upgrade_request(&parts.headers);
    remove_present_hop_by_hop(&mut parts.headers, &present, to_h2, keep_upgrade);
    if present.http2_settings {
        parts.headers.remove(HTTP2_SETTINGS);
    }
    if present.expect {
        parts.headers.remove(EXPECT);
    }

    append_forwarded_for(&mut parts.headers, ctx, present.x_forwarded_for);
    parts.headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(ctx.scheme().as_str()),
    );

    if to_h2 {
        to_absolute_uri(parts, ctx);
    } else {
        to_origin_form(parts);
    }
    parts.version = upstream_version;
}

fn append_forwarded_for(headers: &mut HeaderMap, ctx: &ConnectionInfo, present: bool) {
    let ip = ctx.peer_ip_value();
    if !present || !headers.contains_key(X_FORWARDED_FOR) {
        headers.insert(X_FORWARDED_FOR, ip.clone());
        return;
    }
    let mut joined = BytesMut::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        let value = value.as_bytes().trim_ascii();
        if value.is_empty() {
            continue;
        }
        if !joined.is_empty() {
            joined.put_slice(b", ");
        }
        joined.put_slice(value);
    }
    if !joined.is_empty() {
        joined.put_slice(b", ");
    }
    joined.put_slice(ip.as_bytes());
    // Existing valid header values joined with ", " and an IP stay a valid value.
    if let Ok(value) = HeaderValue::from_maybe_shared(joined.freeze()) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

fn to_absolute_uri(parts: &mut request::Parts, ctx: &ConnectionInfo) {
    let host = parts.headers.remove(HOST);
    if parts.uri.scheme().is_some() && parts.uri.authority().is_some() {
        return;
    }
    let mut uri_parts = std::mem::take(&mut parts.uri).into_parts();
    if uri_parts.authority.is_none() {
        uri_parts.authority = host.and_then(|h| {
            Authority::from_maybe_shared(bytes::Bytes::copy_from_slice(h.as_bytes())).ok()
        });
    }
    if uri_parts.authority.is_some() {
        if uri_parts.scheme.is_none() {
            uri_parts.scheme = Some(ctx.scheme().to_uri_scheme());
        }
        if uri_parts.path_and_query.is_none() {
            uri_parts.path_and_query = Some(PathAndQuery::from_static("/"));
        }
    }
    parts.uri = rebuild(uri_parts);
}

fn to_origin_form(parts: &mut request::Parts) {
    if parts.uri.authority().is_none() {
        return;
    }
    if !parts.headers.contains_key(HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(value) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(HOST, value);
    }
    if parts.method == http::Method::CONNECT {
        // CONNECT keeps its authority-form target.
        return;
    }
    let mut uri_parts = std::mem::take(&mut parts.uri).into_parts();
    uri_parts.scheme = None;
    uri_parts.authority = None;
    if uri_parts.path_and_query.is_none() {
        uri_parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    parts.uri = rebuild(uri_parts);
}

fn rebuild(uri_parts: http::uri::Parts) -> Uri {
    // The parts came from a valid URI and were only given a scheme with an authority
    // and a path, or stripped to a path: both valid combinations. Fall back to `/`.
    Uri::from_parts(uri_parts).unwrap_or_else(|_| Uri::from_static("/"))
}

/// Prepares an upstream response's head to be sent downstream over
/// `downstream_version`: hop-by-hop headers removed (`Upgrade` and
/// `Connection: upgrade` kept only on a `101` towards HTTP/1.1) and the version set.
pub fn prepare_downstream_response(parts: &mut response::Parts, downstream_version: Version) {
    let keep_upgrade = parts.status == StatusCode::SWITCHING_PROTOCOLS
        && downstream_version != Version::HTTP_2
        && parts.headers.contains_key(UPGRADE);
    remove_hop_by_hop(&mut parts.headers, false, keep_upgrade);
    parts.version = downstream_version;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scheme;

    fn ctx() -> ConnectionInfo {
        ConnectionInfo::new(
            "192.0.2.7:5555".parse().unwrap(),
            Version::HTTP_11,
            Scheme::Http,
        )
    }

    fn parts(req: http::request::Builder) -> request::Parts {
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn hop_by_hop_removed_including_connection_named() {
        let mut p = parts(
            http::Request::get("/a?b")
                .header("host", "example.com")
                .header("connection", "keep-alive, X-Secret , x-other")
                .header("connection", "close")
                .header("keep-alive", "timeout=5")
                .header("proxy-connection", "keep-alive")
                .header("transfer-encoding", "chunked")
                .header("te", "gzip")
                .header("upgrade", "foo/1")
                .header("x-secret", "1")
                .header("x-other", "2")
                .header("expect", "100-continue")
                .header("x-kept", "3"),
        );
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_11);
        let mut names: Vec<&str> = p.headers.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            ["host", "x-forwarded-for", "x-forwarded-proto", "x-kept"]
        );
        assert_eq!(p.uri, "/a?b");
        assert_eq!(p.version, Version::HTTP_11);
    }

    #[test]
    fn te_trailers_kept_for_h2_only() {
        let req = || {
            parts(
                http::Request::post("/pkg.S/M")
                    .header("host", "grpc.local")
                    .header("te", "trailers")
                    .header("content-type", "application/grpc"),
            )
        };
        let mut p = req();
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_2);
        assert_eq!(p.headers["te"], "trailers");
        let mut p = req();
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_11);
        assert!(!p.headers.contains_key("te"));
        // `te: gzip, trailers` keeps only `trailers`; named by Connection it still stays.
        let mut p = parts(
            http::Request::get("/")
                .header("host", "h")
                .header("connection", "te")
                .header("te", "gzip, Trailers"),
        );
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_2);
        assert_eq!(p.headers["te"], "trailers");
    }

    #[test]
    fn upgrade_kept_when_tunnelling_to_h1() {
        let req = || {
            parts(
                http::Request::get("/chat")
                    .header("host", "ws.local")
                    .header("connection", "Upgrade, x-hop")
                    .header("upgrade", "websocket")
                    .header("x-hop", "1")
                    .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            )
        };
        let mut p = req();
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_11);
        assert_eq!(p.headers["upgrade"], "websocket");
        assert_eq!(p.headers["connection"], "upgrade");
        assert!(!p.headers.contains_key("x-hop"));
        assert!(p.headers.contains_key("sec-websocket-key"));
        let mut p = req();
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_2);
        assert!(!p.headers.contains_key("upgrade"));
        assert!(!p.headers.contains_key("connection"));
        // h2c is hop-by-hop: never tunnelled.
        let mut p = parts(
            http::Request::get("/")
                .header("host", "h")
                .header("connection", "Upgrade, HTTP2-Settings")
                .header("upgrade", "h2c")
                .header("http2-settings", "AAMAAABkAAQAAP__"),
        );
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_11);
        assert!(!p.headers.contains_key("upgrade"));
        assert!(!p.headers.contains_key("http2-settings"));
        assert!(!p.headers.contains_key("connection"));
    }

    #[test]
    fn x_forwarded_for_appended() {
        let mut p = parts(http::Request::get("/").header("host", "h"));
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_11);
        assert_eq!(p.headers["x-forwarded-for"], "192.0.2.7");
        assert_eq!(p.headers["x-forwarded-proto"], "http");

        let mut p = parts(
            http::Request::get("/")
                .header("host", "h")
                .header("x-forwarded-for", "203.0.113.1, 198.51.100.2")
                .header("x-forwarded-for", "198.51.100.3")
                .header("x-forwarded-proto", "https"),
        );
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_11);
        let all: Vec<_> = p.headers.get_all("x-forwarded-for").iter().collect();
        assert_eq!(all, ["203.0.113.1, 198.51.100.2, 198.51.100.3, 192.0.2.7"]);
        assert_eq!(p.headers["x-forwarded-proto"], "http");

        let v6 = ConnectionInfo::new(
            "[::ffff:10.1.2.3]:1".parse().unwrap(),
            Version::HTTP_2,
            Scheme::Https,
        );
        let mut p = parts(http::Request::get("/").header("host", "h"));
        prepare_upstream_request(&mut p, &v6, Version::HTTP_11);
        assert_eq!(p.headers["x-forwarded-for"], "10.1.2.3");
        assert_eq!(p.headers["x-forwarded-proto"], "https");
        let v6 = ConnectionInfo::new(
            "[2001:db8::1]:1".parse().unwrap(),
            Version::HTTP_2,
            Scheme::Http,
        );
        let mut p = parts(http::Request::get("/").header("host", "h"));
        prepare_upstream_request(&mut p, &v6, Version::HTTP_11);
        assert_eq!(p.headers["x-forwarded-for"], "2001:db8::1");
    }

    #[test]
    fn h2_to_h1_authority_becomes_host() {
        let mut p =
            parts(http::Request::get("http://api.example:8080/v1/x?y=1").version(Version::HTTP_2));
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_11);
        assert_eq!(p.uri, "/v1/x?y=1");
        assert!(p.uri.authority().is_none());
        assert_eq!(p.headers["host"], "api.example:8080");
        assert_eq!(p.version, Version::HTTP_11);
    }

    #[test]
    fn h1_to_h2_host_becomes_authority() {
        let mut p = parts(http::Request::get("/v1/x?y=1").header("host", "api.example"));
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_2);
        assert_eq!(p.uri, "http://api.example/v1/x?y=1");
        assert!(!p.headers.contains_key("host"));
        assert_eq!(p.version, Version::HTTP_2);

        let https = ConnectionInfo::new(
            "1.2.3.4:5".parse().unwrap(),
            Version::HTTP_11,
            Scheme::Https,
        );
        let mut p = parts(http::Request::get("/").header("host", "secure.example"));
        prepare_upstream_request(&mut p, &https, Version::HTTP_2);
        assert_eq!(p.uri, "https://secure.example/");
    }

    #[test]
    fn h2_to_h2_keeps_uri() {
        let mut p = parts(
            http::Request::post("http://g.local/pkg.S/M")
                .version(Version::HTTP_2)
                .header("te", "trailers"),
        );
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_2);
        assert_eq!(p.uri, "http://g.local/pkg.S/M");
        assert_eq!(p.headers["te"], "trailers");
    }

    #[test]
    fn absolute_form_h1_becomes_origin_form() {
        let mut p = parts(http::Request::get("http://a.example/p").header("host", "a.example"));
        prepare_upstream_request(&mut p, &ctx(), Version::HTTP_11);
        assert_eq!(p.uri, "/p");
        assert_eq!(p.headers["host"], "a.example");
    }

    #[test]
    fn downstream_response_hop_by_hop() {
        let (mut p, ()) = http::Response::builder()
            .status(200)
            .header("connection", "keep-alive, x-internal")
            .header("keep-alive", "timeout=5")
            .header("transfer-encoding", "chunked")
            .header("x-internal", "1")
            .header("upgrade", "websocket")
            .header("content-type", "text/plain")
            .body(())
            .unwrap()
            .into_parts();
        prepare_downstream_response(&mut p, Version::HTTP_2);
        let names: Vec<&str> = p.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["content-type"]);
        assert_eq!(p.version, Version::HTTP_2);

        let (mut p, ()) = http::Response::builder()
            .status(101)
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-accept", "x")
            .body(())
            .unwrap()
            .into_parts();
        prepare_downstream_response(&mut p, Version::HTTP_11);
        assert_eq!(p.headers["upgrade"], "websocket");
        assert_eq!(p.headers["connection"], "upgrade");
        assert_eq!(p.headers["sec-websocket-accept"], "x");
    }
}
