//! Proxy-level behaviour (wire-formats.md §6.4), driven byte by byte through the real
//! proxy with scripted upstreams.

mod access_log;
mod dubbo;
mod http_limits;
mod metrics;
mod pipeline;
#[path = "../shared/promtool.rs"]
mod promtool;
mod reload;
mod resilience;
mod support;
mod tracing;
mod wires;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use strait_codec_bolt::BoltFrame;
use strait_codec_framework::{Frame, FrameKind};
use support::*;

fn wire(frame: &BoltFrame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf).unwrap();
    buf.to_vec()
}

/// A loopback address where nothing listens, for the rest of the test: its port stays
/// bound (never listening), so no other test's socket takes it, nor does a connect's
/// own source port (a self-connect), and connecting to it is refused. Dropping a bound
/// listener instead left the port free to be taken again. (nextest runs each test in a
/// process of its own, so the sockets held here go with the test.)
fn closed_port() -> std::net::SocketAddr {
    static HELD: parking_lot::Mutex<Vec<tokio::net::TcpSocket>> =
        parking_lot::Mutex::new(Vec::new());
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    HELD.lock().push(socket);
    addr
}

fn v2crc_request(id: u32, service: &str) -> BoltFrame {
    BoltFrame::builder(FrameKind::Request)
        .v2(2, 1)
        .request_id(id)
        .timeout_ms(3000)
        .header("service", service)
        .content(&b"v2-payload"[..])
        .build()
        .unwrap()
}

/// P1: three downstream connections all use id 1 over one upstream connection.
#[tokio::test]
async fn p1_upstream_ids_are_unique_and_only_id_bytes_change() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "    max_connections_per_host: 1", "")).await;
    let addr = server.listener_addr("rpc").unwrap();
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut c = Client::connect(addr).await;
        let req = request(1, SERVICE, &format!("call-{i}"));
        c.send(&req).await;
        clients.push((c, wire(&req)));
        // One at a time, so the upstream arrival order is known.
        let got = up.next(LONG).await.expect("forwarded");
        let raw = got.frame.raw_bytes().to_vec();
        let sent = &clients[i].1;
        assert_eq!(raw.len(), sent.len());
        let diff: Vec<usize> = (0..raw.len()).filter(|&k| raw[k] != sent[k]).collect();
        assert!(
            diff.iter().all(|k| (5..9).contains(k)),
            "bytes changed outside the id: {diff:?}"
        );
        got.conn.send(&echo(&got.frame, "up"));
        let resp = clients[i].0.recv(LONG).await.expect("answered");
        assert_eq!(resp.request_id(), 1);
        assert_eq!(&resp.body()[..], format!("call-{i}").as_bytes());
    }
    assert_eq!(
        up.connections(),
        1,
        "all three shared one upstream connection"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn p1_concurrent_same_ids_get_distinct_upstream_ids() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "    max_connections_per_host: 1", "")).await;
    let addr = server.listener_addr("rpc").unwrap();
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut c = Client::connect(addr).await;
        c.send(&request(1, SERVICE, &format!("c{i}"))).await;
        clients.push(c);
    }
    let mut pending = Vec::new();
    for _ in 0..3 {
        pending.push(up.next(LONG).await.expect("forwarded"));
    }
    let ids: HashSet<u64> = pending.iter().map(|r| r.frame.request_id()).collect();
    assert_eq!(ids.len(), 3, "upstream ids must be unique");
    for r in pending.iter().rev() {
        r.conn.send(&echo(&r.frame, "up"));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let resp = c.recv(LONG).await.unwrap();
        assert_eq!(
            (resp.request_id(), &resp.body()[..]),
            (1, format!("c{i}").as_bytes())
        );
    }
    server.shutdown().await;
}

/// P2: with CRC on, the forwarded frame and the response both carry a valid CRC.
#[tokio::test]
async fn p2_crc_is_recomputed_both_ways() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let req = v2crc_request(77, SERVICE);
    c.send(&req).await;
    // The upstream decoder verifies the CRC: receiving the frame proves it valid.
    let got = up.next(LONG).await.expect("forwarded with a valid CRC");
    assert!(got.frame.is_crc());
    let (raw, sent) = (got.frame.raw_bytes().to_vec(), wire(&req));
    let body_end = raw.len() - 4;
    assert!((0..body_end).all(|k| raw[k] == sent[k] || (6..10).contains(&k)));
    got.conn.send(&echo(&got.frame, "up"));
    let resp = c
        .recv(LONG)
        .await
        .expect("response decodes, so its CRC is valid");
    assert!(resp.is_crc());
    assert_eq!(resp.request_id(), 77);
    server.shutdown().await;
}

/// P4: responses in another order than requests reach the right callers.
#[tokio::test]
async fn p4_out_of_order_responses() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    for id in [10, 11, 12] {
        c.send(&request(id, SERVICE, &format!("body-{id}"))).await;
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(up.next(LONG).await.unwrap());
    }
    for i in [2, 0, 1] {
        got[i].conn.send(&echo(&got[i].frame, "up"));
    }
    let mut seen = Vec::new();
    for _ in 0..3 {
        let resp = c.recv(LONG).await.unwrap();
        assert_eq!(
            &resp.body()[..],
            format!("body-{}", resp.request_id()).as_bytes()
        );
        seen.push(resp.request_id());
    }
    assert_eq!(seen, vec![12, 10, 11]);
    server.shutdown().await;
}

/// P5: a response for an id not in flight is dropped without harm.
#[tokio::test]
async fn p5_unknown_response_id_is_dropped() {
    let mut up = Upstream::start(Mode::Manual).await;
    let yaml = format!(
        "admin: {{ address: \"127.0.0.1:0\" }}\n{}",
        config(&[up.addr], "", "")
    );
    let server = proxy(&yaml).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(5, SERVICE, "x")).await;
    let got = up.next(LONG).await.unwrap();
    let stray = BoltFrame::builder(FrameKind::Response)
        .request_id(0xdead_beef)
        .build()
        .unwrap();
    got.conn.send(&stray);
    got.conn.send(&echo(&got.frame, "up"));
    let resp = c.recv(LONG).await.unwrap();
    assert_eq!((resp.request_id(), &resp.body()[..]), (5, &b"x"[..]));
    assert!(
        c.recv(SHORT).await.err() == Some(NoFrame::Silent),
        "the stray response must not reach anyone"
    );
    let body = admin_get(&server, "/clusters").await;
    let clusters: serde_json::Value = serde_json::from_str(&body).unwrap();
    let host = &clusters["clusters"][0]["hosts"][0];
    assert_eq!(host["unknown_responses"], 1, "dropped and counted: {body}");
    server.shutdown().await;
}

/// P6: heartbeats are answered by the proxy and never reach the upstream.
#[tokio::test]
async fn p6_heartbeats_answered_locally() {
    let mut up = Upstream::start(Mode::Echo("up")).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    for (hb, ack) in [
        ("bolt_v1_heartbeat", "bolt_v1_heartbeat_ack"),
        ("bolt_v2_ver1_heartbeat", "bolt_v2_ver1_heartbeat_ack"),
        (
            "bolt_v2_ver2_crc_heartbeat",
            "bolt_v2_ver2_crc_heartbeat_ack",
        ),
    ] {
        c.send_raw(&strait_conformance_fixtures::hex(hb)).await;
        let reply = c.recv(LONG).await.expect("heartbeat ack");
        assert_eq!(
            reply.raw_bytes().to_vec(),
            strait_conformance_fixtures::hex(ack),
            "{hb}"
        );
    }
    assert!(
        up.next(SHORT).await.is_none(),
        "no heartbeat may be forwarded"
    );
    assert_eq!(up.connections(), 0);
    server.shutdown().await;
}

/// P7: an idle upstream connection gets the proxy's own heartbeat; its ack stays inside;
/// unanswered heartbeats close the connection after `max_failures`.
#[tokio::test]
async fn p7_upstream_keepalive_probe_and_failure_limit() {
    let mut up = Upstream::start(Mode::Manual).await;
    let extra = "    heartbeat: { interval: 150ms, max_failures: 2 }";
    let server = proxy(&config(&[up.addr], extra, "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, "a")).await;
    let got = up.next(LONG).await.unwrap();
    got.conn.send(&echo(&got.frame, "up"));
    assert!(c.recv(LONG).await.is_ok());

    let probe = up.next(LONG).await.expect("keepalive probe");
    assert_eq!(probe.frame.kind(), FrameKind::Heartbeat);
    assert_eq!(probe.frame.timeout_ms(), Some(-1));
    probe
        .conn
        .send(&probe.frame.response_builder().build().unwrap());
    assert!(
        c.recv(SHORT).await.err() == Some(NoFrame::Silent),
        "the ack is consumed by the proxy"
    );

    // Stop answering: two unanswered probes, then the proxy closes the connection and
    // the next request opens a new one.
    for _ in 0..2 {
        let p = up.next(LONG).await.expect("probe");
        assert_eq!(p.frame.kind(), FrameKind::Heartbeat);
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.send(&request(2, SERVICE, "b")).await;
    let got = loop {
        let r = up.next(LONG).await.expect("request forwarded");
        if r.frame.kind() == FrameKind::Request {
            break r;
        }
    };
    got.conn.send(&echo(&got.frame, "up"));
    assert_eq!(c.recv(LONG).await.unwrap().request_id(), 2);
    assert_eq!(up.connections(), 2, "the silent connection was replaced");
    server.shutdown().await;
}

/// P8: a oneway request to an unreachable upstream gets nothing, not even an error.
#[tokio::test]
async fn p8_oneway_never_answered() {
    let server = proxy(&config(&[closed_port()], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let oneway = BoltFrame::builder(FrameKind::Oneway)
        .request_id(3)
        .header("service", SERVICE)
        .build()
        .unwrap();
    c.send(&oneway).await;
    c.send(&request(4, SERVICE, "two-way")).await;
    let resp = c.recv(LONG).await.expect("the two-way request is answered");
    assert_eq!((resp.request_id(), resp.status()), (4, Some(6)));
    assert!(
        c.recv(SHORT).await.err() == Some(NoFrame::Silent),
        "nothing for the oneway request"
    );
    server.shutdown().await;
}

/// P9: no route → NO_PROCESSOR (6), same id, empty body.
#[tokio::test]
async fn p9_no_route() {
    let up = Upstream::start(Mode::Echo("up")).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(9, "com.unknown.Service:1.0", "x")).await;
    let resp = c.recv(LONG).await.unwrap();
    assert_eq!(
        (resp.kind(), resp.request_id(), resp.status()),
        (FrameKind::Response, 9, Some(6))
    );
    assert_eq!(resp.content_len(), 0);
    assert_eq!(resp.version(), 1);
    server.shutdown().await;
}

/// P10: the frame's 100 ms timeout caps the route's 60 s; the late answer is dropped.
/// The receive bound (5 s) is far below the route timeout: an uncapped request fails.
#[tokio::test]
async fn p10_frame_timeout_gives_timeout_status() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "", ", timeout: 60s")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let req = BoltFrame::builder(FrameKind::Request)
        .request_id(10)
        .timeout_ms(100)
        .header("service", SERVICE)
        .build()
        .unwrap();
    c.send(&req).await;
    let got = up.next(LONG).await.unwrap();
    let resp = c.recv(LONG).await.expect("timeout answer");
    assert_eq!((resp.request_id(), resp.status()), (10, Some(7)));
    got.conn.send(&echo(&got.frame, "late"));
    assert!(
        c.recv(SHORT).await.err() == Some(NoFrame::Silent),
        "the late response is dropped"
    );
    server.shutdown().await;
}

/// P11: a frame timeout of -1 means the route timeout applies.
#[tokio::test]
async fn p11_no_frame_timeout_uses_route_timeout() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "", ", timeout: 200ms")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let req = BoltFrame::builder(FrameKind::Request)
        .request_id(11)
        .header("service", SERVICE)
        .build()
        .unwrap();
    c.send(&req).await;
    let _held = up.next(LONG).await.unwrap();
    let resp = c.recv(LONG).await.expect("route timeout answer");
    assert_eq!((resp.request_id(), resp.status()), (11, Some(7)));
    server.shutdown().await;
}

/// P13: the upstream connection dies with 5 requests pending: all get 6 at once.
#[tokio::test]
async fn p13_reset_mid_flight_fails_all_pending() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    for id in 1..=5 {
        c.send(&request(id, SERVICE, "x")).await;
    }
    let mut last = None;
    for _ in 0..5 {
        last = up.next(LONG).await;
    }
    last.unwrap().conn.close();
    let mut ids = Vec::new();
    for _ in 0..5 {
        let resp = c.recv(LONG).await.expect("error answer");
        assert_eq!(resp.status(), Some(6));
        ids.push(resp.request_id());
    }
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    server.shutdown().await;
}

/// P13 with oneway requests among the pending ones: when the upstream connection dies,
/// each two-way request gets 6 and the oneway ones get nothing, not even an error.
#[tokio::test]
async fn p13_reset_with_oneway_pending_answers_only_two_way() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    for id in 1..=6u32 {
        if id % 2 == 0 {
            let oneway = BoltFrame::builder(FrameKind::Oneway)
                .request_id(id)
                .header("service", SERVICE)
                .build()
                .unwrap();
            c.send(&oneway).await;
        } else {
            c.send(&request(id, SERVICE, "x")).await;
        }
    }
    let mut last = None;
    for _ in 0..6 {
        last = Some(up.next(LONG).await.expect("all six forwarded"));
    }
    last.unwrap().conn.close();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let resp = c.recv(LONG).await.expect("error answer");
        assert_eq!(resp.status(), Some(6));
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

/// P14: past the cluster's max_requests, requests fail fast with SERVER_THREADPOOL_BUSY.
#[tokio::test]
async fn p14_overflow() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "    max_requests: 2", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, "a")).await;
    c.send(&request(2, SERVICE, "b")).await;
    let a = up.next(LONG).await.unwrap();
    let b = up.next(LONG).await.unwrap();
    c.send(&request(3, SERVICE, "c")).await;
    let resp = c.recv(LONG).await.unwrap();
    assert_eq!((resp.request_id(), resp.status()), (3, Some(4)));
    a.conn.send(&echo(&a.frame, "up"));
    b.conn.send(&echo(&b.frame, "up"));
    let mut ok: Vec<u64> = Vec::new();
    for _ in 0..2 {
        let r = c.recv(LONG).await.unwrap();
        assert_eq!(r.status(), Some(0));
        ok.push(r.request_id());
    }
    ok.sort();
    assert_eq!(ok, vec![1, 2]);
    server.shutdown().await;
}

/// P16: bad magic mid-stream closes the downstream connection.
#[tokio::test]
async fn p16_bad_protocol_byte_closes_connection() {
    let mut up = Upstream::start(Mode::Echo("up")).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, "ok")).await;
    assert!(c.recv(LONG).await.is_ok());
    assert!(up.next(LONG).await.is_some());
    c.send_raw(&[0x0d; 24]).await;
    assert!(c.closed_within(LONG).await);
    assert!(up.next(SHORT).await.is_none());
    server.shutdown().await;
}

/// P17/P18: v1 and v2 on one connection, each answered in its own version; a proxy
/// error for a v2 CRC request is v2 with a valid CRC.
#[tokio::test]
async fn p17_p18_versions_kept_per_frame() {
    let up = Upstream::start(Mode::Echo("up")).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, "v1")).await;
    let r1 = c.recv(LONG).await.unwrap();
    assert_eq!((r1.version(), r1.status()), (1, Some(0)));
    c.send(&v2crc_request(2, SERVICE)).await;
    let r2 = c.recv(LONG).await.unwrap();
    assert_eq!((r2.version(), r2.is_crc(), r2.status()), (2, true, Some(0)));
    c.send(&v2crc_request(3, "no.such.Service")).await;
    let r3 = c.recv(LONG).await.expect("decodes, so the CRC is valid");
    assert_eq!(
        (r3.version(), r3.ver1(), r3.is_crc(), r3.status()),
        (2, Some(2), true, Some(6))
    );
    server.shutdown().await;
}

/// Many downstream connections share at most `max_connections_per_host` upstream ones.
#[tokio::test]
async fn downstreams_multiplex_onto_few_upstream_connections() {
    let up = Upstream::start(Mode::Echo("up")).await;
    let server = proxy(&config(&[up.addr], "    max_connections_per_host: 2", "")).await;
    let addr = server.listener_addr("rpc").unwrap();
    let mut tasks = Vec::new();
    for i in 0..20u32 {
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            for j in 0..10u32 {
                c.send(&request(j, SERVICE, &format!("{i}-{j}"))).await;
                let r = c.recv(LONG).await.unwrap();
                assert_eq!(
                    (r.request_id(), &r.body()[..]),
                    (j as u64, format!("{i}-{j}").as_bytes())
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        up.connections() <= 2,
        "got {} upstream connections",
        up.connections()
    );
    server.shutdown().await;
}

/// Round robin spreads requests over both hosts; a dead host is skipped.
#[tokio::test]
async fn round_robin_and_dead_host_skipped() {
    let a = Upstream::start(Mode::Echo("a")).await;
    let b = Upstream::start(Mode::Echo("b")).await;
    let server = proxy(&config(&[a.addr, b.addr, closed_port()], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    let mut served = std::collections::HashMap::new();
    for id in 0..30 {
        c.send(&request(id, SERVICE, "x")).await;
        let r = c.recv(LONG).await.unwrap();
        assert_eq!(
            r.status(),
            Some(0),
            "a dead host must not fail requests while others live"
        );
        *served
            .entry(r.header("x-served-by").unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert!(served["a"] >= 10 && served["b"] >= 10, "{served:?}");
    server.shutdown().await;
}

/// A route's request_headers_to_add reaches the upstream; the rest of the frame is kept.
#[tokio::test]
async fn route_header_mutation_reaches_upstream() {
    let mut up = Upstream::start(Mode::Echo("up")).await;
    let yaml = config(&[up.addr], "", "").replace(
        "            route: { cluster: up }",
        "            route: { cluster: up }\n            request_headers_to_add: [{ name: x-env, value: canary }]\n            request_headers_to_remove: [sofa_head_method_name]",
    );
    let server = proxy(&yaml).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, "payload")).await;
    let got = up.next(LONG).await.unwrap();
    assert_eq!(got.frame.header("x-env"), Some("canary"));
    assert_eq!(got.frame.header("sofa_head_method_name"), None);
    assert_eq!(got.frame.header("service"), Some(SERVICE));
    assert_eq!(&got.frame.body()[..], b"payload");
    assert_eq!(c.recv(LONG).await.unwrap().status(), Some(0));
    server.shutdown().await;
}

/// direct_response answers with the configured status and never forwards.
#[tokio::test]
async fn direct_response_status() {
    let mut up = Upstream::start(Mode::Echo("up")).await;
    let yaml = config(&[up.addr], "", "").replace(
        "            route: { cluster: up }",
        "            direct_response: { status: 4, body: maintenance }",
    );
    let server = proxy(&yaml).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(8, SERVICE, "x")).await;
    let r = c.recv(LONG).await.unwrap();
    assert_eq!(
        (r.request_id(), r.status(), r.header("x-proxy-error")),
        (8, Some(4), Some("maintenance"))
    );
    assert!(up.next(SHORT).await.is_none());
    server.shutdown().await;
}

/// A frame over the listener's max_frame_size closes the connection before buffering.
#[tokio::test]
async fn oversized_frame_closes_connection() {
    let mut up = Upstream::start(Mode::Echo("up")).await;
    let yaml = config(&[up.addr], "", "").replace(
        "route_config: rpc }",
        "route_config: rpc, max_frame_size: 1024 }",
    );
    let server = proxy(&yaml).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, &"x".repeat(2000))).await;
    assert!(c.closed_within(LONG).await);
    assert!(up.next(SHORT).await.is_none());
    server.shutdown().await;
}

/// A listener's `max_requests_per_connection` is backpressure: with 2 requests of a
/// connection in flight Strait stops reading it, so the third is not forwarded until an
/// answer goes out; nothing is refused.
#[tokio::test]
async fn max_requests_per_connection_stops_reading() {
    let mut up = Upstream::start(Mode::Manual).await;
    let yaml = config(&[up.addr], "", "").replace(
        "route_config: rpc }",
        "route_config: rpc, max_requests_per_connection: 2 }",
    );
    let server = proxy(&yaml).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    // All three in one write: they reach Strait in one read, and the limit must still
    // hold the third in its buffer, not only stop further reads.
    let three: Vec<u8> = (1..=3)
        .flat_map(|id| wire(&request(id, SERVICE, &format!("r{id}"))))
        .collect();
    c.send_raw(&three).await;
    let first = up.next(LONG).await.expect("first forwarded");
    let _second = up.next(LONG).await.expect("second forwarded");
    assert!(
        up.next(SHORT).await.is_none(),
        "the third request must wait: two are in flight"
    );
    assert_eq!(
        c.recv(SHORT).await.err(),
        Some(NoFrame::Silent),
        "held, not refused"
    );
    first.conn.send(&echo(&first.frame, "up"));
    assert_eq!(c.recv(LONG).await.expect("first answered").request_id(), 1);
    let third = up
        .next(LONG)
        .await
        .expect("read again once one answer went out");
    assert_eq!(&third.frame.body()[..], b"r3");
    server.shutdown().await;
}

/// A cluster's `max_frame_size`: an upstream response over it closes the upstream
/// connection (the request in flight fails as a reset, 6), and the next request opens
/// a new connection.
#[tokio::test]
async fn cluster_max_frame_size_closes_upstream_connection() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "    max_frame_size: 1024", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, "small")).await;
    let got = up.next(LONG).await.unwrap();
    let big = got
        .frame
        .response_builder()
        .content(bytes::Bytes::from(vec![b'x'; 2000]))
        .build()
        .unwrap();
    got.conn.send(&big);
    let resp = c.recv(LONG).await.expect("an error answer");
    assert_eq!((resp.request_id(), resp.status()), (1, Some(6)));

    c.send(&request(2, SERVICE, "again")).await;
    let again = up.next(LONG).await.expect("forwarded on a new connection");
    again.conn.send(&echo(&again.frame, "up"));
    assert_eq!(c.recv(LONG).await.unwrap().status(), Some(0));
    assert_eq!(
        up.connections(),
        2,
        "the oversized answer closed the first one"
    );
    server.shutdown().await;
}

/// B25 at the proxy: a request with a broken header map gets CODEC_EXCEPTION (9) and
/// the connection stays usable.
#[tokio::test]
async fn malformed_header_map_gets_codec_exception() {
    let up = Upstream::start(Mode::Echo("up")).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    // v1 request, id 7, headerLen 6: a key length of 100 overruns the section.
    let mut bad = vec![
        1, 1, 0, 1, 1, 0, 0, 0, 7, 1, 0, 0, 0x0b, 0xb8, 0, 0, 0, 6, 0, 0, 0, 0,
    ];
    bad.extend_from_slice(&[0, 0, 0, 100, b'a', b'b']);
    c.send_raw(&bad).await;
    let r = c.recv(LONG).await.unwrap();
    assert_eq!((r.request_id(), r.status()), (7, Some(9)));
    c.send(&request(8, SERVICE, "after")).await;
    assert_eq!(c.recv(LONG).await.unwrap().status(), Some(0));
    server.shutdown().await;
}

/// Shutdown lets a request in flight finish before the proxy closes.
#[tokio::test]
async fn shutdown_drains_in_flight() {
    let mut up = Upstream::start(Mode::Manual).await;
    let server = proxy(&config(&[up.addr], "", "")).await;
    let addr = server.listener_addr("rpc").unwrap();
    let mut c = Client::connect(addr).await;
    c.send(&request(1, SERVICE, "slow")).await;
    let got = up.next(LONG).await.unwrap();
    let stopping = tokio::spawn(server.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections while draining"
    );
    got.conn.send(&echo(&got.frame, "up"));
    let r = c.recv(LONG).await.expect("in-flight request completes");
    assert_eq!(r.status(), Some(0));
    assert!(stopping.await.unwrap(), "drained within the drain timeout");
}

/// `protocol: auto`: Bolt is detected even when its first bytes arrive one at a time;
/// a silent connection is closed at the first-byte timeout; unknown bytes close at once.
#[tokio::test]
async fn auto_listener_detection() {
    let up = Upstream::start(Mode::Echo("up")).await;
    let yaml = config(&[up.addr], "", "").replace(
        "protocol: bolt, route_config: rpc",
        "protocol: auto, detect_timeout: 300ms, route_config: rpc",
    );
    let server = proxy(&yaml).await;
    let addr = server.listener_addr("rpc").unwrap();

    let mut c = Client::connect(addr).await;
    for byte in wire(&v2crc_request(1, SERVICE)) {
        c.send_raw(&[byte]).await;
    }
    let r = c.recv(LONG).await.expect("v2 detected byte by byte");
    assert_eq!((r.version(), r.status()), (2, Some(0)));

    let mut silent = Client::connect(addr).await;
    assert!(
        silent.closed_within(LONG).await,
        "closed after the first-byte timeout"
    );

    let mut garbage = Client::connect(addr).await;
    garbage.send_raw(&[0xff, 0, 0, 0, 0, 0, 0, 0]).await;
    assert!(garbage.closed_within(LONG).await, "no protocol has 0xff");
    server.shutdown().await;
}

/// `preconnect: true` fills the pool before any request and refills it when the
/// upstream closes a connection.
#[tokio::test]
async fn preconnect_fills_and_refills_the_pool() {
    let mut up = Upstream::start(Mode::Manual).await;
    let extra = "    max_connections_per_host: 2\n    preconnect: true";
    let server = proxy(&config(&[up.addr], extra, "")).await;
    let deadline = Instant::now() + LONG;
    while up.connections() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        up.connections(),
        2,
        "both slots connected before any request"
    );

    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    c.send(&request(1, SERVICE, "x")).await;
    let got = up.next(LONG).await.unwrap();
    got.conn.send(&echo(&got.frame, "up"));
    assert_eq!(c.recv(LONG).await.unwrap().status(), Some(0));
    got.conn.close();
    while up.connections() < 3 && Instant::now() < deadline + LONG {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.connections(), 3, "the closed connection was replaced");
    server.shutdown().await;
}
