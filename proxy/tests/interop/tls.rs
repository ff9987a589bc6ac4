//! TLS with real peers: curl (HTTP/1.1 and HTTP/2 chosen by ALPN, with and without
//! client certificates), grpcio with TLS channel credentials, sofa-rpc-node Bolt over
//! `tls.connect`, dubbo-ssl-python over SSL, all through TLS listeners of the real
//! `strait` binary; an `auto` listener serving plaintext and TLS side by side; and
//! Strait as a TLS client with a client certificate (mTLS) to hypercorn.
//!
//! Certificates are made here (`strait_tls::test_certs`): a CA, a server certificate
//! for `localhost`, a client certificate with a SPIFFE id, an expired one, one with
//! another SPIFFE id, one from another CA.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;
use strait_tls::test_certs::{Authority, Usage};

use crate::support::*;

const ORDERS: &str = "spiffe://cluster.local/ns/default/sa/orders";
const INTRUDER: &str = "spiffe://cluster.local/ns/default/sa/intruder";
const BOLT_SERVICE: &str = "com.alipay.test.TestService:1.0";
const DUBBO_SERVICE: &str = "com.example.DemoService";

/// The test PKI, written to a temporary directory.
struct Pki {
    dir: TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = TempDir::new("pki");
        let ca = Authority::new("Strait test CA");
        let other = Authority::new("Another CA");
        ca.write(dir.path(), "ca");
        ca.issue(&["localhost", "127.0.0.1"], Usage::Server, false)
            .write(dir.path(), "server");
        ca.issue(&[ORDERS], Usage::Client, false)
            .write(dir.path(), "client");
        ca.issue(&[ORDERS], Usage::Client, true)
            .write(dir.path(), "expired");
        ca.issue(&[INTRUDER], Usage::Client, false)
            .write(dir.path(), "intruder");
        other
            .issue(&[ORDERS], Usage::Client, false)
            .write(dir.path(), "untrusted");
        Pki { dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A listener `tls:` block (flow style).
    fn listener_tls(&self, extra: &str) -> String {
        format!(
            "{{ certificates: [{{ cert_file: \"{}\", key_file: \"{}\" }}]{extra} }}",
            self.file("server.pem"),
            self.file("server-key.pem")
        )
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// curl over TLS to `listener` on 127.0.0.1 as `localhost`, trusting the test CA;
/// `extra` adds flags (`--http2`, `--cert`...). Returns (exit code, status, version,
/// body).
fn curl_tls(pki: &Pki, addr: SocketAddr, path: &str, extra: &[&str]) -> (i32, u16, String, String) {
    let resolve = format!("localhost:{}:127.0.0.1", addr.port());
    let url = format!("https://localhost:{}{path}", addr.port());
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "--resolve", &resolve, "--cacert"])
        .arg(pki.path("ca.pem"))
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(extra)
        .arg(&url);
    run_curl(&mut cmd)
}

fn curl_plain(addr: SocketAddr, path: &str, extra: &[&str]) -> (i32, u16, String, String) {
    let url = format!("http://{addr}{path}");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "20",
        "-w",
        "\n%{http_code} %{http_version}",
    ])
    .args(extra)
    .arg(&url);
    run_curl(&mut cmd)
}

fn run_curl(cmd: &mut Command) -> (i32, u16, String, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("run curl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, last) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let mut info = last.split(' ');
    let status = info.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let version = info.next().unwrap_or("").to_string();
    (
        out.status.code().unwrap_or(-1),
        status,
        version,
        body.to_string(),
    )
}

fn cert_flags(pki: &Pki, name: &str) -> Vec<String> {
    vec![
        "--cert".into(),
        pki.file(&format!("{name}.pem")),
        "--key".into(),
        pki.file(&format!("{name}-key.pem")),
    ]
}

/// The value of the request header `name` in a backend's echo document.
fn echoed_header(body: &str, name: &str) -> Option<String> {
    let doc: Value = serde_json::from_str(body).ok()?;
    doc["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0] == name)
        .and_then(|h| h[1].as_str().map(str::to_string))
}

/// A metric's value in a Prometheus text scrape (the line starting with `series`).
fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn free_ports<const N: usize>() -> [u16; N] {
    loop {
        let ports: [u16; N] = std::array::from_fn(|_| free_port());
        let mut sorted = ports.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() == N {
            return ports;
        }
    }
}

#[test]
fn tls_listeners_serve_curl_grpcio_bolt_and_dubbo_and_check_client_certificates() {
    let pki = Pki::new();
    let web = HttpPeer::backend("web");
    let grpc = HttpPeer::grpc_py("grpc");
    let bolt = BoltServer::start("bolt", &[BOLT_SERVICE]);
    let dubbo = DubboServer::start("dubbo");
    let [mtls, bolt_port, dubbo_port, auto_port] = free_ports::<4>();
    let tls = pki.listener_tls(&format!(", client_ca_file: \"{}\"", pki.file("ca.pem")));
    let strict = pki.listener_tls(&format!(
        ", client_ca_file: \"{}\", require_client_certificate: true, allowed_sans: [\"{ORDERS}\"]",
        pki.file("ca.pem")
    ));
    let framed_tls = pki.listener_tls("");
    let (web_addr, grpc_addr, bolt_addr, dubbo_addr) =
        (web.addr(), grpc.addr(), bolt.addr(), dubbo.addr());
    let strait = Strait::start("tls-listeners", |listen, admin| {
        format!(
            "admin: {{ address: 127.0.0.1:{admin} }}\n\
             listeners:\n\
             - {{ name: web, address: 127.0.0.1:{listen}, protocol: http, route_config: web, tls: {tls} }}\n\
             - {{ name: mtls, address: 127.0.0.1:{mtls}, protocol: http, route_config: web, tls: {strict} }}\n\
             - {{ name: bolt, address: 127.0.0.1:{bolt_port}, protocol: bolt, route_config: rpc, tls: {framed_tls} }}\n\
             - {{ name: dubbo, address: 127.0.0.1:{dubbo_port}, protocol: dubbo, route_config: dubbo, tls: {framed_tls} }}\n\
             - {{ name: auto, address: 127.0.0.1:{auto_port}, protocol: auto, route_config: mixed, tls: {tls} }}\n\
             route_configs:\n\
             - name: web\n  virtual_hosts:\n  - name: all\n    domains: [\"*\"]\n    routes:\n\
             \x20   - {{ match: {{ prefix: /strait.interop.Interop/ }}, route: {{ cluster: grpc, timeout: 20s }} }}\n\
             \x20   - {{ match: {{ prefix: / }}, route: {{ cluster: web, timeout: 20s }} }}\n\
             - name: rpc\n  virtual_hosts:\n  - name: all\n    domains: [\"*\"]\n    routes:\n\
             \x20   - {{ match: {{ variables: [{{ name: service, exact: \"{BOLT_SERVICE}\" }}] }}, route: {{ cluster: bolt, timeout: 10s }} }}\n\
             - name: dubbo\n  virtual_hosts:\n  - name: all\n    domains: [\"*\"]\n    routes:\n\
             \x20   - {{ match: {{ variables: [{{ name: service, exact: \"{DUBBO_SERVICE}\" }}] }}, route: {{ cluster: dubbo, timeout: 10s }} }}\n\
             - name: mixed\n  virtual_hosts:\n  - name: all\n    domains: [\"*\"]\n    routes:\n\
             \x20   - {{ match: {{ variables: [{{ name: service, exact: \"{BOLT_SERVICE}\" }}] }}, route: {{ cluster: bolt, timeout: 10s }} }}\n\
             \x20   - {{ match: {{ prefix: / }}, route: {{ cluster: web, timeout: 20s }} }}\n\
             clusters:\n\
             - {{ name: web, protocol: http1, endpoints: [{{ address: \"{web_addr}\" }}] }}\n\
             - {{ name: grpc, protocol: http2, endpoints: [{{ address: \"{grpc_addr}\" }}] }}\n\
             - {{ name: bolt, protocol: bolt, endpoints: [{{ address: \"{bolt_addr}\" }}] }}\n\
             - {{ name: dubbo, protocol: dubbo, endpoints: [{{ address: \"{dubbo_addr}\" }}] }}\n"
        )
    });
    let listen = strait.listen;
    let at = |port: u16| -> SocketAddr { ([127, 0, 0, 1], port).into() };

    // HTTP/1.1 and HTTP/2, chosen by ALPN, with and without a client certificate.
    let (exit, status, version, body) = curl_tls(&pki, listen, "/h1", &["--http1.1"]);
    assert_eq!((exit, status, version.as_str()), (0, 200, "1.1"), "{body}");
    assert_eq!(
        echoed_header(&body, "x-forwarded-proto").as_deref(),
        Some("https"),
        "{body}"
    );
    let (exit, status, version, body) = curl_tls(&pki, listen, "/h2", &["--http2"]);
    assert_eq!((exit, status, version.as_str()), (0, 200, "2"), "{body}");
    let good = cert_flags(&pki, "client");
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let (exit, status, ..) = curl_tls(&pki, listen, "/cert", &[&["--http2"], &good[..]].concat());
    assert_eq!((exit, status), (0, 200));

    // The strict listener: only a good certificate with an allowed SAN gets through.
    let (exit, status, version, body) = curl_tls(&pki, at(mtls), "/mtls", &good);
    assert_eq!((exit, status, version.as_str()), (0, 200, "2"), "{body}");
    for refused in ["none", "expired", "untrusted", "intruder"] {
        let flags = if refused == "none" {
            vec![]
        } else {
            cert_flags(&pki, refused)
        };
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (exit, status, _, body) = curl_tls(&pki, at(mtls), "/mtls", &flags);
        assert!(
            exit != 0 && status == 0,
            "client certificate {refused} was accepted: {exit} {status} {body}"
        );
    }
    // A plaintext client on a TLS-only listener gets no answer.
    let (exit, status, _, body) = curl_plain(listen, "/plain", &[]);
    assert!(
        exit != 0 && status == 0,
        "plaintext answered: {exit} {status} {body}"
    );

    // grpcio with TLS channel credentials.
    let ca = pki.file("ca.pem");
    let mut cmd = http_python("grpc_client.py");
    cmd.args([
        "--target",
        &listen.to_string(),
        "--cases",
        "unary",
        "--tls-ca",
        &ca,
    ]);
    let report = run_json(
        "grpc_client.py over TLS",
        &mut cmd,
        std::time::Duration::from_secs(60),
    );
    assert_eq!(report["cases"]["unary"]["code"], "OK", "{report}");

    // Bolt from sofa-rpc-node over tls.connect, and Dubbo from dubbo-ssl-python over SSL.
    let s = run_client(
        at(bolt_port),
        &["--count", "20", "--concurrency", "4", "--tls-ca", &ca],
    );
    assert_eq!(
        (num(&s, "ok"), errors(&s)),
        (20, vec![]),
        "bolt over TLS: {s}"
    );
    let s = Client::dubbo_py(at(dubbo_port), &["--count", "10", "--tls-ca", &ca]).finish();
    assert_eq!(
        (num(&s, "ok"), errors(&s)),
        (10, vec![]),
        "dubbo over TLS: {s}"
    );

    // The auto listener: plaintext and TLS, Bolt and HTTP, on one port.
    let s = run_client(at(auto_port), &["--count", "5", "--tls-ca", &ca]);
    assert_eq!(num(&s, "ok"), 5, "bolt over TLS on auto: {s}");
    let s = run_client(at(auto_port), &["--count", "5"]);
    assert_eq!(num(&s, "ok"), 5, "plaintext bolt on auto: {s}");
    let (exit, status, version, _) = curl_tls(&pki, at(auto_port), "/auto", &["--http2"]);
    assert_eq!((exit, status, version.as_str()), (0, 200, "2"));
    let (exit, status, version, _) = curl_plain(at(auto_port), "/auto", &[]);
    assert_eq!((exit, status, version.as_str()), (0, 200, "1.1"));

    // Every refusal is counted by its reason.
    let (_, metrics) = strait.admin_get("/metrics");
    let failures = |name: &str, reason: &str| {
        metric(
            &metrics,
            &format!(
                "strait_tls_handshake_failures_total{{side=\"listener\",name=\"{name}\",reason=\"{reason}\"}}"
            ),
        )
    };
    for reason in [
        "no_client_certificate",
        "expired_certificate",
        "untrusted_certificate",
        "wrong_name",
    ] {
        assert_eq!(failures("mtls", reason), 1, "{reason}\n{metrics}");
    }
    assert_eq!(failures("web", "not_tls"), 1, "{metrics}");
    for (name, at_least) in [
        ("web", 4),
        ("bolt", 1),
        ("dubbo", 1),
        ("auto", 2),
        ("mtls", 1),
    ] {
        let series = format!("strait_tls_handshakes_total{{side=\"listener\",name=\"{name}\"}}");
        assert!(metric(&metrics, &series) >= at_least, "{series}\n{metrics}");
    }
    let expiry = format!(
        "strait_tls_certificate_expiry_seconds{{side=\"listener\",name=\"web\",file=\"{}\"}}",
        pki.file("server.pem")
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        metric(&metrics, &expiry) > now + 300 * 86_400,
        "{expiry}\n{metrics}"
    );
}

#[test]
fn tls_clusters_reach_hypercorn_with_a_client_certificate() {
    let pki = Pki::new();
    let mut cmd = http_python("backend.py");
    cmd.args(["--port", "0", "--name", "secure", "--certfile"])
        .arg(pki.path("server.pem"))
        .arg("--keyfile")
        .arg(pki.path("server-key.pem"))
        .arg("--ca-certs")
        .arg(pki.path("ca.pem"));
    let secure = HttpPeer::start("backend.py[secure]", &mut cmd);
    let addr = secure.addr();
    let tls = |extra: &str| {
        format!(
            "{{ server_name: localhost, ca_file: \"{}\"{extra} }}",
            pki.file("ca.pem")
        )
    };
    let mtls = tls(&format!(
        ", cert_file: \"{}\", key_file: \"{}\"",
        pki.file("client.pem"),
        pki.file("client-key.pem")
    ));
    let no_cert = tls("");
    let strait = Strait::start("tls-clusters", |listen, admin| {
        format!(
            "admin: {{ address: 127.0.0.1:{admin} }}\n\
             listeners:\n\
             - {{ name: web, address: 127.0.0.1:{listen}, protocol: http, route_config: web }}\n\
             route_configs:\n\
             - name: web\n  virtual_hosts:\n  - name: all\n    domains: [\"*\"]\n    routes:\n\
             \x20   - {{ match: {{ prefix: /h1 }}, route: {{ cluster: h1, timeout: 10s }} }}\n\
             \x20   - {{ match: {{ prefix: /h2 }}, route: {{ cluster: h2, timeout: 10s }} }}\n\
             \x20   - {{ match: {{ prefix: /nocert }}, route: {{ cluster: nocert, timeout: 10s }} }}\n\
             clusters:\n\
             - {{ name: h1, protocol: http1, tls: {mtls}, health_check: {{ type: http, path: /health, interval: 200ms }}, endpoints: [{{ address: \"{addr}\" }}] }}\n\
             - {{ name: h2, protocol: http2, tls: {mtls}, endpoints: [{{ address: \"{addr}\" }}] }}\n\
             - {{ name: nocert, protocol: http1, tls: {no_cert}, endpoints: [{{ address: \"{addr}\" }}] }}\n"
        )
    });
    let doc = |body: &str| serde_json::from_str::<Value>(body).unwrap_or(Value::Null);
    let (_, status, _, body) = curl_plain(strait.listen, "/h1", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(doc(&body)["scheme"], "https", "{body}");
    assert_eq!(doc(&body)["http_version"], "1.1", "{body}");
    let (_, status, _, body) = curl_plain(strait.listen, "/h2", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(doc(&body)["http_version"], "2", "{body}");
    // hypercorn refuses a client without a certificate: no answer from upstream.
    let (_, status, _, body) = curl_plain(strait.listen, "/nocert", &[]);
    assert!(status == 503 || status == 502, "{status} {body}");

    // The active check goes over the same TLS settings: it passes, so the host is
    // healthy (a host with a check takes traffic only once its first check passed).
    let h1 = strait.cluster("h1");
    assert_eq!(
        h1["hosts"][0]["health_check"]["status"], "passing",
        "{h1:#}"
    );
    let (_, metrics) = strait.admin_get("/metrics");
    for name in ["h1", "h2"] {
        let series = format!("strait_tls_handshakes_total{{side=\"cluster\",name=\"{name}\"}}");
        assert!(metric(&metrics, &series) >= 1, "{series}\n{metrics}");
    }
}
