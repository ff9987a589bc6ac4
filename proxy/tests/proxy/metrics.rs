//! `/metrics` and `/stats` after mixed traffic, one table for every protocol: the
//! Prometheus text passes `promtool check metrics`, and the counters equal what the
//! test sent, per route, protocol and outcome (successes, no route, timeouts, connect
//! failures), with the same values in `/stats`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::promtool::promtool_check;
use crate::support::admin_get;
use crate::wires::{Behaviour, Wire, proxy_config};

const OK: usize = 3;
const NO_ROUTE: usize = 2;
const TIMEOUTS: usize = 2;
const CONNECT_FAILURES: usize = 2;

fn config(wire: Wire, up: &str, hang: &str, dead: &str) -> String {
    proxy_config(
        wire,
        "admin: { address: \"127.0.0.1:0\" }",
        &[("front", "")],
        &[
            ("ok", "svc", "{ cluster: up, timeout: 5s }"),
            ("slow", "slow", "{ cluster: hang, timeout: 200ms }"),
            ("", "dead", "{ cluster: dead, timeout: 5s }"),
        ],
        &[
            ("up", up.to_string(), ""),
            ("hang", hang.to_string(), ""),
            ("dead", dead.to_string(), ", connect_timeout: 500ms"),
        ],
    )
}

/// Metric lines by `name{labels}` (as written), value parsed.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn run(wire: Wire) {
    let label = format!("{wire:?}");
    let up = wire.backend(Behaviour::Answer).await;
    let hang = wire.backend(Behaviour::Hang).await;
    let dead = crate::closed_port();
    let yaml = config(
        wire,
        &up.addr.to_string(),
        &hang.addr.to_string(),
        &dead.to_string(),
    );
    let registry = crate::wires::registry();
    let config = strait::config::parse("metrics.yaml", &yaml, &registry)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let server = strait::Server::start(config, registry).await.unwrap();
    let proxy = server.listener_addr("front").unwrap();

    let mut statuses = Vec::new();
    for (service, n) in [
        ("svc", OK),
        ("nowhere", NO_ROUTE),
        ("slow", TIMEOUTS),
        ("dead", CONNECT_FAILURES),
    ] {
        for _ in 0..n {
            statuses.push((service, wire.call(proxy, service).await));
        }
    }
    let calls = statuses.len();
    eprintln!("{label}: answers {statuses:?}");

    // Every connection closed by its client: the open gauge comes back to zero.
    let active = "strait_listener_connections_active{listener=\"front\"}".to_string();
    let start = Instant::now();
    let text = loop {
        let text = admin_get(&server, "/metrics").await;
        if samples(&text).get(&active) == Some(&0.0) || start.elapsed() > Duration::from_secs(5) {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    promtool_check(&text);
    let got = samples(&text);
    let p = wire.record_protocol();
    let requests = |route: &str, outcome: &str| {
        format!(
            "strait_requests_total{{listener=\"front\",protocol=\"{p}\",route=\"{route}\",outcome=\"{outcome}\"}}"
        )
    };
    let expected = [
        (requests("ok", "success"), OK),
        (requests("(none)", "no_route"), NO_ROUTE),
        (requests("slow", "upstream_timeout"), TIMEOUTS),
        (active.clone(), 0),
        (
            "strait_listener_connections_total{listener=\"front\"}".into(),
            calls,
        ),
        (
            "strait_request_duration_seconds_count{listener=\"front\",route=\"ok\"}".into(),
            OK,
        ),
        (
            "strait_request_duration_seconds_count{listener=\"front\",route=\"slow\"}".into(),
            TIMEOUTS,
        ),
        (
            "strait_cluster_requests_total{cluster=\"up\",outcome=\"success\"}".into(),
            OK,
        ),
        (
            "strait_cluster_requests_total{cluster=\"hang\",outcome=\"upstream_timeout\"}".into(),
            TIMEOUTS,
        ),
        (
            "strait_cluster_upstream_duration_seconds_count{cluster=\"up\"}".into(),
            OK,
        ),
        (
            "strait_cluster_request_duration_seconds_count{cluster=\"hang\"}".into(),
            TIMEOUTS,
        ),
        (
            format!(
                "strait_host_requests_total{{cluster=\"up\",host=\"{}\"}}",
                up.addr
            ),
            OK,
        ),
    ];
    for (key, want) in &expected {
        assert_eq!(
            got.get(key),
            Some(&(*want as f64)),
            "{label}: {key}\n{text}"
        );
    }
    // A refused connect fails the request; the host then backs off (100 ms at
    // first), so the next one may fail at once as having no healthy upstream.
    let value = |key: &str| got.get(key).copied().unwrap_or(0.0);
    let refused = value(&requests("#2", "connect_failure"));
    let backing_off = value(&requests("#2", "no_healthy_upstream"));
    assert!(refused >= 1.0, "{label}: connect failures\n{text}");
    assert_eq!(
        refused + backing_off,
        CONNECT_FAILURES as f64,
        "{label}\n{text}"
    );
    let cluster = |outcome: &str| {
        value(&format!(
            "strait_cluster_requests_total{{cluster=\"dead\",outcome=\"{outcome}\"}}"
        ))
    };
    assert_eq!(cluster("connect_failure"), refused, "{label}\n{text}");
    assert_eq!(
        cluster("no_healthy_upstream"),
        backing_off,
        "{label}\n{text}"
    );
    // Every request counted once, under one outcome.
    let total: f64 = got
        .iter()
        .filter(|(k, _)| k.starts_with("strait_requests_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(total, calls as f64, "{label}: requests counted\n{text}");
    // The slow route's durations reach its 200 ms timeout.
    let slow_sum = got["strait_request_duration_seconds_sum{listener=\"front\",route=\"slow\"}"];
    assert!(
        slow_sum >= 0.2 * TIMEOUTS as f64,
        "{label}: slow sum {slow_sum}"
    );
    // So do its cluster's, counted from the same times; the answered ones took less.
    let hang_sum = value("strait_cluster_request_duration_seconds_sum{cluster=\"hang\"}");
    assert!(
        hang_sum >= 0.2 * TIMEOUTS as f64,
        "{label}: hang sum {hang_sum}"
    );
    let ok_sum = value("strait_request_duration_seconds_sum{listener=\"front\",route=\"ok\"}");
    assert!(
        ok_sum > 0.0 && ok_sum < 0.2 * OK as f64,
        "{label}: ok sum {ok_sum}"
    );
    // Bytes both ways, for every request.
    for family in [
        "strait_listener_request_bytes",
        "strait_listener_response_bytes",
    ] {
        let bytes = value(&format!("{family}_total{{listener=\"front\"}}"));
        assert!(bytes >= calls as f64, "{label}: {family} {bytes}\n{text}");
    }

    if wire == Wire::Bolt {
        dashboard_queries_exist(&text);
    }

    // `/stats` gives the same counters as JSON.
    let stats: Value = serde_json::from_str(&admin_get(&server, "/stats").await).unwrap();
    let ok = stats["strait_requests_total"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["labels"]["route"] == "ok" && s["labels"]["outcome"] == "success")
        .unwrap_or_else(|| panic!("{label}: no ok/success in /stats: {stats:#}"));
    assert_eq!(ok["labels"]["protocol"], p);
    assert_eq!(ok["value"], OK);
    assert_eq!(
        stats["strait_cluster_upstream_duration_seconds"][0]["value"]["count"], OK,
        "{label}: {stats:#}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bolt_requests_are_counted_by_route_and_outcome() {
    run(Wire::Bolt).await;
}

#[tokio::test]
async fn dubbo_requests_are_counted_by_route_and_outcome() {
    run(Wire::Dubbo).await;
}

#[tokio::test]
async fn lenproto_requests_are_counted_by_route_and_outcome() {
    run(Wire::Lenproto).await;
}

#[tokio::test]
async fn http1_requests_are_counted_by_route_and_outcome() {
    run(Wire::Http1).await;
}

#[tokio::test]
async fn http2_requests_are_counted_by_route_and_outcome() {
    run(Wire::Http2).await;
}

#[tokio::test]
async fn grpc_requests_are_counted_by_route_and_outcome() {
    run(Wire::Grpc).await;
}

/// Every metric the Grafana dashboard in `docs/` queries is one `/metrics` exposes
/// (a histogram through its `_bucket` series).
fn dashboard_queries_exist(scrape: &str) {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/grafana-dashboard.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .expect("the dashboard is JSON");
    let exposed: std::collections::HashSet<String> = scrape
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some(match kind {
                "counter" if !name.ends_with("_total") => format!("{name}_total"),
                "histogram" => format!("{name}_bucket"),
                _ => name.to_string(),
            })
        })
        .collect();
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("strait_") {
                let name: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    exposed.contains(&name),
                    "the dashboard queries {name}, which /metrics lacks: {expr}\n{exposed:?}"
                );
                queried += 1;
                rest = &rest[at + name.len()..];
            }
        }
    }
    assert!(queried >= 20, "{queried} queries");
}

/// Heartbeats: a caller's are answered and counted on its listener; the cluster's own
/// on an idle upstream connection are counted sent, and none unanswered when the host
/// answers them.
#[tokio::test]
async fn heartbeats_are_counted() {
    use bytes::BytesMut;
    use strait_codec_framework::{FrameKind, Limits};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    for wire in [Wire::Bolt, Wire::Dubbo] {
        let label = format!("{wire:?}");
        let up = wire.backend(Behaviour::Answer).await;
        let yaml = config(wire, &up.addr.to_string(), "127.0.0.1:9", "127.0.0.1:9").replace(
            &format!("{{ name: up, protocol: {},", wire.cluster_protocol()),
            &format!(
                "{{ name: up, protocol: {}, heartbeat: {{ interval: 50ms }},",
                wire.cluster_protocol()
            ),
        );
        assert!(yaml.contains("interval: 50ms"), "{yaml}");
        let registry = crate::wires::registry();
        let protocol = registry.get(wire.listener_protocol()).unwrap().clone();
        let config = strait::config::parse("metrics.yaml", &yaml, &registry).unwrap();
        let server = strait::Server::start(config, registry).await.unwrap();
        let proxy = server.listener_addr("front").unwrap();
        // A call opens the upstream connection that then idles.
        wire.call(proxy, "svc").await;

        let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
        let mut out = BytesMut::new();
        protocol
            .heartbeat_request(9)
            .expect("the protocol has a heartbeat")
            .encode(&mut out)
            .unwrap();
        stream.write_all(&out).await.unwrap();
        let mut codec = protocol.new_codec(Limits::default());
        let mut buf = BytesMut::new();
        let ack = loop {
            if let Some(frame) = codec.decode(&mut buf).unwrap() {
                break frame;
            }
            assert!(
                stream.read_buf(&mut buf).await.unwrap() > 0,
                "{label}: closed"
            );
        };
        assert_eq!(ack.kind(), FrameKind::HeartbeatAck, "{label}");

        let start = Instant::now();
        loop {
            let got = samples(&admin_get(&server, "/metrics").await);
            let sent = got
                .get("strait_cluster_heartbeats_sent_total{cluster=\"up\"}")
                .copied()
                .unwrap_or(0.0);
            if sent >= 2.0 {
                assert_eq!(
                    got.get("strait_listener_heartbeats_answered_total{listener=\"front\"}"),
                    Some(&1.0),
                    "{label}"
                );
                assert_eq!(
                    got.get("strait_cluster_heartbeats_unanswered_total{cluster=\"up\"}"),
                    Some(&0.0),
                    "{label}: the host answers them"
                );
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{label}: no heartbeat sent"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.shutdown().await;
    }
}
