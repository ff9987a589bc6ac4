//! Upstream client connections against `serve_connection` servers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use strait_stream::UpstreamIo;
use strait_stream::http::{
    Body, BodyEnd, BodyObserver, ClientError, ClientOptions, Http1Connection, Http2Connection,
    ServerOptions,
};
use tokio::net::TcpStream;

use crate::support::*;

#[derive(Default)]
struct Ends(Mutex<Vec<BodyEnd>>);

impl BodyObserver for Ends {
    fn body_finished(&self, end: BodyEnd) {
        self.0.lock().push(end);
    }
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("host", "a")
        .body(Body::Empty)
        .unwrap()
}

/// An HTTP/1.1 client connection to `addr`, default options.
async fn http1_to(addr: std::net::SocketAddr) -> Http1Connection {
    let tcp = TcpStream::connect(addr).await.unwrap();
    Http1Connection::handshake(tcp, &ClientOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn http1_send_dropped_before_it_is_polled_closes_the_connection() {
    // The head is encoded into the connection when `send` is called: a send given up
    // before it ran leaves the connection in an unknown state, so it must close, not
    // stay taken by an exchange that will never end.
    let server = server().await;
    let mut conn = http1_to(server.addr).await;
    let ends = Arc::new(Ends::default());
    conn.set_observer(ends.clone());
    drop(conn.send(get("/info?n=1")));
    assert!(conn.is_closed());
    assert!(!conn.is_ready());
    let again = conn.send(get("/info?n=2")).await.unwrap_err();
    assert!(again.was_not_sent(), "{again}");
}

#[tokio::test]
async fn http1_send_by_a_deadline_times_out_on_the_connections_reused_timer() {
    let server = server().await;
    let mut conn = http1_to(server.addr).await;
    // Answered before its deadline: the connection's timer is armed and kept.
    let first = tokio::time::Instant::now() + std::time::Duration::from_millis(100);
    let response = conn.send_by(get("/info?n=1"), Some(first)).await.unwrap();
    response.into_body().collect().await.unwrap();
    assert!(conn.is_ready());
    // The same timer, moved to a later deadline (extended in place, not registered
    // again) that the next answer misses: it still fires, past the first deadline.
    let second = first + std::time::Duration::from_millis(200);
    let error = conn.send_by(get("/slow"), Some(second)).await.unwrap_err();
    assert!(matches!(error, ClientError::TimedOut), "{error}");
    assert_eq!(
        error.failure(),
        strait_codec_framework::ProxyFailure::Timeout
    );
    assert!(
        conn.is_closed(),
        "a timed-out exchange leaves the connection unusable"
    );
}

#[tokio::test]
async fn http1_connection_is_reused_after_the_body_is_finished() {
    let server = server().await;
    let mut conn = http1_to(server.addr).await;
    let ends = Arc::new(Ends::default());
    conn.set_observer(ends.clone());
    assert!(conn.is_ready());

    let response = conn.send(get("/info?n=1")).await.unwrap();
    let peer1 = response.headers()["x-peer"].clone();
    // Busy until the body is finished.
    assert!(!conn.is_ready());
    assert!(ends.0.lock().is_empty());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"GET /info?n=1 HTTP/1.1 HTTP/1.1");
    assert_eq!(*ends.0.lock(), [BodyEnd::Complete]);
    assert!(conn.is_ready());

    // A streamed request body and a chunked response on the same connection.
    let request = Request::post("/echo")
        .header("host", "a")
        .body(Body::boxed(Chunks::new(vec![
            Bytes::from_static(b"one "),
            Bytes::from_static(b"two"),
        ])))
        .unwrap();
    let response = conn.send(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"one two");
    assert_eq!(*ends.0.lock(), [BodyEnd::Complete, BodyEnd::Complete]);

    // Still the same connection: the server saw the same peer.
    let response = conn.send(get("/info?n=3")).await.unwrap();
    assert_eq!(response.headers()["x-peer"], peer1);
    response.into_body().collect().await.unwrap();
    assert_eq!(server.observed.requests.load(Ordering::SeqCst), 3);
}

/// An upstream that answers one request on each connection with keep-alive framing,
/// then closes it.
async fn answers_once_then_closes() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn http1_connection_the_upstream_closed_while_idle_is_not_sent_on() {
    // Each kind of socket the client is given: a plain one (asked without a waker), the
    // pool's plain one, and a wrapped one (polled like any stream).
    for kind in ["tcp", "upstream tcp", "wrapped"] {
        let addr = answers_once_then_closes().await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let options = ClientOptions::default();
        let mut conn = match kind {
            "tcp" => Http1Connection::handshake(tcp, &options).await,
            "upstream tcp" => Http1Connection::handshake(UpstreamIo::Tcp(tcp), &options).await,
            _ => Http1Connection::handshake(UpstreamIo::Wrapped(Box::new(tcp)), &options).await,
        }
        .unwrap();
        let response = conn.send(get("/one")).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok", "{kind}");
        assert!(conn.is_ready(), "{kind}: kept alive after a whole body");
        // The upstream's close reaches this side while the connection is idle.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut error = conn.send(get("/two")).await.unwrap_err();
        assert!(error.was_not_sent(), "{kind}: {error}");
        assert!(conn.is_closed(), "{kind}");
        let request = error.take_request().expect("the request comes back");
        assert_eq!(request.uri(), "/two", "{kind}");
    }
}

#[tokio::test]
async fn http1_body_dropped_early_is_aborted_and_not_reused() {
    let server = server().await;
    let mut conn = http1_to(server.addr).await;
    let ends = Arc::new(Ends::default());
    conn.set_observer(ends.clone());
    let response = conn.send(get("/big")).await.unwrap();
    drop(response);
    assert_eq!(*ends.0.lock(), [BodyEnd::Aborted]);
    assert!(conn.is_closed());
    let mut error = conn.send(get("/info")).await.unwrap_err();
    assert!(error.was_not_sent());
    assert_eq!(
        error.failure(),
        strait_codec_framework::ProxyFailure::ConnectFailure
    );
    let request = error.take_request().expect("the request comes back");
    assert_eq!(request.uri(), "/info");
}

#[tokio::test]
async fn http1_upgrade_consumes_the_connection() {
    let server = server().await;
    let mut conn = http1_to(server.addr).await;
    let ends = Arc::new(Ends::default());
    conn.set_observer(ends.clone());
    let request = Request::get("/upgrade")
        .header("host", "a")
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(Body::Empty)
        .unwrap();
    let mut response = conn.send(request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(*ends.0.lock(), [BodyEnd::Aborted]);
    assert!(conn.is_closed());
    let on_upgrade = strait_stream::http::upgrade::on(&mut response).expect("an upgrade");
    let mut io = on_upgrade.await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    io.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn http2_concurrent_sends_and_stream_limit() {
    let server = server_with(ServerOptions {
        h2_max_concurrent_streams: 2,
        ..Default::default()
    })
    .await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let conn = Http2Connection::handshake(tcp, &ClientOptions::default())
        .await
        .unwrap();
    // The first exchange makes sure the server's SETTINGS have been read.
    let response = conn.send(get("http://a/info")).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"GET http://a/info HTTP/2.0 HTTP/2.0");
    assert_eq!(conn.max_concurrent_streams(), 2);
    assert_eq!(conn.active_streams(), 0);
    assert!(conn.has_capacity());

    // Two slow requests fill the limit.
    let a = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send(get("http://a/slow")).await }
    });
    let b = tokio::spawn({
        let conn = conn.clone();
        async move { conn.send(get("http://a/slow")).await }
    });
    let observed = server.observed.clone();
    eventually(|| observed.waiting.load(Ordering::SeqCst) == 2).await;
    assert_eq!(conn.active_streams(), 2);
    assert!(!conn.has_capacity());

    // Many concurrent sends complete once the slow ones are released.
    let mut fast = Vec::new();
    for i in 0..8 {
        let conn = conn.clone();
        fast.push(tokio::spawn(async move {
            let response = conn
                .send(get(&format!("http://a/info?n={i}")))
                .await
                .unwrap();
            response.into_body().collect().await.unwrap().to_bytes()
        }));
    }
    server.observed.gate.notify_one();
    server.observed.gate.notify_one();
    for task in [a, b] {
        let response = task.await.unwrap().unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"slow");
    }
    for (i, task) in fast.into_iter().enumerate() {
        let body = task.await.unwrap();
        assert_eq!(
            body,
            format!("GET http://a/info?n={i} HTTP/2.0 HTTP/2.0").as_bytes()
        );
    }
    assert_eq!(conn.active_streams(), 0);
}

#[tokio::test]
async fn http2_goaway_makes_the_connection_unusable() {
    let server = server().await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let conn = Http2Connection::handshake(tcp, &ClientOptions::default())
        .await
        .unwrap();
    let response = conn.send(get("http://a/info")).await.unwrap();
    response.into_body().collect().await.unwrap();
    assert!(!conn.is_closed());
    server.shutdown.send(true).unwrap();
    eventually(|| conn.is_closed()).await;
    let mut error = conn.send(get("http://a/info")).await.unwrap_err();
    assert!(error.was_not_sent());
    assert!(error.take_request().is_some());
}

/// An endless-ish upload: `left` chunks of 64 KiB, produced as they are polled.
struct Upload {
    left: usize,
}

impl http_body::Body for Upload {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
    }
}

#[tokio::test]
async fn http1_early_answer_to_an_upload_reaches_the_caller() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // An upstream that reads the head only, refuses the upload at once and closes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0);
            head.extend_from_slice(&buf[..n]);
        }
        socket
            .write_all(
                b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        // Closing with the upload unread resets the connection under the writer.
        drop(socket);
    });
    let mut conn = http1_to(addr).await;
    // 64 MiB: far more than the socket buffers hold, so the write cannot finish first.
    let request = Request::post("/upload")
        .header("host", "a")
        .body(Body::boxed(Upload { left: 1024 }))
        .unwrap();
    let response = conn
        .send(request)
        .await
        .expect("the upstream's answer, not a write error");
    assert_eq!(response.status(), 413);
    drop(response);
    assert!(
        conn.is_closed(),
        "a connection whose request was cut is not reused"
    );
    upstream.await.unwrap();
}

fn pinging() -> ClientOptions {
    ClientOptions {
        h2_keepalive_interval: Some(std::time::Duration::from_millis(100)),
        h2_keepalive_timeout: std::time::Duration::from_millis(200),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn http2_upstream_that_never_answers_pings_is_closed() {
    use crate::h2c::{FrameReader, frame};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server that completes the handshake, then reads forever and answers nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut preface = [0u8; 24];
        socket.read_exact(&mut preface).await.unwrap();
        socket.write_all(&frame(0x4, 0, 0, &[])).await.unwrap();
        socket.write_all(&frame(0x4, 0x1, 0, &[])).await.unwrap();
        let mut frames = FrameReader::new(socket);
        let mut pings = 0;
        while let Some(f) = frames.next().await {
            if f.kind == 0x6 && f.flags & 0x1 == 0 {
                pings += 1;
            }
        }
        pings
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let conn = Http2Connection::handshake(tcp, &pinging()).await.unwrap();
    let closed = async {
        while !conn.is_closed() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), closed)
        .await
        .expect("an upstream that does not answer PINGs is given up");
    drop(conn);
    let pings = upstream.await.unwrap();
    assert!(pings >= 1, "a PING was sent first");
}

#[tokio::test]
async fn http2_upstream_answering_pings_stays_usable() {
    let server = server().await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let conn = Http2Connection::handshake(tcp, &pinging()).await.unwrap();
    // Several intervals and timeouts pass; Strait's server answers every PING.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(!conn.is_closed());
    let response = conn.send(get("http://a/info")).await.expect("still usable");
    assert_eq!(response.status(), 200);
}
