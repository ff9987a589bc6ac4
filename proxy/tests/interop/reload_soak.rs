//! Ten reloads and a certificate rotation under continuous mixed load, with real
//! clients counting every call: Bolt (sofa-rpc-node) over TLS and in plaintext, Dubbo
//! (dubbo-ssl-python), HTTP/1.1 over TLS and h2c (h2load), gRPC over TLS (grpcio).
//! The reloads change a route, add a cluster each time, add and remove a listener, and
//! one in the middle is a broken file; SIGHUP and `POST /reload` take turns. Every
//! listener carrying load stays, so no call may fail. The clients' connections are
//! opened before the rotation and keep working through it.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use strait_tls::test_certs::{Authority, Usage};

use crate::support::*;

const BOLT_SERVICE: &str = "com.alipay.test.TestService:1.0";
const DUBBO_SERVICE: &str = "com.example.DemoService";

/// What one client saw.
struct Tally {
    protocol: &'static str,
    sent: u64,
    ok: u64,
    failed: u64,
    detail: String,
}

struct Ports {
    webtls: u16,
    bolt: u16,
    auto: u16,
    temp: u16,
}

struct Peers {
    web: String,
    grpc: String,
    bolt: String,
    dubbo: String,
}

/// Reload `round`'s configuration: the route timeout changes every round, one more
/// cluster every round, the `temp` listener exists in odd rounds.
fn config(
    listen: u16,
    admin: u16,
    ports: &Ports,
    peers: &Peers,
    pki: &PkiDir,
    round: u32,
) -> String {
    let tls = format!(
        "{{ certificates: [{{ cert_file: \"{}\", key_file: \"{}\" }}] }}",
        pki.file("server.pem"),
        pki.file("server-key.pem")
    );
    let timeout = 20 + round;
    let mut yaml = format!(
        "admin: {{ address: 127.0.0.1:{admin} }}\n\
         drain_timeout: 5s\n\
         listeners:\n\
         - {{ name: web, address: 127.0.0.1:{listen}, protocol: http, route_config: web }}\n\
         - {{ name: webtls, address: 127.0.0.1:{}, protocol: http, route_config: web, tls: {tls} }}\n\
         - {{ name: bolt, address: 127.0.0.1:{}, protocol: bolt, route_config: bolt, tls: {tls} }}\n\
         - {{ name: auto, address: 127.0.0.1:{}, protocol: auto, route_config: rpc, tls: {tls} }}\n",
        ports.webtls, ports.bolt, ports.auto
    );
    if round % 2 == 1 {
        yaml += &format!(
            "- {{ name: temp, address: 127.0.0.1:{}, protocol: http, route_config: web }}\n",
            ports.temp
        );
    }
    yaml += &format!(
        "route_configs:\n\
         - name: web\n  virtual_hosts:\n  - name: all\n    domains: [\"*\"]\n    routes:\n\
         \x20   - {{ match: {{ prefix: /strait.interop.Interop/ }}, route: {{ cluster: grpc, timeout: {timeout}s }} }}\n\
         \x20   - {{ match: {{ prefix: / }}, route: {{ cluster: web, timeout: {timeout}s }} }}\n\
         - name: bolt\n  virtual_hosts:\n  - name: all\n    domains: [\"*\"]\n    routes:\n\
         \x20   - {{ match: {{ variables: [{{ name: service, exact: \"{BOLT_SERVICE}\" }}] }}, route: {{ cluster: bolt, timeout: {timeout}s }} }}\n\
         - name: rpc\n  virtual_hosts:\n  - name: all\n    domains: [\"*\"]\n    routes:\n\
         \x20   - {{ match: {{ variables: [{{ name: service, exact: \"{BOLT_SERVICE}\" }}] }}, route: {{ cluster: bolt, timeout: {timeout}s }} }}\n\
         \x20   - {{ match: {{ variables: [{{ name: service, exact: \"{DUBBO_SERVICE}\" }}] }}, route: {{ cluster: dubbo, timeout: {timeout}s }} }}\n\
         clusters:\n\
         - {{ name: web, protocol: http1, endpoints: [{{ address: \"{}\" }}] }}\n\
         - {{ name: grpc, protocol: http2, endpoints: [{{ address: \"{}\" }}] }}\n\
         - {{ name: bolt, protocol: bolt, endpoints: [{{ address: \"{}\" }}] }}\n\
         - {{ name: dubbo, protocol: dubbo, endpoints: [{{ address: \"{}\" }}] }}\n",
        peers.web, peers.grpc, peers.bolt, peers.dubbo
    );
    for extra in 1..=round {
        yaml += &format!(
            "- {{ name: extra{extra}, protocol: http1, endpoints: [{{ address: \"{}\" }}] }}\n",
            peers.web
        );
    }
    yaml
}

/// The directory of the test certificates.
struct PkiDir(TempDir);

impl PkiDir {
    fn file(&self, name: &str) -> String {
        self.0.path().join(name).display().to_string()
    }
}

fn config_version(strait: &Strait) -> u64 {
    let (_, dump) = strait.admin_get("/config_dump");
    dump.lines()
        .next()
        .and_then(|l| l.strip_prefix("# configuration version "))
        .and_then(|rest| rest.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Whether the `webtls` listener's context loaded rotated files.
fn rotated(strait: &Strait) -> bool {
    let (_, metrics) = strait.admin_get("/metrics");
    let series = "strait_tls_rotations_total{side=\"listener\",name=\"webtls\",result=\"loaded\"} ";
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(series))
        .any(|n| n != "0")
}

fn h2load(protocol: &'static str, args: Vec<String>) -> JoinHandle<Tally> {
    std::thread::spawn(move || {
        let out = Command::new("h2load")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run h2load");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("requests:"))
            .unwrap_or_default()
            .to_string();
        let nums: Vec<u64> = line
            .split(',')
            .filter_map(|p| p.split_whitespace().next()?.parse().ok())
            .collect();
        let status_2xx = text
            .lines()
            .find_map(|l| l.strip_prefix("status codes:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        let (sent, ok) = (nums.first().copied().unwrap_or(0), status_2xx);
        Tally {
            protocol,
            sent,
            ok,
            failed: sent - ok.min(sent),
            detail: text,
        }
    })
}

fn summary_tally(protocol: &'static str, s: &Value) -> Tally {
    let sent = num(s, "sent");
    let ok = num(s, "ok");
    Tally {
        protocol,
        sent,
        ok,
        failed: sent - ok.min(sent),
        detail: s.to_string(),
    }
}

#[test]
fn ten_reloads_and_a_certificate_rotation_under_mixed_load_fail_no_call() {
    let pki = PkiDir(TempDir::new("soak-pki"));
    let ca = Authority::new("Strait test CA");
    ca.write(pki.0.path(), "ca");
    ca.issue(&["localhost", "127.0.0.1"], Usage::Server, false)
        .write(pki.0.path(), "server");
    let web = HttpPeer::backend("web");
    let grpc = HttpPeer::grpc_py("grpc");
    let bolt = BoltServer::start("bolt", &[BOLT_SERVICE]);
    let dubbo = DubboServer::start("dubbo");
    let peers = Peers {
        web: web.addr(),
        grpc: grpc.addr(),
        bolt: bolt.addr(),
        dubbo: dubbo.addr(),
    };
    let [webtls, bolt_port, auto, temp] = [free_port(), free_port(), free_port(), free_port()];
    let ports = Ports {
        webtls,
        bolt: bolt_port,
        auto,
        temp,
    };
    let strait = Strait::start("soak", |listen, admin| {
        config(listen, admin, &ports, &peers, &pki, 0)
    });
    let at = |port: u16| -> SocketAddr { ([127, 0, 0, 1], port).into() };
    let ca_file = pki.file("ca.pem");

    // The load: each client opens its connections now and keeps them to the end.
    let mut bolt_tls = Client::spawn(
        at(ports.bolt),
        &[
            "--count",
            "12000",
            "--concurrency",
            "4",
            "--timeout",
            "10000",
            "--tls-ca",
            &ca_file,
        ],
    );
    let mut bolt_plain = Client::spawn(
        at(ports.auto),
        &[
            "--count",
            "12000",
            "--concurrency",
            "4",
            "--timeout",
            "10000",
        ],
    );
    let dubbo_client = Client::dubbo_py(
        at(ports.auto),
        &[
            "--count",
            "1500",
            "--concurrency",
            "2",
            "--timeout",
            "10000",
            "--service",
            DUBBO_SERVICE,
        ],
    );
    let h1_tls = h2load(
        "http/1.1 tls",
        vec![
            "--h1".into(),
            "-n".into(),
            "12000".into(),
            "-c".into(),
            "2".into(),
            format!("https://127.0.0.1:{}/soak", ports.webtls),
        ],
    );
    let h2c = h2load(
        "h2c",
        vec![
            "-n".into(),
            "20000".into(),
            "-c".into(),
            "2".into(),
            "-m".into(),
            "4".into(),
            format!("http://{}/soak", strait.listen),
        ],
    );
    let grpc_tls = {
        let target = format!("127.0.0.1:{}", ports.webtls);
        let ca_file = ca_file.clone();
        std::thread::spawn(move || {
            let mut cmd = http_python("grpc_client.py");
            cmd.args([
                "--target",
                &target,
                "--cases",
                "load",
                "--load-count",
                "1500",
                "--load-concurrency",
                "4",
                "--tls-ca",
                &ca_file,
            ]);
            let report = run_json("grpc_client.py load", &mut cmd, Duration::from_secs(120));
            summary_tally("grpc tls", &report["cases"]["load"])
        })
    };

    // Ten reloads, a broken file between them, a certificate rotation halfway.
    std::thread::sleep(Duration::from_millis(700));
    let path = strait.config_path();
    let mut version = 1;
    for round in 1..=10u32 {
        if round == 5 {
            std::fs::write(
                &path,
                "listeners: [ { name: web, address: nowhere } ]\nclusters: [\n",
            )
            .unwrap();
            let (status, body) = http_request(strait.admin, "POST", "/reload").unwrap();
            assert_eq!(status, 400, "a broken file is refused: {body}");
            assert_eq!(
                config_version(&strait),
                version,
                "the running configuration stays"
            );
        }
        if round == 6 {
            // Written beside, then renamed over the files in use.
            let next = ca.issue(
                &["localhost", "127.0.0.1", "rotated.example"],
                Usage::Server,
                false,
            );
            next.write(pki.0.path(), "next");
            std::fs::rename(
                pki.0.path().join("next-key.pem"),
                pki.0.path().join("server-key.pem"),
            )
            .unwrap();
            std::fs::rename(
                pki.0.path().join("next.pem"),
                pki.0.path().join("server.pem"),
            )
            .unwrap();
            // Seen by the file watch, before any reload.
            let deadline = Instant::now() + Duration::from_secs(10);
            while !rotated(&strait) {
                assert!(Instant::now() < deadline, "the rotation was not picked up");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::fs::write(
            &path,
            config(
                strait.listen.port(),
                strait.admin.port(),
                &ports,
                &peers,
                &pki,
                round,
            ),
        )
        .unwrap();
        if round % 2 == 0 {
            strait.proc.signal("HUP");
        } else {
            let (status, body) = http_request(strait.admin, "POST", "/reload").unwrap();
            assert_eq!(status, 200, "round {round}: {body}");
        }
        version += 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while config_version(&strait) != version {
            assert!(
                Instant::now() < deadline,
                "round {round}: reload not applied"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The temp listener follows the configuration.
        assert_eq!(
            accepts_connections(at(ports.temp)),
            round % 2 == 1,
            "round {round}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // The load outlasted the reloads: it was running through all of them.
    assert!(
        bolt_tls.is_running() && bolt_plain.is_running(),
        "the load ended before the reloads did"
    );
    let tallies = vec![
        summary_tally("bolt tls", &bolt_tls.finish()),
        summary_tally("bolt (auto)", &bolt_plain.finish()),
        summary_tally("dubbo (auto)", &dubbo_client.finish()),
        h1_tls.join().unwrap(),
        h2c.join().unwrap(),
        grpc_tls.join().unwrap(),
    ];
    println!(
        "{:<14} {:>8} {:>10} {:>7}",
        "protocol", "sent", "succeeded", "failed"
    );
    for t in &tallies {
        println!(
            "{:<14} {:>8} {:>10} {:>7}",
            t.protocol, t.sent, t.ok, t.failed
        );
    }
    for t in &tallies {
        assert!(
            t.sent > 0 && t.failed == 0,
            "{}: {} of {} failed: {}",
            t.protocol,
            t.failed,
            t.sent,
            t.detail
        );
    }
    // The rotation took (counted through the reloads after it), and new handshakes get
    // the new certificate.
    assert!(rotated(&strait));
    let (_, metrics) = strait.admin_get("/metrics");
    let resolve = format!("rotated.example:{}:127.0.0.1", ports.webtls);
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--resolve",
            &resolve,
            "--cacert",
            &ca_file,
        ])
        .arg(format!("https://rotated.example:{}/after", ports.webtls))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing failed on Strait's side either.
    assert!(
        metrics
            .lines()
            .any(|l| l == "strait_config_reloads_total{result=\"failure\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l == "strait_config_reloads_total{result=\"success\"} 10"),
        "{metrics}"
    );
}
