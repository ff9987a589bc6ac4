//! Dubbo through the real proxy (wire-formats.md §6.4 P3, P6–P14 for Dubbo, plus
//! attachment edits, bad requests and read-only events), with scripted Dubbo upstreams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strait_codec_dubbo::{DubboCodec, DubboFrame};
use strait_codec_framework::{Frame, FrameKind, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::support::{LONG, NoFrame, SHORT, proxy, read_more};

const SERVICE: &str = "org.apache.dubbo.demo.DemoService";

fn config(endpoints: &[SocketAddr], cluster_extra: &str, route_extra: &str) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|a| format!("{{ address: \"{a}\" }}"))
        .collect();
    format!(
        r#"
listeners:
  - {{ name: rpc, address: "127.0.0.1:0", protocol: dubbo, route_config: rpc }}
route_configs:
  - name: rpc
    virtual_hosts:
      - name: default
        routes:
          - match: {{ variables: [{{ name: service, exact: "{SERVICE}" }}] }}
            route: {{ cluster: up{route_extra} }}
clusters:
  - name: up
    protocol: dubbo
    connect_timeout: 500ms
    endpoints: [{}]
{cluster_extra}
"#,
        eps.join(", ")
    )
}

fn wire(frame: &DubboFrame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf).unwrap();
    buf.to_vec()
}

fn request(id: u64, service: &str, arg: &str) -> DubboFrame {
    DubboFrame::request(service, "sayHello")
        .id(id)
        .version(Some("1.0.0"))
        .string_argument(arg)
        .attachment("group", "g1")
        .build()
        .unwrap()
}

/// A frame one upstream connection received, and a way to answer on that connection.
struct Received {
    frame: DubboFrame,
    conn: mpsc::UnboundedSender<Option<Bytes>>,
}

impl Received {
    fn reply(&self, frame: &DubboFrame) {
        let _ = self.conn.send(Some(Bytes::from(wire(frame))));
    }

    fn close(&self) {
        let _ = self.conn.send(None);
    }
}

/// A scripted Dubbo upstream: it records every frame; with `echo` it answers requests
/// (value = the request's argument bytes' length, attachment `served-by`) and
/// heartbeats by itself.
struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    rx: mpsc::UnboundedReceiver<Received>,
}

impl Upstream {
    async fn start(echo: Option<&'static str>) -> Upstream {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = socket.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, echo, tx.clone()));
            }
        });
        Upstream { addr, accepted, rx }
    }

    async fn next(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next request (heartbeats skipped).
    async fn next_request(&mut self, wait: Duration) -> Option<Received> {
        loop {
            let r = self.next(wait).await?;
            if r.frame.kind() != FrameKind::Heartbeat {
                return Some(r);
            }
        }
    }

    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn serve(stream: TcpStream, echo: Option<&'static str>, tx: mpsc::UnboundedSender<Received>) {
    let (mut rd, mut wr) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Option<Bytes>>();
    tokio::spawn(async move {
        while let Some(Some(bytes)) = out_rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut codec = DubboCodec::new(Limits::default());
    let mut buf = BytesMut::new();
    loop {
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while let Ok(Some(frame)) = codec.decode_dubbo(&mut buf) {
            let received = Received {
                frame,
                conn: out_tx.clone(),
            };
            if let Some(name) = echo {
                match received.frame.kind() {
                    FrameKind::Request => received.reply(&answer(&received.frame, name)),
                    FrameKind::Heartbeat => {
                        received.reply(&DubboFrame::heartbeat_ack(received.frame.request_id()))
                    }
                    _ => {}
                }
            }
            if tx.send(received).is_err() {
                return;
            }
        }
        if out_tx.is_closed() {
            return;
        }
    }
}

/// The echo answer: the request's method and the backend's name as the value.
fn answer(request: &DubboFrame, name: &str) -> DubboFrame {
    let value = format!("{name}:{}", request.method().unwrap_or("?"));
    DubboFrame::response(request.request_id())
        .value(&value)
        .attachment("served-by", name)
        .build()
        .unwrap()
}

/// A raw Dubbo client connection.
struct Client {
    stream: TcpStream,
    codec: DubboCodec,
    buf: BytesMut,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            codec: DubboCodec::new(Limits::default()),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, frame: &DubboFrame) {
        self.stream.write_all(&wire(frame)).await.unwrap();
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next frame within `wait`, or why none came (see [`NoFrame`]).
    async fn recv(&mut self, wait: Duration) -> Result<DubboFrame, NoFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self
                .codec
                .decode_dubbo(&mut self.buf)
                .expect("proxy sent a valid frame")
            {
                return Ok(frame);
            }
            read_more(&mut self.stream, &mut self.buf, deadline).await?;
        }
    }
}

/// P3: the upstream frame differs from the downstream one only in the 8 id bytes at
/// offset 4, and the response carries the downstream id back.
#[tokio::test]
async fn p3_only_the_id_bytes_change() {
    let mut up = Upstream::start(None).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut a = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let mut b = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let req = request(u64::MAX - 1, SERVICE, "hello");
    a.send(&req).await;
    b.send(&req).await;
    let first = up.next_request(LONG).await.unwrap();
    let second = up.next_request(LONG).await.unwrap();
    let sent = wire(&req);
    for got in [&first, &second] {
        let bytes = got.frame.raw_bytes();
        assert_eq!(bytes.len(), sent.len());
        assert_eq!(&bytes[..4], &sent[..4]);
        assert_eq!(&bytes[12..], &sent[12..], "header tail and body untouched");
    }
    assert_ne!(
        first.frame.request_id(),
        second.frame.request_id(),
        "upstream ids are unique"
    );
    second.reply(&answer(&second.frame, "up"));
    first.reply(&answer(&first.frame, "up"));
    for c in [&mut a, &mut b] {
        let resp = c.recv(LONG).await.unwrap();
        assert_eq!(resp.request_id(), u64::MAX - 1);
        assert_eq!(resp.status(), Some(20));
        assert_eq!(resp.response_value(), Some("up:sayHello"));
    }
    server.shutdown().await;
}

/// P6: a two-way heartbeat is answered by the proxy with the exact Java reply; a oneway
/// one gets nothing; neither reaches the upstream.
#[tokio::test]
async fn p6_heartbeats_answered_locally() {
    let mut up = Upstream::start(Some("up")).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&DubboFrame::heartbeat(7, true)).await;
    let ack = c.recv(LONG).await.expect("heartbeat answered");
    assert_eq!(
        ack.raw_bytes().as_ref(),
        strait_conformance_fixtures::hex("dubbo_heartbeat_response")
    );
    c.send(&DubboFrame::heartbeat(8, false)).await;
    assert!(
        c.recv(SHORT).await.err() == Some(NoFrame::Silent),
        "no reply to a oneway heartbeat"
    );
    assert!(
        up.next(SHORT).await.is_none(),
        "no heartbeat reached the upstream"
    );
    server.shutdown().await;
}

/// P7: the cluster's `heartbeat:` probes idle upstream connections with Dubbo
/// heartbeats and replaces a connection that stops answering them.
#[tokio::test]
async fn p7_upstream_keepalive() {
    let mut up = Upstream::start(None).await;
    let extra = "    heartbeat: { interval: 150ms, max_failures: 2 }";
    let server = proxy(&config(&[up.addr], extra, "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, "a")).await;
    let got = up.next_request(LONG).await.unwrap();
    got.reply(&answer(&got.frame, "up"));
    assert!(c.recv(LONG).await.is_ok());

    let probe = up.next(LONG).await.expect("keepalive probe");
    assert_eq!(probe.frame.kind(), FrameKind::Heartbeat);
    assert!(probe.frame.is_two_way());
    probe.reply(&DubboFrame::heartbeat_ack(probe.frame.request_id()));
    assert!(
        c.recv(SHORT).await.err() == Some(NoFrame::Silent),
        "the ack is consumed by the proxy"
    );
    for _ in 0..2 {
        let p = up.next(LONG).await.expect("probe");
        assert_eq!(p.frame.kind(), FrameKind::Heartbeat);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.send(&request(2, SERVICE, "b")).await;
    let got = up.next_request(LONG).await.expect("request forwarded");
    got.reply(&answer(&got.frame, "up"));
    assert_eq!(c.recv(LONG).await.unwrap().request_id(), 2);
    assert_eq!(up.connections(), 2, "the silent connection was replaced");
    server.shutdown().await;
}

/// P8 and P13: oneway requests get nothing; two-way requests to an unreachable upstream
/// get SERVICE_NOT_FOUND (60) with a message.
#[tokio::test]
async fn p8_oneway_nothing_and_unreachable_gives_60() {
    let server = proxy(&config(&[crate::closed_port()], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let oneway = DubboFrame::request(SERVICE, "fire")
        .id(3)
        .oneway()
        .build()
        .unwrap();
    c.send(&oneway).await;
    c.send(&request(4, SERVICE, "x")).await;
    let resp = c.recv(LONG).await.expect("the two-way request is answered");
    assert_eq!((resp.request_id(), resp.status()), (4, Some(60)));
    assert!(!resp.is_event());
    let message = resp.error_message().expect("error text");
    assert!(message.starts_with("502|"), "{message}");
    assert!(
        c.recv(SHORT).await.err() == Some(NoFrame::Silent),
        "nothing for the oneway request"
    );
    server.shutdown().await;
}

/// P9: an unknown service gets 60 and a message naming it.
#[tokio::test]
async fn p9_no_route_gives_60() {
    let up = Upstream::start(Some("up")).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(9, "org.unknown.Service", "x")).await;
    let resp = c.recv(LONG).await.unwrap();
    assert_eq!((resp.request_id(), resp.status()), (9, Some(60)));
    let message = resp.error_message().unwrap();
    assert!(
        message.starts_with("404|") && message.contains("org.unknown.Service"),
        "{message}"
    );
    server.shutdown().await;
}

/// P10 and P12: the `timeout` attachment (200 ms) caps the route's 60 s: SERVER_TIMEOUT
/// (31) from Strait. The receive bound (5 s) is far below the route timeout, so an
/// uncapped request fails this test instead of passing late.
#[tokio::test]
async fn p10_p12_timeout_attachment_gives_31() {
    let mut up = Upstream::start(None).await;
    let server = proxy(&config(&[up.addr], "", ", timeout: 60s")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let req = DubboFrame::request(SERVICE, "slow")
        .id(10)
        .attachment("timeout", "200")
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    c.send(&req).await;
    let got = up.next_request(LONG).await.unwrap();
    let resp = c.recv(LONG).await.expect("timeout answer");
    assert_eq!((resp.request_id(), resp.status()), (10, Some(31)));
    // Not a timing assertion on speed: the answer must not come before the deadline.
    assert!(started.elapsed() >= Duration::from_millis(200));
    got.reply(&answer(&got.frame, "late"));
    assert!(
        c.recv(SHORT).await.err() == Some(NoFrame::Silent),
        "the late answer is dropped"
    );
    server.shutdown().await;
}

/// P13: the upstream closes with requests pending: each two-way request gets 60.
#[tokio::test]
async fn p13_reset_mid_flight_gives_60() {
    let mut up = Upstream::start(None).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    for id in 1..=5 {
        c.send(&request(id, SERVICE, "x")).await;
    }
    let mut last = None;
    for _ in 0..5 {
        last = up.next_request(LONG).await;
    }
    last.unwrap().close();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let resp = c.recv(LONG).await.expect("every pending request answered");
        assert_eq!(resp.status(), Some(60));
        ids.push(resp.request_id());
    }
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    server.shutdown().await;
}

/// P13 with oneway requests pending: when the upstream closes, each two-way request
/// gets 60 and the oneway ones get nothing.
#[tokio::test]
async fn p13_reset_with_oneway_pending_answers_only_two_way() {
    let mut up = Upstream::start(None).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    for id in 1..=6u64 {
        if id % 2 == 0 {
            let oneway = DubboFrame::request(SERVICE, "fire")
                .id(id)
                .oneway()
                .build()
                .unwrap();
            c.send(&oneway).await;
        } else {
            c.send(&request(id, SERVICE, "x")).await;
        }
    }
    let mut last = None;
    for _ in 0..6 {
        last = Some(up.next_request(LONG).await.expect("all six forwarded"));
    }
    last.unwrap().close();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let resp = c.recv(LONG).await.expect("error answer");
        assert_eq!(resp.status(), Some(60));
        ids.push(resp.request_id());
    }
    ids.sort();
    assert_eq!(ids, vec![1, 3, 5], "only the two-way requests are answered");
    assert_eq!(
        c.recv(SHORT).await.err(),
        Some(NoFrame::Silent),
        "nothing for the oneway requests, and the connection stays open"
    );
    server.shutdown().await;
}

/// P14: past the cluster's `max_requests`, SERVER_THREADPOOL_EXHAUSTED_ERROR (100).
#[tokio::test]
async fn p14_overflow_gives_100() {
    let mut up = Upstream::start(None).await;
    let server = proxy(&config(&[up.addr], "    max_requests: 1", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, "x")).await;
    let first = up.next_request(LONG).await.unwrap();
    c.send(&request(2, SERVICE, "y")).await;
    let resp = c.recv(LONG).await.unwrap();
    assert_eq!((resp.request_id(), resp.status()), (2, Some(100)));
    first.reply(&answer(&first.frame, "up"));
    assert_eq!(c.recv(LONG).await.unwrap().status(), Some(20));
    server.shutdown().await;
}

/// A request whose body is not hessian2 metadata gets BAD_REQUEST (40) when no route
/// can match it, and the connection keeps working.
#[tokio::test]
async fn unreadable_metadata_gives_40() {
    let up = Upstream::start(Some("up")).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let mut bad = vec![0xda, 0xbb, 0xc2, 0x00];
    bad.extend_from_slice(&11u64.to_be_bytes());
    bad.extend_from_slice(&4u32.to_be_bytes());
    bad.extend_from_slice(&[0xff, 0xfe, 0xfd, 0xfc]);
    c.send_raw(&bad).await;
    let resp = c.recv(LONG).await.unwrap();
    assert_eq!((resp.request_id(), resp.status()), (11, Some(40)));
    c.send(&request(12, SERVICE, "ok")).await;
    assert_eq!(c.recv(LONG).await.unwrap().status(), Some(20));
    server.shutdown().await;
}

/// A route's `request_headers_to_add/remove` edit the attachments the upstream gets;
/// the rest of the body is unchanged.
#[tokio::test]
async fn route_edits_attachments() {
    let mut up = Upstream::start(None).await;
    let route_extra = " }\n            request_headers_to_add: [{ name: tenant, value: blue }]\n            request_headers_to_remove: [group]\n            #";
    let server = proxy(&config(&[up.addr], "", route_extra)).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let req = request(5, SERVICE, "payload");
    c.send(&req).await;
    let got = up.next_request(LONG).await.unwrap();
    let attachments: Vec<(String, String)> = got
        .frame
        .attachments()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(
        attachments.contains(&("tenant".into(), "blue".into())),
        "{attachments:?}"
    );
    assert!(
        !attachments.iter().any(|(k, _)| k == "group"),
        "{attachments:?}"
    );
    assert_eq!(got.frame.method(), Some("sayHello"));
    assert_eq!(
        got.frame.arguments(),
        req.arguments(),
        "arguments untouched"
    );
    got.reply(&answer(&got.frame, "up"));
    assert_eq!(c.recv(LONG).await.unwrap().request_id(), 5);
    server.shutdown().await;
}

/// Routing by `method`, `version` and `group` variables picks the backend.
#[tokio::test]
async fn routes_on_method_version_group() {
    let mut a = Upstream::start(Some("a")).await;
    let mut b = Upstream::start(Some("b")).await;
    let yaml = format!(
        r#"
listeners:
  - {{ name: rpc, address: "127.0.0.1:0", protocol: dubbo, route_config: rpc }}
route_configs:
  - name: rpc
    virtual_hosts:
      - name: default
        routes:
          - match: {{ variables: [{{ name: group, exact: g2 }}, {{ name: version, exact: "2.0.0" }}] }}
            route: {{ cluster: b }}
          - match: {{ variables: [{{ name: method, exact: admin }}] }}
            route: {{ cluster: b }}
          - match: {{ variables: [{{ name: service, prefix: "org.apache." }}] }}
            route: {{ cluster: a }}
clusters:
  - {{ name: a, protocol: dubbo, endpoints: [{{ address: "{}" }}] }}
  - {{ name: b, protocol: dubbo, endpoints: [{{ address: "{}" }}] }}
"#,
        a.addr, b.addr
    );
    let server = proxy(&yaml).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let cases = [
        (request(1, SERVICE, "x"), "a:sayHello"),
        (
            DubboFrame::request(SERVICE, "sayHello")
                .id(2)
                .version(Some("2.0.0"))
                .attachment("group", "g2")
                .build()
                .unwrap(),
            "b:sayHello",
        ),
        (
            DubboFrame::request(SERVICE, "admin").id(3).build().unwrap(),
            "b:admin",
        ),
    ];
    for (req, expected) in cases {
        c.send(&req).await;
        let resp = c.recv(LONG).await.unwrap();
        assert_eq!(resp.request_id(), req.request_id());
        assert_eq!(resp.response_value(), Some(expected));
    }
    assert!(a.next(SHORT).await.is_some() && b.next(SHORT).await.is_some());
    server.shutdown().await;
}

/// A provider's read-only event (it is shutting down) makes the proxy stop sending on
/// that connection: the next request goes over a new one.
#[tokio::test]
async fn readonly_event_retires_the_connection() {
    let mut up = Upstream::start(None).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, "x")).await;
    let got = up.next_request(LONG).await.unwrap();
    got.reply(&DubboFrame::readonly_event(99));
    got.reply(&answer(&got.frame, "up"));
    assert_eq!(c.recv(LONG).await.unwrap().status(), Some(20));
    c.send(&request(2, SERVICE, "y")).await;
    let second = up.next_request(LONG).await.unwrap();
    second.reply(&answer(&second.frame, "up"));
    assert_eq!(c.recv(LONG).await.unwrap().request_id(), 2);
    assert_eq!(
        up.connections(),
        2,
        "a new connection after the read-only event"
    );
    server.shutdown().await;
}

/// One `auto` port serves Dubbo and Bolt at once.
#[tokio::test]
async fn auto_listener_serves_dubbo_and_bolt() {
    let dubbo_up = Upstream::start(Some("d")).await;
    let bolt_up = crate::support::Upstream::start(crate::support::Mode::Echo("b")).await;
    let yaml = format!(
        r#"
listeners:
  - {{ name: any, address: "127.0.0.1:0", protocol: auto, route_config: rpc }}
route_configs:
  - name: rpc
    virtual_hosts:
      - name: default
        routes:
          - match: {{ variables: [{{ name: protocol, exact: dubbo }}] }}
            route: {{ cluster: d }}
          - match: {{ variables: [{{ name: protocol, exact: bolt }}] }}
            route: {{ cluster: b }}
clusters:
  - {{ name: d, protocol: dubbo, endpoints: [{{ address: "{}" }}] }}
  - {{ name: b, protocol: bolt, endpoints: [{{ address: "{}" }}] }}
"#,
        dubbo_up.addr, bolt_up.addr
    );
    let server = proxy(&yaml).await;
    let addr = server.listener_addr("any").unwrap();
    let mut d = Client::connect(addr).await;
    let mut b = crate::support::Client::connect(addr).await;
    d.send(&request(1, SERVICE, "x")).await;
    b.send(&crate::support::request(2, crate::support::SERVICE, "y"))
        .await;
    assert_eq!(
        d.recv(LONG).await.unwrap().response_value(),
        Some("d:sayHello")
    );
    let bolt = b.recv(LONG).await.unwrap();
    assert_eq!(
        (bolt.request_id(), bolt.header("x-served-by")),
        (2, Some("b"))
    );
    server.shutdown().await;
}
