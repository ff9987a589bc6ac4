//! One table, every protocol: the same scenarios (success, no route, connection refused,
//! upstream reset mid-request, timeout, `max_requests` overflow, direct response) over
//! Bolt, Dubbo, lenproto (registered from its own crate alone), HTTP/1.1, HTTP/2 and
//! gRPC. Each asserts the protocol's own answer on the wire, the one outcome the
//! request hook saw, and the same counters in `/clusters`.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::Value;
use strait_codec_framework::{
    Outcome, ProxyFailure, RequestCount, RequestHook, RequestRecord, ResponseClass,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::admin_get;
use crate::wires::{Behaviour, Wire, registry};

/// What the hook was told, owned.
#[derive(Debug, Clone)]
struct Seen {
    listener: String,
    protocol: String,
    cluster: Option<String>,
    host: Option<SocketAddr>,
    outcome: Outcome,
    status: Option<u32>,
    upstream_timed: bool,
    request_bytes: u64,
    response_bytes: u64,
}

/// Hears each request's record, and the same requests counted in groups (with their
/// bytes and times) by protocol.
#[derive(Default)]
struct Recorder(Mutex<Vec<Seen>>, Mutex<Vec<(String, RequestCount)>>);

impl RequestHook for Recorder {
    fn wants_counts(&self) -> bool {
        true
    }

    fn on_requests_counted(&self, protocol: &str, counts: &[RequestCount]) {
        let mut counted = self.1.lock();
        counted.extend(counts.iter().map(|c| (protocol.to_string(), *c)));
    }

    fn on_request_end(&self, r: &RequestRecord<'_>) {
        self.0.lock().push(Seen {
            listener: r.listener.to_string(),
            protocol: r.protocol.to_string(),
            cluster: r.cluster.map(str::to_string),
            host: r.host,
            outcome: r.outcome,
            status: r.status,
            upstream_timed: r.upstream_duration.is_some(),
            request_bytes: r.request_bytes,
            response_bytes: r.response_bytes,
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Success,
    NoRoute,
    Refused,
    Reset,
    Timeout,
    Overflow,
    Direct,
}

const SCENARIOS: [Scenario; 7] = [
    Scenario::Success,
    Scenario::NoRoute,
    Scenario::Refused,
    Scenario::Reset,
    Scenario::Timeout,
    Scenario::Overflow,
    Scenario::Direct,
];

/// The status a direct-response route is configured with, per protocol (one each
/// protocol can express).
fn direct_status(wire: Wire) -> u32 {
    match wire {
        Wire::Bolt => 0,
        Wire::Dubbo => 20,
        Wire::Lenproto => 9,
        Wire::Http1 | Wire::Http2 => 203,
        Wire::Grpc => 200,
    }
}

/// The protocol-correct answer, written out per protocol (the codecs' own mapping
/// tables are not consulted: this is the specification they must meet).
fn answer(wire: Wire, scenario: Scenario) -> u32 {
    use Scenario::*;
    let [success, no_route, refused, reset, timeout, overflow] = match wire {
        // Bolt: SUCCESS, NO_PROCESSOR (6) for every unreachable case, TIMEOUT (7),
        // SERVER_THREADPOOL_BUSY (4).
        Wire::Bolt => [0, 6, 6, 6, 7, 4],
        // Dubbo: OK, SERVICE_NOT_FOUND (60), SERVER_TIMEOUT (31), THREADPOOL_EXHAUSTED.
        Wire::Dubbo => [20, 60, 60, 60, 31, 100],
        // lenproto's own table (examples/lenproto).
        Wire::Lenproto => [0, 4, 3, 3, 5, 6],
        Wire::Http1 | Wire::Http2 => [200, 404, 503, 502, 504, 503],
        // gRPC: OK, UNIMPLEMENTED, UNAVAILABLE, UNAVAILABLE, DEADLINE_EXCEEDED,
        // RESOURCE_EXHAUSTED.
        Wire::Grpc => [0, 12, 14, 14, 4, 8],
    };
    match scenario {
        Success => success,
        NoRoute => no_route,
        Refused => refused,
        Reset => reset,
        Timeout => timeout,
        Overflow => overflow,
        Direct => direct_status(wire),
    }
}

fn outcome(scenario: Scenario) -> Outcome {
    match scenario {
        Scenario::Success => Outcome::Upstream(ResponseClass::Success),
        Scenario::NoRoute => Outcome::Failed(ProxyFailure::NoRoute),
        Scenario::Refused => Outcome::Failed(ProxyFailure::ConnectFailure),
        Scenario::Reset => Outcome::Failed(ProxyFailure::UpstreamReset),
        Scenario::Timeout => Outcome::Failed(ProxyFailure::Timeout),
        Scenario::Overflow => Outcome::Failed(ProxyFailure::Overflow),
        Scenario::Direct => Outcome::Local,
    }
}

fn config(wire: Wire, endpoint: SocketAddr, scenario: Scenario) -> String {
    let max_requests = if scenario == Scenario::Overflow {
        1
    } else {
        100
    };
    // Long enough never to fire where the scenario is not about it.
    let timeout = if scenario == Scenario::Timeout {
        "300ms"
    } else {
        "20s"
    };
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
          - match: {direct}
            direct_response: {{ status: {status}, body: "local" }}
clusters:
  - name: up
    protocol: {cp}
    connect_timeout: 500ms
    max_requests: {max_requests}
    endpoints: [{{ address: "{endpoint}" }}]
"#,
        lp = wire.listener_protocol(),
        cp = wire.cluster_protocol(),
        svc = wire.route_match("svc"),
        direct = wire.route_match("direct"),
        status = direct_status(wire),
    )
}

/// The proxy on `yaml`, with a hook recording every request's end.
async fn start(yaml: &str) -> (strait::Server, Arc<Recorder>) {
    let registry = registry();
    let config =
        strait::config::parse("pipeline.yaml", yaml, &registry).unwrap_or_else(|e| panic!("{e}"));
    let recorder = Arc::new(Recorder::default());
    let hook: Arc<dyn RequestHook> = recorder.clone();
    let server = strait::Server::start_with_hook(config, registry, Some(hook))
        .await
        .unwrap();
    (server, recorder)
}

/// Runs one scenario over one protocol and checks the answer, the hook and `/clusters`.
async fn run(wire: Wire, scenario: Scenario) {
    let label = format!("{wire:?}/{scenario:?}");
    let behaviour = match scenario {
        Scenario::Reset => Behaviour::Reset,
        Scenario::Timeout | Scenario::Overflow => Behaviour::Hang,
        _ => Behaviour::Answer,
    };
    let backend = wire.backend(behaviour).await;
    let endpoint = match scenario {
        Scenario::Refused => crate::closed_port(),
        _ => backend.addr,
    };
    let (server, recorder) = start(&config(wire, endpoint, scenario)).await;
    let proxy = server.listener_addr("front").unwrap();

    let service = match scenario {
        Scenario::NoRoute => "nowhere",
        Scenario::Direct => "direct",
        _ => "svc",
    };
    if scenario == Scenario::Overflow {
        // One request holds the cluster's only slot at a backend that never answers.
        let holder = tokio::spawn(async move { wire.call(proxy, "svc").await });
        backend.wait_received(1).await;
        let got = wire.call(proxy, service).await;
        assert_eq!(got, answer(wire, scenario), "{label}: answer on the wire");
        holder.abort();
    } else {
        let got = wire.call(proxy, service).await;
        assert_eq!(got, answer(wire, scenario), "{label}: answer on the wire");
    }

    // Exactly one record, this request's. A forwarded HTTP answer ends with its body,
    // which the client has read whole: allow the proxy a moment to see its end.
    for _ in 0..200 {
        if !recorder.0.lock().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let seen = recorder.0.lock().clone();
    assert_eq!(
        seen.len(),
        1,
        "{label}: one outcome per request, got {seen:?}"
    );
    let seen = &seen[0];
    assert_eq!(seen.outcome, outcome(scenario), "{label}: outcome");
    // Counted once too, in a group, with the record's bytes and its times.
    for _ in 0..200 {
        if !recorder.1.lock().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let counted = recorder.1.lock().clone();
    assert_eq!(counted.len(), 1, "{label}: one count, got {counted:?}");
    let (protocol, count) = &counted[0];
    assert_eq!(protocol, &seen.protocol, "{label}: counted protocol");
    assert_eq!(
        (
            count.n,
            count.outcome,
            count.request_bytes,
            count.response_bytes
        ),
        (1, seen.outcome, seen.request_bytes, seen.response_bytes),
        "{label}: count {count:?}"
    );
    assert_eq!(count.total.count(), 1, "{label}: total time counted");
    assert_eq!(
        count.upstream.count(),
        u64::from(seen.upstream_timed),
        "{label}: upstream time counted"
    );
    assert_eq!(seen.listener, "front", "{label}");
    assert_eq!(seen.protocol, wire.record_protocol(), "{label}");
    let routed = !matches!(scenario, Scenario::NoRoute | Scenario::Direct);
    assert_eq!(
        seen.cluster.as_deref(),
        routed.then_some("up"),
        "{label}: cluster"
    );
    let reached = matches!(
        scenario,
        Scenario::Success | Scenario::Reset | Scenario::Timeout
    );
    assert_eq!(seen.host, reached.then_some(backend.addr), "{label}: host");
    assert_eq!(seen.upstream_timed, reached, "{label}: upstream time");
    // A gRPC direct response is plain HTTP: it carries no gRPC status.
    let want_status = match (wire, scenario) {
        (Wire::Grpc, Scenario::Direct) => None,
        _ => Some(answer(wire, scenario)),
    };
    assert_eq!(seen.status, want_status, "{label}: recorded status");
    // The request's bytes as received: the whole frame for framed protocols, the head
    // for HTTP/1.1 (this GET has no body); HTTP/2's compressed heads are not counted.
    match wire {
        Wire::Http1 => {
            let sent = format!("GET /{service}/call HTTP/1.1\r\nhost: test\r\n\r\n");
            assert_eq!(
                seen.request_bytes,
                sent.len() as u64,
                "{label}: request bytes"
            );
        }
        Wire::Http2 | Wire::Grpc => {}
        _ => assert!(seen.request_bytes > 0, "{label}: request bytes: {seen:?}"),
    }
    // Answers with a body count its bytes (a gRPC failure is trailers-only: none).
    let has_body = matches!(scenario, Scenario::Success | Scenario::Direct)
        || (scenario == Scenario::NoRoute && wire != Wire::Grpc);
    if has_body {
        assert!(
            seen.response_bytes > 0,
            "{label}: response bytes counted: {seen:?}"
        );
    }

    // /clusters counts the same outcome on the cluster, and on the host it reached.
    let clusters: Value = serde_json::from_str(&admin_get(&server, "/clusters").await).unwrap();
    let up = &clusters["clusters"][0];
    assert_eq!(up["name"], "up");
    let mut want = serde_json::Map::new();
    if routed {
        want.insert(outcome(scenario).as_str().to_string(), 1.into());
    }
    assert_eq!(
        up["outcomes"],
        Value::Object(want),
        "{label}: /clusters outcomes"
    );
    let host = &up["hosts"][0];
    let host_failure = matches!(scenario, Scenario::Reset | Scenario::Timeout);
    assert_eq!(
        host["requests"],
        u64::from(reached),
        "{label}: host requests"
    );
    assert_eq!(
        host["failures"],
        u64::from(host_failure),
        "{label}: host failures"
    );
    if scenario == Scenario::Refused {
        assert!(
            host["connect_failures"].as_u64().unwrap() >= 1,
            "{label}: {host}"
        );
    }
    server.shutdown().await;
}

macro_rules! table {
    ($($name:ident => $wire:expr,)*) => {$(
        #[tokio::test]
        async fn $name() {
            for scenario in SCENARIOS {
                run($wire, scenario).await;
            }
        }
    )*};
}

table! {
    one_pipeline_bolt => Wire::Bolt,
    one_pipeline_dubbo => Wire::Dubbo,
    one_pipeline_lenproto => Wire::Lenproto,
    one_pipeline_http1 => Wire::Http1,
    one_pipeline_http2 => Wire::Http2,
    one_pipeline_grpc => Wire::Grpc,
}

/// A loopback address whose connects hang: a listener that never accepts, its accept
/// queue already full (Linux drops further SYNs, so `connect` waits).
pub(crate) async fn hanging_endpoint() -> (
    tokio::net::TcpListener,
    Vec<tokio::net::TcpStream>,
    SocketAddr,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    // Fill the queue; stop once a connect no longer completes at once.
    for _ in 0..8 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(std::time::Duration::from_millis(200), connect).await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break,
        }
    }
    (listener, fillers, addr)
}

/// A request waiting for a connect holds its cluster's admission (a second one
/// overflows), and its deadline includes the connect: it gets the protocol's timeout
/// answer at the route timeout, well before the 5 s connect timeout would turn it into
/// a connect failure. Same answers and outcomes on every protocol.
async fn run_pending_connect(wire: Wire) {
    let label = format!("{wire:?}/pending connect");
    let (_listener, _fillers, endpoint) = hanging_endpoint().await;
    let yaml = config(wire, endpoint, Scenario::Overflow)
        .replace("connect_timeout: 500ms", "connect_timeout: 5s")
        .replace("timeout: 20s", "timeout: 400ms");
    let (server, recorder) = start(&yaml).await;
    let proxy = server.listener_addr("front").unwrap();

    let first = tokio::spawn(async move { wire.call(proxy, "svc").await });
    // Admitted once the cluster counts it in flight.
    let mut in_flight = 0;
    for _ in 0..200 {
        let clusters: Value = serde_json::from_str(&admin_get(&server, "/clusters").await).unwrap();
        in_flight = clusters["clusters"][0]["in_flight"].as_u64().unwrap();
        if in_flight == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        in_flight, 1,
        "{label}: the connecting request counts in flight"
    );
    let second = wire.call(proxy, "svc").await;
    assert_eq!(
        second,
        answer(wire, Scenario::Overflow),
        "{label}: overflow while connecting"
    );
    let first = first.await.unwrap();
    assert_eq!(
        first,
        answer(wire, Scenario::Timeout),
        "{label}: deadline covers the connect"
    );
    let outcomes: Vec<Outcome> = recorder.0.lock().iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Failed(ProxyFailure::Overflow),
            Outcome::Failed(ProxyFailure::Timeout)
        ],
        "{label}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_pending_connect_is_admitted_and_bounded_by_the_deadline() {
    for wire in [
        Wire::Bolt,
        Wire::Dubbo,
        Wire::Lenproto,
        Wire::Http1,
        Wire::Http2,
        Wire::Grpc,
    ] {
        run_pending_connect(wire).await;
    }
}

/// A malformed HTTP/1 request answered by the HTTP engine itself (400, or 431 for a head
/// over the limits) still ends once at the hook, as a codec error with that status.
#[tokio::test]
async fn malformed_http_requests_end_at_the_hook() {
    let backend = Wire::Http1.backend(Behaviour::Answer).await;
    let yaml = config(Wire::Http1, backend.addr, Scenario::Success).replace(
        "route_config: rc }",
        "route_config: rc, http: { max_headers: 4 } }",
    );
    let (server, recorder) = start(&yaml).await;
    let proxy = server.listener_addr("front").unwrap();
    let too_many = (0..8).map(|i| format!("x-{i}: v\r\n")).collect::<String>();
    for (head, status) in [
        (
            "GET /svc HTTP/1.1\r\nhost: a\r\nbad header line\r\n\r\n".to_string(),
            400,
        ),
        (
            format!("GET /svc HTTP/1.1\r\nhost: a\r\n{too_many}\r\n"),
            431,
        ),
    ] {
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        // The engine answers and closes: read to the end.
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut answer),
        )
        .await;
        let line = String::from_utf8_lossy(&answer);
        assert!(line.starts_with(&format!("HTTP/1.1 {status}")), "{line:?}");
        let mut seen = Vec::new();
        for _ in 0..200 {
            seen = recorder.0.lock().drain(..).collect();
            if !seen.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(seen.len(), 1, "{status}: {seen:?}");
        assert_eq!(seen[0].outcome, Outcome::Failed(ProxyFailure::CodecError));
        assert_eq!(seen[0].status, Some(status));
        assert_eq!(seen[0].protocol, "http1");
        assert_eq!(seen[0].cluster, None);
    }
    assert_eq!(
        backend.received.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "never forwarded"
    );
    server.shutdown().await;
}
