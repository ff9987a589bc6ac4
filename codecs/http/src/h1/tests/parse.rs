use bytes::BytesMut;
use http::{Method, StatusCode, Version};

use super::Rng;
use crate::h1::parse::{self, BodyKind, HeadLimits, ParsedRequest, ParsedResponse};
use crate::h1::{ParseError, ParseError as E};

fn req(raw: &[u8]) -> Result<Option<ParsedRequest>, ParseError> {
    parse::request(&mut BytesMut::from(raw), &HeadLimits::default())
}

fn req_ok(raw: &str) -> ParsedRequest {
    match req(raw.as_bytes()) {
        Ok(Some(r)) => r,
        other => panic!("{raw:?}: {other:?}"),
    }
}

fn req_err(raw: &str) -> ParseError {
    match req(raw.as_bytes()) {
        Err(e) => e,
        other => panic!("{raw:?}: expected an error, got {other:?}"),
    }
}

fn res(raw: &str, method: &Method) -> Result<Option<ParsedResponse>, ParseError> {
    parse::response(
        &mut BytesMut::from(raw.as_bytes()),
        &HeadLimits::default(),
        method,
    )
}

fn res_ok(raw: &str, method: &Method) -> ParsedResponse {
    match res(raw, method) {
        Ok(Some(r)) => r,
        other => panic!("{raw:?}: {other:?}"),
    }
}

fn body(raw: &str) -> BodyKind {
    req_ok(raw).body
}

#[test]
fn simple_get_is_zero_copy_and_leaves_the_rest() {
    let raw = b"GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nX-Long: some value\r\n\r\nNEXT";
    let mut buf = BytesMut::from(&raw[..]);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let r = parse::request(&mut buf, &HeadLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..], b"NEXT");
    assert_eq!(r.parts.method, Method::GET);
    assert_eq!(r.parts.uri, "/a/b?c=d");
    assert_eq!(r.parts.version, Version::HTTP_11);
    assert_eq!(r.parts.headers["host"], "example.com");
    assert_eq!(r.parts.headers["x-long"], "some value");
    assert_eq!(r.parts.headers.len(), 2);
    let value = r.parts.headers["x-long"].as_bytes().as_ptr() as usize;
    assert!(range.contains(&value), "header value was copied");
    assert_eq!(r.body, BodyKind::None);
    assert!(r.keep_alive && !r.expect_continue && !r.upgrade && !r.te_trailers && !r.is_head);
}

#[test]
fn pipelined_requests_are_taken_one_at_a_time() {
    let raw = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut buf = BytesMut::from(raw.as_bytes());
    let l = HeadLimits::default();
    assert_eq!(
        parse::request(&mut buf, &l).unwrap().unwrap().parts.uri,
        "/1"
    );
    let second = parse::request(&mut buf, &l).unwrap().unwrap();
    assert_eq!(second.body, BodyKind::Length(3));
    assert!(buf.starts_with(b"abcGET /3"));
    let _ = buf.split_to(3);
    assert_eq!(
        parse::request(&mut buf, &l).unwrap().unwrap().parts.uri,
        "/3"
    );
    assert!(buf.is_empty());
    assert!(parse::request(&mut buf, &l).unwrap().is_none());
}

#[test]
fn every_split_of_a_request_head() {
    let heads: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n",
        b"GET http://h/p HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ];
    for head in heads {
        let mut full = head.to_vec();
        full.extend_from_slice(b"TAIL");
        for split in 0..head.len() {
            let mut buf = BytesMut::from(&full[..split]);
            assert!(
                matches!(parse::request(&mut buf, &HeadLimits::default()), Ok(None)),
                "split {split}"
            );
            assert_eq!(buf.len(), split, "a partial head must stay in the buffer");
            buf.extend_from_slice(&full[split..]);
            let r = parse::request(&mut buf, &HeadLimits::default());
            assert!(matches!(r, Ok(Some(_))), "split {split}: {r:?}");
            assert_eq!(&buf[..], b"TAIL");
        }
    }
}

#[test]
fn content_length_rules() {
    let h = |cl: &str| format!("POST / HTTP/1.1\r\nHost: a\r\n{cl}\r\n\r\n");
    assert_eq!(body(&h("Content-Length: 5")), BodyKind::Length(5));
    assert_eq!(body(&h("Content-Length: 0")), BodyKind::None);
    assert_eq!(body(&h("Content-Length: 5, 5")), BodyKind::Length(5));
    assert_eq!(
        body(&h("Content-Length: 5\r\nContent-Length: 5")),
        BodyKind::Length(5)
    );
    assert_eq!(
        body(&h("Content-Length: 18446744073709551615")),
        BodyKind::Length(u64::MAX)
    );
    assert_eq!(
        req_err(&h("Content-Length: 5, 6")),
        E::ConflictingContentLength
    );
    assert_eq!(
        req_err(&h("Content-Length: 5\r\nContent-Length: 6")),
        E::ConflictingContentLength
    );
    for bad in [
        "abc",
        "-1",
        "+5",
        "5 5",
        "0x5",
        ",",
        "5,",
        "18446744073709551616",
    ] {
        let e = req_err(&h(&format!("Content-Length: {bad}")));
        assert_eq!(e, E::InvalidContentLength, "{bad}");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(req_err(&h("Content-Length:")), E::InvalidContentLength);
    assert_eq!(body("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), BodyKind::None);
}

#[test]
fn transfer_encoding_rules() {
    let h = |te: &str| format!("POST / HTTP/1.1\r\nHost: a\r\n{te}\r\n\r\n");
    assert_eq!(body(&h("Transfer-Encoding: chunked")), BodyKind::Chunked);
    assert_eq!(body(&h("Transfer-Encoding: CHUNKED")), BodyKind::Chunked);
    assert_eq!(
        body(&h("Transfer-Encoding: gzip, chunked")),
        BodyKind::Chunked
    );
    assert_eq!(
        body(&h("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked")),
        BodyKind::Chunked
    );
    let cases = [
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 5",
            E::TransferEncodingWithContentLength,
        ),
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            E::TransferEncodingWithContentLength,
        ),
        ("Transfer-Encoding: gzip", E::ChunkedNotFinal),
        ("Transfer-Encoding: chunked, gzip", E::ChunkedNotFinal),
        ("Transfer-Encoding: chunked, chunked", E::ChunkedNotFinal),
        ("Transfer-Encoding: ,", E::ChunkedNotFinal),
        ("Transfer-Encoding: foo", E::ChunkedNotFinal),
        ("Transfer-Encoding: foo, chunked", E::UnknownTransferCoding),
    ];
    for (te, want) in cases {
        assert_eq!(req_err(&h(te)), want, "{te}");
    }
    assert_eq!(
        E::UnknownTransferCoding.status(),
        StatusCode::NOT_IMPLEMENTED
    );
    assert_eq!(E::ChunkedNotFinal.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        E::TransferEncodingWithContentLength.status(),
        StatusCode::BAD_REQUEST
    );
    let e = req_err("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(e, E::TransferEncodingInHttp10);
    assert_eq!(e.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn obs_fold_in_a_request_is_rejected() {
    for raw in [
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
    ] {
        let e = req_err(raw);
        assert_eq!(e, E::ObsFold);
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn host_rules() {
    assert_eq!(req_err("GET / HTTP/1.1\r\n\r\n"), E::MissingHost);
    assert_eq!(
        req_err("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        E::DuplicateHost
    );
    assert_eq!(
        req_err("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"),
        E::DuplicateHost
    );
    assert_eq!(E::MissingHost.status(), StatusCode::BAD_REQUEST);
    let r = req_ok("GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.parts.version, Version::HTTP_10);
    // Absolute-form still needs Host on HTTP/1.1 (RFC 9112 §3.2).
    assert_eq!(req_err("GET http://a/ HTTP/1.1\r\n\r\n"), E::MissingHost);
}

#[test]
fn persistence_and_flags() {
    let ka = |raw: &str| req_ok(raw).keep_alive;
    assert!(ka("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert!(!ka(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n"
    ));
    assert!(!ka(
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nConnection: close\r\n\r\n"
    ));
    assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
    assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!ka(
        "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
    ));

    let r = req_ok(
        "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\nTE: trailers\r\n\r\n",
    );
    assert!(r.expect_continue && r.te_trailers);
    assert!(!req_ok("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").expect_continue);
    assert!(
        req_ok("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
            .upgrade
    );
    assert!(!req_ok("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").upgrade);
    assert!(req_ok("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n").upgrade);
    assert!(req_ok("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").is_head);
}

#[test]
fn target_forms() {
    assert_eq!(
        req_ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
            .parts
            .uri
            .path(),
        "*"
    );
    assert_eq!(req_err("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), E::BadTarget);
    let c = req_ok("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n");
    assert_eq!(
        c.parts.uri.authority().map(|a| a.as_str()),
        Some("a.example:443")
    );
    assert_eq!(
        req_err("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n"),
        E::BadTarget
    );
    assert_eq!(
        req_err("GET a.example:443 HTTP/1.1\r\nHost: a\r\n\r\n"),
        E::BadTarget
    );
    let abs = req_ok("GET http://b.example/x?y HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(abs.parts.uri.host(), Some("b.example"));
    assert_eq!(abs.parts.uri.path(), "/x");
}

#[test]
fn malformed_heads() {
    for raw in [
        "GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
        "GET / HTTP/1.1\r\n: a\r\n\r\n",
        "G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",
        "\x00\r\n\r\n",
    ] {
        let e = req_err(raw);
        assert!(matches!(e, E::Malformed(_)), "{raw:?}: {e:?}");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn head_limits() {
    let limits = HeadLimits {
        max_head_bytes: 64,
        max_headers: 3,
    };
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\n\r\n"[..]);
    assert!(
        parse::request(&mut buf, &limits).unwrap().is_some(),
        "exactly three fields fit"
    );

    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nY: 2\r\nZ: 3\r\n\r\n"[..]);
    let e = parse::request(&mut buf, &limits).unwrap_err();
    assert_eq!(e, E::TooManyHeaders { max: 3 });
    assert_eq!(e.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // Partial head already at the limit: 431 without waiting for more.
    let mut buf = BytesMut::from(format!("GET /{} HTTP/1.1\r\n", "a".repeat(60)).as_bytes());
    let e = parse::request(&mut buf, &limits).unwrap_err();
    assert_eq!(e, E::HeadTooLarge { max: 64 });
    assert_eq!(e.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    // Partial head below the limit: wait.
    let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
    assert!(parse::request(&mut buf, &limits).unwrap().is_none());
    // Complete head over the limit in one read.
    let mut buf =
        BytesMut::from(format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", "h".repeat(60)).as_bytes());
    assert_eq!(
        parse::request(&mut buf, &limits).unwrap_err(),
        E::HeadTooLarge { max: 64 }
    );
    // max_headers above the hard cap is capped.
    let big = HeadLimits {
        max_head_bytes: 1 << 20,
        max_headers: 10_000,
    };
    let many: String = (0..200).map(|i| format!("X-{i}: v\r\n")).collect();
    let mut buf = BytesMut::from(format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_bytes());
    assert_eq!(
        parse::request(&mut buf, &big).unwrap_err(),
        E::TooManyHeaders {
            max: parse::MAX_HEADERS_CAP
        }
    );
}

#[test]
fn response_framing() {
    let get = Method::GET;
    let r = res_ok("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", &get);
    assert_eq!(
        (r.parts.status, r.body, r.keep_alive, r.upgraded),
        (StatusCode::OK, BodyKind::Length(3), true, false)
    );
    assert_eq!(
        res_ok(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            &get
        )
        .body,
        BodyKind::Chunked
    );
    let eof = res_ok("HTTP/1.1 200 OK\r\n\r\n", &get);
    assert_eq!((eof.body, eof.keep_alive), (BodyKind::Eof, false));
    let gz = res_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &get);
    assert_eq!((gz.body, gz.keep_alive), (BodyKind::Eof, false));
    let ten = res_ok(
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        &get,
    );
    assert_eq!(ten.body, BodyKind::Eof);
    // Body-less whatever the headers say; their Content-Length is kept.
    let head = res_ok(
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n",
        &Method::HEAD,
    );
    assert_eq!((head.body, head.keep_alive), (BodyKind::None, true));
    assert_eq!(head.parts.headers["content-length"], "10");
    for status in [
        "204 No Content",
        "304 Not Modified",
        "100 Continue",
        "103 Early Hints",
    ] {
        let r = res_ok(
            &format!("HTTP/1.1 {status}\r\nContent-Length: 10\r\n\r\n"),
            &get,
        );
        assert_eq!(r.body, BodyKind::None, "{status}");
    }
    let up = res_ok(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        &get,
    );
    assert!(up.upgraded && !up.keep_alive && up.body == BodyKind::None);
    assert!(res_ok("HTTP/1.1 200 OK\r\n\r\n", &Method::CONNECT).upgraded);
    assert!(
        !res_ok(
            "HTTP/1.1 407 No\r\nContent-Length: 0\r\n\r\n",
            &Method::CONNECT
        )
        .upgraded
    );
    // Persistence.
    assert!(
        !res_ok(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            &get
        )
        .keep_alive
    );
    assert!(!res_ok("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &get).keep_alive);
    let r10 = res_ok(
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
        &get,
    );
    assert!(r10.keep_alive);
    assert_eq!(r10.parts.version, Version::HTTP_10);
    // Errors (502 to the downstream).
    let bad = |raw: &str| res(raw, &get).unwrap_err();
    assert_eq!(
        bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
        E::TransferEncodingWithContentLength
    );
    assert_eq!(
        bad("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
        E::ConflictingContentLength
    );
    assert_eq!(
        bad("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
        E::InvalidContentLength
    );
    assert!(matches!(bad("HTTP/1.1 20 OK\r\n\r\n"), E::Malformed(_)));
    assert!(matches!(bad("HTTP/2 200 OK\r\n\r\n"), E::Malformed(_)));
}

#[test]
fn response_obs_fold_is_unfolded() {
    let r = res_ok(
        "HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n",
        &Method::GET,
    );
    assert_eq!(r.parts.headers["x-a"], "one   two");
    assert_eq!(r.body, BodyKind::None);
    // A fold by a tab, in the last field before the body.
    let r = res_ok(
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-B: a\r\n\tb\r\n\r\n",
        &Method::GET,
    );
    let folded = r.parts.headers["x-b"].as_bytes();
    assert!(
        folded.starts_with(b"a ") && folded.ends_with(b"b"),
        "{folded:?}"
    );
    assert!(!folded.contains(&b'\r') && !folded.contains(&b'\n'));
}

#[test]
fn bytes_after_a_bodyless_response_stay() {
    let mut buf = BytesMut::from(&b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"[..]);
    let r = parse::response(&mut buf, &HeadLimits::default(), &Method::GET)
        .unwrap()
        .unwrap();
    assert_eq!(r.body, BodyKind::None);
    assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\n\r\n");
}

#[test]
fn every_split_of_a_response_head() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-F: a\r\n b\r\n\r\n";
    let mut full = head.to_vec();
    full.extend_from_slice(b"body");
    for split in 0..head.len() {
        let mut buf = BytesMut::from(&full[..split]);
        let l = HeadLimits::default();
        assert!(
            matches!(parse::response(&mut buf, &l, &Method::GET), Ok(None)),
            "split {split}"
        );
        assert_eq!(buf.len(), split);
        buf.extend_from_slice(&full[split..]);
        let r = parse::response(&mut buf, &l, &Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!(r.body, BodyKind::Length(4));
        assert_eq!(&buf[..], b"body");
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(0x5eed_1234);
    let limits = HeadLimits {
        max_head_bytes: 256,
        max_headers: 8,
    };
    for _ in 0..20_000 {
        let len = rng.below(300);
        let input = rng.http_bytes(len);
        let mut buf = BytesMut::from(&input[..]);
        let before = buf.len();
        if let Ok(Some(_)) = parse::request(&mut buf, &limits) {
            assert!(buf.len() < before);
        }
        let mut buf = BytesMut::from(&input[..]);
        let _ = parse::response(&mut buf, &limits, &Method::HEAD);
        // Also as a response-looking input.
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\n"[..]);
        buf.extend_from_slice(&input);
        let _ = parse::response(&mut buf, &limits, &Method::GET);
    }
}

#[test]
fn empty_lines_before_a_request_are_skipped_but_bounded() {
    let r = req_ok("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.parts.uri, "/");
    let limits = HeadLimits {
        max_head_bytes: 64,
        max_headers: 8,
    };
    let mut buf = BytesMut::from("\r\n".repeat(31).as_bytes());
    assert!(parse::request(&mut buf, &limits).unwrap().is_none());
    buf.extend_from_slice(b"\r\n");
    assert_eq!(
        parse::request(&mut buf, &limits).unwrap_err(),
        E::HeadTooLarge { max: 64 }
    );
}

#[test]
fn facts_for_the_response() {
    let r = req_ok("HEAD / HTTP/1.0\r\nConnection: keep-alive\r\nTE: trailers\r\n\r\n");
    let f = r.facts();
    assert_eq!(f.version, Version::HTTP_10);
    assert!(f.is_head && f.keep_alive && f.te_trailers);
}

#[test]
fn common_names_are_the_names_from_bytes_gives() {
    // Every spelling the fast path knows names the same field as the general path,
    // and any other spelling (mixed case, near misses) is left to the general path.
    let known = [
        "Host",
        "Date",
        "Accept",
        "Server",
        "Connection",
        "User-Agent",
        "Content-Type",
        "Cache-Control",
        "Content-Length",
        "Accept-Encoding",
        "Accept-Language",
        "Transfer-Encoding",
    ];
    for name in known {
        for spelling in [name.to_string(), name.to_ascii_lowercase()] {
            let fast = parse::common_name(spelling.as_bytes());
            let general = http::HeaderName::from_bytes(spelling.as_bytes()).unwrap();
            assert_eq!(fast.as_ref(), Some(&general), "{spelling}");
        }
        let shouting = name.to_ascii_uppercase();
        assert_eq!(parse::common_name(shouting.as_bytes()), None, "{shouting}");
    }
    for other in ["Hosts", "X-Host", "content-lengt", "", "Te"] {
        assert_eq!(parse::common_name(other.as_bytes()), None, "{other}");
    }
    // Through the parser: a shouted name still names the same field.
    let r = req_ok("GET / HTTP/1.1\r\nHOST: a\r\nCONTENT-LENGTH: 0\r\n\r\n");
    assert_eq!(r.parts.headers["host"], "a");
    assert_eq!(r.parts.headers["content-length"], "0");
}

#[test]
fn heads_with_many_fields_keep_every_field() {
    let fields: String = (0..40).map(|i| format!("X-F{i}: v{i}\r\n")).collect();
    let r = req_ok(&format!("GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n"));
    assert_eq!(r.parts.headers.len(), 41);
    for i in 0..40 {
        assert_eq!(r.parts.headers[format!("x-f{i}").as_str()], format!("v{i}"));
    }
    let raw = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 0\r\n\r\n");
    let res = res_ok(&raw, &Method::GET);
    assert_eq!(res.parts.headers.len(), 41);
    assert_eq!(res.parts.headers["x-f39"], "v39");
}
