//! End-to-end checks of the three tools: `strait-echo` on a free port, `strait-call` in
//! every framing, and a short `strait-load` run that must see no error.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills and reaps the child when dropped, whatever the test outcome.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `strait-echo` on port 0 and returns it with the address it printed.
fn start_echo(name: &str) -> (Guard, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strait-echo"))
        .args(["--listen", "127.0.0.1:0", "--name", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn strait-echo");
    let stdout = child.stdout.take().expect("piped stdout");
    let guard = Guard(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (guard, addr)
}

#[test]
fn echo_call_and_load() {
    let (_echo, addr) = start_echo("e1");

    for proto in ["v1", "v2", "v2crc"] {
        let out = Command::new(env!("CARGO_BIN_EXE_strait-call"))
            .args([&addr, "--proto", proto, "--body", &format!("hi {proto}")])
            .args([
                "--service",
                "svc:1.0",
                "--method",
                "echo",
                "--timeout-ms",
                "5000",
            ])
            .output()
            .expect("run strait-call");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{proto}: {out:?}");
        assert_eq!(
            stdout.trim(),
            format!("status=0 served-by=e1 body=hi {proto}")
        );
    }

    // Nothing listens on a port we just released: the call fails with exit 1.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let out = Command::new(env!("CARGO_BIN_EXE_strait-call"))
        .args([&dead, "--timeout-ms", "2000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    for (proto, extra) in [("v1", &[][..]), ("v2crc", &["--rate", "4000"][..])] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strait-load"));
        cmd.args([&addr, "--connections", "2", "--concurrency", "32"])
            .args(["--requests", "2000", "--size", "200", "--proto", proto])
            .args(extra);
        let out = cmd.output().expect("run strait-load");
        assert!(out.status.success(), "{proto}: {out:?}");
        let line = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
        assert_eq!(v["requests"], 2000, "{v}");
        assert_eq!(v["errors"], 0, "{v}");
        for key in ["elapsed_s", "rps", "p50_us", "p90_us", "p99_us", "max_us"] {
            assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} in {v}");
        }
    }

    // The echo server is still healthy afterwards.
    std::thread::sleep(Duration::from_millis(10));
    let out = Command::new(env!("CARGO_BIN_EXE_strait-call"))
        .arg(&addr)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
