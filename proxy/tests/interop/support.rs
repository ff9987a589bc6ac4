//! Harness for the interop tests: free ports, temp config files, child processes that
//! never outlive a test (even on panic), the real `strait` binary, and the Node peers
//! of `<repo>/tests/interop` (a real sofa-rpc-node server and client).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

/// The Bolt service the peers serve by default.
pub const TEST_SERVICE: &str = "com.alipay.test.TestService:1.0";

/// The repository root (the workspace holding `proxy/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("proxy/ has a parent")
        .to_path_buf()
}

/// `<repo>/tests/interop`, after checking the Node peers are installed. Fails (never
/// skips) when they are not.
pub fn peers_dir() -> PathBuf {
    let dir = repo_root().join("tests/interop");
    let modules = dir.join("node_modules");
    assert!(
        modules.join("sofa-rpc-node").is_dir() && modules.join("sofa-bolt-node").is_dir(),
        "the interop peers are not installed ({} is missing or incomplete): \
         run `bash scripts/install-test-peers` from the repository root",
        modules.display()
    );
    dir
}

/// A loopback port that was free a moment ago (bound to port 0, read, released).
pub fn free_port() -> u16 {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    socket.local_addr().expect("local_addr").port()
}

/// Can a TCP connection be opened to `addr` right now?
pub fn accepts_connections(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "strait-interop-{tag}-{}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` inside the directory and returns the file's path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lines of one output stream of a child, collected by a reader thread.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<String>>>);

impl Lines {
    fn collect(stream: impl Read + Send + 'static) -> (Lines, JoinHandle<()>) {
        let lines = Lines::default();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                match line {
                    Ok(line) => sink.0.lock().push(line),
                    Err(_) => break,
                }
            }
        });
        (lines, reader)
    }

    /// Everything read so far.
    pub fn snapshot(&self) -> Vec<String> {
        self.0.lock().clone()
    }

    /// The last `n` lines, joined, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let all = self.0.lock();
        let start = all.len().saturating_sub(n);
        all[start..].join("\n")
    }

    /// Whether some line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.0.lock().iter().any(|l| l.contains(needle))
    }

    /// The JSON lines (others are skipped).
    pub fn json(&self) -> Vec<Value> {
        self.0
            .lock()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped, so nothing
/// outlives a test, even one that panics.
pub struct Proc {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
    pub stdout: Lines,
    pub stderr: Lines,
    readers: Vec<JoinHandle<()>>,
}

impl Proc {
    /// Spawns `cmd` with piped stdout/stderr (stdin closed).
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name} ({cmd:?}): {e}"));
        let (stdout, r1) = Lines::collect(child.stdout.take().expect("piped stdout"));
        let (stderr, r2) = Lines::collect(child.stderr.take().expect("piped stderr"));
        Proc {
            name: name.to_string(),
            child,
            status: None,
            stdout,
            stderr,
            readers: vec![r1, r2],
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `KILL`, ...) with kill(1): no unsafe code here.
    pub fn signal(&self, sig: &str) {
        if self.status.is_some() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The exit status if the process has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.try_status() {
                self.join_readers();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and reap.
    pub fn kill_now(&mut self) -> ExitStatus {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
        self.join_readers();
        self.status.expect("reaped")
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status.
    pub fn stop(&mut self, grace: Duration) -> ExitStatus {
        self.signal("TERM");
        match self.wait_for_exit(grace) {
            Some(status) => status,
            None => self.kill_now(),
        }
    }

    /// Waits until the output readers have seen EOF (so the captured output is complete).
    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// A description for failure messages: name and the end of stderr.
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {}); stderr tail:\n{}",
            self.name,
            self.pid(),
            self.stderr.tail(15)
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            self.signal("TERM");
            if self.wait_for_exit(Duration::from_secs(3)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_until<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A minimal HTTP/1.1 GET over a raw TCP stream: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path)
}

/// A minimal bodiless HTTP/1.1 request over a raw TCP stream: (status, body).
pub fn http_request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad HTTP response: {head:?}")))?;
    Ok((status, body.to_string()))
}

/// A running `strait` on a generated config.
pub struct Strait {
    pub proc: Proc,
    /// The listener's address (every test config has one listener, named `rpc`).
    pub listen: SocketAddr,
    pub admin: SocketAddr,
    _dir: TempDir,
}

impl Strait {
    /// Writes `config(listen_port, admin_port)` and runs `strait -c` on it until `/ready`
    /// answers 200. Retries with new ports if one was taken in between.
    pub fn start(tag: &str, config: impl Fn(u16, u16) -> String) -> Strait {
        Strait::start_with_args(tag, &[], config)
    }

    /// [`Strait::start`] with more command-line flags (`--log-format json`...).
    pub fn start_with_args(
        tag: &str,
        args: &[&str],
        config: impl Fn(u16, u16) -> String,
    ) -> Strait {
        let mut last_failure = String::new();
        for _ in 0..3 {
            let (listen_port, admin_port) = (free_port(), free_port());
            if listen_port == admin_port {
                continue;
            }
            let dir = TempDir::new(tag);
            let path = dir.write("strait.yaml", &config(listen_port, admin_port));
            let mut proc = Proc::spawn(
                &format!("strait[{tag}]"),
                Command::new(env!("CARGO_BIN_EXE_strait"))
                    .arg("-c")
                    .arg(&path)
                    .args(args)
                    // STRAIT_TEST_LOG=debug raises it when chasing a failure.
                    .env(
                        "RUST_LOG",
                        std::env::var("STRAIT_TEST_LOG").unwrap_or_else(|_| "info".into()),
                    )
                    .env("NO_COLOR", "1"),
            );
            let admin: SocketAddr = ([127, 0, 0, 1], admin_port).into();
            let deadline = Instant::now() + Duration::from_secs(15);
            let ready = loop {
                if proc.try_status().is_some() {
                    proc.wait_for_exit(Duration::from_secs(1));
                    break false;
                }
                if matches!(http_get(admin, "/ready"), Ok((200, _))) {
                    break true;
                }
                if Instant::now() >= deadline {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(25));
            };
            if ready {
                return Strait {
                    proc,
                    listen: ([127, 0, 0, 1], listen_port).into(),
                    admin,
                    _dir: dir,
                };
            }
            last_failure = proc.describe();
            let in_use = proc.stderr.contains("in use");
            drop(proc);
            if !in_use {
                break;
            }
        }
        panic!("strait did not become ready: {last_failure}");
    }

    /// The configuration file it runs on (rewrite it, then SIGHUP or `POST /reload`).
    pub fn config_path(&self) -> PathBuf {
        self._dir.path().join("strait.yaml")
    }

    /// GET on the admin server; panics on a transport error.
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}; {}", self.proc.describe()))
    }

    /// `/clusters` as JSON.
    pub fn clusters(&self) -> Value {
        let (status, body) = self.admin_get("/clusters");
        assert_eq!(status, 200, "/clusters: {body}");
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("/clusters is not JSON ({e}): {body}"))
    }

    /// One cluster of `/clusters`.
    pub fn cluster(&self, name: &str) -> Value {
        let all = self.clusters();
        all["clusters"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no cluster {name:?} in /clusters: {all}"))
    }

    /// Waits until cluster `name` has at least `n` requests in flight upstream.
    pub fn wait_in_flight(&self, name: &str, n: u64) {
        wait_until(
            &format!("{n} requests in flight on cluster {name}"),
            Duration::from_secs(10),
            || (self.cluster(name)["in_flight"].as_u64().unwrap_or(0) >= n).then_some(()),
        );
    }
}

/// A real sofa-rpc-node `RpcServer` (`bolt-server.js`).
pub struct BoltServer {
    pub proc: Proc,
    pub port: u16,
    pub name: String,
}

impl BoltServer {
    /// Starts a server named `name` on a free port, serving `services` (the default
    /// test service if empty), and waits for its `listening` line.
    pub fn start(name: &str, services: &[&str]) -> BoltServer {
        BoltServer::start_with(name, services, &[])
    }

    /// [`BoltServer::start`] with more `bolt-server.js` options (`--answer-oneway`,
    /// `--log-requests`).
    pub fn start_with(name: &str, services: &[&str], options: &[&str]) -> BoltServer {
        BoltServer::start_on(name, 0, services, options)
    }

    /// [`BoltServer::start_with`] on `port` (0: a free one), to bring a killed server
    /// back on its address.
    pub fn start_on(name: &str, port: u16, services: &[&str], options: &[&str]) -> BoltServer {
        let dir = peers_dir();
        let mut cmd = Command::new("node");
        cmd.current_dir(&dir)
            .arg(dir.join("bolt-server.js"))
            .args(["--port", &port.to_string(), "--name", name])
            .args(options);
        if !services.is_empty() {
            cmd.args(["--services", &services.join(",")]);
        }
        let mut proc = Proc::spawn(&format!("bolt-server[{name}]"), &mut cmd);
        let deadline = Instant::now() + Duration::from_secs(15);
        let port = loop {
            let listening = proc
                .stdout
                .json()
                .into_iter()
                .find(|v| v["event"] == "listening");
            if let Some(port) = listening.and_then(|v| v["port"].as_u64()) {
                break u16::try_from(port).expect("port fits u16");
            }
            assert!(
                proc.try_status().is_none() && Instant::now() < deadline,
                "bolt-server {name} did not start listening: {}",
                proc.describe()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        BoltServer {
            proc,
            port,
            name: name.to_string(),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many stdout events of this kind (`oneway`, `heartbeat`, `connection`) so far.
    pub fn events(&self, kind: &str) -> usize {
        self.proc
            .stdout
            .json()
            .iter()
            .filter(|v| v["event"] == kind)
            .count()
    }

    /// SIGTERM; waits for exit and returns the `stats` of its `stopped` line.
    pub fn stop(&mut self) -> Value {
        let status = self.proc.stop(Duration::from_secs(5));
        let stopped = self
            .proc
            .stdout
            .json()
            .into_iter()
            .find(|v| v["event"] == "stopped");
        match stopped {
            Some(v) => v["stats"].clone(),
            None => panic!(
                "bolt-server {} exited ({status}) without a stopped line: {}",
                self.name,
                self.proc.describe()
            ),
        }
    }

    /// SIGKILL: the backend dies without closing anything gracefully.
    pub fn kill(&mut self) {
        self.proc.kill_now();
    }
}

/// A running `bolt-client.js`; killed if dropped before [`Client::finish`].
pub struct Client {
    proc: Proc,
}

impl Client {
    /// Starts `bolt-client.js --target <target> <args>`.
    pub fn spawn(target: SocketAddr, args: &[&str]) -> Client {
        let dir = peers_dir();
        let mut cmd = Command::new("node");
        cmd.current_dir(&dir)
            .arg(dir.join("bolt-client.js"))
            .args(["--target", &target.to_string()])
            .args(args);
        Client {
            proc: Proc::spawn(&format!("bolt-client {args:?}"), &mut cmd),
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc.try_status().is_none()
    }

    /// Waits for the client (at most 60 s) and returns its JSON summary (last stdout line).
    pub fn finish(mut self) -> Value {
        let status = self
            .proc
            .wait_for_exit(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("client still running after 60 s: {}", self.proc.describe()));
        let lines = self.proc.stdout.snapshot();
        let last = lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "client printed nothing ({status}): {}",
                    self.proc.describe()
                )
            });
        let summary: Value = serde_json::from_str(last).unwrap_or_else(|e| {
            panic!(
                "client's last line is not JSON ({e}): {last}\n{}",
                self.proc.describe()
            )
        });
        assert!(
            status.success(),
            "client exited with {status}: {summary}\n{}",
            self.proc.describe()
        );
        summary
    }
}

/// Runs the client to completion and returns its summary.
pub fn run_client(target: SocketAddr, args: &[&str]) -> Value {
    Client::spawn(target, args).finish()
}

/// A number field of a summary (0 when absent).
pub fn num(summary: &Value, key: &str) -> u64 {
    summary[key].as_u64().unwrap_or(0)
}

/// The `errors` map of a summary, as sorted (key, count) pairs.
pub fn errors(summary: &Value) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = summary["errors"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `backends[name]` of a summary.
pub fn backend_count(summary: &Value, name: &str) -> u64 {
    summary["backends"][name].as_u64().unwrap_or(0)
}

// === Dubbo 2 peers ===

/// `<repo>/tests/interop` after checking the Dubbo peers are installed: the npm packages
/// (dubbo2.js, hessian.js, js-to-java) and the Python ones in `pydeps/`. Fails (never
/// skips) when they are not.
pub fn dubbo_peers_dir() -> PathBuf {
    let dir = peers_dir();
    let modules = dir.join("node_modules");
    for package in ["dubbo2.js", "hessian.js", "js-to-java"] {
        assert!(
            modules.join(package).is_dir(),
            "the Dubbo interop peers are not installed ({} is missing): \
             run `bash scripts/install-test-peers` from the repository root",
            modules.join(package).display()
        );
    }
    assert!(
        dir.join("pydeps/dubbo_ssl").is_dir(),
        "the Python interop peers are not installed ({} is missing): \
         run `bash scripts/install-test-peers` from the repository root",
        dir.join("pydeps/dubbo_ssl").display()
    );
    dir
}

/// The Dubbo test provider (`dubbo-server.js`, on hessian.js): answers every call with a
/// JSON description of what it received, naming itself.
pub struct DubboServer {
    pub proc: Proc,
    pub port: u16,
    pub name: String,
}

impl DubboServer {
    /// Starts a provider named `name` on a free port and waits for its `listening` line.
    pub fn start(name: &str) -> DubboServer {
        DubboServer::start_on(name, 0)
    }

    /// [`DubboServer::start`] on `port` (0: a free one), to bring a killed one back.
    pub fn start_on(name: &str, port: u16) -> DubboServer {
        let dir = dubbo_peers_dir();
        let mut cmd = Command::new("node");
        cmd.current_dir(&dir)
            .arg(dir.join("dubbo-server.js"))
            .args(["--port", &port.to_string(), "--name", name]);
        let mut proc = Proc::spawn(&format!("dubbo-server[{name}]"), &mut cmd);
        let port = wait_for_listening(&mut proc, &format!("dubbo-server {name}"));
        DubboServer {
            proc,
            port,
            name: name.to_string(),
        }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many stdout events of this kind (`heartbeat`, `oneway`, `connection`, ...) so far.
    pub fn events(&self, kind: &str) -> usize {
        self.proc
            .stdout
            .json()
            .iter()
            .filter(|v| v["event"] == kind)
            .count()
    }

    /// SIGTERM; waits for exit and returns the counters of its `stopped` line.
    pub fn stop(&mut self) -> Value {
        let status = self.proc.stop(Duration::from_secs(5));
        let stopped = self
            .proc
            .stdout
            .json()
            .into_iter()
            .find(|v| v["event"] == "stopped");
        match stopped {
            Some(v) => v["stats"].clone(),
            None => panic!(
                "dubbo-server {} exited ({status}) without a stopped line: {}",
                self.name,
                self.proc.describe()
            ),
        }
    }

    /// SIGKILL: the backend dies without closing anything gracefully.
    pub fn kill(&mut self) {
        self.proc.kill_now();
    }
}

/// Waits (at most 15 s) for a `{"event":"listening","port":P}` stdout line and returns P.
fn wait_for_listening(proc: &mut Proc, what: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listening = proc
            .stdout
            .json()
            .into_iter()
            .find(|v| v["event"] == "listening");
        if let Some(port) = listening.and_then(|v| v["port"].as_u64()) {
            return u16::try_from(port).expect("port fits u16");
        }
        assert!(
            proc.try_status().is_none() && Instant::now() < deadline,
            "{what} did not start listening: {}",
            proc.describe()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Client {
    /// Starts `dubbo-client.js` (dubbo2.js `DirectlyDubbo`) with `--target <target> <args>`.
    pub fn dubbo_js(target: SocketAddr, args: &[&str]) -> Client {
        let dir = dubbo_peers_dir();
        let mut cmd = Command::new("node");
        cmd.current_dir(&dir)
            .arg(dir.join("dubbo-client.js"))
            .args(["--target", &target.to_string()])
            .args(args);
        Client {
            proc: Proc::spawn(&format!("dubbo-client.js {args:?}"), &mut cmd),
        }
    }

    /// Starts `dubbo_client.py` (dubbo-ssl-python `DubboClient`) with `--target <target> <args>`.
    pub fn dubbo_py(target: SocketAddr, args: &[&str]) -> Client {
        let dir = dubbo_peers_dir();
        let mut cmd = Command::new("python3");
        cmd.current_dir(&dir)
            .env("PYTHONPATH", dir.join("pydeps"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .arg(dir.join("dubbo_client.py"))
            .args(["--target", &target.to_string()])
            .args(args);
        Client {
            proc: Proc::spawn(&format!("dubbo_client.py {args:?}"), &mut cmd),
        }
    }
}

/// Runs `dubbo-client.js` to completion and returns its summary.
pub fn run_dubbo_js(target: SocketAddr, args: &[&str]) -> Value {
    Client::dubbo_js(target, args).finish()
}

/// Runs `dubbo_client.py` to completion and returns its summary.
pub fn run_dubbo_py(target: SocketAddr, args: &[&str]) -> Value {
    Client::dubbo_py(target, args).finish()
}

// === HTTP / gRPC peers (tests/interop/http) ===

/// `<repo>/tests/interop/http` after checking its peers are installed: the Python packages
/// in `pydeps/` (hypercorn, h2, httpx, websockets, grpcio), the npm gRPC packages, and the
/// curl / nghttp / h2load commands. Fails (never skips) when something is missing.
pub fn http_peers_dir() -> PathBuf {
    let dir = repo_root().join("tests/interop");
    let missing: Vec<PathBuf> = [
        "pydeps/hypercorn",
        "pydeps/h2",
        "pydeps/httpx",
        "pydeps/websockets",
        "pydeps/grpc",
        "pydeps/grpc_tools",
        "node_modules/@grpc/grpc-js",
        "node_modules/@grpc/proto-loader",
    ]
    .iter()
    .map(|p| dir.join(p))
    .filter(|p| !p.is_dir())
    .collect();
    assert!(
        missing.is_empty(),
        "the HTTP interop peers are not installed ({missing:?} missing): \
         run `bash scripts/install-test-peers` from the repository root"
    );
    for tool in ["curl", "nghttp", "h2load"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            found,
            "`{tool}` is not installed: run `bash scripts/install-test-peers` from the repository root"
        );
    }
    dir.join("http")
}

/// `python3 <tests/interop/http/script>` with the peers' `pydeps` on PYTHONPATH.
pub fn http_python(script: &str) -> Command {
    let dir = http_peers_dir();
    let mut cmd = Command::new("python3");
    cmd.current_dir(&dir)
        .env("PYTHONPATH", dir.join("../pydeps"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .arg(dir.join(script));
    cmd
}

/// `node <tests/interop/http/script>`.
pub fn http_node(script: &str) -> Command {
    let dir = http_peers_dir();
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir).arg(dir.join(script));
    cmd
}

impl Proc {
    /// Like [`Proc::spawn`], but with stdin piped and returned: the HTTP peers exit when
    /// their stdin closes, so they also go away if the test process itself is killed.
    pub fn spawn_with_stdin(name: &str, cmd: &mut Command) -> (Proc, std::process::ChildStdin) {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {name} ({cmd:?}): {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let (stdout, r1) = Lines::collect(child.stdout.take().expect("piped stdout"));
        let (stderr, r2) = Lines::collect(child.stderr.take().expect("piped stderr"));
        let proc = Proc {
            name: name.to_string(),
            child,
            status: None,
            stdout,
            stderr,
            readers: vec![r1, r2],
        };
        (proc, stdin)
    }
}

/// A server peer of `tests/interop/http` (backend.py, grpc_server.py, grpc-server.js):
/// started on port 0, ready once it printed `{"event":"listening","port":P}`; stopped (stdin
/// closed, then SIGTERM, then SIGKILL) when dropped.
pub struct HttpPeer {
    pub proc: Proc,
    pub port: u16,
    pub name: String,
    stdin: Option<std::process::ChildStdin>,
}

impl HttpPeer {
    /// Spawns `cmd` (which must listen on port 0 and print its port) and waits for the port.
    pub fn start(name: &str, cmd: &mut Command) -> HttpPeer {
        let (mut proc, stdin) = Proc::spawn_with_stdin(name, cmd);
        let port = wait_for_listening(&mut proc, name);
        HttpPeer {
            proc,
            port,
            name: name.to_string(),
            stdin: Some(stdin),
        }
    }

    /// The hypercorn backend (`backend.py --name NAME`).
    pub fn backend(name: &str) -> HttpPeer {
        HttpPeer::backend_on(name, 0)
    }

    /// The hypercorn backend on `port` (0: a free one), to bring a killed one back.
    pub fn backend_on(name: &str, port: u16) -> HttpPeer {
        let mut cmd = http_python("backend.py");
        cmd.args(["--port", &port.to_string(), "--name", name]);
        HttpPeer::start(&format!("backend.py[{name}]"), &mut cmd)
    }

    /// The grpcio server (`grpc_server.py --name NAME`).
    pub fn grpc_py(name: &str) -> HttpPeer {
        HttpPeer::grpc_py_on(name, 0)
    }

    /// The grpcio server on `port` (0: a free one), to bring a killed one back.
    pub fn grpc_py_on(name: &str, port: u16) -> HttpPeer {
        let mut cmd = http_python("grpc_server.py");
        cmd.args(["--port", &port.to_string(), "--name", name]);
        HttpPeer::start(&format!("grpc_server.py[{name}]"), &mut cmd)
    }

    /// The @grpc/grpc-js server (`grpc-server.js --name NAME`).
    pub fn grpc_js(name: &str) -> HttpPeer {
        let mut cmd = http_node("grpc-server.js");
        cmd.args(["--port", "0", "--name", name]);
        HttpPeer::start(&format!("grpc-server.js[{name}]"), &mut cmd)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Closes stdin (the peer's stop signal), waits for it to exit and returns the `stats`
    /// of its `stopped` line.
    pub fn stop(&mut self) -> Value {
        drop(self.stdin.take());
        let status = match self.proc.wait_for_exit(Duration::from_secs(10)) {
            Some(status) => status,
            None => self.proc.stop(Duration::from_secs(3)),
        };
        let stopped = self
            .proc
            .stdout
            .json()
            .into_iter()
            .find(|v| v["event"] == "stopped");
        match stopped {
            Some(v) => v["stats"].clone(),
            None => panic!(
                "{} exited ({status}) without a stopped line: {}",
                self.name,
                self.proc.describe()
            ),
        }
    }
}

impl Drop for HttpPeer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // Proc's own Drop then sends SIGTERM (and SIGKILL after 3 s) if still running.
    }
}

/// Runs a client command to completion (at most `limit`) and returns its last stdout line
/// as JSON; panics if it does not exit 0 or prints no JSON.
pub fn run_json(name: &str, cmd: &mut Command, limit: Duration) -> Value {
    let mut proc = Proc::spawn(name, cmd);
    let status = proc
        .wait_for_exit(limit)
        .unwrap_or_else(|| panic!("{name} still running after {limit:?}: {}", proc.describe()));
    let lines = proc.stdout.snapshot();
    let last = lines
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("{name} printed nothing ({status}): {}", proc.describe()));
    let value: Value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "{name}'s last line is not JSON ({e}): {last}\n{}",
            proc.describe()
        )
    });
    assert!(
        status.success(),
        "{name} exited with {status}: {value}\n{}",
        proc.describe()
    );
    value
}

/// Samples a process's resident set size (`VmRSS` of `/proc/<pid>/status`) every 5 ms on a
/// thread until [`RssSampler::finish`], which returns the peak in KiB.
pub struct RssSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    peak: Arc<AtomicU64>,
    samples: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// `VmRSS` of a process in KiB, if it is still running.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let samples = Arc::new(AtomicU64::new(0));
        let (s, p, n) = (stop.clone(), peak.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kib) = rss_kib(pid) {
                    p.fetch_max(kib, Ordering::Relaxed);
                    n.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        RssSampler {
            stop,
            peak,
            samples,
            thread: Some(thread),
        }
    }

    /// Stops sampling; returns (peak KiB, number of samples).
    pub fn finish(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        (
            self.peak.load(Ordering::Relaxed),
            self.samples.load(Ordering::Relaxed),
        )
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
