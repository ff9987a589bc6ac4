//! The custom binary end to end, as `docs/adding-a-protocol.md` runs it: `lenproto-echo`
//! as the backend, `strait-lenproto` on a config file, `lenproto-call` as the client.
//! Real processes on loopback ports picked here, stopped when the test ends.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped (a failing test leaves nothing running).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let socket = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    socket.local_addr().expect("bound address").port()
}

fn wait_for_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {addr}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn call(addr: SocketAddr, service: &str, body: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lenproto-call"))
        .args([&addr.to_string(), service, body])
        .output()
        .expect("run lenproto-call")
}

#[test]
fn the_custom_binary_proxies_lenproto_with_the_whole_strait_command_line() {
    // The backend, on a port it picks and prints.
    let mut echo = Command::new(env!("CARGO_BIN_EXE_lenproto-echo"))
        .args(["--listen", "127.0.0.1:0", "--name", "echo"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start lenproto-echo");
    let mut first = String::new();
    BufReader::new(echo.stdout.take().expect("piped")).read_line(&mut first).expect("its first line");
    let _echo = Running(echo);
    let backend = first.trim().strip_prefix("listening on ").expect("`listening on ADDR`").to_string();

    // The shipped config with this test's ports.
    let (listen, admin) = (free_port(), free_port());
    let config = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/strait.yaml"))
        .expect("examples/lenproto/strait.yaml")
        .replace("127.0.0.1:12300", &format!("127.0.0.1:{listen}"))
        .replace("127.0.0.1:12301", &backend)
        .replace("127.0.0.1:9902", &format!("127.0.0.1:{admin}"));
    let dir = std::env::temp_dir().join(format!("strait-lenproto-{}-{listen}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("strait.yaml");
    std::fs::write(&path, config).expect("write the config");

    let validate = Command::new(env!("CARGO_BIN_EXE_strait-lenproto"))
        .arg("--validate")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("run --validate");
    assert!(validate.status.success(), "{}", String::from_utf8_lossy(&validate.stderr));

    // Stderr is a pipe: the log lines must come without colour codes.
    let proxy = Command::new(env!("CARGO_BIN_EXE_strait-lenproto"))
        .arg("-c")
        .arg(&path)
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start strait-lenproto");
    let mut proxy = Running(proxy);
    let listen: SocketAddr = ([127, 0, 0, 1], listen).into();
    wait_for_port(listen, "strait-lenproto");
    wait_for_port(([127, 0, 0, 1], admin).into(), "strait-lenproto's admin server");

    let answered = call(listen, "alpha", "hello");
    assert!(answered.status.success(), "{answered:?}");
    assert_eq!(String::from_utf8_lossy(&answered.stdout).trim(), "status=0 body=echo:hello");
    // No route for this service: lenproto's own NoRoute status, from the proxy.
    let unrouted = call(listen, "nobody", "x");
    let no_route = strait_example_lenproto::status_for(strait_codec_framework::ProxyFailure::NoRoute);
    assert_eq!(String::from_utf8_lossy(&unrouted.stdout).trim(), format!("status={no_route} body="));

    // SIGTERM drains and stops with 0, and the log says what happened.
    let stopped = Command::new("kill").args(["-s", "TERM", &proxy.0.id().to_string()]).status();
    assert!(stopped.is_ok_and(|s| s.success()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = proxy.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "strait-lenproto did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(25));
    };
    assert!(status.success(), "{status}");
    let mut log = String::new();
    proxy.0.stderr.take().expect("piped").read_to_string(&mut log).expect("its log");
    for line in ["configuration loaded", "listening listener=lp", "stopped listening listener=lp", "stopped"]
    {
        assert!(log.contains(line), "no {line:?} in the log:\n{log}");
    }
    assert!(!log.contains('\u{1b}'), "colour codes in a piped log:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}
