//! Hot reload in process: a new configuration swaps in while connections stay open.
//! Requests in flight finish where they started; the next requests of an open
//! connection, framed or HTTP, take the new routes; kept listeners keep their socket,
//! removed ones close, added ones open; an unchanged cluster keeps its warm
//! connections; a broken file is refused with its file, line and key, and the
//! running configuration stays (SIGHUP, `POST /reload`, `watch: true`).

use std::time::Duration;

use strait_codec_framework::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;
use crate::wires::{Behaviour, Wire, proxy_config};

/// A Bolt config: listeners `(name, address)`, `SERVICE` routed to `route_to`, and
/// clusters `(name, endpoint, more keys)`.
fn bolt_config(
    listeners: &[(&str, &str)],
    route_to: &str,
    clusters: &[(&str, std::net::SocketAddr, &str)],
) -> String {
    let mut yaml =
        String::from("admin: { address: \"127.0.0.1:0\" }\ndrain_timeout: 1s\nlisteners:\n");
    for (name, addr) in listeners {
        yaml += &format!(
            "  - {{ name: {name}, address: \"{addr}\", protocol: bolt, route_config: rpc }}\n"
        );
    }
    yaml += &format!(
        "route_configs:\n  - name: rpc\n    virtual_hosts:\n      - name: all\n        domains: [\"*\"]\n        routes:\n          - {{ match: {{ variables: [{{ name: service, exact: \"{SERVICE}\" }}] }}, route: {{ cluster: {route_to} }} }}\nclusters:\n"
    );
    for (name, addr, keys) in clusters {
        yaml += &format!(
            "  - {{ name: {name}, protocol: bolt{keys}, endpoints: [{{ address: \"{addr}\" }}] }}\n"
        );
    }
    yaml
}

fn parse(yaml: &str) -> strait::config::Config {
    strait::config::parse("reload.yaml", yaml, &strait::builtin_registry())
        .unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

/// The response's version and loaded-at headers of `/config_dump`, and its body.
async fn config_version(server: &strait::Server) -> u64 {
    let dump = admin_get(server, "/config_dump").await;
    let line = dump.lines().next().unwrap_or_default().to_string();
    line.strip_prefix("# configuration version ")
        .and_then(|rest| rest.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no version line in /config_dump: {dump}"))
}

#[tokio::test]
async fn in_flight_requests_finish_where_they_started_and_open_connections_take_new_routes() {
    let mut a = Upstream::start(Mode::Manual).await;
    let b = Upstream::start(Mode::Echo("b")).await;
    let clusters = [("a", a.addr, ""), ("b", b.addr, "")];
    let server = proxy(&bolt_config(&[("rpc", "127.0.0.1:0")], "a", &clusters)).await;
    let addr = server.listener_addr("rpc").unwrap();
    assert_eq!(config_version(&server).await, 1);
    let mut c = Client::connect(addr).await;
    c.send(&request(1, SERVICE, "before")).await;
    let held = a.next(LONG).await.expect("forwarded to a");

    let version = server
        .reload_with(parse(&bolt_config(
            &[("rpc", "127.0.0.1:0")],
            "b",
            &clusters,
        )))
        .await
        .unwrap();
    assert_eq!(version, 2);
    assert_eq!(config_version(&server).await, 2);
    assert_eq!(
        server.listener_addr("rpc"),
        Some(addr),
        "the socket is kept"
    );

    // The same connection's next request takes the new route...
    c.send(&request(2, SERVICE, "after")).await;
    let r = c.recv(LONG).await.expect("answered");
    assert_eq!((r.request_id(), r.header("x-served-by")), (2, Some("b")));
    // ...while the one in flight finishes on the snapshot it started with.
    held.conn.send(&echo(&held.frame, "a"));
    let r = c
        .recv(LONG)
        .await
        .expect("the request in flight is answered");
    assert_eq!(
        (r.request_id(), r.status(), r.header("x-served-by")),
        (1, Some(0), Some("a"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn listeners_come_and_go_and_an_unchanged_cluster_keeps_its_connections() {
    let up = Upstream::start(Mode::Echo("up")).await;
    let v1 = bolt_config(
        &[("rpc", "127.0.0.1:0"), ("old", "127.0.0.1:0")],
        "up",
        &[("up", up.addr, "")],
    );
    let server = proxy(&v1).await;
    let (rpc, old) = (
        server.listener_addr("rpc").unwrap(),
        server.listener_addr("old").unwrap(),
    );
    let mut c = Client::connect(rpc).await;
    let mut on_old = Client::connect(old).await;
    c.send(&request(1, SERVICE, "x")).await;
    assert_eq!(c.recv(LONG).await.unwrap().status(), Some(0));
    assert_eq!(up.connections(), 1);

    // `old` goes, `new` comes, `up` stays as it was (a cluster is added beside it).
    let v2 = bolt_config(
        &[("rpc", "127.0.0.1:0"), ("new", "127.0.0.1:0")],
        "up",
        &[("up", up.addr, ""), ("spare", up.addr, "")],
    );
    server.reload_with(parse(&v2)).await.unwrap();
    assert!(server.listener_addr("old").is_none());
    assert!(
        TcpStream::connect(old).await.is_err(),
        "a removed listener's socket closes"
    );
    assert!(
        on_old.closed_within(LONG).await,
        "its idle connections drain"
    );
    let new = server.listener_addr("new").expect("the added listener");
    let mut n = Client::connect(new).await;
    n.send(&request(2, SERVICE, "new")).await;
    assert_eq!(n.recv(LONG).await.unwrap().status(), Some(0));
    c.send(&request(3, SERVICE, "kept")).await;
    assert_eq!(c.recv(LONG).await.unwrap().status(), Some(0));
    assert_eq!(
        up.connections(),
        1,
        "the unchanged cluster kept its warm connection"
    );

    // A changed cluster is a new one: it connects afresh.
    let v3 = bolt_config(
        &[("rpc", "127.0.0.1:0"), ("new", "127.0.0.1:0")],
        "up",
        &[
            ("up", up.addr, ", connect_timeout: 700ms"),
            ("spare", up.addr, ""),
        ],
    );
    server.reload_with(parse(&v3)).await.unwrap();
    c.send(&request(4, SERVICE, "changed")).await;
    assert_eq!(c.recv(LONG).await.unwrap().status(), Some(0));
    assert_eq!(
        up.connections(),
        2,
        "a changed cluster opens its own connections"
    );
    server.shutdown().await;
}

/// Framed and HTTP/1.1 keep-alive connections opened before a reload send their next
/// requests along the new routes.
#[tokio::test]
async fn every_protocols_open_connections_follow_a_route_change() {
    for wire in [Wire::Dubbo, Wire::Lenproto, Wire::Http1] {
        let (a, b) = (
            wire.backend(Behaviour::Answer).await,
            wire.backend(Behaviour::Answer).await,
        );
        let config = |to: &str| {
            proxy_config(
                wire,
                "",
                &[("front", "")],
                &[("r", "svc", &format!("{{ cluster: {to} }}"))],
                &[("a", a.addr.to_string(), ""), ("b", b.addr.to_string(), "")],
            )
        };
        let registry = crate::wires::registry();
        let parsed = |yaml: String| strait::config::parse("r.yaml", &yaml, &registry).unwrap();
        let server = strait::Server::start(parsed(config("a")), crate::wires::registry())
            .await
            .unwrap();
        let front = server.listener_addr("front").unwrap();
        let mut stream = TcpStream::connect(front).await.unwrap();
        assert!(wire.call_on(&mut stream, "svc").await < 300, "{wire:?}");
        server.reload_with(parsed(config("b"))).await.unwrap();
        assert!(wire.call_on(&mut stream, "svc").await < 300, "{wire:?}");
        assert_eq!(
            (
                a.received.load(std::sync::atomic::Ordering::SeqCst),
                b.received.load(std::sync::atomic::Ordering::SeqCst)
            ),
            (1, 1),
            "{wire:?}: the second request, on the same connection, went to b"
        );
        server.shutdown().await;
    }
}

/// `POST path` on the admin server: (status, body).
async fn admin_post(server: &strait::Server, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(server.admin_addr().unwrap())
        .await
        .unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn a_broken_file_is_refused_and_the_running_configuration_stays() {
    let a = Upstream::start(Mode::Echo("a")).await;
    let b = Upstream::start(Mode::Echo("b")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strait.yaml");
    let clusters = [("a", a.addr, ""), ("b", b.addr, "")];
    std::fs::write(
        &path,
        bolt_config(&[("rpc", "127.0.0.1:0")], "a", &clusters),
    )
    .unwrap();
    let registry = strait::builtin_registry();
    let config = strait::config::load(&path, &registry).unwrap();
    let server = strait::Server::start(config, registry).await.unwrap();
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;

    let broken = bolt_config(&[("rpc", "127.0.0.1:0")], "b", &clusters).replace(
        "protocol: bolt, endpoints",
        "protocol: bolt, lb_polcy: random, endpoints",
    );
    std::fs::write(&path, &broken).unwrap();
    let error = server.reload().await.unwrap_err();
    let at = format!("{}:", path.display());
    assert!(
        error.starts_with(&at) && error.contains("clusters[0].lb_polcy"),
        "{error}"
    );
    let (status, body) = admin_post(&server, "/reload").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("clusters[0].lb_polcy"), "{body}");
    assert_eq!(config_version(&server).await, 1);
    c.send(&request(1, SERVICE, "x")).await;
    assert_eq!(
        c.recv(LONG).await.unwrap().header("x-served-by"),
        Some("a"),
        "still v1"
    );

    std::fs::write(
        &path,
        bolt_config(&[("rpc", "127.0.0.1:0")], "b", &clusters),
    )
    .unwrap();
    let (status, body) = admin_post(&server, "/reload").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "reloaded: configuration version 2 in force\n")
    );
    c.send(&request(2, SERVICE, "x")).await;
    assert_eq!(c.recv(LONG).await.unwrap().header("x-served-by"), Some("b"));
    let metrics = admin_get(&server, "/metrics").await;
    for line in [
        "strait_config_reloads_total{result=\"success\"} 1",
        "strait_config_reloads_total{result=\"failure\"} 2",
        "strait_config_version 2",
        // Same listeners, routes and clusters: the request metrics kept counting.
        "strait_listener_connections_total{listener=\"rpc\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn watch_true_reloads_when_the_file_changes() {
    let a = Upstream::start(Mode::Echo("a")).await;
    let b = Upstream::start(Mode::Echo("b")).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("strait.yaml");
    let clusters = [("a", a.addr, ""), ("b", b.addr, "")];
    let yaml = |to: &str| {
        format!(
            "watch: true\n{}",
            bolt_config(&[("rpc", "127.0.0.1:0")], to, &clusters)
        )
    };
    std::fs::write(&path, yaml("a")).unwrap();
    let registry = strait::builtin_registry();
    let server = strait::Server::start(strait::config::load(&path, &registry).unwrap(), registry)
        .await
        .unwrap();
    let mut c = Client::connect(server.listener_addr("rpc").unwrap()).await;
    // Written beside and renamed over, as editors and ConfigMaps do.
    std::fs::write(dir.path().join("next.yaml"), yaml("b")).unwrap();
    std::fs::rename(dir.path().join("next.yaml"), &path).unwrap();
    let mut served = String::new();
    for id in 0..100 {
        c.send(&request(id, SERVICE, "x")).await;
        served = c
            .recv(LONG)
            .await
            .unwrap()
            .header("x-served-by")
            .unwrap_or_default()
            .to_string();
        if served == "b" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served, "b", "the changed file was not applied");
    assert_eq!(config_version(&server).await, 2);
    server.shutdown().await;
}
