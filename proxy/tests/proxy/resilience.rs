//! Upstream resilience, one table for every protocol: the same scenarios over Bolt,
//! Dubbo, lenproto (whose health check is its own heartbeat, from its crate alone),
//! HTTP/1.1, HTTP/2 and gRPC. Active health checks take a dead host out and bring it
//! back; outlier detection ejects a host that accepts and never answers while its TCP
//! check still passes; circuit breakers shed one cluster's overflow with the protocol's
//! overload answer and leave another cluster alone; a refused endpoint is routed around
//! with no failure seen by the caller.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::pipeline::hanging_endpoint;
use crate::support::admin_get;
use crate::wires::{Behaviour, Wire};

const WIRES: [Wire; 6] = [
    Wire::Bolt,
    Wire::Dubbo,
    Wire::Lenproto,
    Wire::Http1,
    Wire::Http2,
    Wire::Grpc,
];

/// Success and overload in each protocol's own numbering (as in the pipeline table).
fn success(wire: Wire) -> u32 {
    match wire {
        Wire::Bolt | Wire::Lenproto | Wire::Grpc => 0,
        Wire::Dubbo => 20,
        Wire::Http1 | Wire::Http2 => 200,
    }
}

fn overload(wire: Wire) -> u32 {
    match wire {
        Wire::Bolt => 4,
        Wire::Dubbo => 100,
        Wire::Lenproto => 6,
        Wire::Http1 | Wire::Http2 => 503,
        Wire::Grpc => 8,
    }
}

fn timeout(wire: Wire) -> u32 {
    match wire {
        Wire::Bolt => 7,
        Wire::Dubbo => 31,
        Wire::Lenproto => 5,
        Wire::Http1 | Wire::Http2 => 504,
        Wire::Grpc => 4,
    }
}

/// The protocol's own active check: its heartbeat for framed protocols, a path for
/// HTTP, the gRPC health service for gRPC.
fn own_check(wire: Wire) -> &'static str {
    match wire {
        Wire::Bolt | Wire::Dubbo | Wire::Lenproto => "type: protocol",
        Wire::Http1 | Wire::Http2 => "type: http, path: /health",
        Wire::Grpc => "type: grpc",
    }
}

/// Cluster `up` (hosts `endpoints`, with `extra` keys) for service `svc`, and cluster
/// `other` (host `other`) for service `other`.
fn config(
    wire: Wire,
    endpoints: &[SocketAddr],
    extra: &str,
    timeout: &str,
    other: SocketAddr,
) -> String {
    let endpoints: Vec<String> = endpoints
        .iter()
        .map(|a| format!("{{ address: \"{a}\" }}"))
        .collect();
    format!(
        r#"
admin: {{ address: "127.0.0.1:0" }}
drain_timeout: 200ms
listeners:
  - {{ name: front, address: "127.0.0.1:0", protocol: {lp}, route_config: rc }}
route_configs:
  - name: rc
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: {svc}
            route: {{ cluster: up, timeout: {timeout} }}
          - match: {other_match}
            route: {{ cluster: other, timeout: 5s }}
clusters:
  - name: up
    protocol: {cp}
    connect_timeout: 500ms
    {extra}
    endpoints: [{endpoints}]
  - name: other
    protocol: {cp}
    endpoints: [{{ address: "{other}" }}]
"#,
        lp = wire.listener_protocol(),
        cp = wire.cluster_protocol(),
        svc = wire.route_match("svc"),
        other_match = wire.route_match("other"),
        endpoints = endpoints.join(", "),
    )
}

async fn start(yaml: &str) -> strait::Server {
    let registry = crate::wires::registry();
    let config = strait::config::parse("resilience.yaml", yaml, &registry)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    strait::Server::start_with_hook(config, registry, None)
        .await
        .unwrap()
}

async fn cluster(server: &strait::Server, name: &str) -> Value {
    let all: Value = serde_json::from_str(&admin_get(server, "/clusters").await).unwrap();
    all["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no cluster {name}: {all}"))
}

/// Polls `/clusters` until `check` holds for cluster `up` (10 s at most); returns the
/// time it took.
async fn wait_for(
    server: &strait::Server,
    label: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Duration {
    let start = Instant::now();
    let mut last = Value::Null;
    while start.elapsed() < Duration::from_secs(10) {
        last = cluster(server, "up").await;
        if check(&last) {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{label}: timed out waiting for {what}: {last:#}");
}

fn check_status(up: &Value, host: usize) -> &str {
    up["hosts"][host]["health_check"]["status"]
        .as_str()
        .unwrap_or("none")
}

/// Two hosts under the protocol's own check: one is killed and marked failing, calls
/// meanwhile all reach the other; restarted on its address, it passes again and takes
/// its share.
async fn run_health_check(wire: Wire) {
    let label = format!("{wire:?}/health check");
    let a = wire.backend(Behaviour::Answer).await;
    let b = wire.backend(Behaviour::Answer).await;
    let extra = format!(
        "health_check: {{ {}, interval: 100ms, interval_jitter: 0s, timeout: 300ms, unhealthy_threshold: 2, healthy_threshold: 2 }}",
        own_check(wire)
    );
    let server = start(&config(wire, &[a.addr, b.addr], &extra, "5s", a.addr)).await;
    let proxy = server.listener_addr("front").unwrap();
    wait_for(&server, &label, "both hosts passing", |up| {
        check_status(up, 0) == "passing" && check_status(up, 1) == "passing"
    })
    .await;
    assert_eq!(cluster(&server, "up").await["health_check"], own_kind(wire));

    let b_addr = b.addr;
    b.kill();
    let detected = wait_for(&server, &label, "the killed host failing", |up| {
        check_status(up, 1) == "failing" && up["hosts"][1]["healthy"] == false
    })
    .await;
    eprintln!("{label}: killed host marked down after {detected:?} (interval 100ms x 2)");
    let before = a.received.load(Ordering::SeqCst);
    for _ in 0..10 {
        assert_eq!(
            wire.call(proxy, "svc").await,
            success(wire),
            "{label}: while one host is down"
        );
    }
    assert_eq!(
        a.received.load(Ordering::SeqCst) - before,
        10,
        "{label}: all to the live host"
    );
    let up = cluster(&server, "up").await;
    assert!(
        up["hosts"][1]["health_check"]["failure"]
            .as_str()
            .is_some_and(|f| f.starts_with("connect to ")),
        "{label}: the reason is shown: {up:#}"
    );

    let b = wire.backend_at(b_addr, Behaviour::Answer).await;
    let recovered = wait_for(&server, &label, "the restarted host passing", |up| {
        check_status(up, 1) == "passing" && up["hosts"][1]["healthy"] == true
    })
    .await;
    eprintln!("{label}: restarted host back after {recovered:?} (healthy_threshold 2)");
    for _ in 0..10 {
        assert_eq!(
            wire.call(proxy, "svc").await,
            success(wire),
            "{label}: after the return"
        );
    }
    assert_eq!(
        b.received.load(Ordering::SeqCst),
        5,
        "{label}: round robin again"
    );
    server.shutdown().await;
}

fn own_kind(wire: Wire) -> &'static str {
    match wire {
        Wire::Bolt | Wire::Dubbo | Wire::Lenproto => "protocol",
        Wire::Http1 | Wire::Http2 => "http",
        Wire::Grpc => "grpc",
    }
}

/// A host that accepts and never answers passes a TCP check, but outlier detection
/// ejects it after `consecutive_errors` timeouts; from then on every call succeeds.
async fn run_outlier(wire: Wire) {
    let label = format!("{wire:?}/outlier");
    let a = wire.backend(Behaviour::Answer).await;
    let b = wire.backend(Behaviour::Hang).await;
    let extra = "health_check: { type: tcp, interval: 100ms, interval_jitter: 0s }
    outlier_detection: { consecutive_errors: 2, interval: 100ms, base_ejection_time: 30s, max_ejection_percent: 50 }";
    let server = start(&config(wire, &[a.addr, b.addr], extra, "300ms", a.addr)).await;
    let proxy = server.listener_addr("front").unwrap();
    wait_for(&server, &label, "both hosts passing the TCP check", |up| {
        check_status(up, 0) == "passing" && check_status(up, 1) == "passing"
    })
    .await;
    // Round robin: a, b, a, b; the second timeout on b ejects it.
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(wire.call(proxy, "svc").await);
    }
    let (ok, to) = (success(wire), timeout(wire));
    assert_eq!(answers, [ok, to, ok, to], "{label}");
    wait_for(&server, &label, "the silent host ejected", |up| {
        !up["hosts"][1]["ejection"].is_null()
    })
    .await;
    let up = cluster(&server, "up").await;
    let host = &up["hosts"][1];
    assert_eq!(
        host["ejection"]["reason"], "consecutive_errors",
        "{label}: {host:#}"
    );
    assert_eq!(
        host["health_check"]["status"], "passing",
        "{label}: TCP still passes"
    );
    assert_eq!(host["ejections"], 1, "{label}");
    let hung = b.received.load(Ordering::SeqCst);
    for _ in 0..10 {
        assert_eq!(
            wire.call(proxy, "svc").await,
            ok,
            "{label}: after the ejection"
        );
    }
    assert_eq!(
        b.received.load(Ordering::SeqCst),
        hung,
        "{label}: nothing more to the ejected host"
    );
    server.shutdown().await;
}

/// `max_requests: 2` on a cluster whose host never answers: the third request gets
/// the protocol's overload answer at once, the other cluster's request succeeds, and
/// `/clusters` counts the overflow on the first cluster only. A request waiting for a
/// connect counts against `max_pending_requests` the same way.
async fn run_breakers(wire: Wire) {
    let label = format!("{wire:?}/breakers");
    let slow = wire.backend(Behaviour::Hang).await;
    let fast = wire.backend(Behaviour::Answer).await;
    let extra = "circuit_breakers: { max_requests: 2 }";
    let server = start(&config(wire, &[slow.addr], extra, "20s", fast.addr)).await;
    let proxy = server.listener_addr("front").unwrap();
    let held: Vec<_> = (0..2)
        .map(|_| tokio::spawn(async move { wire.call(proxy, "svc").await }))
        .collect();
    slow.wait_received(2).await;
    let shed_at = Instant::now();
    assert_eq!(
        wire.call(proxy, "svc").await,
        overload(wire),
        "{label}: overflow"
    );
    assert!(
        shed_at.elapsed() < Duration::from_secs(5),
        "{label}: answered, not queued"
    );
    assert_eq!(
        wire.call(proxy, "other").await,
        success(wire),
        "{label}: other cluster"
    );
    let up = cluster(&server, "up").await;
    assert_eq!(
        up["circuit_breakers"]["overflows"]["max_requests"], 1,
        "{label}: {up:#}"
    );
    let other = cluster(&server, "other").await;
    assert_eq!(
        other["circuit_breakers"]["overflows"]["max_requests"], 0,
        "{label}"
    );
    for h in held {
        h.abort();
    }
    server.shutdown().await;

    let (_listener, _fillers, hanging) = hanging_endpoint().await;
    let extra = "connect_timeout: 5s\n    circuit_breakers: { max_pending_requests: 1 }";
    let yaml = config(wire, &[hanging], extra, "2s", fast.addr)
        .replace("    connect_timeout: 500ms\n", "");
    let server = start(&yaml).await;
    let proxy = server.listener_addr("front").unwrap();
    let waiting = tokio::spawn(async move { wire.call(proxy, "svc").await });
    wait_for(&server, &label, "a request waiting for its connect", |up| {
        up["circuit_breakers"]["pending"] == 1
    })
    .await;
    assert_eq!(
        wire.call(proxy, "svc").await,
        overload(wire),
        "{label}: pending overflow"
    );
    let up = cluster(&server, "up").await;
    assert_eq!(
        up["circuit_breakers"]["overflows"]["max_pending_requests"], 1,
        "{label}: {up:#}"
    );
    waiting.abort();
    server.shutdown().await;
}

/// One endpoint refuses connections: every call still succeeds (tried on the other
/// host before anything was sent), and the refusing host is counted.
async fn run_refused(wire: Wire) {
    let label = format!("{wire:?}/refused");
    let good = wire.backend(Behaviour::Answer).await;
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = start(&config(wire, &[refused, good.addr], "", "5s", good.addr)).await;
    let proxy = server.listener_addr("front").unwrap();
    for i in 0..20 {
        assert_eq!(
            wire.call(proxy, "svc").await,
            success(wire),
            "{label}: call {i}"
        );
    }
    assert_eq!(good.received.load(Ordering::SeqCst), 20, "{label}");
    let up = cluster(&server, "up").await;
    assert!(
        up["hosts"][0]["connect_failures"].as_u64().unwrap() >= 1,
        "{label}: {up:#}"
    );
    server.shutdown().await;
}

fn reset_answer(wire: Wire) -> u32 {
    match wire {
        Wire::Bolt => 6,
        Wire::Dubbo => 60,
        Wire::Lenproto => 3,
        Wire::Http1 | Wire::Http2 => 502,
        Wire::Grpc => 14,
    }
}

/// A route `svc` with `retry_policy` to hosts `bad` (behaving as told) then `good`.
async fn retry_proxy(
    wire: Wire,
    bad: Behaviour,
    policy: &str,
    timeout: &str,
    cluster_extra: &str,
) -> (strait::Server, crate::wires::Backend, crate::wires::Backend) {
    let bad = wire.backend(bad).await;
    let good = wire.backend(Behaviour::Answer).await;
    let yaml = config(
        wire,
        &[bad.addr, good.addr],
        cluster_extra,
        timeout,
        good.addr,
    )
    .replacen(
        &format!("timeout: {timeout} }}"),
        &format!("timeout: {timeout}, retry_policy: {policy} }}"),
        1,
    );
    (start(&yaml).await, bad, good)
}

/// Retries under a route's policy: a reset, a server-error answer and an attempt's
/// own timeout are each tried again on the other host, so the caller sees no failure;
/// the failed attempts count on their host; no retry outlives the request's deadline;
/// and `max_retries: 0` turns retries off.
async fn run_retries(wire: Wire) {
    for (bad, policy) in [
        (Behaviour::Reset, "{ retry_on: [reset], num_retries: 1 }"),
        (
            Behaviour::ServerError,
            "{ retry_on: [5xx], num_retries: 1 }",
        ),
        (
            Behaviour::Hang,
            "{ retry_on: [timeout], num_retries: 1, per_try_timeout: 200ms }",
        ),
    ] {
        let label = format!("{wire:?}/retry {bad:?}");
        let (server, bad, good) = retry_proxy(wire, bad, policy, "10s", "").await;
        let proxy = server.listener_addr("front").unwrap();
        for i in 0..10 {
            assert_eq!(
                wire.call(proxy, "svc").await,
                success(wire),
                "{label}: call {i}"
            );
        }
        assert_eq!(good.received.load(Ordering::SeqCst), 10, "{label}");
        assert!(
            bad.received.load(Ordering::SeqCst) >= 5,
            "{label}: round robin tried it"
        );
        let up = cluster(&server, "up").await;
        assert_eq!(
            up["outcomes"]["success"], 10,
            "{label}: one outcome per request: {up:#}"
        );
        assert_eq!(
            up["hosts"][0]["failures"].as_u64(),
            Some(bad.received.load(Ordering::SeqCst) as u64),
            "{label}: every failed attempt counts on its host: {up:#}"
        );
        assert_eq!(
            up["circuit_breakers"]["retries"], 0,
            "{label}: admissions given back"
        );
        assert_eq!(
            up["circuit_breakers"]["retried"].as_u64(),
            Some(bad.received.load(Ordering::SeqCst) as u64),
            "{label}: one retry per failed attempt: {up:#}"
        );
        server.shutdown().await;
    }

    // Retries never extend the request's deadline: ten 300 ms attempts fit 3 s, the
    // request has 500 ms.
    let label = format!("{wire:?}/retry deadline");
    let policy = "{ retry_on: [timeout], num_retries: 10, per_try_timeout: 300ms, retry_back_off: { base_interval: 1ms } }";
    let hang_a = wire.backend(Behaviour::Hang).await;
    let hang_b = wire.backend(Behaviour::Hang).await;
    let yaml = config(wire, &[hang_a.addr, hang_b.addr], "", "500ms", hang_a.addr).replacen(
        "timeout: 500ms }",
        &format!("timeout: 500ms, retry_policy: {policy} }}"),
        1,
    );
    let server = start(&yaml).await;
    let proxy = server.listener_addr("front").unwrap();
    let started = Instant::now();
    assert_eq!(wire.call(proxy, "svc").await, timeout(wire), "{label}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{label}: took {took:?}");
    assert_eq!(
        hang_a.received.load(Ordering::SeqCst) + hang_b.received.load(Ordering::SeqCst),
        2,
        "{label}: 300 ms, then what is left of 500 ms"
    );
    server.shutdown().await;

    // `max_retries: 0`: the reset reaches the caller.
    let label = format!("{wire:?}/no retries");
    let (server, _bad, _good) = retry_proxy(
        wire,
        Behaviour::Reset,
        "{ retry_on: [reset] }",
        "10s",
        "circuit_breakers: { max_retries: 0 }",
    )
    .await;
    let proxy = server.listener_addr("front").unwrap();
    assert_eq!(wire.call(proxy, "svc").await, reset_answer(wire), "{label}");
    let up = cluster(&server, "up").await;
    assert_eq!(
        up["circuit_breakers"]["overflows"]["max_retries"], 1,
        "{label}: {up:#}"
    );
    server.shutdown().await;
}

/// Which of `backends` got the one request made since `before`.
fn served_by(backends: &[crate::wires::Backend], before: &[usize]) -> usize {
    let got: Vec<usize> = backends
        .iter()
        .zip(before)
        .filter(|(b, n)| b.received.load(Ordering::SeqCst) > **n)
        .map(|(b, _)| backends.iter().position(|x| x.addr == b.addr).unwrap())
        .collect();
    assert_eq!(got.len(), 1, "one backend served the call");
    got[0]
}

fn counts(backends: &[crate::wires::Backend]) -> Vec<usize> {
    backends
        .iter()
        .map(|b| b.received.load(Ordering::SeqCst))
        .collect()
}

/// `ring_hash` and `maglev` on a routing variable: each key always reaches the same
/// host; when one host dies, its keys move to the others and no other key moves.
async fn run_hashing(wire: Wire) {
    for policy in ["ring_hash", "maglev"] {
        let label = format!("{wire:?}/{policy}");
        let backends = vec![
            wire.backend(Behaviour::Answer).await,
            wire.backend(Behaviour::Answer).await,
            wire.backend(Behaviour::Answer).await,
        ];
        let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
        let variable = match wire {
            Wire::Bolt | Wire::Dubbo | Wire::Lenproto => "service",
            _ => "path",
        };
        let extra = format!("lb_policy: {policy}\n    hash_key: {{ variable: {variable} }}");
        // Every service starting with `svc` goes to cluster `up`.
        let yaml = config(wire, &addrs, &extra, "5s", addrs[0])
            .replace("exact: \"svc\"", "regex: \"svc.*\"");
        let server = start(&yaml).await;
        let proxy = server.listener_addr("front").unwrap();
        let keys: Vec<String> = (0..30).map(|i| format!("svc-{i}")).collect();
        let mut owner = Vec::new();
        for key in &keys {
            let before = counts(&backends);
            assert_eq!(wire.call(proxy, key).await, success(wire), "{label}");
            let first = served_by(&backends, &before);
            let before = counts(&backends);
            assert_eq!(wire.call(proxy, key).await, success(wire), "{label}");
            assert_eq!(
                served_by(&backends, &before),
                first,
                "{label}: {key} keeps its host"
            );
            owner.push(first);
        }
        let used: std::collections::HashSet<usize> = owner.iter().copied().collect();
        assert!(
            used.len() >= 2,
            "{label}: keys spread over the hosts: {owner:?}"
        );
        let dead = owner[0];
        backends[dead].kill();
        for (key, &was) in keys.iter().zip(&owner) {
            let before = counts(&backends);
            assert_eq!(
                wire.call(proxy, key).await,
                success(wire),
                "{label}: {key} after the kill"
            );
            let now = served_by(&backends, &before);
            if was == dead {
                assert_ne!(now, dead, "{label}");
            } else {
                assert_eq!(now, was, "{label}: {key} must not move");
            }
        }
        server.shutdown().await;
    }
}

/// A `strict_dns` cluster names its host `localhost:PORT`: it resolves at start
/// (`127.0.0.1`, and `::1` where the system says so), requests reach the backend, and
/// the dump keeps the name.
async fn run_dns(wire: Wire) {
    let label = format!("{wire:?}/strict_dns");
    let backend = wire.backend(Behaviour::Answer).await;
    let yaml = config(
        wire,
        &[backend.addr],
        "type: strict_dns\n    dns_refresh_rate: 100ms",
        "5s",
        backend.addr,
    )
    .replacen(
        &format!("{{ address: \"{}\" }}", backend.addr),
        &format!("{{ address: \"localhost:{}\" }}", backend.addr.port()),
        1,
    );
    let server = start(&yaml).await;
    let proxy = server.listener_addr("front").unwrap();
    for _ in 0..5 {
        assert_eq!(wire.call(proxy, "svc").await, success(wire), "{label}");
    }
    assert_eq!(backend.received.load(Ordering::SeqCst), 5, "{label}");
    // A few refreshes later the same host is there, not added twice.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let up = cluster(&server, "up").await;
    let hosts: Vec<&str> = up["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap())
        .collect();
    let v4 = backend.addr.to_string();
    assert_eq!(
        hosts.iter().filter(|h| **h == v4).count(),
        1,
        "{label}: {up:#}"
    );
    assert!(
        hosts.iter().all(|h| *h == v4 || h.starts_with("[::1]")),
        "{label}: {up:#}"
    );
    let dump: Value =
        serde_json::from_str(&admin_get(&server, "/config_dump?format=json").await).unwrap();
    let up_dump = &dump["clusters"][0];
    assert_eq!(up_dump["type"], "strict_dns", "{label}");
    assert_eq!(up_dump["dns_refresh_rate"], "100ms", "{label}");
    assert_eq!(
        up_dump["endpoints"][0]["address"],
        format!("localhost:{}", backend.addr.port())
    );
    server.shutdown().await;
}

/// A cluster with an active check is warmed before the listener takes traffic: the
/// first requests after start never reach a host whose first check has not passed
/// (here one that accepts and never answers its probe).
async fn run_warmup(wire: Wire) {
    let label = format!("{wire:?}/warm-up");
    // Accepts, and never answers anything: not even the health check.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let good = wire.backend(Behaviour::Answer).await;
    let extra = format!(
        "health_check: {{ {}, interval: 10s, interval_jitter: 0s, timeout: 300ms }}",
        own_check(wire)
    );
    let endpoints = [silent_addr, good.addr];
    let server = start(&config(wire, &endpoints, &extra, "5s", good.addr)).await;
    let proxy = server.listener_addr("front").unwrap();
    for i in 0..4 {
        let got = wire.call(proxy, "svc").await;
        assert_eq!(got, success(wire), "{label}: call {i}");
    }
    assert_eq!(
        good.received.load(Ordering::SeqCst),
        4,
        "{label}: all to the checked host"
    );
    let up = cluster(&server, "up").await;
    assert_eq!(check_status(&up, 0), "failing", "{label}: {up:#}");
    assert_eq!(up["hosts"][0]["requests"], 0, "{label}: {up:#}");
    server.shutdown().await;
    held.abort();
}

/// Outlier detection's second check: among five hosts, the one whose every answer is
/// the protocol's server error stands out by success rate and is ejected for it (the
/// consecutive-errors check is off here), after which every call succeeds.
async fn run_success_rate(wire: Wire) {
    let label = format!("{wire:?}/success rate");
    let mut backends = Vec::new();
    for _ in 0..4 {
        backends.push(wire.backend(Behaviour::Answer).await);
    }
    let bad = wire.backend(Behaviour::ServerError).await;
    let mut endpoints: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    endpoints.push(bad.addr);
    let extra = "outlier_detection: { consecutive_errors: 0, interval: 200ms, base_ejection_time: 30s, \
                 max_ejection_percent: 50, success_rate_minimum_hosts: 5, success_rate_request_volume: 5 }";
    let server = start(&config(wire, &endpoints, extra, "5s", bad.addr)).await;
    let proxy = server.listener_addr("front").unwrap();
    // 50 calls: 10 per host, the bad host's 10 all server errors.
    for _ in 0..50 {
        wire.call(proxy, "svc").await;
    }
    assert_eq!(bad.received.load(Ordering::SeqCst), 10, "{label}");
    wait_for(&server, &label, "the failing host ejected", |up| {
        !up["hosts"][4]["ejection"].is_null()
    })
    .await;
    let up = cluster(&server, "up").await;
    assert_eq!(
        up["hosts"][4]["ejection"]["reason"], "success_rate",
        "{label}: {up:#}"
    );
    for i in 0..4 {
        assert!(
            up["hosts"][i]["ejection"].is_null(),
            "{label}: only the bad host: {up:#}"
        );
    }
    for _ in 0..20 {
        assert_eq!(
            wire.call(proxy, "svc").await,
            success(wire),
            "{label}: after the ejection"
        );
    }
    assert_eq!(
        bad.received.load(Ordering::SeqCst),
        10,
        "{label}: nothing more to it"
    );
    server.shutdown().await;
}

macro_rules! table {
    ($($name:ident => $run:ident,)*) => {$(
        #[tokio::test]
        async fn $name() {
            for wire in WIRES {
                $run(wire).await;
            }
        }
    )*};
}

table! {
    health_checks_take_a_dead_host_out_and_back_on_every_protocol => run_health_check,
    outlier_detection_ejects_a_silent_host_on_every_protocol => run_outlier,
    circuit_breakers_shed_one_clusters_overflow_on_every_protocol => run_breakers,
    a_refused_endpoint_is_routed_around_on_every_protocol => run_refused,
    hashing_balancers_keep_keys_on_their_hosts_on_every_protocol => run_hashing,
    retries_route_around_failed_attempts_on_every_protocol => run_retries,
    dns_clusters_resolve_their_names_on_every_protocol => run_dns,
    clusters_with_checks_are_warmed_before_traffic_on_every_protocol => run_warmup,
    success_rate_outliers_are_ejected_on_every_protocol => run_success_rate,
}
