//! Dubbo 2 interop: the real `strait` binary between real Dubbo 2 consumers (dubbo2.js
//! `DirectlyDubbo` and dubbo-ssl-python `DubboClient`) and the hessian.js test provider
//! (`tests/interop/dubbo-server.js`), see `<repo>/tests/interop/README.md`.
//!
//! Every answer of the provider is a JSON description of the call it received (backend
//! name, service, method, version, group, attachments, args); the clients check each
//! answer against the call they made, so `ok` means "the right backend answered exactly
//! this request".

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

const DEMO: &str = "com.example.DemoService";

/// A Dubbo cluster with the given endpoint addresses.
fn dubbo_cluster(name: &str, endpoints: &[String]) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|a| format!("{{ address: \"{a}\", weight: 1 }}"))
        .collect();
    format!(
        "{{ name: {name}, protocol: dubbo, lb_policy: round_robin, connect_timeout: 1s, \
         max_connections_per_host: 2, endpoints: [{}] }}",
        eps.join(", ")
    )
}

/// A route matching every `(variable, exact value)` pair, to `cluster` with `timeout`.
fn vars_route(vars: &[(&str, &str)], cluster: &str, timeout: &str) -> String {
    let matchers: Vec<String> = vars
        .iter()
        .map(|(name, value)| format!("{{ name: {name}, exact: \"{value}\" }}"))
        .collect();
    format!(
        "{{ match: {{ variables: [{}] }}, route: {{ cluster: {cluster}, timeout: {timeout} }} }}",
        matchers.join(", ")
    )
}

/// Strait with one listener (`protocol`) → `routes` → `clusters`.
fn start_strait(tag: &str, protocol: &str, routes: Vec<String>, clusters: Vec<String>) -> Strait {
    let protocol = protocol.to_string();
    Strait::start(tag, move |listen, admin| {
        crate::config(listen, admin, &protocol, &routes, &clusters)
    })
}

/// A `dubbo` listener routing `service` to one backend.
fn simple_dubbo_proxy(tag: &str, service: &str, backend: &DubboServer, timeout: &str) -> Strait {
    start_strait(
        tag,
        "dubbo",
        vec![vars_route(&[("service", service)], "backend", timeout)],
        vec![dubbo_cluster("backend", &[backend.addr()])],
    )
}

/// The summary's `ok` must be `n`, with no error of any kind.
fn assert_all_ok(s: &Value, n: u64, what: &str) {
    assert_eq!(num(s, "ok"), n, "{what}: {s}");
    assert_eq!(num(s, "sent"), n, "{what}: {s}");
    assert!(errors(s).is_empty(), "{what}: errors: {s}");
}

/// The call descriptions a `--per-call` run got back (panics on an error result).
fn answers(s: &Value) -> Vec<Value> {
    s["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no per-call results: {s}"))
        .iter()
        .map(|r| {
            let text = r["answer"]
                .as_str()
                .unwrap_or_else(|| panic!("call without an answer: {r}\nsummary: {s}"));
            serde_json::from_str(text).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {r}"))
        })
        .collect()
}

/// Every per-call result of a `--per-call` run failed with `status`, and its message string
/// (decoded from the response body) starts with `prefix` (Strait writes MOSN's
/// `<code>|<text>` form).
fn assert_status_messages(s: &Value, status: u64, prefix: &str, what: &str) {
    let results = s["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no per-call results: {s}"));
    assert_eq!(results.len() as u64, num(s, "sent"), "{what}: {s}");
    for r in results {
        assert_eq!(r["status"], status, "{what}: {r}");
        let message = r["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(prefix),
            "{what}: status {status}'s message should start with {prefix:?}: {r}"
        );
    }
}

// === raw frames ===

/// A Dubbo frame: 16-byte header (magic, flag, status, id, length) + body.
fn frame(flag: u8, status: u8, id: i64, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0xda, 0xbb, flag, status];
    f.extend_from_slice(&id.to_be_bytes());
    f.extend_from_slice(&u32::try_from(body.len()).expect("small body").to_be_bytes());
    f.extend_from_slice(body);
    f
}

/// A fixture frame with its 8-byte id replaced.
fn with_id(mut f: Vec<u8>, id: i64) -> Vec<u8> {
    f[4..12].copy_from_slice(&id.to_be_bytes());
    f
}

/// One received frame: (flag, status, id, body).
fn read_frame(stream: &mut TcpStream) -> (u8, u8, i64, Vec<u8>) {
    let mut head = [0u8; 16];
    stream
        .read_exact(&mut head)
        .unwrap_or_else(|e| panic!("reading a Dubbo header from strait: {e}"));
    assert_eq!(&head[..2], &[0xda, 0xbb], "bad magic: {head:02x?}");
    let id = i64::from_be_bytes(head[4..12].try_into().expect("8 bytes"));
    let len = usize::try_from(u32::from_be_bytes(
        head[12..16].try_into().expect("4 bytes"),
    ))
    .expect("length fits usize");
    let mut body = vec![0u8; len];
    stream
        .read_exact(&mut body)
        .unwrap_or_else(|e| panic!("reading a {len}-byte Dubbo body from strait: {e}"));
    (head[2], head[3], id, body)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set_read_timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

// === tests ===

/// `strait --validate` accepts a Dubbo listener and cluster (the first thing to break if
/// `protocol: dubbo` is not wired into the binary).
#[test]
fn dubbo_config_validates() {
    let dir = TempDir::new("dubbo-validate");
    let text = crate::config(
        12200,
        9901,
        "dubbo",
        &[vars_route(&[("service", DEMO)], "backend", "3s")],
        &[dubbo_cluster("backend", &["127.0.0.1:20880".to_string()])],
    );
    let path = dir.write("dubbo.yaml", &text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .arg("-c")
        .arg(path)
        .arg("--validate")
        .env("NO_COLOR", "1")
        .output()
        .expect("run strait --validate");
    assert_eq!(
        out.status.code(),
        Some(0),
        "strait --validate rejected a dubbo config:\n{text}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// 10,000 dubbo2.js calls at concurrency 100 through Strait, each answer checked against
/// its own request; dubbo2.js's own heartbeat frames are answered by Strait and none
/// reaches the backend.
#[test]
fn dubbo_load_10k_dubbo2js() {
    let mut backend = DubboServer::start("b1");
    let strait = simple_dubbo_proxy("dubbo-load", DEMO, &backend, "3s");

    let s = run_dubbo_js(
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
            "10000",
            "--concurrency",
            "100",
            "--heartbeats",
            "3",
            "--timeout",
            "10000",
        ],
    );
    eprintln!(
        "dubbo2.js load: {} ok in {} ms ({} calls/s)",
        num(&s, "ok"),
        num(&s, "elapsed_ms"),
        num(&s, "calls_per_sec")
    );
    assert_all_ok(&s, 10_000, "10,000 calls");
    assert_eq!(backend_count(&s, "b1"), 10_000, "{s}");
    // dubbo2.js's HeartBeat.encode() frames (id 0): each answered with flag 0x22, status 20,
    // a 1-byte body.
    assert_eq!(num(&s, "heartbeat_sent"), 3, "{s}");
    let acks = s["heartbeat_acks"].as_array().cloned().unwrap_or_default();
    assert_eq!(acks.len(), 3, "heartbeat replies: {s}");
    for ack in &acks {
        assert_eq!(ack["flag"], 0x22, "heartbeat reply: {s}");
        assert_eq!(ack["status"], 20, "heartbeat reply: {s}");
        assert_eq!(ack["id"], "0", "heartbeat reply: {s}");
        assert_eq!(ack["len"], 1, "heartbeat reply: {s}");
    }

    let stats = backend.stop();
    assert_eq!(stats["requests"], 10_000, "backend stats: {stats}");
    assert_eq!(
        stats["heartbeats"], 0,
        "heartbeats reached the backend: {stats}"
    );
    assert_eq!(stats["bad_requests"], 0, "backend stats: {stats}");
    assert_eq!(
        stats["byVersion"]["2.0.2"], 10_000,
        "backend stats: {stats}"
    );
}

/// The independent Python client (dubbo-ssl-python, dubbo version 2.4.10 → result flag 1)
/// through Strait, and its own idle heartbeats answered by Strait.
#[test]
fn dubbo_python_client() {
    let mut backend = DubboServer::start("py1");
    let strait = simple_dubbo_proxy("dubbo-py", DEMO, &backend, "3s");

    let s = run_dubbo_py(
        strait.listen,
        &[
            "--service",
            DEMO,
            "--method",
            "sayHello",
            "--version",
            "1.0.0",
            "--group",
            "g1",
            "--args",
            r#"["py-$i", "$i", 2.5, true]"#,
            "--count",
            "1000",
            "--concurrency",
            "20",
            "--heartbeats",
            "2",
        ],
    );
    eprintln!(
        "dubbo-ssl-python: {} ok in {} ms",
        num(&s, "ok"),
        num(&s, "elapsed_ms")
    );
    assert_all_ok(&s, 1000, "python calls");
    assert_eq!(backend_count(&s, "py1"), 1000, "{s}");
    let acks = s["heartbeat_acks"].as_array().cloned().unwrap_or_default();
    assert!(acks.len() >= 2, "python heartbeats unanswered: {s}");
    for ack in &acks {
        assert_eq!(ack["flag"], 0x22, "heartbeat reply: {s}");
        assert_eq!(ack["status"], 20, "heartbeat reply: {s}");
        assert_eq!(ack["len"], 1, "heartbeat reply: {s}");
    }
    let stats = backend.stop();
    assert_eq!(stats["requests"], 1000, "backend stats: {stats}");
    assert_eq!(stats["byVersion"]["2.4.10"], 1000, "backend stats: {stats}");
    assert_eq!(
        stats["heartbeats"], 0,
        "heartbeats reached the backend: {stats}"
    );
}

/// Routing on the Dubbo variables `service`, `method`, `version` and `group`, proven by
/// the name of the backend that answered, with both clients.
#[test]
fn dubbo_routes_by_service_method_version_group() {
    const ALPHA: &str = "com.example.Alpha";
    const BETA: &str = "com.example.Beta";
    const GAMMA: &str = "com.example.Gamma";
    let a = DubboServer::start("A");
    let b = DubboServer::start("B");
    let c = DubboServer::start("C");
    let strait = start_strait(
        "dubbo-routes",
        "dubbo",
        vec![
            vars_route(&[("service", ALPHA)], "a", "3s"),
            vars_route(&[("service", BETA), ("method", "sayHello")], "b", "3s"),
            vars_route(&[("service", BETA)], "c", "3s"),
            vars_route(&[("service", GAMMA), ("version", "2.0.0")], "b", "3s"),
            vars_route(&[("service", GAMMA), ("group", "canary")], "c", "3s"),
            vars_route(&[("service", GAMMA)], "a", "3s"),
        ],
        vec![
            dubbo_cluster("a", &[a.addr()]),
            dubbo_cluster("b", &[b.addr()]),
            dubbo_cluster("c", &[c.addr()]),
        ],
    );

    // (service, method, version, group) → expected backend
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, &'a str);
    let cases: [Case<'_>; 8] = [
        (ALPHA, "sayHello", None, None, "A"),
        (ALPHA, "whoami", Some("1.0.0"), Some("canary"), "A"),
        (BETA, "sayHello", None, None, "B"),
        (BETA, "whoami", None, None, "C"),
        (GAMMA, "whoami", Some("2.0.0"), None, "B"),
        (GAMMA, "whoami", Some("2.0.0"), Some("canary"), "B"),
        (GAMMA, "whoami", Some("1.0.0"), Some("canary"), "C"),
        (GAMMA, "whoami", Some("1.0.0"), Some("stable"), "A"),
    ];
    for (service, method, version, group, want) in cases {
        let mut args = vec!["--service", service, "--method", method];
        if let Some(v) = version {
            args.extend(["--version", v]);
        }
        if let Some(g) = group {
            args.extend(["--group", g]);
        }
        args.extend(["--count", "20", "--concurrency", "5"]);
        let what = format!("{service}/{method} version {version:?} group {group:?}");
        for (client, s) in [
            ("dubbo2.js", run_dubbo_js(strait.listen, &args)),
            ("python", run_dubbo_py(strait.listen, &args)),
        ] {
            assert_all_ok(&s, 20, &format!("{client} {what}"));
            assert_eq!(
                s["backends"],
                serde_json::json!({ want: 20 }),
                "{client} {what} should be answered by {want} only: {s}"
            );
        }
    }
}

/// `request_headers_to_add` arrives at the backend as an attachment and
/// `request_headers_to_remove` removes one; the rest of the request is intact.
#[test]
fn dubbo_route_adds_and_removes_attachments() {
    let backend = DubboServer::start("H");
    let addr = backend.addr();
    let strait = Strait::start("dubbo-headers", move |listen, admin| {
        crate::config(
            listen,
            admin,
            "dubbo",
            &[format!(
                "{{ match: {{ variables: [{{ name: service, exact: \"{DEMO}\" }}] }}, \
                 route: {{ cluster: backend, timeout: 3s }}, \
                 request_headers_to_add: [{{ name: x-env, value: canary }}], \
                 request_headers_to_remove: [x-drop] }}"
            )],
            &[dubbo_cluster("backend", std::slice::from_ref(&addr))],
        )
    });

    let args = [
        "--service",
        DEMO,
        "--method",
        "sayHello",
        "--version",
        "1.0.0",
        "--group",
        "g1",
        "--attachment",
        "x-drop=gone",
        "--attachment",
        "x-keep=stay",
        "--args",
        r#"["hdr-$i", "$i"]"#,
        "--count",
        "10",
        "--concurrency",
        "5",
        "--per-call",
    ];
    for (client, s) in [
        ("dubbo2.js", run_dubbo_js(strait.listen, &args)),
        ("python", run_dubbo_py(strait.listen, &args)),
    ] {
        assert_all_ok(&s, 10, client);
        for d in answers(&s) {
            let att = &d["attachments"];
            assert_eq!(d["backend"], "H", "{client}: {d}");
            assert_eq!(
                att["x-env"], "canary",
                "{client}: added attachment missing: {d}"
            );
            assert!(
                att.get("x-drop").is_none(),
                "{client}: removed attachment still arrived: {d}"
            );
            assert_eq!(
                att["x-keep"], "stay",
                "{client}: other attachment lost: {d}"
            );
            assert_eq!(att["interface"], DEMO, "{client}: {d}");
            assert_eq!(att["path"], DEMO, "{client}: {d}");
            assert_eq!(att["version"], "1.0.0", "{client}: {d}");
            assert_eq!(att["group"], "g1", "{client}: {d}");
            assert_eq!(d["version"], "1.0.0", "{client}: {d}");
            assert_eq!(d["method"], "sayHello", "{client}: {d}");
        }
    }
}

/// An unrouted service gets status 60 SERVICE_NOT_FOUND, reported as an error by both
/// clients, and nothing reaches the backend.
#[test]
fn dubbo_unrouted_service_gets_60() {
    let mut backend = DubboServer::start("U");
    let strait = simple_dubbo_proxy("dubbo-unrouted", DEMO, &backend, "3s");
    let args = [
        "--service",
        "com.example.Nobody",
        "--count",
        "50",
        "--concurrency",
        "10",
        "--per-call",
    ];
    for (client, s) in [
        ("dubbo2.js", run_dubbo_js(strait.listen, &args)),
        ("python", run_dubbo_py(strait.listen, &args)),
    ] {
        assert_eq!(num(&s, "ok"), 0, "{client}: {s}");
        assert_eq!(
            errors(&s),
            vec![("status_60".to_string(), 50)],
            "{client}: {s}"
        );
        eprintln!("{client}: unrouted → {}", s["error_samples"]["status_60"]);
        assert_status_messages(&s, 60, "404|", client);
        assert!(
            s["error_samples"]["status_60"]
                .as_str()
                .is_some_and(|m| m.contains("com.example.Nobody")),
            "{client}: the message should name the service: {s}"
        );
    }
    let stats = backend.stop();
    assert_eq!(stats["requests"], 0, "the backend got requests: {stats}");
}

/// A backend that dies: calls held by it get 60, and so do new calls to it.
#[test]
fn dubbo_killed_backend_gets_60() {
    let mut backend = DubboServer::start("K");
    let strait = simple_dubbo_proxy("dubbo-killed", DEMO, &backend, "5s");

    let s = run_dubbo_js(strait.listen, &["--service", DEMO, "--count", "20"]);
    assert_all_ok(&s, 20, "before the kill");

    // 10 calls held by the backend (sleep 3 s, route timeout 5 s) when it is killed.
    let held = Client::dubbo_js(
        strait.listen,
        &[
            "--service",
            DEMO,
            "--method",
            "sleep",
            "--args",
            "[3000]",
            "--count",
            "10",
            "--concurrency",
            "10",
            "--timeout",
            "8000",
            "--per-call",
        ],
    );
    wait_until(
        "the backend holds 10 sleep calls",
        Duration::from_secs(10),
        || (backend.events("sleeping") >= 10).then_some(()),
    );
    backend.kill();
    let s = held.finish();
    assert_eq!(num(&s, "ok"), 0, "held at the kill: {s}");
    assert_eq!(
        errors(&s),
        vec![("status_60".to_string(), 10)],
        "held at the kill: {s}"
    );
    assert_status_messages(&s, 60, "502|", "held at the kill");
    eprintln!("held at the kill → {}", s["error_samples"]["status_60"]);

    let args = [
        "--service",
        DEMO,
        "--count",
        "30",
        "--concurrency",
        "10",
        "--per-call",
    ];
    for (client, s) in [
        ("dubbo2.js", run_dubbo_js(strait.listen, &args)),
        ("python", run_dubbo_py(strait.listen, &args)),
    ] {
        assert_eq!(num(&s, "ok"), 0, "{client} after the kill: {s}");
        assert_eq!(
            errors(&s),
            vec![("status_60".to_string(), 30)],
            "{client} after the kill: {s}"
        );
        assert_status_messages(&s, 60, "502|", &format!("{client} after the kill"));
        eprintln!(
            "{client} after the kill → {}",
            s["error_samples"]["status_60"]
        );
    }
}

/// A backend slower than the route's `timeout` → status 31 SERVER_TIMEOUT for both clients
/// (well before the clients' own 5 s timeout); faster calls still work.
#[test]
fn dubbo_upstream_timeout_gets_31() {
    let backend = DubboServer::start("T");
    let strait = simple_dubbo_proxy("dubbo-timeout", DEMO, &backend, "300ms");
    let args = [
        "--service",
        DEMO,
        "--method",
        "sleep",
        "--args",
        "[2000]",
        "--count",
        "10",
        "--concurrency",
        "10",
        "--timeout",
        "5000",
        "--per-call",
    ];
    for (client, s) in [
        ("dubbo2.js", run_dubbo_js(strait.listen, &args)),
        ("python", run_dubbo_py(strait.listen, &args)),
    ] {
        assert_eq!(num(&s, "ok"), 0, "{client}: {s}");
        assert_eq!(
            errors(&s),
            vec![("status_31".to_string(), 10)],
            "{client}: {s}"
        );
        assert_status_messages(&s, 31, "504|", client);
        eprintln!("{client}: timeout → {}", s["error_samples"]["status_31"]);
    }
    let fast = [
        "--service",
        DEMO,
        "--method",
        "sleep",
        "--args",
        "[10]",
        "--count",
        "5",
    ];
    assert_all_ok(
        &run_dubbo_js(strait.listen, &fast),
        5,
        "dubbo2.js sleep(10)",
    );
    assert_all_ok(&run_dubbo_py(strait.listen, &fast), 5, "python sleep(10)");
}

/// Heartbeats sent as raw frames: a two-way heartbeat is answered by Strait itself (same
/// id, flag 0x22, status 20, body `4e`), a oneway one is not answered, Java-encoded
/// requests on the same connection still go through (a oneway one unanswered), and no
/// heartbeat reaches the backend.
#[test]
fn dubbo_heartbeats_answered_locally() {
    const JAVA_SERVICE: &str = "org.apache.dubbo.demo.DemoService";
    let mut backend = DubboServer::start("hb");
    let strait = simple_dubbo_proxy("dubbo-heartbeat", JAVA_SERVICE, &backend, "3s");
    let mut conn = connect(strait.listen);

    // The fixture heartbeat (id 7), then one with a full 8-byte id.
    let fixture = strait_conformance_fixtures::hex("dubbo_heartbeat_request");
    assert_eq!(fixture, frame(0xe2, 0, 7, &[0x4e]), "fixture changed");
    for id in [7_i64, 0x0102_0304_0506_0708] {
        conn.write_all(&frame(0xe2, 0, id, &[0x4e]))
            .expect("write heartbeat");
        let (flag, status, rid, body) = read_frame(&mut conn);
        assert_eq!(
            (flag, status, rid, body.as_slice()),
            (0x22, 20, id, &[0x4e][..]),
            "heartbeat reply for id {id:#x}"
        );
    }

    // A oneway heartbeat (0xa2), then a two-way one: the next frame is the two-way's reply.
    let mut both = frame(0xa2, 0, 100, &[0x4e]);
    both.extend(frame(0xe2, 0, 101, &[0x4e]));
    conn.write_all(&both).expect("write heartbeats");
    let (flag, status, rid, body) = read_frame(&mut conn);
    assert_eq!(
        (flag, status, rid, body.as_slice()),
        (0x22, 20, 101, &[0x4e][..]),
        "the oneway heartbeat (id 100) must not be answered"
    );

    // A oneway request (Java-encoded fixture, flag 0x82) is forwarded and never answered:
    // once the backend has it, the next frame on the connection is a heartbeat's reply.
    let oneway = strait_conformance_fixtures::hex("dubbo_request_oneway");
    assert_eq!(oneway[2], 0x82, "fixture changed");
    conn.write_all(&with_id(oneway, 44))
        .expect("write oneway request");
    wait_until(
        "the backend receives the oneway request",
        Duration::from_secs(10),
        || (backend.events("oneway") == 1).then_some(()),
    );
    conn.write_all(&frame(0xe2, 0, 45, &[0x4e]))
        .expect("write heartbeat");
    let (flag, status, rid, _) = read_frame(&mut conn);
    assert_eq!(
        (flag, status, rid),
        (0x22, 20, 45),
        "the oneway request (id 44) must not be answered"
    );

    // A real (Java-encoded) two-way request and a heartbeat in one write: both answered.
    let mut mixed = with_id(strait_conformance_fixtures::hex("dubbo_request_twoway"), 42);
    mixed.extend(frame(0xe2, 0, 43, &[0x4e]));
    conn.write_all(&mixed).expect("write request + heartbeat");
    let mut got = [read_frame(&mut conn), read_frame(&mut conn)];
    got.sort_by_key(|f| f.2);
    let (flag, status, rid, body) = &got[0];
    assert_eq!((*flag, *status, *rid), (0x02, 20, 42), "request answer");
    assert_eq!(
        body.first(),
        Some(&0x94),
        "result flag 4 for dubbo 2.0.2: {body:02x?}"
    );
    let text = String::from_utf8_lossy(body);
    assert!(
        text.contains("\"backend\":\"hb\"") && text.contains("\"args\":[\"world\"]"),
        "the backend's description of the fixture call: {text}"
    );
    assert_eq!(
        (got[1].0, got[1].1, got[1].2, got[1].3.as_slice()),
        (0x22, 20, 43, &[0x4e][..]),
        "heartbeat reply"
    );
    drop(conn);

    let stats = backend.stop();
    assert_eq!(
        stats["heartbeats"], 0,
        "heartbeats reached the backend: {stats}"
    );
    assert_eq!(stats["requests"], 1, "backend stats: {stats}");
    assert_eq!(stats["oneway"], 1, "backend stats: {stats}");
    assert_eq!(
        backend.events("heartbeat"),
        0,
        "backend saw heartbeats: {}",
        backend.proc.stdout.tail(5)
    );
}

/// Bolt and Dubbo through one `protocol: auto` listener at the same time: sofa-rpc-node,
/// dubbo2.js and dubbo-ssl-python clients running concurrently, each answered by its own
/// backend, heartbeats of both protocols answered.
#[test]
fn bolt_and_dubbo_on_one_auto_listener() {
    let mut bolt = BoltServer::start("bolt", &[]);
    let mut dubbo = DubboServer::start("dubbo");
    let (bolt_addr, dubbo_addr) = (bolt.addr(), dubbo.addr());
    let strait = start_strait(
        "auto-mixed",
        "auto",
        vec![
            crate::service_route(TEST_SERVICE, "bolt", "3s"),
            vars_route(&[("service", DEMO)], "dubbo", "3s"),
        ],
        vec![
            crate::cluster("bolt", &[bolt_addr]),
            dubbo_cluster("dubbo", &[dubbo_addr]),
        ],
    );

    let bolt_client = Client::spawn(
        strait.listen,
        &[
            "--proto",
            "v2crc",
            "--method",
            "plus",
            "--count",
            "3000",
            "--concurrency",
            "50",
            "--heartbeat",
        ],
    );
    let js_client = Client::dubbo_js(
        strait.listen,
        &[
            "--service",
            DEMO,
            "--count",
            "3000",
            "--concurrency",
            "50",
            "--heartbeats",
            "2",
        ],
    );
    let py_client = Client::dubbo_py(
        strait.listen,
        &["--service", DEMO, "--count", "500", "--concurrency", "10"],
    );
    let (b, j, p) = (bolt_client.finish(), js_client.finish(), py_client.finish());

    assert_eq!(num(&b, "ok"), 3000, "bolt: {b}");
    assert!(errors(&b).is_empty(), "bolt: {b}");
    assert_eq!(
        num(&b, "heartbeat_acks"),
        num(&b, "heartbeat_sent"),
        "bolt: {b}"
    );
    assert_all_ok(&j, 3000, "dubbo2.js");
    assert_eq!(j["backends"], serde_json::json!({ "dubbo": 3000 }), "{j}");
    assert_eq!(
        j["heartbeat_acks"].as_array().map(Vec::len),
        Some(2),
        "dubbo2.js heartbeats: {j}"
    );
    assert_all_ok(&p, 500, "python");
    assert_eq!(p["backends"], serde_json::json!({ "dubbo": 500 }), "{p}");

    // Each backend got exactly its own protocol's calls, and no heartbeat.
    let dubbo_stats = dubbo.stop();
    assert_eq!(
        dubbo_stats["requests"], 3500,
        "dubbo backend: {dubbo_stats}"
    );
    assert_eq!(dubbo_stats["heartbeats"], 0, "dubbo backend: {dubbo_stats}");
    let bolt_stats = bolt.stop();
    assert_eq!(bolt_stats["requests"], 3000, "bolt backend: {bolt_stats}");
    assert_eq!(bolt_stats["heartbeats"], 0, "bolt backend: {bolt_stats}");
}

/// A cluster with `heartbeat:` keeps its idle upstream connection alive with Strait's own
/// Dubbo heartbeats: the provider receives well-formed two-way heartbeats (and answers
/// them), Strait consumes the replies (none counted as an unknown response), the
/// connection is never replaced, and calls keep working.
#[test]
fn dubbo_upstream_keepalive_heartbeats() {
    let mut backend = DubboServer::start("ka");
    let addr = backend.addr();
    let strait = start_strait(
        "dubbo-keepalive",
        "dubbo",
        vec![vars_route(&[("service", DEMO)], "backend", "3s")],
        vec![format!(
            "{{ name: backend, protocol: dubbo, heartbeat: {{ interval: 100ms, max_failures: 3 }}, \
             endpoints: [{{ address: \"{addr}\" }}] }}"
        )],
    );
    assert_all_ok(
        &run_dubbo_js(strait.listen, &["--service", DEMO, "--count", "5"]),
        5,
        "before idling",
    );
    wait_until(
        "the provider receives 3 keepalive heartbeats",
        Duration::from_secs(10),
        || (backend.events("heartbeat") >= 3).then_some(()),
    );
    assert_all_ok(
        &run_dubbo_py(strait.listen, &["--service", DEMO, "--count", "5"]),
        5,
        "after idling",
    );
    let host = &strait.cluster("backend")["hosts"][0];
    assert_eq!(host["unknown_responses"], 0, "/clusters: {host}");
    assert_eq!(host["failures"], 0, "/clusters: {host}");
    assert_eq!(host["requests"], 10, "/clusters: {host}");

    let stats = backend.stop();
    assert_eq!(stats["connections"], 1, "backend stats: {stats}");
    assert_eq!(stats["heartbeats_oneway"], 0, "backend stats: {stats}");
    assert_eq!(stats["requests"], 10, "backend stats: {stats}");
    let heartbeats = backend
        .proc
        .stdout
        .json()
        .into_iter()
        .filter(|v| v["event"] == "heartbeat")
        .collect::<Vec<_>>();
    for hb in &heartbeats {
        assert_eq!(hb["flag"], 0xe2, "keepalive frame: {hb}");
    }
}

/// The request's own `timeout` attachment (milliseconds, a string, as Java writes it) caps
/// the route's timeout: with a 10 s route timeout and a backend sleeping 5 s, a call
/// carrying `timeout=200` gets Strait's 31 before the client's own 3 s timeout fires.
#[test]
fn dubbo_timeout_attachment_caps_route_timeout() {
    let backend = DubboServer::start("TA");
    let strait = simple_dubbo_proxy("dubbo-timeout-attachment", DEMO, &backend, "10s");
    let s = run_dubbo_py(
        strait.listen,
        &[
            "--service",
            DEMO,
            "--method",
            "sleep",
            "--args",
            "[5000]",
            "--attachment",
            "timeout=200",
            "--count",
            "4",
            "--concurrency",
            "4",
            "--timeout",
            "3000",
            "--per-call",
        ],
    );
    assert_eq!(num(&s, "ok"), 0, "{s}");
    assert_eq!(
        errors(&s),
        vec![("status_31".to_string(), 4)],
        "the timeout attachment was not applied: {s}"
    );
    assert_status_messages(&s, 31, "504|", "timeout attachment");
}
