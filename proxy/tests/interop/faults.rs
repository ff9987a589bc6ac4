//! Upstream faults with real processes and real peers (issue: upstream resilience):
//! under steady load through Strait to three backends, one is killed with SIGKILL and
//! later restarted on its address; a slow cluster sheds its overflow while another
//! cluster's traffic goes on; a refused endpoint is routed around. Bolt through
//! sofa-rpc-node, HTTP/1.1 through hypercorn and httpx. Each prints the figures the
//! note reports (`--no-capture`): requests sent, failed, retried, time to detect, time
//! to recover.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// Polls `/clusters` until host `host` of cluster `cluster` satisfies `check`.
fn wait_host(
    strait: &Strait,
    cluster: &str,
    host: usize,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Duration {
    let start = Instant::now();
    wait_until(what, Duration::from_secs(20), || {
        let c = strait.cluster(cluster);
        check(&c["hosts"][host]).then_some(())
    });
    start.elapsed()
}

/// Waits until the first `hosts` hosts of `cluster` pass their active check.
fn all_passing(strait: &Strait, cluster: &str, hosts: usize) {
    for host in 0..hosts {
        wait_host(strait, cluster, host, "every host passing", |h| {
            check_status(h) == "passing"
        });
    }
}

fn check_status(host: &Value) -> &str {
    host["health_check"]["status"].as_str().unwrap_or("none")
}

/// The health check both kill tests use: every 200 ms, down after 2 failures, back
/// after 2 passes.
const CHECK: &str = "interval: 200ms, interval_jitter: 0s, timeout: 500ms, unhealthy_threshold: 2, healthy_threshold: 2";

/// Retries of what a dying host does to requests in flight on it.
const RETRY: &str = "retry_policy: { retry_on: [reset, connect-failure], num_retries: 2 }";

fn bolt_config(listen: u16, admin: u16, routes: &[String], clusters: &[String]) -> String {
    framed_config(listen, admin, "bolt", routes, clusters)
}

/// The interop suite's one-listener config (`crate::config`), for any framed protocol.
fn framed_config(
    listen: u16,
    admin: u16,
    protocol: &str,
    routes: &[String],
    clusters: &[String],
) -> String {
    crate::config(listen, admin, protocol, routes, clusters)
}

fn bolt_cluster(name: &str, endpoints: &[String], extra: &str) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|a| format!("{{ address: \"{a}\" }}"))
        .collect();
    format!(
        "{{ name: {name}, protocol: bolt, connect_timeout: 1s, {extra}, endpoints: [{}] }}",
        eps.join(", ")
    )
}

fn bolt_route(service: &str, cluster: &str, timeout: &str, extra: &str) -> String {
    format!(
        "{{ match: {{ variables: [{{ name: service, exact: \"{service}\" }}] }}, \
         route: {{ cluster: {cluster}, timeout: {timeout}{extra} }} }}"
    )
}

/// What the kill-and-restart scenario measured.
struct Outage {
    /// From the kill to the host marked down.
    detect: Duration,
    /// From the restart to the host passing again.
    recover: Duration,
    /// From the kill to the host passing again.
    since_kill: Duration,
    /// Whether the load was still running when the host came back.
    load_running: bool,
}

impl Outage {
    fn describe(&self) -> String {
        format!(
            "C down after {:?} (200ms x 2), back {:?} after its restart ({:?} after the kill); \
             load still running at recovery: {}",
            self.detect, self.recover, self.since_kill, self.load_running
        )
    }
}

/// Host 2 of `cluster` under load: waits until it served `min_requests`, kills it,
/// waits until its health check marks it down, restarts it with `restart`, and waits
/// until it passes again. Returns the restarted backend and the timings.
fn kill_and_restart<T>(
    strait: &Strait,
    cluster: &str,
    min_requests: u64,
    kill: impl FnOnce(),
    restart: impl FnOnce() -> T,
) -> (T, Outage) {
    wait_host(strait, cluster, 2, "load on C", |h| {
        h["requests"].as_u64() >= Some(min_requests)
    });
    let killed = Instant::now();
    kill();
    let detect = wait_host(strait, cluster, 2, "C marked down", |h| {
        check_status(h) == "failing" && h["healthy"] == false
    });
    let restarted = restart();
    let restarted_at = Instant::now();
    let recover = wait_host(strait, cluster, 2, "C back", |h| {
        check_status(h) == "passing" && h["healthy"] == true
    });
    let outage = Outage {
        detect,
        recover,
        since_kill: restarted_at.duration_since(killed) + recover,
        load_running: load_still_running(strait, cluster),
    };
    (restarted, outage)
}

/// Requests retried on `cluster` so far.
fn retried(strait: &Strait, cluster: &str) -> u64 {
    strait.cluster(cluster)["circuit_breakers"]["retried"]
        .as_u64()
        .unwrap_or(0)
}

/// Bolt: three sofa-rpc-node servers behind a bolt health check; one is SIGKILLed
/// under load, marked down, restarted on its port and taken back. The caller sees no
/// failure: requests in flight on the dead host are retried (reset), new ones go to
/// the live hosts.
#[test]
fn bolt_backend_killed_under_load_is_marked_down_and_taken_back() {
    let a = BoltServer::start("A", &[]);
    let b = BoltServer::start("B", &[]);
    let mut c = BoltServer::start("C", &[]);
    let c_port = c.port;
    let endpoints = [a.addr(), b.addr(), c.addr()];
    let strait = Strait::start("fault-bolt-kill", |listen, admin| {
        bolt_config(
            listen,
            admin,
            &[bolt_route(
                TEST_SERVICE,
                "test",
                "2s",
                &format!(", {RETRY}"),
            )],
            &[bolt_cluster(
                "test",
                &endpoints,
                &format!(
                    "health_check: {{ type: bolt, {CHECK} }}, circuit_breakers: {{ max_retries: 50 }}"
                ),
            )],
        )
    });
    all_passing(&strait, "test", 3);
    const SENT: u64 = 30_000;
    let load = Client::spawn(
        strait.listen,
        &[
            "--method",
            "plus",
            "--count",
            &SENT.to_string(),
            "--concurrency",
            "20",
            "--timeout",
            "3000",
        ],
    );
    // The load reaches all three before the kill.
    let (c, outage) = kill_and_restart(
        &strait,
        "test",
        200,
        || c.kill(),
        || BoltServer::start_on("C", c_port, &[], &[]),
    );
    let s = load.finish();
    eprintln!(
        "bolt kill: sent {SENT}, ok {}, failed {}, retried {}; {}; outcomes {}",
        num(&s, "ok"),
        SENT - num(&s, "ok"),
        retried(&strait, "test"),
        outage.describe(),
        strait.cluster("test")["outcomes"],
    );
    assert_eq!(num(&s, "ok"), SENT, "{s}");
    assert!(errors(&s).is_empty(), "no failure reaches the caller: {s}");
    // The restarted host takes its share again.
    let before = strait.cluster("test")["hosts"][2]["requests"]
        .as_u64()
        .unwrap_or(0);
    let s = run_client(
        strait.listen,
        &["--method", "plus", "--count", "300", "--concurrency", "10"],
    );
    assert_eq!(num(&s, "ok"), 300, "{s}");
    let after = strait.cluster("test")["hosts"][2]["requests"]
        .as_u64()
        .unwrap_or(0);
    assert!(after >= before + 50, "C serves again: {before} -> {after}");
    drop(c);
}

/// Whether requests are still in flight on `cluster`.
fn load_still_running(strait: &Strait, cluster: &str) -> bool {
    strait.cluster(cluster)["in_flight"].as_u64().unwrap_or(0) > 0
}

/// Bolt: a slow cluster (`max_requests: 10`, a `sleep` method) gets 30 concurrent
/// calls: 20 are shed at once with status 4 (SERVER_THREADPOOL_BUSY) while the other
/// cluster's calls all succeed.
#[test]
fn bolt_slow_cluster_sheds_overflow_and_leaves_the_other_alone() {
    const SLOW: &str = "com.example.Slow:1.0";
    let slow = BoltServer::start("S", &[SLOW]);
    let fast = BoltServer::start("F", &[TEST_SERVICE]);
    let (slow_addr, fast_addr) = (slow.addr(), fast.addr());
    let strait = Strait::start("fault-bolt-overflow", |listen, admin| {
        bolt_config(
            listen,
            admin,
            &[
                bolt_route(SLOW, "slow", "5s", ""),
                bolt_route(TEST_SERVICE, "fast", "5s", ""),
            ],
            &[
                bolt_cluster(
                    "slow",
                    std::slice::from_ref(&slow_addr),
                    "circuit_breakers: { max_requests: 10 }",
                ),
                bolt_cluster(
                    "fast",
                    std::slice::from_ref(&fast_addr),
                    "preconnect: false",
                ),
            ],
        )
    });
    let shed = Client::spawn(
        strait.listen,
        &[
            "--service",
            SLOW,
            "--method",
            "sleep",
            "--args",
            "[1500]",
            "--count",
            "30",
            "--concurrency",
            "30",
            "--timeout",
            "5000",
        ],
    );
    strait.wait_in_flight("slow", 10);
    let s = run_client(
        strait.listen,
        &["--method", "plus", "--count", "500", "--concurrency", "20"],
    );
    assert_eq!(num(&s, "ok"), 500, "the other cluster is untouched: {s}");
    let shed = shed.finish();
    eprintln!(
        "bolt overflow: slow cluster sent 30, ok {}, shed {:?}; fast cluster 500 ok",
        num(&shed, "ok"),
        errors(&shed)
    );
    assert_eq!(num(&shed, "ok"), 10, "{shed}");
    assert_eq!(errors(&shed), vec![("status_4".to_string(), 20)], "{shed}");
    let slow_cluster = strait.cluster("slow");
    assert_eq!(
        slow_cluster["circuit_breakers"]["overflows"]["max_requests"], 20,
        "{slow_cluster}"
    );
    assert_eq!(
        strait.cluster("fast")["circuit_breakers"]["overflows"]["max_requests"],
        0
    );
}

/// Bolt: one of two endpoints refuses connections: 500 calls, none failed.
#[test]
fn bolt_refused_endpoint_is_routed_around() {
    let a = BoltServer::start("A", &[]);
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let endpoints = [refused, a.addr()];
    let strait = Strait::start("fault-bolt-refused", |listen, admin| {
        bolt_config(
            listen,
            admin,
            &[bolt_route(TEST_SERVICE, "test", "2s", "")],
            &[bolt_cluster("test", &endpoints, "lb_policy: round_robin")],
        )
    });
    let s = run_client(
        strait.listen,
        &["--method", "plus", "--count", "500", "--concurrency", "20"],
    );
    let c = strait.cluster("test");
    eprintln!(
        "bolt refused: sent 500, ok {}, failed {}, connect failures {}",
        num(&s, "ok"),
        500 - num(&s, "ok"),
        c["hosts"][0]["connect_failures"]
    );
    assert_eq!(num(&s, "ok"), 500, "{s}");
    assert!(errors(&s).is_empty(), "{s}");
    assert!(c["hosts"][0]["connect_failures"].as_u64() >= Some(1), "{c}");
}

fn http_config(listen: u16, admin: u16, endpoints: &[String]) -> String {
    http_config_for(
        listen,
        admin,
        endpoints,
        "http1",
        "type: http, path: /health",
    )
}

/// An `http` listener routing everything to cluster `web` (`protocol`, `check`).
fn http_config_for(
    listen: u16,
    admin: u16,
    endpoints: &[String],
    protocol: &str,
    check: &str,
) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|a| format!("{{ address: \"{a}\" }}"))
        .collect();
    format!(
        "admin: {{ address: 127.0.0.1:{admin} }}\n\
         drain_timeout: 5s\n\
         listeners:\n  \
           - {{ name: web, address: 127.0.0.1:{listen}, protocol: http, route_config: web }}\n\
         route_configs:\n  \
           - name: web\n    \
             virtual_hosts:\n      \
               - {{ name: all, domains: [\"*\"], routes: [{{ match: {{ prefix: / }}, route: {{ cluster: web, timeout: 2s, {RETRY} }} }}] }}\n\
         clusters:\n  \
           - {{ name: web, protocol: {protocol}, connect_timeout: 1s, \
                health_check: {{ {check}, {CHECK} }}, \
                circuit_breakers: {{ max_retries: 50 }}, endpoints: [{}] }}\n",
        eps.join(", ")
    )
}

/// HTTP/1.1: three hypercorn backends behind an http health check; one is SIGKILLed
/// under httpx load, marked down, restarted and taken back, with no failed request.
#[test]
fn http1_backend_killed_under_load_is_marked_down_and_taken_back() {
    let a = HttpPeer::backend("A");
    let b = HttpPeer::backend("B");
    let mut c = HttpPeer::backend("C");
    let c_port = c.port;
    let endpoints = [a.addr(), b.addr(), c.addr()];
    let strait = Strait::start("fault-http-kill", |listen, admin| {
        http_config(listen, admin, &endpoints)
    });
    all_passing(&strait, "web", 3);
    const SENT: u64 = 6_000;
    let load = httpx(&format!("http://{}/load", strait.listen), SENT, 20);
    let (c, outage) = kill_and_restart(
        &strait,
        "web",
        100,
        || {
            c.proc.kill_now();
        },
        || HttpPeer::backend_on("C", c_port),
    );
    let s = httpx_summary(load);
    let ok = s["statuses"]["200"].as_u64().unwrap_or(0);
    eprintln!(
        "http1 kill: sent {SENT}, ok {ok}, failed {}, retried {}; {}; statuses {}",
        SENT - ok,
        retried(&strait, "web"),
        outage.describe(),
        s["statuses"],
    );
    // As for gRPC: a response whose head was already forwarded when its host died
    // cannot be retried (the caller sees its body cut short); only requests in flight
    // at the kill can be such, at most the load's 20. Every status is a 200.
    assert_eq!(s["statuses"].as_object().map(|m| m.len()), Some(1), "{s}");
    assert!(SENT - ok <= 20, "{s}");
    drop(c);
}

/// gRPC: three grpcio servers behind the gRPC health check (`grpc.health.v1.Health`);
/// one is SIGKILLed under a grpcio client's unary load, marked down, restarted and
/// taken back. Calls in flight on it are retried (their bodies were recorded as they
/// went out) unless their answer had already begun; no other call fails.
#[test]
fn grpc_backend_killed_under_load_is_marked_down_and_taken_back() {
    let a = HttpPeer::grpc_py("A");
    let b = HttpPeer::grpc_py("B");
    let mut c = HttpPeer::grpc_py("C");
    let c_port = c.port;
    let endpoints = [a.addr(), b.addr(), c.addr()];
    let strait = Strait::start("fault-grpc-kill", |listen, admin| {
        http_config_for(listen, admin, &endpoints, "http2", "type: grpc").replace(
            "retry_on: [reset, connect-failure]",
            "retry_on: [reset, connect-failure, gateway-error]",
        )
    });
    all_passing(&strait, "web", 3);
    const SENT: u64 = 4_000;
    let load = grpc_load(strait.listen, SENT, 20, 0);
    let (c, outage) = kill_and_restart(
        &strait,
        "web",
        100,
        || {
            c.proc.kill_now();
        },
        || HttpPeer::grpc_py_on("C", c_port),
    );
    let l = grpc_summary(load);
    let ok = l["ok"].as_u64().unwrap_or(0);
    eprintln!(
        "grpc kill: sent {SENT}, ok {ok}, failed {}, retried {}; {}; errors {}",
        SENT - ok,
        retried(&strait, "web"),
        outage.describe(),
        l["errors"],
    );
    // A call whose answer had begun (response head forwarded, trailers not yet) when
    // its host died cannot be retried: the caller sees the stream reset (INTERNAL).
    // Only calls in flight at the kill can be such: at most the load's 20.
    let failed = SENT - ok;
    assert!(failed <= 20, "{l}");
    if let Some(errors) = l["errors"].as_object() {
        assert!(
            errors
                .keys()
                .all(|code| code == "INTERNAL" || code == "UNAVAILABLE"),
            "{l}"
        );
    }
    drop(c);
}

/// Dubbo: three hessian.js providers behind the Dubbo heartbeat check; one is SIGKILLed
/// under dubbo2.js load, marked down, restarted and taken back, with no failed call.
#[test]
fn dubbo_backend_killed_under_load_is_marked_down_and_taken_back() {
    const DEMO: &str = "com.example.DemoService";
    let a = DubboServer::start("A");
    let b = DubboServer::start("B");
    let mut c = DubboServer::start("C");
    let c_port = c.port;
    let eps: Vec<String> = [a.addr(), b.addr(), c.addr()]
        .iter()
        .map(|e| format!("{{ address: \"{e}\" }}"))
        .collect();
    let cluster = format!(
        "{{ name: test, protocol: dubbo, connect_timeout: 1s, health_check: {{ type: dubbo, {CHECK} }}, \
         circuit_breakers: {{ max_retries: 50 }}, endpoints: [{}] }}",
        eps.join(", ")
    );
    let route = format!(
        "{{ match: {{ variables: [{{ name: service, exact: \"{DEMO}\" }}] }}, \
         route: {{ cluster: test, timeout: 2s, {RETRY} }} }}"
    );
    let strait = Strait::start("fault-dubbo-kill", |listen, admin| {
        framed_config(
            listen,
            admin,
            "dubbo",
            std::slice::from_ref(&route),
            std::slice::from_ref(&cluster),
        )
    });
    all_passing(&strait, "test", 3);
    const SENT: u64 = 20_000;
    let load = Client::dubbo_js(
        strait.listen,
        &[
            "--service",
            DEMO,
            "--method",
            "sayHello",
            "--version",
            "1.0.0",
            "--args",
            r#"["call-$i", "$i"]"#,
            "--count",
            &SENT.to_string(),
            "--concurrency",
            "20",
            "--timeout",
            "3000",
        ],
    );
    let (c, outage) = kill_and_restart(
        &strait,
        "test",
        200,
        || c.kill(),
        || DubboServer::start_on("C", c_port),
    );
    let s = load.finish();
    eprintln!(
        "dubbo kill: sent {SENT}, ok {}, failed {}, retried {}; {}; outcomes {}",
        num(&s, "ok"),
        SENT - num(&s, "ok"),
        retried(&strait, "test"),
        outage.describe(),
        strait.cluster("test")["outcomes"],
    );
    assert_eq!(num(&s, "ok"), SENT, "{s}");
    assert!(errors(&s).is_empty(), "{s}");
    drop(c);
}

/// A listener that accepts connections and never answers: a host whose TCP check
/// passes while it serves nothing. Its connections are held until the test ends. The
/// routes to it time out after 1 s: long enough that a live host loaded by a parallel
/// test run never times out instead.
fn silent_backend() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept() {
            held.push(stream);
        }
    });
    addr
}

/// An `http` listener `web` with `routes` (flow-style) and `clusters` (flow-style).
fn web_config(listen: u16, admin: u16, routes: &[String], clusters: &[String]) -> String {
    format!(
        "admin: {{ address: 127.0.0.1:{admin} }}\n\
         drain_timeout: 5s\n\
         listeners:\n  \
           - {{ name: web, address: 127.0.0.1:{listen}, protocol: http, route_config: web }}\n\
         route_configs:\n  \
           - name: web\n    \
             virtual_hosts:\n      \
               - {{ name: all, domains: [\"*\"], routes: [{}] }}\n\
         clusters:\n{}",
        routes.join(", "),
        clusters
            .iter()
            .map(|c| format!("  - {c}\n"))
            .collect::<String>()
    )
}

fn httpx(url: &str, count: u64, concurrency: u64) -> Proc {
    let mut cmd = http_python("http_client.py");
    cmd.args([
        "--url",
        url,
        "--count",
        &count.to_string(),
        "--concurrency",
        &concurrency.to_string(),
    ]);
    Proc::spawn(&format!("http_client.py {url}"), &mut cmd)
}

fn httpx_summary(mut proc: Proc) -> Value {
    proc.wait_for_exit(Duration::from_secs(120))
        .unwrap_or_else(|| panic!("http_client.py still running: {}", proc.describe()));
    let last = proc.stdout.snapshot().last().cloned().expect("a summary");
    serde_json::from_str(&last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"))
}

/// HTTP/1.1: a host that accepts and never answers passes its TCP check, but outlier
/// detection ejects it after 3 timeouts in a row; every later request goes to the
/// hypercorn host. The caller sees exactly those 3 timeouts (no retry policy here).
#[test]
fn http1_silent_backend_is_ejected_while_its_tcp_check_passes() {
    let a = HttpPeer::backend("A");
    let silent = silent_backend();
    let endpoints = [a.addr(), silent];
    let eps: Vec<String> = endpoints
        .iter()
        .map(|e| format!("{{ address: \"{e}\" }}"))
        .collect();
    let cluster = format!(
        "{{ name: web, protocol: http1, connect_timeout: 1s, \
         health_check: {{ type: tcp, interval: 200ms, interval_jitter: 0s }}, \
         outlier_detection: {{ consecutive_errors: 3, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 50 }}, \
         endpoints: [{}] }}",
        eps.join(", ")
    );
    let route = "{ match: { prefix: / }, route: { cluster: web, timeout: 1s } }".to_string();
    let strait = Strait::start("fault-http-silent", |listen, admin| {
        web_config(
            listen,
            admin,
            std::slice::from_ref(&route),
            std::slice::from_ref(&cluster),
        )
    });
    all_passing(&strait, "web", 2);
    let started = Instant::now();
    let s = httpx_summary(httpx(&format!("http://{}/x", strait.listen), 200, 1));
    let took = started.elapsed();
    let c = strait.cluster("web");
    eprintln!("http1: statuses {}; {took:?} in all", s["statuses"]);
    assert_eq!(s["statuses"]["504"], 3, "{s}");
    assert_silent_host_ejected("http1", &c, &s["statuses"]["200"], &s);
}

/// The silent host (`hosts[1]`) after 200 calls one at a time: `ok` (the client's count
/// of answered calls) is 197, the other 3 timed out, and the host was ejected for
/// consecutive errors while its TCP check still passes.
fn assert_silent_host_ejected(
    label: &str,
    c: &serde_json::Value,
    ok: &serde_json::Value,
    summary: &serde_json::Value,
) {
    let host = &c["hosts"][1];
    eprintln!(
        "{label} silent host: sent 200 one at a time, ok {ok}, ejected ({}), health check {}",
        host["ejection"]["reason"], host["health_check"]["status"]
    );
    assert_eq!(ok, 197, "{label}: {summary}");
    assert_eq!(
        host["ejection"]["reason"], "consecutive_errors",
        "{label}: {c}"
    );
    assert_eq!(host["health_check"]["status"], "passing", "{label}: {c}");
}

/// HTTP/1.1: a slow cluster (`max_requests: 10`, hypercorn's `/slow`) gets 30
/// concurrent requests: 20 are answered 503 at once while the other cluster's 300
/// requests all succeed; a refused endpoint in that other cluster is routed around.
#[test]
fn http1_slow_cluster_sheds_overflow_and_a_refused_endpoint_is_routed_around() {
    let slow = HttpPeer::backend("S");
    let fast = HttpPeer::backend("F");
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let clusters = [
        format!(
            "{{ name: slow, protocol: http1, circuit_breakers: {{ max_requests: 10 }}, endpoints: [{{ address: \"{}\" }}] }}",
            slow.addr()
        ),
        format!(
            "{{ name: fast, protocol: http1, endpoints: [{{ address: \"{refused}\" }}, {{ address: \"{}\" }}] }}",
            fast.addr()
        ),
    ];
    let routes = [
        "{ match: { prefix: /slow }, route: { cluster: slow, timeout: 10s } }".to_string(),
        "{ match: { prefix: / }, route: { cluster: fast, timeout: 10s } }".to_string(),
    ];
    let strait = Strait::start("fault-http-overflow", |listen, admin| {
        web_config(listen, admin, &routes, &clusters)
    });
    let shed = httpx(&format!("http://{}/slow?ms=1500", strait.listen), 30, 30);
    strait.wait_in_flight("slow", 10);
    let other = httpx_summary(httpx(&format!("http://{}/x", strait.listen), 300, 20));
    let shed = httpx_summary(shed);
    let c = strait.cluster("fast");
    eprintln!(
        "http1 overflow: slow cluster sent 30, statuses {}; fast cluster (one endpoint refused) \
         sent 300, statuses {}, connect failures {}",
        shed["statuses"], other["statuses"], c["hosts"][0]["connect_failures"]
    );
    assert_eq!(
        shed["statuses"],
        serde_json::json!({"200": 10, "503": 20}),
        "{shed}"
    );
    assert_eq!(
        other["statuses"],
        serde_json::json!({"200": 300}),
        "{other}"
    );
    assert!(c["hosts"][0]["connect_failures"].as_u64() >= Some(1), "{c}");
}

fn grpc_load(target: std::net::SocketAddr, count: u64, concurrency: u64, slow_ms: u64) -> Proc {
    let mut cmd = http_python("grpc_client.py");
    cmd.args([
        "--target",
        &target.to_string(),
        "--cases",
        "load",
        "--load-count",
        &count.to_string(),
        "--load-concurrency",
        &concurrency.to_string(),
        "--load-slow-ms",
        &slow_ms.to_string(),
    ]);
    Proc::spawn("grpc_client.py load", &mut cmd)
}

fn grpc_summary(mut proc: Proc) -> Value {
    proc.wait_for_exit(Duration::from_secs(120))
        .unwrap_or_else(|| panic!("grpc_client.py still running: {}", proc.describe()));
    let last = proc.stdout.snapshot().last().cloned().expect("a summary");
    let s: Value = serde_json::from_str(&last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"));
    s["cases"]["load"].clone()
}

/// gRPC: a silent host (TCP check passing) is ejected after 3 DEADLINE_EXCEEDED in a
/// row, then every call goes to the grpcio host; a slow cluster (`max_requests: 10`,
/// `Slow` calls) sheds 20 of 30 with RESOURCE_EXHAUSTED while unary calls to the other
/// cluster all succeed.
#[test]
fn grpc_silent_backend_is_ejected_and_a_slow_cluster_sheds_its_overflow() {
    let a = HttpPeer::grpc_py("A");
    let silent = silent_backend();
    let slow = HttpPeer::grpc_py("S");
    let clusters = [
        format!(
            "{{ name: web, protocol: http2, connect_timeout: 1s, \
             health_check: {{ type: tcp, interval: 200ms, interval_jitter: 0s }}, \
             outlier_detection: {{ consecutive_errors: 3, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 50 }}, \
             endpoints: [{{ address: \"{}\" }}, {{ address: \"{silent}\" }}] }}",
            a.addr()
        ),
        format!(
            "{{ name: slow, protocol: http2, circuit_breakers: {{ max_requests: 10 }}, endpoints: [{{ address: \"{}\" }}] }}",
            slow.addr()
        ),
    ];
    let routes = [
        "{ match: { path: /strait.interop.Interop/Slow }, route: { cluster: slow, timeout: 10s } }"
            .to_string(),
        "{ match: { prefix: / }, route: { cluster: web, timeout: 1s } }".to_string(),
    ];
    let strait = Strait::start("fault-grpc-silent", |listen, admin| {
        web_config(listen, admin, &routes, &clusters)
    });
    all_passing(&strait, "web", 2);
    let s = grpc_summary(grpc_load(strait.listen, 200, 1, 0));
    let c = strait.cluster("web");
    assert_eq!(
        s["errors"],
        serde_json::json!({"DEADLINE_EXCEEDED": 3}),
        "{s}"
    );
    assert_silent_host_ejected("grpc", &c, &s["ok"], &s);

    let shed = grpc_load(strait.listen, 30, 30, 1500);
    strait.wait_in_flight("slow", 10);
    let other = grpc_summary(grpc_load(strait.listen, 300, 20, 0));
    let shed = grpc_summary(shed);
    eprintln!(
        "grpc overflow: slow cluster sent 30, ok {}, errors {}; other cluster sent 300, ok {}",
        shed["ok"], shed["errors"], other["ok"]
    );
    assert_eq!(shed["ok"], 10, "{shed}");
    assert_eq!(
        shed["errors"],
        serde_json::json!({"RESOURCE_EXHAUSTED": 20}),
        "{shed}"
    );
    assert_eq!(other["ok"], 300, "{other}");
}

/// Dubbo: a silent host (TCP check passing) is ejected after 3 timeouts (status 31)
/// in a row; a slow cluster (`max_requests: 10`, `sleep` calls) sheds 20 of 30 with
/// status 100 (SERVER_THREADPOOL_EXHAUSTED) while the other cluster's calls succeed.
#[test]
fn dubbo_silent_backend_is_ejected_and_a_slow_cluster_sheds_its_overflow() {
    const DEMO: &str = "com.example.DemoService";
    const SLOW: &str = "com.example.SlowService";
    let a = DubboServer::start("A");
    let slow = DubboServer::start("S");
    let silent = silent_backend();
    let clusters = [
        format!(
            "{{ name: test, protocol: dubbo, connect_timeout: 1s, \
             health_check: {{ type: tcp, interval: 200ms, interval_jitter: 0s }}, \
             outlier_detection: {{ consecutive_errors: 3, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 50 }}, \
             endpoints: [{{ address: \"{}\" }}, {{ address: \"{silent}\" }}] }}",
            a.addr()
        ),
        format!(
            "{{ name: slow, protocol: dubbo, circuit_breakers: {{ max_requests: 10 }}, endpoints: [{{ address: \"{}\" }}] }}",
            slow.addr()
        ),
    ];
    let routes = [
        format!(
            "{{ match: {{ variables: [{{ name: service, exact: \"{DEMO}\" }}] }}, route: {{ cluster: test, timeout: 1s }} }}"
        ),
        format!(
            "{{ match: {{ variables: [{{ name: service, exact: \"{SLOW}\" }}] }}, route: {{ cluster: slow, timeout: 10s }} }}"
        ),
    ];
    let strait = Strait::start("fault-dubbo-silent", |listen, admin| {
        framed_config(listen, admin, "dubbo", &routes, &clusters)
    });
    all_passing(&strait, "test", 2);
    let call = |service: &str, method: &str, args: &str, count: &str, concurrency: &str| {
        Client::dubbo_js(
            strait.listen,
            &[
                "--service",
                service,
                "--method",
                method,
                "--version",
                "1.0.0",
                "--args",
                args,
                "--count",
                count,
                "--concurrency",
                concurrency,
                "--timeout",
                "5000",
            ],
        )
    };
    let s = call(DEMO, "sayHello", r#"["call-$i", "$i"]"#, "200", "1").finish();
    let c = strait.cluster("test");
    assert_eq!(errors(&s), vec![("status_31".to_string(), 3)], "{s}");
    assert_silent_host_ejected("dubbo", &c, &serde_json::json!(num(&s, "ok")), &s);

    let shed = call(SLOW, "sleep", "[1500]", "30", "30");
    strait.wait_in_flight("slow", 10);
    let other = call(DEMO, "sayHello", r#"["call-$i", "$i"]"#, "300", "20").finish();
    let shed = shed.finish();
    eprintln!(
        "dubbo overflow: slow cluster sent 30, ok {}, errors {:?}; other cluster sent 300, ok {}",
        num(&shed, "ok"),
        errors(&shed),
        num(&other, "ok")
    );
    assert_eq!(num(&shed, "ok"), 10, "{shed}");
    assert_eq!(
        errors(&shed),
        vec![("status_100".to_string(), 20)],
        "{shed}"
    );
    assert_eq!(num(&other, "ok"), 300, "{other}");
}

/// Bolt: a silent host (TCP check passing) is ejected after 3 timeouts (status 7) in a
/// row; every later call goes to the sofa-rpc-node host.
#[test]
fn bolt_silent_backend_is_ejected_while_its_tcp_check_passes() {
    let a = BoltServer::start("A", &[]);
    let silent = silent_backend();
    let endpoints = [a.addr(), silent];
    let strait = Strait::start("fault-bolt-silent", |listen, admin| {
        bolt_config(
            listen,
            admin,
            &[bolt_route(TEST_SERVICE, "test", "1s", "")],
            &[bolt_cluster(
                "test",
                &endpoints,
                "health_check: { type: tcp, interval: 200ms, interval_jitter: 0s }, \
                 outlier_detection: { consecutive_errors: 3, interval: 200ms, base_ejection_time: 30s, max_ejection_percent: 50 }",
            )],
        )
    });
    all_passing(&strait, "test", 2);
    let s = run_client(
        strait.listen,
        &[
            "--method",
            "plus",
            "--count",
            "200",
            "--concurrency",
            "1",
            "--timeout",
            "3000",
        ],
    );
    let c = strait.cluster("test");
    assert_eq!(errors(&s), vec![("status_7".to_string(), 3)], "{s}");
    assert_silent_host_ejected("bolt", &c, &serde_json::json!(num(&s, "ok")), &s);
}
