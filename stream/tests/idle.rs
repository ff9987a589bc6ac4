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
use strait_stream::{RequestContext, RequestEnd, RequestHandler, Route, UpstreamConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answers every request locally, echoing its body.
struct Echo;

impl RequestHandler for Echo {
    fn route(
        &self,
        request: &mut dyn Frame,
        _: &mut RequestContext,
        _: Option<&UpstreamConnection>,
    ) -> Route {
        let mut reply = LenFrame::new(FrameKind::Response, request.request_id() as u32, 0);
        reply.body = request.body();
        Route::Reply(Box::new(reply))
    }

    fn finished(&self, _: &RequestContext, _: RequestEnd) {}

    fn count(&self, _: &[strait_codec_framework::RequestCount]) {}
}

/// Waits (up to 100 ms) for the thread's pool to hold `want` buffers.
async fn assert_pool_settles(kept: &impl Fn() -> usize, want: usize, round: u32) {
    for _ in 0..100 {
        if kept() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "round {round}: the pool holds {} buffers, want {want}",
        kept()
    );
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
        assert_pool_settles(&kept, before + 2, round).await;
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
        read_ok(&mut client, round).await;
        // Read and write buffer back in the thread's pool before the driver waits again.
        // (The first request arrives with the bytes protocol detection read, in a buffer
        // of its own: the pool is full from the second one.)
        if round == 0 {
            continue;
        }
        assert_pool_settles(&kept, before + 2, round).await;
    }
}

#[tokio::test]
async fn connections_that_start_with_detected_bytes_keep_the_pool_level() {
    // Each connection's first request arrives in the bytes protocol detection read. Those
    // go into a pooled buffer: a fresh one per connection would be given to the pool at
    // its first wait, and the pool would grow by one per connection up to its budget.
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let kept = || buffers::kept(BufferClass::Heads);
    let mut level = None;
    let mut clients = Vec::new();
    for n in 0..4 {
        let mut client = TcpStream::connect(socket.local_addr().unwrap())
            .await
            .unwrap();
        let (server, peer) = socket.accept().await.unwrap();
        tokio::spawn(strait_stream::http::serve_connection(
            server,
            bytes::Bytes::from_static(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"),
            peer,
            Arc::new(Ok200),
            Arc::new(strait_stream::http::ServerOptions::default()),
            shutdown.clone(),
        ));
        read_ok(&mut client, n).await;
        clients.push(client); // open and idle
        // The level the first connection leaves (at least its write buffer) is the
        // level every later one leaves.
        match level {
            None => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                assert!(kept() >= 1, "the first connection gave nothing back");
                level = Some(kept());
            }
            Some(level) => assert_pool_settles(&kept, level, n).await,
        }
    }
}

/// Reads one `Ok200` answer off `client` (`round` names it in a failure).
async fn read_ok(client: &mut TcpStream, round: u32) {
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\nok") {
        let mut chunk = [0u8; 512];
        let n = client.read(&mut chunk).await.unwrap();
        assert!(n > 0, "round {round}: closed after {answer:?}");
        answer.extend_from_slice(&chunk[..n]);
    }
}

/// Counts a connection open until dropped (what the proxy's connection guard does).
struct Open(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn echo_call(client: &mut TcpStream, protocol: &Arc<dyn Protocol>, id: u32) {
    let mut out = BytesMut::new();
    LenFrame::request(id, "svc", b"hello")
        .encode(&mut out)
        .unwrap();
    client.write_all(&out).await.unwrap();
    let mut codec = protocol.new_codec(Limits::default());
    let mut buf = BytesMut::new();
    let answer = loop {
        if let Some(frame) = codec.decode(&mut buf).unwrap() {
            break frame;
        }
        assert!(client.read_buf(&mut buf).await.unwrap() > 0, "closed");
    };
    assert_eq!(answer.request_id(), u64::from(id));
    assert_eq!(&answer.body()[..], b"hello");
}

async fn eventually(f: impl Fn() -> bool) {
    while !f() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_idle_framed_connection_parks_and_is_served_again() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use strait_stream::downstream_idle::{IdleFramed, serve_parking};

    let protocol: Arc<dyn Protocol> = strait_example_lenproto::protocol();
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let idle = IdleFramed::<Echo>::new(shutdown.clone()).unwrap();
    let open = Arc::new(AtomicUsize::new(0));
    {
        let (idle, open, protocol) = (idle.clone(), open.clone(), protocol.clone());
        tokio::spawn(async move {
            while let Ok((server, _)) = socket.accept().await {
                open.fetch_add(1, Ordering::SeqCst);
                let parker = idle.parker(Box::new(Open(open.clone())));
                tokio::spawn(serve_parking(
                    server,
                    BytesMut::new(),
                    protocol.clone(),
                    Arc::new(Echo),
                    DownstreamOptions::default(),
                    shutdown.clone(),
                    parker,
                ));
            }
        });
    }
    let mut clients = Vec::new();
    for id in 0..3 {
        let mut client = TcpStream::connect(addr).await.unwrap();
        echo_call(&mut client, &protocol, id).await;
        clients.push(client);
    }
    // Idle: every connection leaves its task, and is still open.
    eventually(|| idle.parked() == 3).await;
    assert_eq!(open.load(Ordering::SeqCst), 3);
    // Its next request brings it back (twice, to park and resume again).
    for round in 0..2 {
        for (i, client) in clients.iter_mut().enumerate() {
            echo_call(client, &protocol, 10 * (round + 1) + i as u32).await;
        }
        eventually(|| idle.parked() == 3).await;
    }
    // A client leaving a parked connection releases it.
    drop(clients.pop());
    eventually(|| open.load(Ordering::SeqCst) == 2).await;
    assert_eq!(idle.parked(), 2);
    // Shutdown closes the parked ones.
    stop.send(true).unwrap();
    for client in &mut clients {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut rest));
        read.await.expect("closed by the server").ok();
    }
    eventually(|| open.load(Ordering::SeqCst) == 0).await;
}
