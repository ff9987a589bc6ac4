//! A downstream connection's batch goes to its upstream connection in one call: every
//! request gets a fresh upstream id, each caller's completions come back to its own
//! inbox with its own ids and tokens, the in-flight gauges return to zero, and a batch
//! the connection cannot take comes back whole, in order, uncounted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use strait_codec_framework::{Frame, FrameKind, Limits, ProxyFailure};
use strait_example_lenproto::{LenFrame, protocol};
use strait_stream::upstream::{Outgoing, Refused};
use strait_stream::{Completion, Inbox, UpstreamConnection, UpstreamError, UpstreamOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Answers each request with its own id and body; reports the ids it saw.
async fn echo(listener: TcpListener, seen: tokio::sync::mpsc::UnboundedSender<u64>) {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut codec = protocol().new_codec(Limits::default());
    let mut buf = BytesMut::new();
    loop {
        while let Some(request) = codec.decode(&mut buf).unwrap() {
            let _ = seen.send(request.request_id());
            let mut answer = LenFrame::new(FrameKind::Response, request.request_id() as u32, 0);
            answer.body = request.body();
            let mut out = BytesMut::new();
            answer.encode(&mut out).unwrap();
            stream.write_all(&out).await.unwrap();
        }
        if stream.read_buf(&mut buf).await.unwrap() == 0 {
            return;
        }
    }
}

/// An upstream connection to `addr` whose requests count on the returned gauge.
async fn connect(addr: std::net::SocketAddr) -> (UpstreamConnection, Arc<AtomicUsize>) {
    let gauge = Arc::new(AtomicUsize::new(0));
    let options = UpstreamOptions {
        in_flight_gauges: vec![gauge.clone()],
        ..UpstreamOptions::default()
    };
    let stream = TcpStream::connect(addr).await.unwrap();
    let conn = UpstreamConnection::start(stream, addr, protocol(), options);
    (conn, gauge)
}

fn batch(ids: &[u32], deadline: Instant) -> Vec<Outgoing> {
    ids.iter()
        .map(|&id| Outgoing {
            request: Box::new(LenFrame::request(
                id,
                "svc",
                format!("body {id}").as_bytes(),
            )),
            deadline,
            token: id * 10,
        })
        .collect()
}

/// Waits (up to 5 s) for `n` completions in `inbox`.
async fn drain(inbox: &Inbox, n: usize) -> Vec<Completion> {
    let mut done = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while done.len() < n {
            inbox.ready().await;
            let mut more = Vec::new();
            inbox.drain_into(&mut more);
            done.extend(more);
        }
    })
    .await
    .expect("every request of the batch ends");
    done
}

/// Waits for `n` completions in `inbox`: (token, caller's id, body).
async fn completions(inbox: &Inbox, n: usize) -> Vec<(u32, u64, String)> {
    drain(inbox, n)
        .await
        .into_iter()
        .map(|completion| match completion {
            Completion::Response {
                response,
                token,
                down_id,
                ..
            } => {
                assert_eq!(response.request_id(), down_id, "the caller's id restored");
                let body = String::from_utf8(response.body().to_vec()).unwrap();
                (token, down_id, body)
            }
            Completion::Failed { failure, .. } => panic!("failed: {failure:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_batch_is_sent_in_one_call_and_each_caller_hears_its_own_answers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(echo(listener, seen_tx));
    let (conn, gauge) = connect(addr).await;
    let deadline = Instant::now() + Duration::from_secs(5);

    // Two callers use the same ids: the upstream must see six distinct ones.
    let (a, b) = (Arc::new(Inbox::default()), Arc::new(Inbox::default()));
    let mut refused: Vec<Refused> = Vec::new();
    for inbox in [&a, &b] {
        let mut requests = batch(&[1, 2, 3], deadline);
        conn.admit(requests.len());
        conn.send_all(&mut requests, inbox, &mut refused);
        assert!(requests.is_empty(), "the batch is taken whole");
    }
    assert!(refused.is_empty());
    assert_eq!(gauge.load(Ordering::Relaxed), 6, "admitted and in flight");
    for inbox in [&a, &b] {
        let mut got = completions(inbox, 3).await;
        got.sort();
        let want: Vec<(u32, u64, String)> = [1u32, 2, 3]
            .iter()
            .map(|&id| (id * 10, u64::from(id), format!("body {id}")))
            .collect();
        assert_eq!(got, want);
    }
    let mut upstream_ids = BTreeSet::new();
    for _ in 0..6 {
        upstream_ids.insert(seen.recv().await.unwrap());
    }
    assert_eq!(
        upstream_ids.len(),
        6,
        "fresh upstream ids: {upstream_ids:?}"
    );
    assert_eq!(gauge.load(Ordering::Relaxed), 0, "every answer settled");

    // The same caller again: its entry went with its last answer and is made anew.
    let mut again = batch(&[4], deadline);
    conn.admit(1);
    conn.send_all(&mut again, &a, &mut refused);
    assert_eq!(completions(&a, 1).await[0].0, 40);
    assert_eq!(gauge.load(Ordering::Relaxed), 0);

    conn.close();
    let mut late = batch(&[5, 6], deadline);
    conn.admit(late.len());
    conn.send_all(&mut late, &a, &mut refused);
    let back: Vec<(u32, u64, UpstreamError)> = refused
        .drain(..)
        .map(|r| (r.token, r.request.request_id(), r.error))
        .collect();
    assert_eq!(
        back,
        [
            (50, 5, UpstreamError::Closed),
            (60, 6, UpstreamError::Closed)
        ],
        "refused in order, unsent, with their own ids"
    );
    assert_eq!(
        gauge.load(Ordering::Relaxed),
        0,
        "a refused request is not in flight"
    );
}

/// Waits for `n` failures in `inbox`: (token, failure).
async fn failures(inbox: &Inbox, n: usize) -> Vec<(u32, ProxyFailure)> {
    let mut failed: Vec<(u32, ProxyFailure)> = drain(inbox, n)
        .await
        .into_iter()
        .map(|completion| match completion {
            Completion::Failed { token, failure, .. } => (token, failure),
            Completion::Response { token, .. } => panic!("request {token} answered"),
        })
        .collect();
    failed.sort_by_key(|(token, _)| *token);
    failed
}

/// Requests of a batch that time out, and those failed when the connection ends, reach
/// their own caller's inbox through the caller table, and their counts come down.
#[tokio::test]
async fn timeouts_and_a_lost_connection_reach_each_caller() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (close_tx, close_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        // Reads everything, answers nothing, closes when told.
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut sink = vec![0; 4096];
        tokio::select! {
            _ = async { while stream.read(&mut sink).await.is_ok_and(|n| n > 0) {} } => {}
            _ = close_rx => {}
        }
    });
    let (conn, gauge) = connect(addr).await;
    let (a, b) = (Arc::new(Inbox::default()), Arc::new(Inbox::default()));
    let mut refused = Vec::new();
    let soon = Instant::now() + Duration::from_millis(100);
    let late = Instant::now() + Duration::from_secs(30);
    conn.admit(3);
    conn.send_all(&mut batch(&[1, 2], soon), &a, &mut refused);
    conn.send_all(&mut batch(&[3], late), &b, &mut refused);
    assert!(refused.is_empty());
    assert_eq!(gauge.load(Ordering::Relaxed), 3);

    assert_eq!(
        failures(&a, 2).await,
        [(10, ProxyFailure::Timeout), (20, ProxyFailure::Timeout)]
    );
    assert_eq!(
        gauge.load(Ordering::Relaxed),
        1,
        "the timed-out two settled"
    );

    close_tx.send(()).unwrap();
    assert_eq!(failures(&b, 1).await, [(30, ProxyFailure::UpstreamReset)]);
    assert_eq!(gauge.load(Ordering::Relaxed), 0);
    let mut nothing = Vec::new();
    a.drain_into(&mut nothing);
    assert!(nothing.is_empty(), "the first caller hears nothing more");
}
