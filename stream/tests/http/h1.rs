//! HTTP/1.1 through `serve_connection`.

use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test]
async fn keep_alive_serves_two_requests_on_one_connection() {
    let server = server().await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(b"GET /info?n=1 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let first = read_response(&mut conn, false).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "GET /info?n=1 HTTP/1.1 HTTP/1.1");
    conn.get_mut()
        .write_all(b"GET /info?n=2 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let second = read_response(&mut conn, false).await;
    assert_eq!(second.text(), "GET /info?n=2 HTTP/1.1 HTTP/1.1");
    // Same connection: the handler saw the same peer port both times.
    assert_eq!(first.header("x-peer"), second.header("x-peer"));
    assert_eq!(server.observed.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn http10_request_is_answered_and_context_says_1_0() {
    let server = server().await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(b"GET /info HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).await.unwrap();
    assert!(raw.ends_with("GET /info HTTP/1.0 HTTP/1.0"), "{raw}");
}

#[tokio::test]
async fn chunked_request_body_is_streamed_to_the_handler() {
    let mut server = server().await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(
            b"POST /stream HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        )
        .await
        .unwrap();
    // The handler has the first chunk while the client has not finished sending.
    let first = server.chunks.recv().await.unwrap();
    assert_eq!(&first[..], b"hello");
    conn.get_mut()
        .write_all(b"6\r\n world\r\n0\r\n\r\n")
        .await
        .unwrap();
    let second = server.chunks.recv().await.unwrap();
    assert_eq!(&second[..], b" world");
    let response = read_response(&mut conn, false).await;
    assert_eq!(response.status, 200);
    // No length known in advance: the answer is chunked too.
    assert!(response.chunked);
    assert_eq!(response.text(), "got 11 bytes");
}

#[tokio::test]
async fn expect_100_continue() {
    let mut server = server().await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(
            b"POST /stream HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        )
        .await
        .unwrap();
    // The handler starts reading the body: the client is told to continue.
    let interim = read_response(&mut conn, false).await;
    assert_eq!(interim.status, 100);
    conn.get_mut().write_all(b"hello").await.unwrap();
    assert_eq!(&server.chunks.recv().await.unwrap()[..], b"hello");
    let response = read_response(&mut conn, false).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "got 5 bytes");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = server().await;
    let mut conn = connect(server.addr).await;
    // Both in one write; the first is slow to answer.
    conn.get_mut()
        .write_all(
            b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /info?n=2 HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .await
        .unwrap();
    let observed = server.observed.clone();
    eventually(|| observed.waiting.load(Ordering::SeqCst) == 1).await;
    server.observed.gate.notify_one();
    let first = read_response(&mut conn, false).await;
    assert_eq!(first.text(), "slow");
    let second = read_response(&mut conn, false).await;
    assert_eq!(second.text(), "GET /info?n=2 HTTP/1.1 HTTP/1.1");
}

#[tokio::test]
async fn head_gets_headers_without_body() {
    let server = server().await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(b"HEAD /info HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let head = read_response(&mut conn, true).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("28"));
    // Had a body been sent, it would be read here as the next status line.
    conn.get_mut()
        .write_all(b"GET /info HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let get = read_response(&mut conn, false).await;
    assert_eq!(get.status, 200);
    assert_eq!(get.text(), "GET /info HTTP/1.1 HTTP/1.1");
}

#[tokio::test]
async fn upgrade_hands_over_the_connection() {
    let server = server().await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(
            b"GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
        )
        .await
        .unwrap();
    let response = read_response(&mut conn, false).await;
    assert_eq!(response.status, 101);
    assert_eq!(response.header("upgrade"), Some("echo"));
    conn.get_mut().write_all(b"raw bytes").await.unwrap();
    let mut echoed = [0u8; 9];
    conn.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"raw bytes");
}

#[tokio::test]
async fn garbage_gets_400_and_close() {
    for garbage in [
        &b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    ] {
        let mut server = server().await;
        let mut conn = connect(server.addr).await;
        conn.get_mut().write_all(garbage).await.unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8_lossy(&raw);
        assert!(raw.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{raw}");
        // The connection ended with an error, not a panic.
        assert!(server.results.recv().await.unwrap().is_err());
        assert_eq!(server.observed.requests.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn too_many_headers_get_431() {
    let server = server_with(strait_stream::http::ServerOptions {
        max_headers: 4,
        ..Default::default()
    })
    .await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(b"GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[tokio::test]
async fn oversized_head_gets_431() {
    let server = server_with(strait_stream::http::ServerOptions {
        max_header_bytes: 1024,
        ..Default::default()
    })
    .await;
    let mut conn = connect(server.addr).await;
    let big = "v".repeat(2000);
    conn.get_mut()
        .write_all(format!("GET / HTTP/1.1\r\nx-big: {big}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw).await;
    assert!(
        raw.starts_with(b"HTTP/1.1 431 "),
        "{}",
        String::from_utf8_lossy(&raw)
    );
}

#[tokio::test]
async fn half_closed_client_gets_its_answer() {
    let server = server_with(strait_stream::http::ServerOptions {
        h1_half_close: true,
        ..Default::default()
    })
    .await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(b"GET /info HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    conn.get_mut().shutdown().await.unwrap();
    let response = read_response(&mut conn, false).await;
    assert_eq!(response.text(), "GET /info HTTP/1.1 HTTP/1.1");
}

#[tokio::test]
async fn shutdown_drains_in_flight_and_closes_idle() {
    let mut server = server().await;
    let mut busy = connect(server.addr).await;
    let mut idle = connect(server.addr).await;
    idle.get_mut()
        .write_all(b"GET /info HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    read_response(&mut idle, false).await;
    busy.get_mut()
        .write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let observed = server.observed.clone();
    eventually(|| observed.waiting.load(Ordering::SeqCst) == 1).await;

    server.shutdown.send(true).unwrap();
    // The idle connection is closed at once.
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    assert!(server.results.recv().await.unwrap().is_ok());
    // The busy one gets its answer, then the connection closes.
    server.observed.gate.notify_one();
    let response = read_response(&mut busy, false).await;
    assert_eq!(response.text(), "slow");
    assert_eq!(response.header("connection"), Some("close"));
    let mut rest = Vec::new();
    busy.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    assert!(server.results.recv().await.unwrap().is_ok());
}

#[tokio::test]
async fn slow_reader_bounds_what_the_producer_pushes() {
    let server = server().await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    // Read a little, then stop reading.
    let mut some = [0u8; 64 * 1024];
    conn.read_exact(&mut some).await.unwrap();
    let observed = server.observed.clone();
    let stalled = settled(|| observed.produced.load(Ordering::SeqCst)).await;
    // Socket buffers (both kernels' sides) plus hyper's write buffer, not the endless
    // body: a few MiB at most.
    assert!(stalled < 32 * 1024 * 1024, "produced {stalled} bytes");
    // Reading more lets the producer go on.
    let mut more = vec![0u8; 8 * 1024 * 1024];
    conn.read_exact(&mut more).await.unwrap();
    let observed = server.observed.clone();
    eventually(|| observed.produced.load(Ordering::SeqCst) > stalled).await;
}

#[tokio::test(start_paused = true)]
async fn idle_connection_is_closed_after_the_idle_timeout() {
    let server = server_with(strait_stream::http::ServerOptions {
        idle_timeout: Some(std::time::Duration::from_secs(10)),
        header_read_timeout: None,
        ..Default::default()
    })
    .await;
    let mut conn = connect(server.addr).await;
    conn.get_mut()
        .write_all(b"GET /info HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(&mut conn, false).await;
    assert_eq!(response.status, 200);
    // Nothing more is sent: the (paused, auto-advancing) clock runs to the idle
    // timeout and the server closes the connection.
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}
