use bytes::BytesMut;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};

use crate::h1::encode::{self, chunk_header};
use crate::h1::parse::{self, HeadLimits};
use crate::h1::{BodyKind, ChunkLimits, ConnectionField, Decoded, Decoder, Framing};

fn response(
    status: u16,
    headers: &[(&str, &str)],
    framing: Framing,
    conn: ConnectionField,
) -> String {
    let mut b = Response::builder().status(status);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    let (parts, ()) = b.body(()).unwrap().into_parts();
    let mut dst = BytesMut::new();
    encode::response_head(&parts, framing, conn, None, &mut dst);
    String::from_utf8(dst.to_vec()).unwrap()
}

fn request(req: Request<()>, framing: Framing, conn: ConnectionField) -> String {
    let (parts, ()) = req.into_parts();
    let mut dst = BytesMut::new();
    encode::request_head(&parts, framing, conn, &mut dst);
    String::from_utf8(dst.to_vec()).unwrap()
}

#[test]
fn response_heads() {
    let keep = ConnectionField::Keep;
    assert_eq!(
        response(
            200,
            &[("x-a", "1"), ("content-length", "99")],
            Framing::Length(5),
            keep
        ),
        "HTTP/1.1 200 OK\r\nx-a: 1\r\ncontent-length: 5\r\n\r\n"
    );
    assert_eq!(
        response(
            200,
            &[("transfer-encoding", "gzip")],
            Framing::Chunked,
            keep
        ),
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    assert_eq!(
        response(200, &[("connection", "keep-alive")], Framing::Close, keep),
        "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"
    );
    // HEAD / 304: fields as they are.
    assert_eq!(
        response(304, &[("content-length", "10")], Framing::AsIs, keep),
        "HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n"
    );
    assert_eq!(
        response(200, &[], Framing::Length(0), ConnectionField::KeepAlive),
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
    );
    assert_eq!(
        response(
            400,
            &[("connection", "x")],
            Framing::Length(0),
            ConnectionField::Close
        ),
        "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(
        response(599, &[], Framing::AsIs, keep),
        "HTTP/1.1 599 \r\n\r\n"
    );
    assert_eq!(
        response(200, &[("a", "1"), ("a", "2")], Framing::AsIs, keep),
        "HTTP/1.1 200 OK\r\na: 1\r\na: 2\r\n\r\n"
    );
}

#[test]
fn request_heads() {
    let keep = ConnectionField::Keep;
    let get = Request::get("http://up.example:8080/p?q=1")
        .body(())
        .unwrap();
    assert_eq!(
        request(get, Framing::AsIs, keep),
        "GET /p?q=1 HTTP/1.1\r\nhost: up.example:8080\r\n\r\n"
    );
    let with_host = Request::post("/x").header("host", "h").body(()).unwrap();
    assert_eq!(
        request(with_host, Framing::Chunked, keep),
        "POST /x HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    let connect = Request::connect("a.example:443").body(()).unwrap();
    assert_eq!(
        request(connect, Framing::AsIs, keep),
        "CONNECT a.example:443 HTTP/1.1\r\nhost: a.example:443\r\n\r\n"
    );
    let star = Request::options("*").header("host", "h").body(()).unwrap();
    assert_eq!(
        request(star, Framing::AsIs, keep),
        "OPTIONS * HTTP/1.1\r\nhost: h\r\n\r\n"
    );
    let old = Request::get("/")
        .version(Version::HTTP_10)
        .body(())
        .unwrap();
    assert_eq!(
        request(old, Framing::Length(2), ConnectionField::KeepAlive),
        "GET / HTTP/1.0\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn request_head_round_trips_through_the_parser() {
    let req = Request::builder()
        .method(Method::PUT)
        .uri("http://h.example/a/b?c")
        .header("x-one", "1")
        .header("x-two", "two words")
        .body(())
        .unwrap();
    let (parts, ()) = req.into_parts();
    let mut dst = BytesMut::new();
    encode::request_head(&parts, Framing::Length(7), ConnectionField::Keep, &mut dst);
    let parsed = parse::request(&mut dst, &HeadLimits::default())
        .unwrap()
        .unwrap();
    assert!(dst.is_empty());
    assert_eq!(parsed.parts.method, Method::PUT);
    assert_eq!(parsed.parts.uri, "/a/b?c");
    assert_eq!(parsed.parts.headers["host"], "h.example");
    assert_eq!(parsed.parts.headers["x-two"], "two words");
    assert_eq!(parsed.body, BodyKind::Length(7));

    let (parts, ()) = Response::builder()
        .status(StatusCode::CREATED)
        .body(())
        .unwrap()
        .into_parts();
    let mut dst = BytesMut::new();
    encode::response_head(
        &parts,
        Framing::Chunked,
        ConnectionField::Keep,
        None,
        &mut dst,
    );
    let parsed = parse::response(&mut dst, &HeadLimits::default(), &Method::GET)
        .unwrap()
        .unwrap();
    assert_eq!(
        (parsed.parts.status, parsed.body),
        (StatusCode::CREATED, BodyKind::Chunked)
    );
}

#[test]
fn chunk_size_lines() {
    assert_eq!(chunk_header(1).as_ref(), b"1\r\n");
    assert_eq!(chunk_header(15).as_ref(), b"f\r\n");
    assert_eq!(chunk_header(16).as_ref(), b"10\r\n");
    assert_eq!(chunk_header(26).as_ref(), b"1a\r\n");
    assert_eq!(chunk_header(8192).as_ref(), b"2000\r\n");
    assert_eq!(chunk_header(u64::MAX).as_ref(), b"ffffffffffffffff\r\n");
    let mut d = BytesMut::new();
    encode::put_decimal(&mut d, 0);
    d.extend_from_slice(b" ");
    encode::put_decimal(&mut d, u64::MAX);
    assert_eq!(&d[..], b"0 18446744073709551615");
}

#[test]
fn chunked_body_round_trips_with_trailers() {
    let mut wire = BytesMut::new();
    let pieces: [&[u8]; 4] = [b"first", b"", b"x", &[b'z'; 300]];
    for p in pieces {
        encode::chunk(p, &mut wire);
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers.insert("content-length", HeaderValue::from_static("1"));
    encode::last_chunk(Some(&trailers), &mut wire);
    assert!(wire.starts_with(b"5\r\nfirst\r\n1\r\nx\r\n12c\r\n"));
    assert!(wire.ends_with(b"\r\n0\r\ngrpc-status: 0\r\n\r\n"));

    for split in 0..wire.len() {
        let mut dec = Decoder::new(BodyKind::Chunked, ChunkLimits::default());
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut got = None;
        for part in [&wire[..split], &wire[split..]] {
            buf.extend_from_slice(part);
            while let Some(d) = dec.decode(&mut buf).unwrap() {
                match d {
                    Decoded::Data(d) => data.extend_from_slice(&d),
                    Decoded::Trailers(t) => got = Some(t),
                }
            }
        }
        assert!(dec.is_done() && buf.is_empty(), "split {split}");
        assert_eq!(data, [&b"first"[..], b"x", &[b'z'; 300]].concat());
        let got = got.unwrap();
        assert_eq!((got.len(), got["grpc-status"].as_bytes()), (1, &b"0"[..]));
    }

    let mut empty = BytesMut::new();
    encode::last_chunk(None, &mut empty);
    assert_eq!(&empty[..], b"0\r\n\r\n");
}

#[test]
fn response_framing_rules() {
    use crate::h1::encode::{
        BodyLength as L, RequestFacts, ResponseFraming, request_framing, response_framing,
    };
    use ConnectionField::{Close as C, Keep as K, KeepAlive as KA};
    let v11 = RequestFacts {
        version: Version::HTTP_11,
        is_head: false,
        keep_alive: true,
        te_trailers: false,
    };
    let v10 = RequestFacts {
        version: Version::HTTP_10,
        keep_alive: true,
        ..v11
    };
    let f = |req, status: u16, body, close| {
        let r: ResponseFraming =
            response_framing(req, StatusCode::from_u16(status).unwrap(), body, close);
        (r.framing, r.connection, r.keep_alive, r.send_trailers)
    };
    assert_eq!(
        f(v11, 200, L::Exact(5), false),
        (Framing::Length(5), K, true, false)
    );
    assert_eq!(
        f(v11, 200, L::Empty, false),
        (Framing::Length(0), K, true, false)
    );
    assert_eq!(
        f(v11, 200, L::Unknown, false),
        (Framing::Chunked, K, true, false)
    );
    let te = RequestFacts {
        te_trailers: true,
        ..v11
    };
    assert_eq!(
        f(te, 200, L::Unknown, false),
        (Framing::Chunked, K, true, true)
    );
    assert_eq!(
        f(te, 200, L::Exact(3), false),
        (Framing::Length(3), K, true, false)
    );
    assert_eq!(
        f(v11, 200, L::Unknown, true),
        (Framing::Chunked, C, false, false)
    );
    let closing = RequestFacts {
        keep_alive: false,
        ..v11
    };
    assert_eq!(
        f(closing, 200, L::Exact(1), false),
        (Framing::Length(1), C, false, false)
    );
    for status in [204, 304, 100, 103] {
        assert_eq!(
            f(v11, status, L::Exact(9), false),
            (Framing::AsIs, K, true, false),
            "{status}"
        );
    }
    let head = RequestFacts {
        is_head: true,
        ..v11
    };
    assert_eq!(
        f(head, 200, L::Unknown, false),
        (Framing::AsIs, K, true, false)
    );
    // HTTP/1.0 client: keep-alive answered, unknown length closes.
    assert_eq!(
        f(v10, 200, L::Exact(2), false),
        (Framing::Length(2), KA, true, false)
    );
    assert_eq!(
        f(v10, 200, L::Unknown, false),
        (Framing::Close, C, false, false)
    );
    let v10_close = RequestFacts {
        keep_alive: false,
        ..v10
    };
    assert_eq!(
        f(v10_close, 200, L::Exact(2), false),
        (Framing::Length(2), C, false, false)
    );
    assert_eq!(
        f(v11, 101, L::Empty, false),
        (Framing::AsIs, K, false, false)
    );
    // The written head agrees.
    assert_eq!(
        response(
            200,
            &[("connection", "upgrade")],
            Framing::Close,
            ConnectionField::Close
        ),
        "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"
    );
    assert_eq!(request_framing(L::Empty), Framing::AsIs);
    assert_eq!(request_framing(L::Exact(0)), Framing::Length(0));
    assert_eq!(request_framing(L::Unknown), Framing::Chunked);
}

#[test]
fn date_field() {
    use crate::h1::date::{imf_fixdate, now};
    let cases: [(u64, &[u8]); 6] = [
        (0, b"Thu, 01 Jan 1970 00:00:00 GMT"),
        (784_111_777, b"Sun, 06 Nov 1994 08:49:37 GMT"),
        (951_782_400, b"Tue, 29 Feb 2000 00:00:00 GMT"),
        (4_102_444_800, b"Fri, 01 Jan 2100 00:00:00 GMT"),
        (253_402_300_799, b"Fri, 31 Dec 9999 23:59:59 GMT"),
        (u64::MAX, b"Fri, 31 Dec 9999 23:59:59 GMT"),
    ];
    for (secs, want) in cases {
        assert_eq!(&imf_fixdate(secs)[..], want, "{secs}");
    }
    let date = now();
    assert_eq!(date.len(), 29);
    assert!(date.to_str().unwrap().ends_with(" GMT"));

    let (parts, ()) = Response::new(()).into_parts();
    let mut dst = BytesMut::new();
    let d = HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT");
    encode::response_head(
        &parts,
        Framing::Length(0),
        ConnectionField::Keep,
        Some(&d),
        &mut dst,
    );
    assert_eq!(
        &dst[..],
        &b"HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\ncontent-length: 0\r\n\r\n"[..]
    );
    let (parts, ()) = Response::builder()
        .header("date", "x")
        .body(())
        .unwrap()
        .into_parts();
    let mut dst = BytesMut::new();
    encode::response_head(
        &parts,
        Framing::AsIs,
        ConnectionField::Keep,
        Some(&d),
        &mut dst,
    );
    assert_eq!(&dst[..], b"HTTP/1.1 200 OK\r\ndate: x\r\n\r\n");
}
