//! Draining an upstream connection (a host that left its cluster): requests in flight
//! are answered, nothing new is taken, and the connection closes once they are done.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use strait_codec_framework::{Frame, FrameKind, Limits};
use strait_example_lenproto::{LenFrame, protocol};
use strait_stream::{Completion, Inbox, UpstreamConnection, UpstreamOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

#[tokio::test]
async fn drain_answers_what_is_in_flight_refuses_new_requests_then_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut codec = protocol().new_codec(Limits::default());
        let mut buf = BytesMut::new();
        let request = loop {
            if let Some(frame) = codec.decode(&mut buf).unwrap() {
                break frame;
            }
            assert!(stream.read_buf(&mut buf).await.unwrap() > 0);
        };
        // Slow enough that the drain starts while the request is in flight.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut answer = LenFrame::new(FrameKind::Response, request.request_id() as u32, 0);
        answer.body = bytes::Bytes::from_static(b"done");
        let mut out = BytesMut::new();
        answer.encode(&mut out).unwrap();
        stream.write_all(&out).await.unwrap();
        // The proxy closes the connection once nothing is in flight.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        let _ = closed_tx.send(());
    });

    let stream = TcpStream::connect(addr).await.unwrap();
    let conn = UpstreamConnection::start(stream, addr, protocol(), UpstreamOptions::default());
    let inbox = Arc::new(Inbox::default());
    let deadline = Instant::now() + Duration::from_secs(5);
    let request: Box<dyn Frame> = Box::new(LenFrame::request(7, "svc", b"hi"));
    assert!(conn.send(request, &inbox, deadline, 1).is_ok());

    conn.drain(Duration::from_secs(5));
    assert!(!conn.is_open(), "a draining connection takes nothing new");
    let late: Box<dyn Frame> = Box::new(LenFrame::request(8, "svc", b"late"));
    assert!(
        conn.send(late, &inbox, deadline, 2).is_err(),
        "refused, unsent"
    );

    let mut done = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while done.is_empty() {
            inbox.ready().await;
            inbox.drain_into(&mut done);
        }
    })
    .await
    .expect("the request in flight is answered");
    match &done[0] {
        Completion::Response {
            response, token, ..
        } => {
            assert_eq!(*token, 1);
            assert_eq!(&response.body()[..], b"done");
        }
        Completion::Failed { failure, .. } => panic!("failed instead of answered: {failure:?}"),
    }
    tokio::time::timeout(Duration::from_secs(5), closed_rx)
        .await
        .expect("closed once nothing was in flight")
        .unwrap();
}
