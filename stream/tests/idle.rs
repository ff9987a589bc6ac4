//! An idle downstream connection holds no buffer: after answering, both its read and
//! write buffers are back in the thread's pool (a current-thread runtime, so the pool
//! the driver gives to is the one this test reads).

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use strait_codec_framework::{Frame, FrameKind, Limits, Protocol};
use strait_example_lenproto::LenFrame;
use strait_stream::buffers::{self, BufferClass};
use strait_stream::downstream::{self, DownstreamOptions};
use strait_stream::{RequestContext, RequestEnd, RequestHandler, Route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answers every request locally, echoing its body.
struct Echo;

impl RequestHandler for Echo {
    fn route(&self, request: &mut dyn Frame, _: &mut RequestContext) -> Route {
        let mut reply = LenFrame::new(FrameKind::Response, request.request_id() as u32, 0);
        reply.body = request.body();
        Route::Reply(Box::new(reply))
    }

    fn finished(&self, _: &RequestContext, _: RequestEnd) {}
}

#[tokio::test(flavor = "current_thread")]
async fn an_idle_connection_gives_its_buffers_back() {
    let protocol: Arc<dyn Protocol> = strait_example_lenproto::protocol();
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(socket.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = socket.accept().await.unwrap();
    let (rd, wr) = server.into_split();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let kept = || buffers::kept(BufferClass::Frames);
    let before = kept();
    tokio::spawn(downstream::serve(
        rd,
        wr,
        BytesMut::new(),
        protocol.clone(),
        Arc::new(Echo),
        DownstreamOptions::default(),
        shutdown,
    ));

    for round in 0..3 {
        let mut out = BytesMut::new();
        LenFrame::request(round, "svc", b"hello")
            .encode(&mut out)
            .unwrap();
        client.write_all(&out).await.unwrap();
        let mut codec = protocol.new_codec(Limits::default());
        let mut buf = BytesMut::new();
        let answer = loop {
            if let Some(frame) = codec.decode(&mut buf).unwrap() {
                break frame;
            }
            assert!(client.read_buf(&mut buf).await.unwrap() > 0);
        };
        assert_eq!(&answer.body()[..], b"hello");
        // The driver gives its buffers back once they are empty, before it waits again.
        let mut settled = false;
        for _ in 0..100 {
            if kept() == before + 2 {
                settled = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            settled,
            "round {round}: the pool holds {} buffers, want {}",
            kept(),
            before + 2
        );
    }
}

/// Answers every HTTP request with `ok`.
struct Ok200;

impl strait_stream::http::Handler for Ok200 {
    fn call(
        &self,
        _request: http::Request<strait_stream::http::Body>,
        _ctx: strait_codec_http::ConnectionInfo,
    ) -> strait_stream::http::HandlerFuture {
        Box::pin(async { http::Response::new(strait_stream::http::Body::from("ok")) })
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_idle_http1_connection_gives_its_buffers_back() {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = TcpStream::connect(socket.local_addr().unwrap())
        .await
        .unwrap();
    let (server, peer) = socket.accept().await.unwrap();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let kept = || buffers::kept(BufferClass::Heads);
    let before = kept();
    tokio::spawn(strait_stream::http::serve_connection(
        server,
        bytes::Bytes::new(),
        peer,
        Arc::new(Ok200),
        Arc::new(strait_stream::http::ServerOptions::default()),
        shutdown,
    ));
    for round in 0..3 {
        client
            .write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(b"\r\n\r\nok") {
            let mut chunk = [0u8; 512];
            let n = client.read(&mut chunk).await.unwrap();
            assert!(n > 0, "round {round}: closed after {answer:?}");
            answer.extend_from_slice(&chunk[..n]);
        }
        // Read and write buffer back in the thread's pool before the driver waits again.
        // (The first request arrives with the bytes protocol detection read, in a buffer
        // of its own: the pool is full from the second one.)
        if round == 0 {
            continue;
        }
        let mut settled = false;
        for _ in 0..100 {
            if kept() == before + 2 {
                settled = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(
            settled,
            "round {round}: the pool holds {} head buffers, want {}",
            kept(),
            before + 2
        );
    }
}
