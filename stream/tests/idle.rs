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
