//! The crate's pieces put together as a minimal proxy (what the proxy crate's glue
//! does, minus routing and pools): `serve_connection` → `prepare_upstream_request` →
//! `Http1Connection`/`Http2Connection` → `prepare_downstream_response`, `tunnel`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, Version};
use strait_codec_http::{
    ConnectionInfo, failure_response, is_upgrade_request, prepare_downstream_response,
    prepare_upstream_request,
};
use strait_stream::http::{
    Body, ClientOptions, Handler, HandlerFuture, Http1Connection, Http2Connection, ServerOptions,
    tunnel,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;

use crate::support::*;

struct Proxy {
    upstream: SocketAddr,
    version: Version,
    h2: OnceCell<Http2Connection>,
}

impl Proxy {
    async fn send(
        &self,
        request: Request<Body>,
    ) -> Result<Response<Body>, strait_stream::http::ClientError> {
        if self.version == Version::HTTP_2 {
            let conn = self
                .h2
                .get_or_init(|| async {
                    let tcp = TcpStream::connect(self.upstream).await.unwrap();
                    Http2Connection::handshake(tcp, &ClientOptions::default())
                        .await
                        .unwrap()
                })
                .await;
            conn.send(request).await
        } else {
            let tcp = TcpStream::connect(self.upstream).await.unwrap();
            let mut conn = Http1Connection::handshake(tcp, &ClientOptions::default())
                .await
                .unwrap();
            conn.send(request).await
        }
    }
}

struct ProxyHandler(Arc<Proxy>);

impl Handler for ProxyHandler {
    fn call(&self, request: Request<Body>, ctx: ConnectionInfo) -> HandlerFuture {
        let proxy = self.0.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            let failure_parts = Request::new(()).into_parts().0;
            let downstream_upgrade =
                if ctx.version() != Version::HTTP_2 && is_upgrade_request(&parts.headers) {
                    strait_stream::http::upgrade::on(&mut parts)
                } else {
                    None
                };
            prepare_upstream_request(&mut parts, &ctx, proxy.version);
            let mut response = match proxy.send(Request::from_parts(parts, body)).await {
                Ok(response) => response,
                Err(error) => return failure_response(&failure_parts, error.failure(), ""),
            };
            if response.status() == 101
                && let Some(downstream) = downstream_upgrade
                && let Some(upstream) = strait_stream::http::upgrade::on(&mut response)
            {
                tokio::spawn(tunnel(downstream, upstream));
            }
            let (mut parts, body) = response.into_parts();
            prepare_downstream_response(&mut parts, ctx.version());
            Response::from_parts(parts, body)
        })
    }
}

/// An upstream test server and a proxy in front of it speaking `version` upstream.
async fn proxied(version: Version) -> (Server, Server) {
    let upstream = server().await;
    let proxy = Arc::new(Proxy {
        upstream: upstream.addr,
        version,
        h2: OnceCell::new(),
    });
    let (_tx, chunks) = tokio::sync::mpsc::unbounded_channel();
    let front = serve_with_handler(
        Arc::new(ProxyHandler(proxy)),
        ServerOptions::default(),
        Arc::new(Observed::default()),
        chunks,
    )
    .await;
    (front, upstream)
}

async fn h2_client(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client.ready().await.unwrap()
}

async fn read_all(body: &mut h2::RecvStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        body.flow_control().release_capacity(chunk.len()).unwrap();
        out.extend_from_slice(&chunk);
    }
    out
}

#[tokio::test]
async fn websocket_style_upgrade_is_tunnelled() {
    let (front, upstream) = proxied(Version::HTTP_11).await;
    let mut conn = connect(front.addr).await;
    conn.get_mut()
        .write_all(b"GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut conn, false).await;
    assert_eq!(response.status, 101);
    assert_eq!(response.header("upgrade"), Some("echo"));
    assert_eq!(response.header("connection"), Some("upgrade"));
    for message in [&b"first"[..], b"second message"] {
        conn.get_mut().write_all(message).await.unwrap();
        let mut echoed = vec![0u8; message.len()];
        conn.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, message);
    }
    assert_eq!(upstream.observed.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn h2_downstream_to_h1_upstream() {
    let (front, _upstream) = proxied(Version::HTTP_11).await;
    let mut client = h2_client(front.addr).await;
    let (response, _) = client
        .send_request(
            Request::get("http://api.example/headers?q=1")
                .header("te", "trailers")
                .header("x-app", "1")
                .body(())
                .unwrap(),
            true,
        )
        .unwrap();
    let mut body = response.await.unwrap().into_body();
    let text = String::from_utf8(read_all(&mut body).await).unwrap();
    assert_eq!(
        text,
        "/headers?q=1 HTTP/1.1\nhost: api.example\nx-app: 1\nx-forwarded-for: 127.0.0.1\nx-forwarded-proto: http"
    );

    // A streamed body both ways.
    let mut client = client.ready().await.unwrap();
    let (response, mut send) = client
        .send_request(
            Request::post("http://api.example/echo").body(()).unwrap(),
            false,
        )
        .unwrap();
    send.send_data(Bytes::from_static(b"over "), false).unwrap();
    send.send_data(Bytes::from_static(b"h1"), true).unwrap();
    let mut body = response.await.unwrap().into_body();
    assert_eq!(read_all(&mut body).await, b"over h1");
}

#[tokio::test]
async fn h1_downstream_to_h2_upstream() {
    let (front, _upstream) = proxied(Version::HTTP_2).await;
    let mut conn = connect(front.addr).await;
    conn.get_mut()
        .write_all(b"GET /headers HTTP/1.1\r\nHost: web.example\r\nConnection: x-drop\r\nX-Drop: 1\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut conn, false).await;
    assert_eq!(
        response.text(),
        "http://web.example/headers HTTP/2.0\nx-forwarded-for: 127.0.0.1\nx-forwarded-proto: http"
    );
    conn.get_mut()
        .write_all(b"POST /echo HTTP/1.1\r\nHost: web.example\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut conn, false).await;
    assert_eq!(response.text(), "abcdef");
}

#[tokio::test]
async fn h2_to_h2_passes_trailers_both_ways() {
    let (front, _upstream) = proxied(Version::HTTP_2).await;
    let mut client = h2_client(front.addr).await;
    let (response, mut send) = client
        .send_request(
            Request::post("http://g.example/echo")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())
                .unwrap(),
            false,
        )
        .unwrap();
    send.send_data(Bytes::from_static(b"\0\0\0\0\x02hi"), false)
        .unwrap();
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers.insert("x-custom-bin", HeaderValue::from_static("AAEC"));
    send.send_trailers(trailers).unwrap();
    let mut body = response.await.unwrap().into_body();
    assert_eq!(read_all(&mut body).await, b"\0\0\0\0\x02hi");
    let trailers = body.trailers().await.unwrap().unwrap();
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["x-custom-bin"], "AAEC");
}

#[tokio::test]
async fn slow_downstream_reader_bounds_the_upstream_producer() {
    let (front, upstream) = proxied(Version::HTTP_2).await;
    let mut client = h2_client(front.addr).await;
    let (response, _) = client
        .send_request(Request::get("http://a/big").body(()).unwrap(), true)
        .unwrap();
    let mut body = response.await.unwrap().into_body();
    let mut unreleased = 0;
    while unreleased < 60 * 1024 {
        unreleased += body.data().await.unwrap().unwrap().len();
    }
    let observed = upstream.observed.clone();
    let stalled = settled(|| observed.produced.load(Ordering::SeqCst)).await;
    // The client's window, the proxy's upstream stream window (256 KiB) and the
    // send buffers on the way: not the endless body.
    assert!(stalled <= 4 * 1024 * 1024, "produced {stalled} bytes");
    body.flow_control().release_capacity(unreleased).unwrap();
    let observed = upstream.observed.clone();
    eventually(|| observed.produced.load(Ordering::SeqCst) > stalled).await;
}

#[tokio::test]
async fn upstream_dying_mid_response_is_an_upstream_reset() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            .await
            .unwrap();
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut conn = Http1Connection::handshake(tcp, &ClientOptions::default())
        .await
        .unwrap();
    let request = Request::get("/")
        .header("host", "a")
        .body(Body::Empty)
        .unwrap();
    let response = conn.send(request).await.unwrap();
    // The head came; the body is cut short.
    let error = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap_err();
    assert!(error.is_peer_failure());
    assert!(conn.is_closed());

    // A request on a connection the upstream closed before answering anything.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await.unwrap();
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut conn = Http1Connection::handshake(tcp, &ClientOptions::default())
        .await
        .unwrap();
    let request = Request::get("/")
        .header("host", "a")
        .body(Body::Empty)
        .unwrap();
    let error = conn.send(request).await.unwrap_err();
    assert!(!error.was_not_sent(), "it was written: {error:?}");
    assert!(!error.is_retry_safe());
    assert_eq!(
        error.failure(),
        strait_codec_framework::ProxyFailure::UpstreamReset
    );
}
