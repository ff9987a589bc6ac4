//! HTTP/2 with prior knowledge through `serve_connection`, peer: the `h2` crate.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request};
use tokio::net::TcpStream;

use crate::h2c::{FrameReader, client_preface, encode_literal_headers, frame};
use crate::support::*;

async fn h2_client(addr: std::net::SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
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
async fn concurrent_streams_echo_bodies_and_trailers() {
    let server = server().await;
    let client = h2_client(server.addr).await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            client = client.ready().await.unwrap();
            let request = Request::post("http://example.com/echo").body(()).unwrap();
            let (response, mut send) = client.send_request(request, false).unwrap();
            send.send_data(Bytes::from(format!("stream {i} part 1;")), false)
                .unwrap();
            send.send_data(Bytes::from(format!("part 2 of {i}")), false)
                .unwrap();
            let mut trailers = HeaderMap::new();
            trailers.insert("x-n", HeaderValue::from(i));
            send.send_trailers(trailers).unwrap();
            let response = response.await.unwrap();
            assert_eq!(response.status(), 200);
            let mut body = response.into_body();
            let data = read_all(&mut body).await;
            assert_eq!(data, format!("stream {i} part 1;part 2 of {i}").as_bytes());
            let trailers = body.trailers().await.unwrap().unwrap();
            assert_eq!(trailers["x-n"], i.to_string().as_str());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(server.observed.requests.load(Ordering::SeqCst), 32);
}

#[tokio::test]
async fn handler_trailers_and_context_version() {
    let server = server().await;
    let client = h2_client(server.addr).await;
    let mut c = client.clone().ready().await.unwrap();
    let (response, _) = c
        .send_request(
            Request::get("http://a.example/info").body(()).unwrap(),
            true,
        )
        .unwrap();
    let mut body = response.await.unwrap().into_body();
    assert_eq!(
        read_all(&mut body).await,
        b"GET http://a.example/info HTTP/2.0 HTTP/2.0"
    );

    let mut c = client.clone().ready().await.unwrap();
    let (response, _) = c
        .send_request(
            Request::get("http://a.example/trailers").body(()).unwrap(),
            true,
        )
        .unwrap();
    let mut body = response.await.unwrap().into_body();
    assert_eq!(read_all(&mut body).await, b"data");
    let trailers = body.trailers().await.unwrap().unwrap();
    assert_eq!(trailers["x-trailer"], "yes");
    assert_eq!(trailers["grpc-status"], "0");
}

#[tokio::test]
async fn reset_stream_leaves_the_connection_usable() {
    let server = server().await;
    let client = h2_client(server.addr).await;
    let mut c = client.clone().ready().await.unwrap();
    let (response, mut send) = c
        .send_request(Request::post("http://a/echo").body(()).unwrap(), false)
        .unwrap();
    send.send_data(Bytes::from_static(b"partial"), false)
        .unwrap();
    let response = response.await.unwrap();
    let mut body = response.into_body();
    assert_eq!(&body.data().await.unwrap().unwrap()[..], b"partial");
    send.send_reset(h2::Reason::CANCEL);
    // The echoed body ends in an error (the server's side of the stream is reset)...
    while let Some(Ok(_)) = body.data().await {}
    // ...and another stream on the same connection still works.
    let mut c = client.clone().ready().await.unwrap();
    let (response, _) = c
        .send_request(Request::get("http://a/info").body(()).unwrap(), true)
        .unwrap();
    let mut body = response.await.unwrap().into_body();
    assert_eq!(
        read_all(&mut body).await,
        b"GET http://a/info HTTP/2.0 HTTP/2.0"
    );
}

#[tokio::test]
async fn shutdown_sends_goaway_and_finishes_open_streams() {
    let mut server = server().await;
    let client = h2_client(server.addr).await;
    let mut c = client.clone().ready().await.unwrap();
    let (slow, _) = c
        .send_request(Request::get("http://a/slow").body(()).unwrap(), true)
        .unwrap();
    let observed = server.observed.clone();
    eventually(|| observed.waiting.load(Ordering::SeqCst) == 1).await;
    server.shutdown.send(true).unwrap();
    // After the GOAWAY, new streams are refused.
    let refused = async {
        loop {
            let Ok(mut c) = client.clone().ready().await else {
                return;
            };
            let Ok((response, _)) =
                c.send_request(Request::get("http://a/info").body(()).unwrap(), true)
            else {
                return;
            };
            if response.await.is_err() {
                return;
            }
            tokio::task::yield_now().await;
        }
    };
    refused.await;
    // The open stream still gets its answer.
    server.observed.gate.notify_one();
    let mut body = slow.await.unwrap().into_body();
    assert_eq!(read_all(&mut body).await, b"slow");
    assert!(server.results.recv().await.unwrap().is_ok());
}

#[tokio::test]
async fn slow_reader_bounds_what_the_producer_pushes() {
    let server = server().await;
    let client = h2_client(server.addr).await;
    let mut c = client.clone().ready().await.unwrap();
    let (response, _) = c
        .send_request(Request::get("http://a/big").body(()).unwrap(), true)
        .unwrap();
    let mut body = response.await.unwrap().into_body();
    // Read what the initial 64 KiB window allows, releasing no capacity.
    let mut unreleased = 0;
    while unreleased < 60 * 1024 {
        unreleased += body.data().await.unwrap().unwrap().len();
    }
    let observed = server.observed.clone();
    let stalled = settled(|| observed.produced.load(Ordering::SeqCst)).await;
    // The window (64 KiB) plus hyper's one-chunk look-ahead and h2's send buffer.
    assert!(stalled <= 1024 * 1024, "produced {stalled} bytes");
    // Granting credit lets it go on.
    body.flow_control().release_capacity(unreleased).unwrap();
    let observed = server.observed.clone();
    eventually(|| observed.produced.load(Ordering::SeqCst) > stalled).await;
}

/// A gRPC failure is one HEADERS frame with END_STREAM: no DATA, no trailers frame.
#[tokio::test]
async fn grpc_failure_is_a_single_headers_frame_with_end_stream() {
    let server = server().await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut frames = FrameReader::new(read);
    let block = encode_literal_headers(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", "g.local"),
        (":path", "/grpc-fail"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]);
    let mut out = client_preface();
    out.extend_from_slice(&frame(0x1, 0x1 | 0x4, 1, &block));
    tokio::io::AsyncWriteExt::write_all(&mut write, &out)
        .await
        .unwrap();
    let mut stream1 = Vec::new();
    loop {
        let f = frames.next().await.expect("connection closed early");
        if f.stream_id == 1 {
            let end = f.flags & 0x1 != 0;
            stream1.push((f.kind, f.flags));
            if end {
                break;
            }
        }
    }
    assert_eq!(stream1.len(), 1, "frames on stream 1: {stream1:?}");
    assert_eq!(stream1[0].0, 0x1, "a HEADERS frame");
    assert_eq!(stream1[0].1 & 0x5, 0x5, "END_STREAM and END_HEADERS");
}

fn with_keepalive() -> strait_stream::http::ServerOptions {
    strait_stream::http::ServerOptions {
        h2_keepalive_interval: Some(std::time::Duration::from_millis(100)),
        h2_keepalive_timeout: std::time::Duration::from_millis(200),
        ..Default::default()
    }
}

#[tokio::test]
async fn keepalive_ping_unanswered_closes_the_connection() {
    use tokio::io::AsyncWriteExt;
    let server = server_with(with_keepalive()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&client_preface()).await.unwrap();
    // This client reads but never answers: the server pings, then gives up.
    let mut frames = FrameReader::new(tcp);
    let mut pings = 0;
    let read_all_frames = async {
        while let Some(f) = frames.next().await {
            if f.kind == 0x6 && f.flags & 0x1 == 0 {
                pings += 1;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read_all_frames)
        .await
        .expect("the server closes a connection whose pings go unanswered");
    assert!(pings >= 1, "a PING was sent before closing");
}

#[tokio::test]
async fn keepalive_ping_answered_keeps_the_connection() {
    let server = server_with(with_keepalive()).await;
    // The h2 client answers PINGs while its connection is polled.
    let client = h2_client(server.addr).await;
    // Several intervals and timeouts pass.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    let mut client = client.ready().await.expect("the connection is still open");
    let request = Request::get("http://example.com/info").body(()).unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = response.await.expect("answered on the same connection");
    assert_eq!(response.status(), 200);
}

/// Some clients (Python's `h2`, so httpx) send END_STREAM in a frame of its own after
/// the body's last bytes, and report a stream reset under them as a failed request even
/// when the answer was complete. An answer that comes once every announced byte is in,
/// but before that frame, must not reset the stream.
#[tokio::test]
async fn an_answer_before_the_clients_end_stream_frame_does_not_reset_the_stream() {
    let server = server().await;
    let mut client = h2_client(server.addr).await;
    let request = Request::post("http://example.com/until-length")
        .header("content-length", "5")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(Bytes::from_static(b"hello"), false).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    assert_eq!(read_all(&mut body).await, b"got 5");
    // Time for a reset to arrive, if one was sent.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    send.send_data(Bytes::new(), true)
        .expect("the stream was reset under the client");
}
