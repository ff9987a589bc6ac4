//! pingora-baseline: the smallest sensible Pingora HTTP reverse proxy, used by bench/run as
//! the Rust baseline next to Strait, nginx and haproxy.
//!
//! ```text
//! pingora-baseline LISTEN UPSTREAM [THREADS] [--h2c]
//! ```
//!
//! Every request goes to the one UPSTREAM (plain HTTP/1.1) over Pingora's upstream
//! keep-alive connection pool (up to 1024 idle connections kept). THREADS (default 1)
//! worker threads, no work stealing (one single-threaded runtime per thread, like Strait's
//! `--concurrency`). `--h2c` also accepts HTTP/2 with prior knowledge on the cleartext
//! listener. No logger is installed: logs off. SIGTERM exits at once.

use async_trait::async_trait;
use pingora::apps::HttpServerOptions;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct Baseline {
    upstream: std::net::SocketAddr,
}

#[async_trait]
impl ProxyHttp for Baseline {
    type CTX = ();
    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        // Same peer every time: Pingora reuses idle upstream connections keyed by the peer.
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let h2c = args.iter().any(|a| a == "--h2c");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if pos.len() < 2 || pos.len() > 3 {
        eprintln!("usage: pingora-baseline LISTEN UPSTREAM [THREADS] [--h2c]");
        std::process::exit(2);
    }
    let listen = pos[0].clone();
    let upstream = pos[1].parse().unwrap_or_else(|e| {
        eprintln!("pingora-baseline: bad upstream {}: {e}", pos[1]);
        std::process::exit(2)
    });
    let threads: usize = pos
        .get(2)
        .map_or(1, |t| t.parse().expect("THREADS is a number"));

    let tmp = std::env::temp_dir();
    let id = std::process::id();
    let conf = ServerConf {
        threads,
        work_stealing: false,
        pid_file: tmp
            .join(format!("pingora-baseline-{id}.pid"))
            .display()
            .to_string(),
        upgrade_sock: tmp
            .join(format!("pingora-baseline-{id}.sock"))
            .display()
            .to_string(),
        // Idle upstream connections kept for reuse: above the bench's in-flight requests
        // (256 with h2c), so no request has to open a new backend connection.
        upstream_keepalive_pool_size: 1024,
        // SIGTERM exits at once (the bench stops each proxy between cases).
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut proxy = http_proxy_service(&server.configuration, Baseline { upstream });
    if h2c {
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        proxy.app_logic_mut().expect("proxy app").server_options = Some(options);
    }
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    eprintln!("pingora-baseline: {listen} -> {upstream}, {threads} thread(s), h2c {h2c}");
    server.run_forever();
}
