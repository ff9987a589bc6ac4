//! Tracing, one table for every protocol, against an OTLP receiver built on the
//! official `opentelemetry-proto` stubs (Python, `tests/interop/tracing`): a caller's
//! W3C context continues through Strait (its trace id reaches the upstream request and
//! the spans, Strait's server span is the caller's child and its client span the
//! upstream's parent), a request without one starts a trace, a parent's sampled flag is
//! honoured, and a collector that is down changes no answer.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::admin_get;
use crate::wires::{Behaviour, Wire, proxy_config};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn traceparent(flags: &str) -> String {
    format!("00-{TRACE_ID}-{CALLER_SPAN}-{flags}")
}

/// The OTLP receiver: its port and the spans it printed so far.
struct Receiver {
    child: Child,
    port: u16,
    lines: Arc<parking_lot::Mutex<Vec<Value>>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    fn start() -> Receiver {
        Receiver::start_script("otlp_receiver.py")
    }

    /// Runs `tests/interop/tracing/<script>`, a receiver that prints what it gets.
    fn start_script(script: &str) -> Receiver {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/interop/tracing")
            .join(script);
        let mut child = Command::new("python3")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "python3 runs the OTLP receiver (scripts/install-test-peers installs its stubs)",
            );
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if v["event"] == "listening" {
                    let _ = port_tx.send(v["port"].as_u64().unwrap_or(0) as u16);
                } else {
                    sink.lock().push(v);
                }
            }
        });
        let port = port_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the OTLP receiver listens (are the Python peers installed?)");
        Receiver { child, port, lines }
    }

    /// Waits (10 s at most) until `n` spans of `trace` arrived; returns them.
    async fn spans(&self, trace: &str, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let spans: Vec<Value> = self
                .lines
                .lock()
                .iter()
                .filter(|s| s["trace_id"] == trace && s["event"] != "listening")
                .cloned()
                .collect();
            if spans.len() >= n || start.elapsed() > Duration::from_secs(10) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn config(wire: Wire, up: &str, endpoint: &str, ratio: &str) -> String {
    config_for("opentelemetry", wire, up, endpoint, ratio)
}

fn config_for(provider: &str, wire: Wire, up: &str, endpoint: &str, ratio: &str) -> String {
    proxy_config(
        wire,
        &format!(
            "admin: {{ address: \"127.0.0.1:0\" }}\ntracing: {{ provider: {provider}, endpoint: \"{endpoint}\", service_name: strait-test, sampling_ratio: {ratio} }}"
        ),
        &[("front", "")],
        &[("ok", "svc", "{ cluster: up, timeout: 5s }")],
        &[("up", up.to_string(), "")],
    )
}

async fn start(yaml: &str) -> strait::Server {
    let registry = crate::wires::registry();
    let config = strait::config::parse("tracing.yaml", yaml, &registry)
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    strait::Server::start(config, registry).await.unwrap()
}

fn find<'a>(spans: &'a [Value], kind: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} span in {spans:#?}"))
}

/// The parent span id in a `traceparent`.
fn parent_of(header: &str) -> &str {
    header.split('-').nth(2).unwrap_or_default()
}

async fn run(wire: Wire) {
    let label = format!("{wire:?}");
    let receiver = Receiver::start();
    let up = wire.backend(Behaviour::Answer).await;
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let server = start(&config(wire, &up.addr.to_string(), &endpoint, "1.0")).await;
    let proxy = server.listener_addr("front").unwrap();

    let ok = wire
        .call_with(proxy, "svc", &[("traceparent", &traceparent("01"))])
        .await;
    wire.call(proxy, "svc").await;
    let seen = up.traceparents.lock().clone();
    assert_eq!(seen.len(), 2, "{label}: {seen:?}");

    // The caller's trace continues upstream, under Strait's client span.
    let continued = seen[0]
        .clone()
        .unwrap_or_else(|| panic!("{label}: no traceparent upstream"));
    assert!(
        continued.starts_with(&format!("00-{TRACE_ID}-")) && continued.ends_with("-01"),
        "{label}: {continued}"
    );
    let upstream_parent = parent_of(&continued).to_string();
    assert_ne!(
        upstream_parent, CALLER_SPAN,
        "{label}: Strait's span, not the caller's"
    );

    let spans = receiver.spans(TRACE_ID, 2).await;
    assert_eq!(spans.len(), 2, "{label}: {spans:#?}");
    let server_span = find(&spans, "SERVER");
    let client_span = find(&spans, "CLIENT");
    assert_eq!(
        server_span["parent_span_id"], CALLER_SPAN,
        "{label}: {server_span:#}"
    );
    assert_eq!(
        client_span["parent_span_id"], server_span["span_id"],
        "{label}"
    );
    assert_eq!(client_span["span_id"], upstream_parent.as_str(), "{label}");
    assert_eq!(server_span["service"], "strait-test");
    let attrs = &server_span["attributes"];
    assert_eq!(
        attrs["strait.protocol"],
        wire.record_protocol(),
        "{label}: {attrs:#}"
    );
    assert_eq!(attrs["strait.route"], "ok", "{label}: {attrs:#}");
    assert_eq!(attrs["strait.cluster"], "up", "{label}: {attrs:#}");
    assert_eq!(attrs["strait.outcome"], "success", "{label}: {attrs:#}");
    assert_eq!(attrs["client.address"], "127.0.0.1", "{label}: {attrs:#}");
    match wire {
        Wire::Http1 | Wire::Http2 => {
            assert_eq!(attrs["http.response.status_code"], i64::from(ok), "{label}");
            assert!(
                attrs["url.path"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("/svc")
            );
        }
        Wire::Grpc => {
            assert_eq!(attrs["rpc.system"], "grpc");
            assert_eq!(attrs["rpc.service"], "svc.Echo");
            assert_eq!(attrs["rpc.method"], "Call");
            assert_eq!(attrs["rpc.grpc.status_code"], i64::from(ok));
            assert_eq!(server_span["name"], "svc.Echo/Call");
        }
        _ => {
            assert_eq!(attrs["rpc.system"], wire.record_protocol(), "{label}");
            assert_eq!(attrs["rpc.service"], "svc", "{label}: {attrs:#}");
            assert_eq!(attrs["rpc.response.status_code"], i64::from(ok), "{label}");
        }
    }
    let client_attrs = &client_span["attributes"];
    assert_eq!(client_attrs["server.address"], "127.0.0.1", "{label}");
    assert_eq!(
        client_attrs["server.port"],
        i64::from(up.addr.port()),
        "{label}"
    );
    let (s0, s1) = (
        server_span["start_ns"].as_u64().unwrap(),
        server_span["end_ns"].as_u64().unwrap(),
    );
    let (c0, c1) = (
        client_span["start_ns"].as_u64().unwrap(),
        client_span["end_ns"].as_u64().unwrap(),
    );
    assert!(
        s0 <= c0 && c1 <= s1 && s0 < s1,
        "{label}: the client span lies within the server span"
    );

    // Without a context, Strait starts the trace: the upstream gets its new trace id.
    let fresh = seen[1]
        .clone()
        .unwrap_or_else(|| panic!("{label}: no traceparent upstream"));
    let fresh_trace = fresh.split('-').nth(1).unwrap_or_default().to_string();
    assert_ne!(fresh_trace, TRACE_ID);
    let spans = receiver.spans(&fresh_trace, 2).await;
    assert_eq!(
        find(&spans, "SERVER")["parent_span_id"],
        "",
        "{label}: a root span"
    );

    let metrics = admin_get(&server, "/metrics").await;
    assert!(
        metrics.contains("strait_tracing_spans_dropped_total 0"),
        "{metrics}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bolt_requests_are_traced() {
    run(Wire::Bolt).await;
}

#[tokio::test]
async fn dubbo_requests_are_traced() {
    run(Wire::Dubbo).await;
}

#[tokio::test]
async fn lenproto_requests_are_traced() {
    run(Wire::Lenproto).await;
}

#[tokio::test]
async fn http1_requests_are_traced() {
    run(Wire::Http1).await;
}

#[tokio::test]
async fn http2_requests_are_traced() {
    run(Wire::Http2).await;
}

#[tokio::test]
async fn grpc_requests_are_traced() {
    run(Wire::Grpc).await;
}

/// At a ratio of 0 new traces are not sampled, but a caller's sampled flag is honoured:
/// `01` is traced through, `00` passes upstream untouched and records nothing.
#[tokio::test]
async fn a_parents_sampling_decision_is_honoured() {
    let wire = Wire::Http1;
    let receiver = Receiver::start();
    let up = wire.backend(Behaviour::Answer).await;
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let server = start(&config(wire, &up.addr.to_string(), &endpoint, "0.0")).await;
    let proxy = server.listener_addr("front").unwrap();
    wire.call(proxy, "svc").await;
    wire.call_with(proxy, "svc", &[("traceparent", &traceparent("00"))])
        .await;
    wire.call_with(proxy, "svc", &[("traceparent", &traceparent("01"))])
        .await;
    let seen = up.traceparents.lock().clone();
    assert_eq!(
        seen[0], None,
        "unsampled and no caller context: nothing added"
    );
    assert_eq!(
        seen[1].as_deref(),
        Some(traceparent("00").as_str()),
        "passed through"
    );
    assert!(
        seen[2]
            .as_deref()
            .is_some_and(|t| t.ends_with("-01") && parent_of(t) != CALLER_SPAN)
    );
    let spans = receiver.spans(TRACE_ID, 2).await;
    assert_eq!(spans.len(), 2, "only the sampled call: {spans:#?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.lines.lock().len(), 2, "nothing else was exported");
    server.shutdown().await;
}

/// A collector that refuses connections: every answer is still right, and the lost
/// exports are counted.
#[tokio::test]
async fn a_collector_that_is_down_changes_no_answer() {
    for wire in [Wire::Bolt, Wire::Http1, Wire::Grpc] {
        let up = wire.backend(Behaviour::Answer).await;
        let down = format!("http://{}", crate::closed_port());
        let server = start(&config(wire, &up.addr.to_string(), &down, "1.0")).await;
        let proxy = server.listener_addr("front").unwrap();
        for _ in 0..20 {
            let status = wire
                .call_with(proxy, "svc", &[("traceparent", &traceparent("01"))])
                .await;
            assert!([0, 20, 200].contains(&status), "{wire:?}: {status}");
        }
        assert_eq!(up.received.load(std::sync::atomic::Ordering::SeqCst), 20);
        let start = Instant::now();
        loop {
            let metrics = admin_get(&server, "/metrics").await;
            if metrics.contains("strait_tracing_export_failures_total 0") {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "{wire:?}: {metrics}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            assert!(
                metrics.contains("strait_tracing_spans_exported_total 0"),
                "{metrics}"
            );
            break;
        }
        server.shutdown().await;
    }
}

/// A collector that accepts no connection in time (its backlog is full): answers are
/// unchanged while its exports wait out their timeout.
#[tokio::test]
async fn a_blackholed_collector_changes_no_answer() {
    let (_listener, _fillers, hole) = crate::pipeline::hanging_endpoint().await;
    let wire = Wire::Bolt;
    let up = wire.backend(Behaviour::Answer).await;
    let server = start(&config(
        wire,
        &up.addr.to_string(),
        &format!("http://{hole}"),
        "1.0",
    ))
    .await;
    let proxy = server.listener_addr("front").unwrap();
    for _ in 0..50 {
        assert_eq!(wire.call(proxy, "svc").await, 0);
    }
    assert_eq!(up.received.load(std::sync::atomic::Ordering::SeqCst), 50);
    let metrics = admin_get(&server, "/metrics").await;
    assert!(
        metrics.contains("strait_tracing_spans_exported_total 0"),
        "{metrics}"
    );
    server.shutdown().await;
}

/// An OpenTelemetry SDK client and server (Python) through Strait: one connected trace,
/// client span → Strait's server span → Strait's client span → the server's span.
#[tokio::test]
async fn python_sdk_client_and_server_share_one_trace_through_strait() {
    let receiver = Receiver::start();
    let collector = format!("http://127.0.0.1:{}", receiver.port);
    let peers = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/interop/tracing/otel_peers.py");
    let mut backend = Command::new("python3")
        .arg(&peers)
        .args(["server", "--collector", &collector])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(backend.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let listening: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("{line}"));
    let backend_addr = format!("127.0.0.1:{}", listening["port"]);
    let yaml = config(Wire::Http1, &backend_addr, &collector, "1.0");
    let server = start(&yaml).await;
    let proxy = server.listener_addr("front").unwrap();
    let url = format!("http://{proxy}/svc/hello");
    let called = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(&peers)
            .args(["client", "--collector", &collector, "--url", &url])
            .stderr(Stdio::inherit())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let _ = backend.kill();
    let _ = backend.wait();
    let called: Value = serde_json::from_slice(&called.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&called.stdout)));
    assert_eq!(called["status"], 200, "{called:#}");
    let trace = called["trace_id"].as_str().unwrap().to_string();
    assert_eq!(
        called["seen_trace_id"],
        trace.as_str(),
        "the server continued the trace"
    );

    let spans = receiver.spans(&trace, 4).await;
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let by = |service: &str, kind: &str| {
        spans
            .iter()
            .find(|s| s["service"] == service && s["kind"] == kind)
            .unwrap_or_else(|| panic!("no {service} {kind} span: {spans:#?}"))
            .clone()
    };
    let client = by("otel-client", "CLIENT");
    let strait_server = by("strait-test", "SERVER");
    let strait_client = by("strait-test", "CLIENT");
    let backend_span = by("otel-server", "SERVER");
    assert_eq!(client["span_id"], called["span_id"]);
    assert_eq!(strait_server["parent_span_id"], client["span_id"]);
    assert_eq!(strait_client["parent_span_id"], strait_server["span_id"]);
    assert_eq!(backend_span["parent_span_id"], strait_client["span_id"]);
    server.shutdown().await;
}

/// Standard base64 (what `sw8` fields are).
#[cfg(feature = "skywalking")]
fn b64(text: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                char::from(T[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

#[cfg(feature = "skywalking")]
fn unb64(text: &str) -> String {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for b in text.trim_end_matches('=').bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    String::from_utf8(out).unwrap()
}

/// SkyWalking, to a stand-in OAP on apache-skywalking's v3 stubs: an incoming `sw8`
/// continues the caller's trace (Strait's segment references the caller's), the
/// upstream request carries an `sw8` naming Strait's exit span, and a request without
/// one starts a trace.
#[cfg(feature = "skywalking")]
async fn run_skywalking(wire: Wire) {
    let label = format!("{wire:?}/skywalking");
    let receiver = Receiver::start_script("skywalking_receiver.py");
    let up = wire.backend(Behaviour::Answer).await;
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let yaml = config_for("skywalking", wire, &up.addr.to_string(), &endpoint, "1.0");
    let server = start(&yaml).await;
    let proxy = server.listener_addr("front").unwrap();
    let caller = format!(
        "1-{}-{}-3-{}-{}-{}-{}",
        b64("caller.trace.1"),
        b64("caller.segment.1"),
        b64("caller-svc"),
        b64("caller-1"),
        b64("/svc"),
        b64(&proxy.to_string())
    );
    wire.call_with(proxy, "svc", &[("sw8", &caller)]).await;
    wire.call(proxy, "svc").await;

    let seen = up.sw8s.lock().clone();
    assert_eq!(seen.len(), 2, "{label}: {seen:?}");
    let fields: Vec<String> = seen[0]
        .clone()
        .unwrap_or_else(|| panic!("{label}: no sw8 upstream"))
        .split('-')
        .map(str::to_string)
        .collect();
    assert_eq!(fields.len(), 8, "{label}: {fields:?}");
    assert_eq!(
        unb64(&fields[1]),
        "caller.trace.1",
        "{label}: the caller's trace continues"
    );
    assert_eq!(fields[3], "1", "{label}: Strait's exit span");
    assert_eq!(unb64(&fields[4]), "strait-test");
    let strait_segment = unb64(&fields[2]);

    let segments = receiver.spans("caller.trace.1", 1).await;
    assert_eq!(segments.len(), 1, "{label}: {segments:#?}");
    let segment = &segments[0];
    assert_eq!(segment["segment_id"], strait_segment.as_str(), "{label}");
    assert_eq!(segment["service"], "strait-test");
    let spans = segment["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{label}: {segment:#}");
    let entry = &spans[0];
    assert_eq!(entry["type"], "Entry");
    let reference = &entry["refs"][0];
    assert_eq!(
        reference["parent_segment_id"], "caller.segment.1",
        "{label}: {entry:#}"
    );
    assert_eq!(reference["parent_span_id"], 3);
    assert_eq!(reference["parent_service"], "caller-svc");
    let exit = &spans[1];
    assert_eq!(exit["type"], "Exit");
    assert_eq!(exit["parent_span_id"], 0);
    assert_eq!(exit["peer"], up.addr.to_string().as_str(), "{label}");
    assert_eq!(entry["tags"]["strait.protocol"], wire.record_protocol());

    // Without a context: a new trace, whose id the upstream gets.
    let fresh = seen[1]
        .clone()
        .unwrap_or_else(|| panic!("{label}: no sw8 upstream"));
    let fresh_trace = unb64(fresh.split('-').nth(1).unwrap());
    let segments = receiver.spans(&fresh_trace, 1).await;
    assert_eq!(segments.len(), 1, "{label}: {fresh_trace}");
    assert!(
        segments[0]["spans"][0]["refs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    server.shutdown().await;
}

#[cfg(feature = "skywalking")]
#[tokio::test]
async fn bolt_requests_are_reported_to_skywalking() {
    run_skywalking(Wire::Bolt).await;
}

#[cfg(feature = "skywalking")]
#[tokio::test]
async fn dubbo_requests_are_reported_to_skywalking() {
    run_skywalking(Wire::Dubbo).await;
}

#[cfg(feature = "skywalking")]
#[tokio::test]
async fn http1_requests_are_reported_to_skywalking() {
    run_skywalking(Wire::Http1).await;
}

#[cfg(feature = "skywalking")]
#[tokio::test]
async fn grpc_requests_are_reported_to_skywalking() {
    run_skywalking(Wire::Grpc).await;
}

/// Retries are visible: each failed attempt has a client span of its own (an error,
/// naming the host it went to), the next attempt another, both children of the server
/// span, and the upstream that answered names the last one as its parent.
async fn run_retry_spans(wire: Wire) {
    let label = format!("{wire:?}/retries");
    let receiver = Receiver::start();
    let bad = wire.backend(Behaviour::Reset).await;
    let good = wire.backend(Behaviour::Answer).await;
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let yaml = config(wire, &bad.addr.to_string(), &endpoint, "1.0")
        .replace(
            &format!("{{ address: \"{}\" }}", bad.addr),
            &format!(
                "{{ address: \"{}\" }}, {{ address: \"{}\" }}",
                bad.addr, good.addr
            ),
        )
        .replace(
            "timeout: 5s }",
            "timeout: 5s, retry_policy: { retry_on: [reset], num_retries: 1 } }",
        );
    let server = start(&yaml).await;
    let proxy = server.listener_addr("front").unwrap();
    // Round robin: of four calls, some go to the resetting host first.
    let traces: Vec<String> = (1..=4u32).map(|i| format!("{i:032x}")).collect();
    for trace in &traces {
        let header = format!("00-{trace}-{CALLER_SPAN}-01");
        assert_eq!(
            wire.call_with(proxy, "svc", &[("traceparent", &header)])
                .await,
            if wire == Wire::Http1 { 200 } else { 0 }
        );
    }
    let retried = bad.received.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        retried >= 1,
        "{label}: round robin reached the resetting host"
    );
    let mut seen_retried = 0;
    for trace in &traces {
        let spans = receiver.spans(trace, 2).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let spans = receiver.spans(trace, spans.len()).await;
        let server_span = find(&spans, "SERVER");
        let clients: Vec<&Value> = spans.iter().filter(|s| s["kind"] == "CLIENT").collect();
        assert!(
            clients
                .iter()
                .all(|c| c["parent_span_id"] == server_span["span_id"]),
            "{label}"
        );
        let last = clients
            .iter()
            .find(|c| c["attributes"]["strait.outcome"] == "success")
            .unwrap_or_else(|| panic!("{label}: no successful attempt: {spans:#?}"));
        assert_eq!(
            last["attributes"]["server.port"],
            i64::from(good.addr.port())
        );
        // The answering upstream saw the last attempt's span as its parent.
        let upstream = good.traceparents.lock().clone();
        assert!(
            upstream
                .iter()
                .flatten()
                .any(|t| t.contains(trace.as_str()) && parent_of(t) == last["span_id"]),
            "{label}: {upstream:?} {last:#}"
        );
        if clients.len() == 2 {
            seen_retried += 1;
            let failed = clients
                .iter()
                .find(|c| c["span_id"] != last["span_id"])
                .unwrap();
            assert_eq!(failed["status"], "ERROR", "{label}: {failed:#}");
            assert_eq!(failed["attributes"]["strait.outcome"], "upstream_reset");
            assert_eq!(
                failed["attributes"]["server.port"],
                i64::from(bad.addr.port())
            );
            assert_eq!(last["attributes"]["strait.attempt"], 2);
        } else {
            assert_eq!(clients.len(), 1, "{label}: {spans:#?}");
        }
    }
    assert_eq!(
        seen_retried, retried,
        "{label}: one extra client span per retry"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bolt_retries_have_a_client_span_per_attempt() {
    run_retry_spans(Wire::Bolt).await;
}

#[tokio::test]
async fn http1_retries_have_a_client_span_per_attempt() {
    run_retry_spans(Wire::Http1).await;
}
