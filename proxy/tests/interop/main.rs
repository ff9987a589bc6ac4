//! Interop tests: the real `strait` binary between a real SOFA Bolt client and real
//! SOFA Bolt servers (sofa-rpc-node / sofa-bolt-node, see `<repo>/tests/interop`).
//!
//! Every test starts its own processes on its own ports, so they run in parallel.
//! The Node peers must be installed first: `bash scripts/install-test-peers`.

mod dubbo;
mod faults;
mod http;
#[path = "../shared/promtool.rs"]
mod promtool;
mod reload_soak;
mod scaffold;
mod support;
mod tls;

use std::time::{Duration, Instant};

use promtool::promtool_check;
use support::*;

/// A config with one listener `rpc`, the given route list (flow-style `- { match, route }`
/// entries) and clusters (flow-style entries).
fn config(
    listen: u16,
    admin: u16,
    listener_protocol: &str,
    routes: &[String],
    clusters: &[String],
) -> String {
    let mut yaml = format!(
        "admin: {{ address: 127.0.0.1:{admin} }}\n\
         drain_timeout: 10s\n\
         listeners:\n  \
           - {{ name: rpc, address: 127.0.0.1:{listen}, protocol: {listener_protocol}, route_config: rpc }}\n\
         route_configs:\n  \
           - name: rpc\n    \
             virtual_hosts:\n      \
               - name: default\n        \
                 domains: [\"*\"]\n        \
                 routes:\n"
    );
    for r in routes {
        yaml.push_str("          - ");
        yaml.push_str(r);
        yaml.push('\n');
    }
    yaml.push_str("clusters:\n");
    for c in clusters {
        yaml.push_str("  - ");
        yaml.push_str(c);
        yaml.push('\n');
    }
    yaml
}

/// A route matching the `service` variable exactly.
fn service_route(service: &str, cluster: &str, timeout: &str) -> String {
    format!(
        "{{ match: {{ variables: [{{ name: service, exact: \"{service}\" }}] }}, \
         route: {{ cluster: {cluster}, timeout: {timeout} }} }}"
    )
}

/// A Bolt cluster with the given endpoint addresses.
fn cluster(name: &str, endpoints: &[String]) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|a| format!("{{ address: \"{a}\", weight: 1 }}"))
        .collect();
    format!(
        "{{ name: {name}, protocol: bolt, lb_policy: round_robin, connect_timeout: 1s, \
         max_connections_per_host: 2, endpoints: [{}] }}",
        eps.join(", ")
    )
}

/// One listener → one cluster `test` → `backend`, routing the default test service.
/// [`simple_proxy`] on Bolt with more keys on its listener (`access_log: {...}`).
fn simple_proxy_with_listener_keys(tag: &str, backend: &BoltServer, keys: &str) -> Strait {
    let addr = backend.addr();
    let keys = keys.to_string();
    Strait::start(tag, move |listen, admin| {
        config(
            listen,
            admin,
            "bolt",
            &[service_route(TEST_SERVICE, "test", "3s")],
            &[cluster("test", std::slice::from_ref(&addr))],
        )
        .replace(
            "route_config: rpc }",
            &format!("route_config: rpc, {keys} }}"),
        )
    })
}

fn simple_proxy(tag: &str, backend: &BoltServer, listener_protocol: &str) -> Strait {
    let addr = backend.addr();
    let proto = listener_protocol.to_string();
    Strait::start(tag, move |listen, admin| {
        config(
            listen,
            admin,
            &proto,
            &[service_route(TEST_SERVICE, "test", "3s")],
            &[cluster("test", std::slice::from_ref(&addr))],
        )
    })
}

/// 10,000 `plus` calls at concurrency 100 plus heartbeats, in one Bolt version.
fn load(proto: &str) {
    let mut backend = BoltServer::start("A", &[]);
    let strait = simple_proxy(&format!("load-{proto}"), &backend, "bolt");

    let s = run_client(
        strait.listen,
        &[
            "--proto",
            proto,
            "--method",
            "plus",
            "--count",
            "10000",
            "--concurrency",
            "100",
            "--heartbeat",
            "--heartbeats",
            "5",
        ],
    );
    eprintln!(
        "load {proto}: {} ok in {} ms ({} calls/s)",
        num(&s, "ok"),
        num(&s, "elapsed_ms"),
        num(&s, "calls_per_sec")
    );
    assert_eq!(num(&s, "ok"), 10_000, "summary: {s}");
    assert_eq!(num(&s, "sent"), 10_000, "summary: {s}");
    assert!(errors(&s).is_empty(), "errors: {s}");
    assert_heartbeats_and_wires(proto, &s);

    // The proxy answers the client's heartbeats itself: none reaches the backend (the
    // cluster configures no upstream heartbeat either).
    let stats = backend.stop();
    assert_eq!(
        backend.events("heartbeat"),
        0,
        "backend saw heartbeats: {:?}",
        backend.proc.stdout.tail(5)
    );
    assert_eq!(stats["heartbeats"], 0, "backend stats: {stats}");
    assert_eq!(stats["requests"], 10_000, "backend stats: {stats}");
    drop(strait);
}

/// Checks the fixed part of one Bolt frame captured by a peer's encoder or decoder tap
/// (`frameInfo` in `tests/interop/lib/common.js`) against the version `proto` means on
/// the wire: v1 starts with 0x01; v2 with 0x02, ver1 1 and switch 0 (no trailer); v2crc
/// with 0x02, ver1 2 and the CRC bit, followed by a CRC32 the peer's own CRC confirms.
/// `proto` alone proves nothing: the client copies it from its own arguments.
fn assert_bolt_wire(proto: &str, wire: &serde_json::Value, what: &str) {
    let field = |k: &str| wire[k].clone();
    let (first, ver1, switch, crc) = match proto {
        "v1" => (1, None, None, false),
        "v2" => (2, Some(1), Some(0), false),
        "v2crc" => (2, Some(2), Some(1), true),
        other => panic!("unknown proto {other}"),
    };
    assert_eq!(field("proto"), first, "{proto} {what}: first byte: {wire}");
    if let (Some(ver1), Some(switch)) = (ver1, switch) {
        assert_eq!(field("ver1"), ver1, "{proto} {what}: ver1: {wire}");
        assert_eq!(field("switch"), switch, "{proto} {what}: switch: {wire}");
    }
    // The trailer is there exactly when the switch asks for it, and it is correct.
    assert_eq!(field("crc_trailer"), crc, "{proto} {what}: trailer: {wire}");
    if crc {
        assert_eq!(field("crc_ok"), true, "{proto} {what}: CRC32: {wire}");
    }
}

/// The heartbeat counts and the version on the wire of a `--heartbeat` run: the first
/// request and heartbeat the client wrote, and the first ack Strait sent back.
fn assert_heartbeats_and_wires(proto: &str, s: &serde_json::Value) {
    // Counted from the frames the encoder produced, not from the client's --heartbeats.
    assert_eq!(num(s, "heartbeat_sent"), 5, "heartbeats written: {s}");
    assert_eq!(num(s, "heartbeat_acks"), 5, "heartbeat acks: {s}");
    assert_eq!(num(s, "heartbeat_unmatched_acks"), 0, "summary: {s}");
    assert_bolt_wire(proto, &s["request_wire"], "request");
    assert_bolt_wire(proto, &s["heartbeat_wire"], "heartbeat");
    assert_bolt_wire(proto, &s["heartbeat_ack_wire"], "heartbeat ack");
    assert_eq!(s["heartbeat_wire"]["cmdcode"], 0, "heartbeat: {s}");
    assert_eq!(s["heartbeat_ack_wire"]["cmdcode"], 0, "heartbeat ack: {s}");
    assert_eq!(s["heartbeat_ack_wire"]["type"], 0, "heartbeat ack: {s}");
}

#[test]
fn load_v1() {
    load("v1");
}

#[test]
fn load_v2() {
    load("v2");
}

#[test]
fn load_v2crc() {
    load("v2crc");
}

#[test]
fn routes_by_service_and_method() {
    const SVC_A: &str = "com.example.Alpha:1.0";
    const SVC_B: &str = "com.example.Beta:1.0";
    let a = BoltServer::start("A", &[SVC_A, TEST_SERVICE]);
    let b = BoltServer::start("B", &[SVC_B, TEST_SERVICE]);
    let (addr_a, addr_b) = (a.addr(), b.addr());
    let strait = Strait::start("routes", move |listen, admin| {
        config(
            listen,
            admin,
            "bolt",
            &[
                service_route(SVC_A, "a", "3s"),
                service_route(SVC_B, "b", "3s"),
                format!(
                    "{{ match: {{ variables: [{{ name: service, exact: \"{TEST_SERVICE}\" }}], \
                     headers: [{{ name: sofa_head_method_name, prefix: say }}] }}, \
                     route: {{ cluster: a, timeout: 3s }} }}"
                ),
                service_route(TEST_SERVICE, "b", "3s"),
            ],
            &[
                cluster("a", std::slice::from_ref(&addr_a)),
                cluster("b", std::slice::from_ref(&addr_b)),
            ],
        )
    });

    // By service: `where` answers "<backend>|<service>".
    for (svc, backend) in [(SVC_A, "A"), (SVC_B, "B")] {
        let s = run_client(
            strait.listen,
            &[
                "--service",
                svc,
                "--method",
                "where",
                "--count",
                "40",
                "--concurrency",
                "8",
            ],
        );
        assert_eq!(num(&s, "ok"), 40, "{svc}: {s}");
        assert!(errors(&s).is_empty(), "{svc}: {s}");
        assert_eq!(
            s["answers"][format!("{backend}|{svc}")],
            40,
            "{svc} should be answered by {backend} only: {s}"
        );
    }

    // By method, from the Java-style header map: say* → A, anything else → B.
    let s = run_client(
        strait.listen,
        &[
            "--java-headers",
            "--method",
            "sayHello",
            "--count",
            "40",
            "--concurrency",
            "8",
        ],
    );
    assert_eq!(num(&s, "ok"), 40, "sayHello: {s}");
    assert_eq!(s["answers"]["hello strait from A"], 40, "sayHello: {s}");
    assert_eq!(backend_count(&s, "A"), 40, "sayHello: {s}");
    for method in ["whoami", "where"] {
        let s = run_client(
            strait.listen,
            &[
                "--java-headers",
                "--method",
                method,
                "--count",
                "40",
                "--concurrency",
                "8",
            ],
        );
        assert_eq!(num(&s, "ok"), 40, "{method}: {s}");
        assert!(errors(&s).is_empty(), "{method}: {s}");
        assert_eq!(backend_count(&s, "B"), 40, "{method} should go to B: {s}");
        assert_eq!(backend_count(&s, "A"), 0, "{method} should go to B: {s}");
    }
    drop(strait);
}

#[test]
fn weighted_split() {
    let a = BoltServer::start("A", &["com.example.Split:1.0"]);
    let b = BoltServer::start("B", &["com.example.Split:1.0"]);
    let (addr_a, addr_b) = (a.addr(), b.addr());
    let strait = Strait::start("weighted", move |listen, admin| {
        config(
            listen,
            admin,
            "bolt",
            &[r#"{ match: { variables: [{ name: service, regex: "^com\\.example\\..*" }] }, route: { weighted_clusters: [{ name: a, weight: 90 }, { name: b, weight: 10 }], timeout: 3s } }"#.to_string()],
            &[
                cluster("a", std::slice::from_ref(&addr_a)),
                cluster("b", std::slice::from_ref(&addr_b)),
            ],
        )
    });
    let s = run_client(
        strait.listen,
        &[
            "--service",
            "com.example.Split:1.0",
            "--method",
            "whoami",
            "--count",
            "2000",
            "--concurrency",
            "50",
        ],
    );
    assert_eq!(num(&s, "ok"), 2000, "{s}");
    assert!(errors(&s).is_empty(), "{s}");
    let (to_a, to_b) = (backend_count(&s, "A"), backend_count(&s, "B"));
    eprintln!("weighted split: A {to_a}, B {to_b}");
    assert_eq!(to_a + to_b, 2000, "{s}");
    assert!(
        (1600..=1940).contains(&to_a),
        "90/10 split out of tolerance (80–97% expected on A): A {to_a}, B {to_b}"
    );
}

#[test]
fn unrouted_service_gets_no_processor() {
    let backend = BoltServer::start("A", &[]);
    let strait = simple_proxy("unrouted", &backend, "bolt");
    for proto in ["v1", "v2crc"] {
        let s = run_client(
            strait.listen,
            &[
                "--proto",
                proto,
                "--service",
                "com.example.Nobody:1.0",
                "--method",
                "whoami",
                "--count",
                "200",
                "--concurrency",
                "20",
            ],
        );
        assert_eq!(num(&s, "ok"), 0, "{proto}: {s}");
        assert_eq!(
            errors(&s),
            vec![("status_6".to_string(), 200)],
            "{proto}: {s}"
        );
    }
    // And nothing reached the backend.
    assert_eq!(
        strait.cluster("test")["hosts"][0]["requests"],
        0,
        "{}",
        strait.clusters()
    );
}

#[test]
fn killed_backend_gets_error() {
    let mut backend = BoltServer::start_with("A", &[], &["--log-requests"]);
    let strait = simple_proxy("killed", &backend, "bolt");

    let s = run_client(strait.listen, &["--method", "plus", "--count", "50"]);
    assert_eq!(num(&s, "ok"), 50, "before the kill: {s}");

    // Calls in flight when the backend dies: sleep(2000) with a 3 s route timeout and a
    // 5 s client timeout, so a proxy that waited would show status_7 (its own timeout),
    // not status_6: the error kind, not the clock, tells the two apart.
    let in_flight = Client::spawn(
        strait.listen,
        &[
            "--method",
            "sleep",
            "--args",
            "[2000]",
            "--count",
            "20",
            "--concurrency",
            "20",
            "--timeout",
            "5000",
        ],
    );
    strait.wait_in_flight("test", 20);
    // The backend has all 20 (it is sleeping on them) before it dies.
    wait_until(
        "the backend received the 20 sleeping calls",
        Duration::from_secs(10),
        || (backend.events("request") >= 50 + 20).then_some(()),
    );
    let killed_at = Instant::now();
    backend.kill();
    let s = in_flight.finish();
    eprintln!(
        "in-flight calls answered {:?} after the kill ({} ms after the first call)",
        killed_at.elapsed(),
        num(&s, "elapsed_ms")
    );
    assert_eq!(num(&s, "ok"), 0, "in flight at the kill: {s}");
    assert_eq!(
        errors(&s),
        vec![("status_6".to_string(), 20)],
        "in flight at the kill: {s}"
    );

    // New calls to the dead backend.
    for proto in ["v1", "v2crc"] {
        let s = run_client(
            strait.listen,
            &[
                "--proto",
                proto,
                "--method",
                "plus",
                "--count",
                "50",
                "--concurrency",
                "10",
                "--timeout",
                "5000",
            ],
        );
        assert_eq!(num(&s, "ok"), 0, "after the kill ({proto}): {s}");
        assert_eq!(
            errors(&s),
            vec![("status_6".to_string(), 50)],
            "after the kill ({proto}): {s}"
        );
    }
}

/// The log an operator reads: JSON lines with `--log-format json`, one line when an
/// upstream host goes down (not one per failed request) and one when it comes back.
#[test]
fn json_log_says_when_a_host_goes_down_and_comes_back() {
    let host = format!("127.0.0.1:{}", free_port()); // nothing listens there yet
    let endpoint = host.clone();
    let strait = Strait::start_with_args(
        "hostlog",
        &["--log-format", "json"],
        move |listen, admin| {
            config(
                listen,
                admin,
                "bolt",
                &[service_route(TEST_SERVICE, "flaky", "1s")],
                &[cluster("flaky", std::slice::from_ref(&endpoint))],
            )
        },
    );
    let log_lines = |message: &str| {
        strait
            .proc
            .stderr
            .json()
            .into_iter()
            .filter(|v| v["fields"]["message"] == message)
            .collect::<Vec<_>>()
    };
    let calls = [
        "--method",
        "plus",
        "--count",
        "20",
        "--concurrency",
        "4",
        "--timeout",
        "3000",
    ];
    let s = run_client(strait.listen, &calls);
    assert_eq!(num(&s, "ok"), 0, "the host is down: {s}");
    let down = wait_until("the host-down line", Duration::from_secs(10), || {
        let lines = log_lines("upstream host unreachable: backing off");
        (!lines.is_empty()).then_some(lines)
    });
    assert_eq!(
        down.len(),
        1,
        "one line when the host goes down, not one per request"
    );
    assert_eq!(down[0]["level"], "WARN");
    assert_eq!(down[0]["fields"]["host"], host.as_str());
    assert_eq!(down[0]["fields"]["cluster"], "flaky");

    // The host comes up: a socket that accepts (it never answers; connecting is
    // what tells the host is back). Calls go on until the proxy has tried again.
    let _up = std::net::TcpListener::bind(&host).expect("bind the host's port");
    let back = wait_until("the host-back line", Duration::from_secs(30), || {
        run_client(
            strait.listen,
            &["--method", "plus", "--count", "1", "--timeout", "300"],
        );
        let lines = log_lines("upstream host reachable again");
        (!lines.is_empty()).then_some(lines)
    });
    assert_eq!(back[0]["level"], "INFO");
    assert_eq!(back[0]["fields"]["host"], host.as_str());
    assert!(
        back[0]["fields"]["failed_attempts"].as_u64() >= Some(1),
        "{}",
        back[0]
    );

    // Every line is JSON, and addresses are printed as addresses.
    let lines = strait.proc.stderr.snapshot();
    assert!(
        lines
            .iter()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{lines:#?}"
    );
    assert!(!lines.iter().any(|l| l.contains("Some(")), "{lines:#?}");
    let admin = log_lines("admin server listening");
    assert_eq!(
        admin[0]["fields"]["addr"],
        strait.admin.to_string().as_str()
    );
}

/// `--version` names the commit the binary was built from.
#[test]
fn version_names_the_commit() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .arg("--version")
        .output()
        .expect("run strait --version");
    assert!(out.status.success());
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown commit".into());
    assert_eq!(
        version,
        format!("strait {} ({head})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn upstream_timeout_gets_timeout_status() {
    let backend = BoltServer::start("A", &[]);
    let addr = backend.addr();
    let strait = Strait::start("timeout", move |listen, admin| {
        config(
            listen,
            admin,
            "bolt",
            &[service_route(TEST_SERVICE, "test", "300ms")],
            &[cluster("test", std::slice::from_ref(&addr))],
        )
    });
    for proto in ["v1", "v2", "v2crc"] {
        let s = run_client(
            strait.listen,
            &[
                "--proto",
                proto,
                "--method",
                "sleep",
                "--args",
                "[2000]",
                "--count",
                "10",
                "--concurrency",
                "10",
                "--timeout",
                "3000",
            ],
        );
        assert_eq!(num(&s, "ok"), 0, "{proto}: {s}");
        assert_eq!(
            errors(&s),
            vec![("status_7".to_string(), 10)],
            "{proto}: {s}"
        );
    }
    // A call faster than the route timeout still works.
    let s = run_client(
        strait.listen,
        &["--method", "sleep", "--args", "[10]", "--count", "5"],
    );
    assert_eq!(num(&s, "ok"), 5, "{s}");
}

#[test]
fn oneway_never_answered() {
    const DEAD: &str = "com.example.Dead:1.0";
    // sofa-rpc-node's server answers oneway requests (the Java one does not): Strait must
    // drop those answers.
    let backend = BoltServer::start_with("A", &[], &["--answer-oneway"]);
    let addr = backend.addr();
    let dead_addr = format!("127.0.0.1:{}", free_port());
    let strait = Strait::start("oneway", move |listen, admin| {
        config(
            listen,
            admin,
            "bolt",
            &[
                service_route(TEST_SERVICE, "test", "3s"),
                service_route(DEAD, "dead", "3s"),
            ],
            &[
                cluster("test", std::slice::from_ref(&addr)),
                cluster("dead", std::slice::from_ref(&dead_addr)),
            ],
        )
    });

    let mut expected = 0;
    for proto in ["v1", "v2crc"] {
        let s = run_client(
            strait.listen,
            &[
                "--proto",
                proto,
                "--oneway",
                "--method",
                "note",
                "--count",
                "200",
                "--concurrency",
                "50",
                "--then-calls",
                "10",
            ],
        );
        assert_eq!(num(&s, "oneway_sent"), 200, "{proto}: {s}");
        assert_eq!(num(&s, "oneway_responses"), 0, "{proto}: {s}");
        assert!(errors(&s).is_empty(), "{proto}: {s}");
        // The same connection still carries two-way calls afterwards.
        assert_eq!(num(&s, "then_ok"), 10, "{proto}: {s}");
        assert_eq!(s["then_same_connection"], true, "{proto}: {s}");
        expected += 200;
        wait_until(
            &format!("backend receives {expected} oneway requests"),
            Duration::from_secs(10),
            || (backend.events("oneway") >= expected).then_some(()),
        );
        // The backend's answers to them reached Strait and were dropped there.
        wait_until(
            &format!("Strait drops the backend's {expected} answers to oneway requests"),
            Duration::from_secs(10),
            || {
                let host = &strait.cluster("test")["hosts"][0];
                (host["unknown_responses"].as_u64() == Some(expected as u64)).then_some(())
            },
        );
    }

    // Oneway with nowhere to go: no error frame either.
    for (what, service) in [
        ("unrouted", "com.example.Nobody:1.0"),
        ("dead backend", DEAD),
    ] {
        let s = run_client(
            strait.listen,
            &[
                "--service",
                service,
                "--oneway",
                "--method",
                "note",
                "--count",
                "50",
                "--concurrency",
                "10",
                "--oneway-wait",
                "1000",
                "--then-calls",
                "10",
            ],
        );
        assert_eq!(num(&s, "oneway_sent"), 50, "{what}: {s}");
        assert_eq!(num(&s, "oneway_responses"), 0, "{what}: {s}");
        assert!(errors(&s).is_empty(), "{what}: {s}");
        // The same connection still answers two-way calls (with Strait's own error, as
        // they go nowhere either): the oneway requests did not break it.
        assert_eq!(
            s["then_errors"],
            serde_json::json!({ "status_6": 10 }),
            "{what}: {s}"
        );
        assert_eq!(s["then_same_connection"], true, "{what}: {s}");
    }
    assert_eq!(backend.events("oneway"), expected, "nothing else reached A");
}

#[test]
fn auto_listener_detects_bolt() {
    let backend = BoltServer::start("A", &[]);
    let strait = simple_proxy("auto", &backend, "auto");
    for proto in ["v1", "v2", "v2crc"] {
        let s = run_client(
            strait.listen,
            &[
                "--proto",
                proto,
                "--method",
                "plus",
                "--count",
                "500",
                "--concurrency",
                "20",
                "--heartbeat",
                "--heartbeats",
                "5",
            ],
        );
        assert_eq!(num(&s, "ok"), 500, "{proto}: {s}");
        assert!(errors(&s).is_empty(), "{proto}: {s}");
        assert_heartbeats_and_wires(proto, &s);
    }
}

#[test]
fn graceful_shutdown_drains() {
    let backend = BoltServer::start("A", &[]);
    let mut strait = simple_proxy("drain", &backend, "bolt");
    let listen = strait.listen;
    assert!(accepts_connections(listen));

    let calls = Client::spawn(
        listen,
        &[
            "--method",
            "sleep",
            "--args",
            "[1000]",
            "--count",
            "20",
            "--concurrency",
            "20",
        ],
    );
    strait.wait_in_flight("test", 20);
    std::thread::sleep(Duration::from_millis(200));
    let term_at = Instant::now();
    strait.proc.signal("TERM");
    wait_until(
        "strait logs that it is shutting down",
        Duration::from_secs(5),
        || strait.proc.stderr.contains("shutting down").then_some(()),
    );
    // README: /ready turns 503 DRAINING while in-flight calls finish.
    wait_until(
        "/ready answers 503 DRAINING",
        Duration::from_secs(5),
        || draining(&strait).then_some(()),
    );
    let accepted_while_draining = accepts_connections(listen);

    let s = calls.finish();
    let status = strait
        .proc
        .wait_for_exit(Duration::from_secs(12))
        .unwrap_or_else(|| panic!("strait did not exit: {}", strait.proc.describe()));
    eprintln!(
        "strait exited {status} {:?} after SIGTERM",
        term_at.elapsed()
    );
    assert_eq!(num(&s, "ok"), 20, "calls in flight at SIGTERM: {s}");
    assert!(errors(&s).is_empty(), "calls in flight at SIGTERM: {s}");
    assert_eq!(status.code(), Some(0), "{}", strait.proc.describe());
    assert!(
        !accepted_while_draining,
        "the listener still accepted connections while draining"
    );
    assert!(
        !accepts_connections(listen),
        "the listener accepts connections after exit"
    );
}

/// SIGINT drains like SIGTERM, and the drain is cut off at `drain_timeout`: calls that
/// would take 20 s do not keep Strait alive past its 2 s drain (the 15 s bound on the
/// exit is far below 20 s), and it still exits 0.
#[test]
fn sigint_drain_is_cut_off_at_drain_timeout() {
    let backend = BoltServer::start("A", &[]);
    let addr = backend.addr();
    let mut strait = Strait::start("drain-cut", move |listen, admin| {
        config(
            listen,
            admin,
            "bolt",
            &[service_route(TEST_SERVICE, "test", "60s")],
            &[cluster("test", std::slice::from_ref(&addr))],
        )
        .replace("drain_timeout: 10s", "drain_timeout: 2s")
    });
    let calls = Client::spawn(
        strait.listen,
        &[
            "--method",
            "sleep",
            "--args",
            "[20000]",
            "--count",
            "5",
            "--concurrency",
            "5",
            "--timeout",
            "40000",
        ],
    );
    strait.wait_in_flight("test", 5);
    strait.proc.signal("INT");
    wait_until(
        "/ready answers 503 DRAINING after SIGINT",
        Duration::from_secs(5),
        || draining(&strait).then_some(()),
    );
    let status = strait
        .proc
        .wait_for_exit(Duration::from_secs(15))
        .unwrap_or_else(|| {
            panic!(
                "strait outlived its 2 s drain_timeout: {}",
                strait.proc.describe()
            )
        });
    assert_eq!(status.code(), Some(0), "{}", strait.proc.describe());
    let s = calls.finish();
    assert_eq!(num(&s, "ok"), 0, "the 20 s calls were cut off: {s}");
}

/// README: "if any listener cannot bind, nothing starts". The second of two listeners
/// asks for a port that is taken: Strait exits with an error naming it, and neither the
/// first listener nor the admin server is ever served.
#[test]
fn a_listener_that_cannot_bind_starts_nothing() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port to hold");
    let busy_port = busy.local_addr().expect("local addr").port();
    let (listen, admin) = (free_port(), free_port());
    let yaml = config(
        listen,
        admin,
        "bolt",
        &[service_route(TEST_SERVICE, "test", "3s")],
        &[cluster("test", &["127.0.0.1:9".to_string()])],
    )
    .replace(
        "route_configs:",
        &format!(
            "  - {{ name: taken, address: 127.0.0.1:{busy_port}, protocol: bolt, route_config: rpc }}\n\
             route_configs:"
        ),
    );
    let dir = TempDir::new("bind-fail");
    let path = dir.write("strait.yaml", &yaml);
    let mut proc = Proc::spawn(
        "strait[bind-fail]",
        std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
            .arg("-c")
            .arg(&path)
            .env("NO_COLOR", "1"),
    );
    let listen_addr: std::net::SocketAddr = ([127, 0, 0, 1], listen).into();
    let admin_addr: std::net::SocketAddr = ([127, 0, 0, 1], admin).into();
    // Until it exits, nothing may be served; it must exit well within the bound.
    let status = wait_until("strait exits", Duration::from_secs(15), || {
        assert!(
            !accepts_connections(listen_addr) && http_get(admin_addr, "/ready").is_err(),
            "a listener or the admin server was served: {}",
            proc.describe()
        );
        proc.try_status()
    });
    proc.wait_for_exit(Duration::from_secs(5));
    assert!(
        !status.success(),
        "exit status {status}: {}",
        proc.describe()
    );
    assert!(
        proc.stderr.contains(&busy_port.to_string()),
        "the error names the taken address: {}",
        proc.describe()
    );
    assert!(!accepts_connections(listen_addr) && http_get(admin_addr, "/ready").is_err());
    drop(busy);
}

/// Whether the admin server answers `/ready` with 503 `DRAINING`.
fn draining(strait: &Strait) -> bool {
    matches!(http_get(strait.admin, "/ready"), Ok((503, body)) if body.trim() == "DRAINING")
}

/// Writes `text`, runs `strait --validate` on it: (exit code, stderr, file path).
fn validate(dir: &TempDir, name: &str, text: &str) -> (i32, String, String) {
    let path = dir.write(name, text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .arg("-c")
        .arg(&path)
        .arg("--validate")
        .env("NO_COLOR", "1")
        .output()
        .expect("run strait --validate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

#[test]
fn validate_reports_file_line_and_key() {
    let dir = TempDir::new("validate");
    // Line numbers below are 1-based lines of this text.
    let good = "\
admin: { address: 127.0.0.1:9901 }
listeners:
  - { name: rpc, address: 127.0.0.1:12200, protocol: bolt, route_config: rpc }
route_configs:
  - name: rpc
    virtual_hosts:
      - name: default
        domains: [\"*\"]
        routes:
          - match:
              variables: [{ name: service, exact: \"com.alipay.test.TestService:1.0\" }]
            route: { cluster: test, timeout: 3s }
clusters:
  - name: test
    protocol: bolt
    lb_policy: round_robin
    connect_timeout: 1s
    endpoints: [{ address: 127.0.0.1:12201, weight: 1 }]
";
    let (code, stderr, _) = validate(&dir, "good.yaml", good);
    assert_eq!(code, 0, "a valid config: {stderr}");

    let cases: [(&str, String, u32, &str); 5] = [
        (
            "unknown key",
            good.replace("    lb_policy: round_robin", "    lb_polcy: round_robin"),
            16,
            "lb_polcy",
        ),
        (
            "route to an unknown cluster",
            good.replace("cluster: test, timeout", "cluster: nope, timeout"),
            12,
            "route_configs[0].virtual_hosts[0].routes[0].route.cluster",
        ),
        (
            "bad duration",
            good.replace("timeout: 3s", "timeout: 3x"),
            12,
            "route_configs[0].virtual_hosts[0].routes[0].route.timeout",
        ),
        (
            "unknown cluster protocol",
            good.replace("    protocol: bolt\n", "    protocol: boltz\n"),
            15,
            "clusters[0].protocol",
        ),
        (
            "unknown listener protocol",
            good.replace(
                "protocol: bolt, route_config",
                "protocol: grpcx, route_config",
            ),
            3,
            "listeners[0].protocol",
        ),
    ];
    for (i, (what, text, line, key)) in cases.iter().enumerate() {
        assert_ne!(text, good, "{what}: the edit did not apply");
        let (code, stderr, path) = validate(&dir, &format!("bad{i}.yaml"), text);
        assert_eq!(code, 1, "{what}: exit code; stderr: {stderr}");
        let at = format!("{path}:{line}:");
        assert!(
            stderr.contains(&at),
            "{what}: stderr should name {at}: {stderr}"
        );
        assert!(
            stderr.contains(key),
            "{what}: stderr should name the key {key}: {stderr}"
        );
    }
}

#[test]
fn admin_endpoints() {
    let backend = BoltServer::start("A", &[]);
    let strait = simple_proxy("admin", &backend, "bolt");

    let (status, body) = strait.admin_get("/ready");
    assert_eq!(status, 200, "/ready: {body}");

    // The configuration in its own syntax: `strait --validate` takes it back.
    let (status, yaml) = strait.admin_get("/config_dump");
    assert_eq!(status, 200, "/config_dump: {yaml}");
    for needle in [
        "name: rpc",
        "name: test",
        "lb_policy: round_robin",
        "connect_timeout: 1s",
    ] {
        assert!(yaml.contains(needle), "/config_dump lacks {needle}: {yaml}");
    }
    let dir = TempDir::new("dump");
    let (code, stderr, _) = validate(&dir, "dump.yaml", &yaml);
    assert_eq!(code, 0, "the dump does not validate: {stderr}\n{yaml}");
    let (status, body) = strait.admin_get("/config_dump?format=json");
    assert_eq!(status, 200, "/config_dump?format=json: {body}");
    let dump: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("/config_dump?format=json not JSON ({e}): {body}"));
    let text = dump.to_string();
    for needle in [
        "\"rpc\"",
        "\"test\"",
        TEST_SERVICE,
        &backend.addr(),
        &strait.listen.to_string(),
    ] {
        assert!(text.contains(needle), "/config_dump lacks {needle}: {body}");
    }

    let (status, body) = strait.admin_get("/listeners");
    assert_eq!(status, 200, "/listeners: {body}");
    assert!(
        body.contains("rpc") && body.contains(&strait.listen.to_string()),
        "/listeners: {body}"
    );

    let s = run_client(
        strait.listen,
        &["--method", "plus", "--count", "200", "--concurrency", "10"],
    );
    assert_eq!(num(&s, "ok"), 200, "{s}");
    let c = strait.cluster("test");
    let host = &c["hosts"][0];
    assert_eq!(host["address"], backend.addr().as_str(), "/clusters: {c}");
    assert_eq!(host["available"], true, "/clusters: {c}");
    assert!(
        host["connections"].as_u64().unwrap_or(0) > 0,
        "/clusters: {c}"
    );
    assert_eq!(host["requests"], 200, "/clusters: {c}");
    assert_eq!(host["failures"], 0, "/clusters: {c}");

    // Taken out of a load balancer's rotation before a restart: /ready says 503 while
    // traffic is still served, until /healthcheck/ok.
    let (status, body) = http_request(strait.admin, "POST", "/healthcheck/fail").unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = strait.admin_get("/ready");
    assert_eq!(
        (status, body.trim()),
        (503, "FAILED (POST /healthcheck/fail)")
    );
    let s = run_client(strait.listen, &["--method", "plus", "--count", "20"]);
    assert_eq!(num(&s, "ok"), 20, "still serving: {s}");
    let (status, _) = http_request(strait.admin, "POST", "/healthcheck/ok").unwrap();
    assert_eq!(status, 200);
    assert_eq!(strait.admin_get("/ready").0, 200);
    let (status, _) = http_request(strait.admin, "POST", "/ready").unwrap();
    assert_eq!(status, 404, "POST is for the admin's action paths only");

    // /metrics after the real client's 220 calls: valid Prometheus text whose request
    // counters say 220 Bolt successes, and /stats says the same.
    let (status, text) = strait.admin_get("/metrics");
    assert_eq!(status, 200, "/metrics: {text}");
    promtool_check(&text);
    let line = text
        .lines()
        .find(|l| l.starts_with("strait_requests_total{") && l.contains("protocol=\"bolt\""))
        .unwrap_or_else(|| panic!("no Bolt request counter: {text}"));
    assert!(
        line.contains("outcome=\"success\"") && line.ends_with(" 220"),
        "{line}"
    );
    let (status, body) = strait.admin_get("/stats");
    assert_eq!(status, 200, "/stats: {body}");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["strait_requests_total"][0]["value"], 220, "{body}");

    // The log filter changes at run time: a connection that speaks nothing known is
    // logged at debug, unseen at info until POST /logging?level=debug.
    let garbage = |n: u8| {
        let mut s = std::net::TcpStream::connect(strait.listen).unwrap();
        std::io::Write::write_all(&mut s, &[0xee, n, 0xee, 0xee]).unwrap();
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut sink);
    };
    garbage(1);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !strait.proc.stderr.contains("downstream connection closed"),
        "debug line at info: {}",
        strait.proc.describe()
    );
    let (status, body) = http_request(strait.admin, "POST", "/logging?level=debug").unwrap();
    assert_eq!((status, body.trim()), (200, "log filter is now debug"));
    garbage(2);
    wait_until("the debug line", Duration::from_secs(5), || {
        strait
            .proc
            .stderr
            .contains("downstream connection closed")
            .then_some(())
    });
    let (status, body) =
        http_request(strait.admin, "POST", "/logging?level=info%2Cx%3D%3D").unwrap();
    assert_eq!(status, 400, "a bad filter is refused: {body}");
    assert!(body.contains("invalid log filter"), "{body}");
    let (status, _) = http_request(strait.admin, "POST", "/logging").unwrap();
    assert_eq!(status, 400, "no level");
    let (_, text) = strait.admin_get("/metrics");
    assert!(
        text.contains(
            "strait_listener_protocol_errors_total{listener=\"rpc\",protocol=\"bolt\"} 2"
        ),
        "both undecodable connections counted: {text}"
    );

    let (status, _) = strait.admin_get("/nope");
    assert_eq!(status, 404);
}

/// `scripts/quickstart` as a newcomer runs it: it prints two calls with the answers to
/// expect once Strait is ready, the calls give exactly those answers, and SIGTERM to the
/// script stops Strait and the echo backend and frees their ports.
#[test]
fn quickstart_prints_working_calls_and_stops_everything_on_sigterm_or_sigint() {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_strait"))
        .parent()
        .expect("a binary directory")
        .to_path_buf();
    for tool in ["strait-echo", "strait-call"] {
        assert!(
            bin_dir.join(tool).exists(),
            "{tool} is not built next to strait in {}: run the workspace's tests \
             (`cargo nextest run --workspace` builds every binary)",
            bin_dir.display()
        );
    }
    let ports: Vec<std::net::SocketAddr> = ["127.0.0.1:12200", "127.0.0.1:12201", "127.0.0.1:9901"]
        .iter()
        .map(|a| a.parse().expect("an address"))
        .collect();
    let script = start_quickstart(&bin_dir);

    // Each printed call, then the answer it says to expect.
    let lines = script.stdout.snapshot();
    let mut calls = 0;
    for (line, next) in lines.iter().zip(lines.iter().skip(1)) {
        let Some(command) = line.trim().strip_prefix(&format!("{}/", bin_dir.display())) else {
            continue;
        };
        let expected = next
            .trim()
            .strip_prefix("prints: ")
            .expect("a `prints:` line");
        let mut words = command.split_whitespace();
        let program = bin_dir.join(words.next().expect("a program"));
        let out = std::process::Command::new(program)
            .args(words)
            .output()
            .expect("run the printed call");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            expected,
            "{command}"
        );
        assert!(out.status.success(), "{command}: {out:?}");
        calls += 1;
    }
    assert_eq!(calls, 2, "two calls printed: {lines:#?}");

    // A call with no route shows the proxy's error text.
    let out = std::process::Command::new(bin_dir.join("strait-call"))
        .args(["127.0.0.1:12200", "--service", "nope", "--method", "m"])
        .output()
        .expect("run strait-call");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "status=6 served-by=- body= error=no route for nope#m (strait)"
    );

    stop_quickstart(script, "TERM", 143, &ports);
    // Ctrl-C at a terminal: SIGINT (exit 130) stops everything the same way.
    let script = start_quickstart(&bin_dir);
    stop_quickstart(script, "INT", 130, &ports);
}

/// `scripts/quickstart` on the binaries in `bin_dir`, once it says it is ready. SIGINT
/// is reset to its default for it (`env --default-signal`), as at a terminal: a
/// non-interactive shell cannot trap a signal it was started with ignored.
fn start_quickstart(bin_dir: &std::path::Path) -> Proc {
    let mut script = Proc::spawn(
        "quickstart",
        std::process::Command::new("env")
            .args(["--default-signal=INT", "bash"])
            .arg(repo_root().join("scripts/quickstart"))
            .env("STRAIT_BIN_DIR", bin_dir)
            .env("NO_COLOR", "1"),
    );
    wait_until(
        "the quickstart's ready message",
        Duration::from_secs(30),
        || {
            assert!(
                script.try_status().is_none(),
                "quickstart exited: {}",
                script.describe()
            );
            script.stdout.contains("Strait is ready").then_some(())
        },
    );
    script
}

/// Sends `signal` to the quickstart script, which must exit with `code` and leave its
/// ports free and no process behind.
fn stop_quickstart(mut script: Proc, signal: &str, code: i32, ports: &[std::net::SocketAddr]) {
    script.signal(signal);
    let status = script
        .wait_for_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("quickstart ignored SIG{signal}: {}", script.describe()));
    assert_eq!(status.code(), Some(code), "{}", script.describe());
    for addr in ports {
        wait_until(
            &format!("{addr} to be free"),
            Duration::from_secs(10),
            || (!accepts_connections(*addr)).then_some(()),
        );
    }
    let left = std::process::Command::new("pgrep")
        .args([
            "-f",
            "examples/quickstart.yaml|strait-echo --listen 127.0.0.1:12201",
        ])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "left running after SIG{signal}: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// Access logs from the `strait` binary with the real Bolt client: one line per call,
/// and after log rotation (the file renamed, SIGUSR1) the next lines go to a new file
/// while the old one keeps its lines.
#[test]
fn access_log_is_reopened_on_sigusr1() {
    let backend = BoltServer::start("A", &[]);
    let dir = TempDir::new("access-log");
    let log = dir.path().join("access.log");
    let strait = simple_proxy_with_listener_keys(
        "access-log",
        &backend,
        &format!(
            "access_log: {{ path: \"{}\", format: \"%PROTOCOL% %SERVICE% %STATUS% %OUTCOME% %UPSTREAM_HOST%\" }}",
            log.display()
        ),
    );
    let lines = |path: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let s = run_client(strait.listen, &["--method", "plus", "--count", "5"]);
    assert_eq!(num(&s, "ok"), 5, "{s}");
    let want = format!("bolt {TEST_SERVICE} 0 success {}", backend.addr());
    wait_until("5 lines", Duration::from_secs(5), || {
        (lines(&log).len() == 5).then_some(())
    });
    assert!(lines(&log).iter().all(|l| *l == want), "{:?}", lines(&log));

    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    strait.proc.signal("USR1");
    wait_until("the reopen", Duration::from_secs(5), || {
        strait
            .proc
            .stderr
            .contains("access log reopened")
            .then_some(())
    });
    let s = run_client(strait.listen, &["--method", "plus", "--count", "3"]);
    assert_eq!(num(&s, "ok"), 3, "{s}");
    wait_until("3 lines in the new file", Duration::from_secs(5), || {
        (lines(&log).len() == 3).then_some(())
    });
    assert_eq!(lines(&rotated).len(), 5, "the rotated file keeps its lines");
    assert!(lines(&log).iter().all(|l| *l == want), "{:?}", lines(&log));
}

/// `access_log: { path: stdout, format: json }`: the real Bolt client's calls appear on
/// the binary's stdout, one JSON object each, while logs stay on stderr.
#[test]
fn access_log_to_stdout_as_json() {
    let backend = BoltServer::start("A", &[]);
    let strait = simple_proxy_with_listener_keys(
        "access-stdout",
        &backend,
        "access_log: { path: stdout, format: json }",
    );
    let s = run_client(strait.listen, &["--method", "plus", "--count", "3"]);
    assert_eq!(num(&s, "ok"), 3, "{s}");
    let lines = wait_until("3 lines on stdout", Duration::from_secs(5), || {
        let lines = strait.proc.stdout.json();
        (lines.len() >= 3).then_some(lines)
    });
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        assert_eq!(line["protocol"], "bolt", "{line}");
        assert_eq!(line["service"], TEST_SERVICE, "{line}");
        // sofa-rpc-node names the method only in the hessian body, not in the header
        // map's `sofa_head_method_name` (Java SOFARPC writes both): no `method` here.
        assert_eq!(line["method"], serde_json::Value::Null, "{line}");
        assert_eq!(line["status"], 0, "{line}");
        assert_eq!(line["outcome"], "success", "{line}");
        assert_eq!(line["cluster"], "test", "{line}");
        assert_eq!(line["upstream_host"], backend.addr().as_str(), "{line}");
    }
    assert!(
        !strait.proc.stderr.contains("\"outcome\""),
        "access-log lines stay off stderr"
    );
}
