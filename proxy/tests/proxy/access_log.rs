//! Access logs, one table for every protocol: a JSON line per request, checked field by
//! field (time, protocol, service, method, path, status, outcome, route, cluster,
//! upstream host, bytes, the caller's trace id, its address), and a format string's
//! line for the same traffic.

use serde_json::Value;

use crate::wires::{Behaviour, Wire, proxy_config};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn config(wire: Wire, up: &str, json_log: &str, text_log: &str) -> String {
    let json = format!(", access_log: {{ path: \"{json_log}\", format: json }}");
    let text = format!(
        ", access_log: {{ path: \"{text_log}\", format: \"%LISTENER% %PROTOCOL% %ROUTE% %STATUS% %OUTCOME% %UPSTREAM_HOST% %TRACE_ID%\" }}"
    );
    proxy_config(
        wire,
        "",
        &[("front", &json), ("plain", &text)],
        &[("ok", "svc", "{ cluster: up, timeout: 5s }")],
        &[("up", up.to_string(), "")],
    )
}

/// What the `service`, `method` and `path` variables of the table's request are.
fn variables(wire: Wire) -> (Value, Value, Value) {
    let s = |v: &str| Value::from(v);
    match wire {
        Wire::Bolt => (s("svc"), Value::Null, Value::Null),
        Wire::Dubbo => (s("svc"), s("sayHello"), s("svc")),
        Wire::Lenproto => (s("svc"), Value::Null, Value::Null),
        Wire::Http1 => (Value::Null, Value::Null, s("/svc/call")),
        Wire::Http2 => (Value::Null, Value::Null, s("/svc.Echo/Call")),
        Wire::Grpc => (s("svc.Echo"), s("Call"), s("/svc.Echo/Call")),
    }
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

async fn run(wire: Wire) {
    let label = format!("{wire:?}");
    let up = wire.backend(Behaviour::Answer).await;
    let dir = std::env::temp_dir().join(format!(
        "strait-access-{}-{label}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (json_log, text_log) = (dir.join("access.json"), dir.join("access.log"));
    let yaml = config(
        wire,
        &up.addr.to_string(),
        &json_log.display().to_string(),
        &text_log.display().to_string(),
    );
    let registry = crate::wires::registry();
    let config = strait::config::parse("access.yaml", &yaml, &registry)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let server = strait::Server::start(config, registry).await.unwrap();
    let front = server.listener_addr("front").unwrap();
    let plain = server.listener_addr("plain").unwrap();

    let traced = [("traceparent", TRACEPARENT)];
    let ok = wire.call_with(front, "svc", &traced).await;
    let unrouted = wire.call(front, "nowhere").await;
    wire.call_with(plain, "svc", &traced).await;
    // Lines are written off the request path; shutdown waits for them.
    server.shutdown().await;

    let json = lines(&json_log);
    assert_eq!(json.len(), 2, "{label}: one line per request: {json:#?}");
    let first: Value = serde_json::from_str(&json[0]).unwrap();
    let (service, method, path) = variables(wire);
    let trace = Value::from(TRACE_ID);
    let expect = [
        ("listener", Value::from("front")),
        ("protocol", Value::from(wire.record_protocol())),
        ("service", service),
        ("method", method),
        ("path", path),
        ("route", Value::from("ok")),
        ("cluster", Value::from("up")),
        ("status", Value::from(ok)),
        ("outcome", Value::from("success")),
        ("upstream_host", Value::from(up.addr.to_string())),
        ("attempts", Value::from(1)),
        ("trace_id", trace.clone()),
    ];
    for (key, want) in &expect {
        assert_eq!(&first[key], want, "{label}: {key} in {first:#}");
    }
    let started = first["start_time"].as_str().unwrap_or_default();
    assert!(
        started.len() == 24 && started.ends_with('Z') && started.starts_with("20"),
        "{label}: start_time {started:?}"
    );
    let duration = first["duration_ms"].as_f64().unwrap();
    let upstream = first["upstream_duration_ms"].as_f64().unwrap();
    assert!(
        (0.0..5000.0).contains(&duration) && upstream <= duration,
        "{label}: {first:#}"
    );
    assert!(
        first["bytes_received"].as_u64().unwrap() > 0,
        "{label}: {first:#}"
    );
    assert!(first["bytes_sent"].as_u64().is_some(), "{label}: {first:#}");
    assert!(
        first["downstream_peer"]
            .as_str()
            .is_some_and(|p| p.starts_with("127.0.0.1:")),
        "{label}: {first:#}"
    );

    let second: Value = serde_json::from_str(&json[1]).unwrap();
    assert_eq!(second["outcome"], "no_route", "{label}: {second:#}");
    assert_eq!(second["status"], Value::from(unrouted), "{label}");
    for key in [
        "route",
        "cluster",
        "upstream_host",
        "upstream_duration_ms",
        "trace_id",
    ] {
        assert_eq!(second[key], Value::Null, "{label}: {key} in {second:#}");
    }

    let text = lines(&text_log);
    let trace = TRACE_ID;
    assert_eq!(
        text,
        [format!(
            "plain {} ok {ok} success {} {trace}",
            wire.record_protocol(),
            up.addr
        )],
        "{label}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos().into())
}

#[tokio::test]
async fn bolt_requests_are_logged() {
    run(Wire::Bolt).await;
}

#[tokio::test]
async fn dubbo_requests_are_logged() {
    run(Wire::Dubbo).await;
}

#[tokio::test]
async fn lenproto_requests_are_logged() {
    run(Wire::Lenproto).await;
}

#[tokio::test]
async fn http1_requests_are_logged() {
    run(Wire::Http1).await;
}

#[tokio::test]
async fn http2_requests_are_logged() {
    run(Wire::Http2).await;
}

#[tokio::test]
async fn grpc_requests_are_logged() {
    run(Wire::Grpc).await;
}

/// An access log that cannot be opened stops the start with an error naming the file.
#[tokio::test]
async fn an_unopenable_access_log_is_a_start_error() {
    let yaml = config(
        Wire::Bolt,
        "127.0.0.1:9",
        "/nonexistent-dir/strait/access.json",
        "/nonexistent-dir/strait/access.log",
    );
    let registry = crate::wires::registry();
    let config = strait::config::parse("access.yaml", &yaml, &registry).unwrap();
    let error = match strait::Server::start(config, registry).await {
        Ok(_) => panic!("started with an access log it cannot write"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains("/nonexistent-dir/strait/access.json"),
        "{error}"
    );
}
