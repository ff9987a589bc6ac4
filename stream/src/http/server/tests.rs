//! The request-smuggling table of the codec (`h1::tests::smuggling`) replayed against the
//! server driver: every reject case is answered with its status and the connection
//! closes, the handler never sees a malformed head, and a malformed body never reaches
//! the handler as a complete one; every accept case reaches the handler whole.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Handler, HandlerFuture, ServerOptions, serve_connection};
use crate::http::{Body, ConnectionInfo};
use strait_codec_http::h1::smuggling::{Outcome, cases};

/// Reads each request's whole body before answering; records what it saw.
#[derive(Default)]
struct Recorder {
    calls: AtomicUsize,
    /// Per call: the body bytes, or `None` if the body failed.
    bodies: Mutex<Vec<Option<Vec<u8>>>>,
    rejected: Mutex<Vec<StatusCode>>,
}

struct RecordingHandler(Arc<Recorder>);

impl Handler for RecordingHandler {
    fn call(&self, request: Request<Body>, _ctx: ConnectionInfo) -> HandlerFuture {
        let recorder = self.0.clone();
        recorder.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let body = request.into_body().collect().await;
            let body = body.ok().map(|b| b.to_bytes().to_vec());
            recorder.bodies.lock().push(body);
            Response::new(Body::from("ok"))
        })
    }

    fn rejected(&self, status: StatusCode, _ctx: &ConnectionInfo) {
        self.0.rejected.lock().push(status);
    }
}

/// One connection: `raw`, then the client's write side closes; returns what came back.
async fn exchange(raw: &[u8], options: ServerOptions, recorder: Arc<Recorder>) -> Vec<u8> {
    let (mut client, server) = tokio::io::duplex(256 * 1024);
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let peer = "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!());
    let handler = Arc::new(RecordingHandler(recorder));
    let serving = tokio::spawn(serve_connection(
        server,
        Bytes::new(),
        peer,
        handler,
        Arc::new(options),
        shutdown,
    ));
    client.write_all(raw).await.expect("write");
    client.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    let read = client.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the driver closes the connection")
        .expect("read");
    let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
    answer
}

#[tokio::test]
async fn smuggling_table_against_the_driver() {
    let (mut rejects, mut accepts) = (0, 0);
    for case in cases() {
        let recorder = Arc::new(Recorder::default());
        let options = ServerOptions {
            max_header_bytes: case.limits.max_head_bytes,
            max_headers: case.limits.max_headers,
            // The client's write side is closed after its bytes: answer it anyway.
            h1_half_close: true,
            ..ServerOptions::default()
        };
        let answer = exchange(&case.raw, options, recorder.clone()).await;
        let text = String::from_utf8_lossy(&answer);
        let name = case.name;
        match (&case.want, case.status) {
            (Outcome::HeadErr(_), Some(status)) => {
                rejects += 1;
                let line = format!("HTTP/1.1 {} ", status.as_u16());
                assert!(text.starts_with(&line), "{name}: {text:?}");
                assert!(text.contains("connection: close\r\n"), "{name}: {text:?}");
                assert_eq!(recorder.calls.load(Ordering::SeqCst), 0, "{name}");
                assert_eq!(*recorder.rejected.lock(), vec![status], "{name}");
            }
            (Outcome::BodyErr(..), Some(status)) => {
                rejects += 1;
                let line = format!("HTTP/1.1 {} ", status.as_u16());
                assert!(text.starts_with(&line), "{name}: {text:?}");
                // One request reached the handler, and its body never completed (the
                // handler was dropped, or its read failed): a streaming proxy has sent a
                // cut body upstream, never a whole one.
                assert_eq!(recorder.calls.load(Ordering::SeqCst), 1, "{name}");
                let bodies = recorder.bodies.lock();
                assert!(bodies.iter().all(Option::is_none), "{name}: {bodies:?}");
                // Nothing after the broken body was taken as a request.
                assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{name}: {text:?}");
            }
            (Outcome::Request { data, .. }, None) => {
                accepts += 1;
                assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{name}: {text:?}");
                let bodies = recorder.bodies.lock();
                assert_eq!(bodies.first(), Some(&Some(data.clone())), "{name}");
            }
            (want, status) => panic!("{name}: unexpected table entry {want:?} / {status:?}"),
        }
    }
    assert!(
        rejects >= 60 && accepts >= 10,
        "{rejects} rejects, {accepts} accepts"
    );
}

#[tokio::test]
async fn request_body_bytes_are_counted_after_the_body_is_handed_on() {
    struct Counting(Arc<Mutex<Option<crate::http::ReceivedBytes>>>);
    impl Handler for Counting {
        fn call(&self, request: Request<Body>, ctx: ConnectionInfo) -> HandlerFuture {
            let slot = self.0.clone();
            Box::pin(async move {
                let body = request.into_body();
                if let Body::H1(body) = &body {
                    *slot.lock() = Some(body.received_bytes());
                }
                let read = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes().len())
                    .unwrap_or(0);
                Response::new(Body::from(format!("{read} {}", ctx.request_head_bytes())))
            })
        }
    }
    let counter = Arc::new(Mutex::new(None));
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let (_tx, shutdown) = tokio::sync::watch::channel(false);
    let peer = "127.0.0.1:1".parse().unwrap_or_else(|_| unreachable!());
    let serving = tokio::spawn(serve_connection(
        server,
        Bytes::new(),
        peer,
        Arc::new(Counting(counter.clone())),
        // The client closes its write side after the request: answer it anyway.
        Arc::new(ServerOptions {
            h1_half_close: true,
            ..ServerOptions::default()
        }),
        shutdown,
    ));
    let head = "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n";
    let raw = format!("{head}5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    client.write_all(raw.as_bytes()).await.expect("write");
    client.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.ends_with(&format!("11 {}", head.len())), "{text}");
    let counted = counter.lock().take().expect("an HTTP/1.1 body");
    // The decoded body, not the chunk framing.
    assert_eq!(counted.get(), 11);
    let _ = serving.await;
}
