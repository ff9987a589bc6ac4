//! End-to-end checks of the three tools: `strait-echo` on a free port, `strait-call` in
//! every framing, and a short `strait-load` run that must see no error.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strait_codec_bolt::BoltCodec;
use strait_codec_framework::{Frame, Limits};
use strait_tools::{Proto, RequestSpec, parse_duration};

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

    for (proto, ok) in [("v1", 0), ("v2", 0), ("v2crc", 0), ("dubbo", 20)] {
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
            format!("status={ok} served-by=e1 body=hi {proto}")
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

    for (proto, extra) in [
        ("v1", &[][..]),
        ("v2crc", &["--rate", "4000"][..]),
        ("dubbo", &[][..]),
    ] {
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

#[test]
fn durations() {
    assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
    assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
    assert!(parse_duration("3h").is_err());
    assert!(parse_duration("x").is_err());
}

#[test]
fn patched_ids_roundtrip_in_every_framing() {
    for proto in [Proto::V1, Proto::V2, Proto::V2crc] {
        let spec = RequestSpec {
            proto,
            service: "svc".into(),
            method: "m".into(),
            timeout_ms: 1000,
            content: Bytes::from_static(b"payload"),
        };
        let mut frame = spec.build(0).unwrap();
        frame.set_request_id(0xdead_beef);
        let mut buf = BytesMut::new();
        frame.encode(&mut buf).unwrap();
        let back = BoltCodec::new(Limits::default())
            .decode_bolt(&mut buf)
            .unwrap()
            .unwrap();
        assert_eq!(back.request_id(), 0xdead_beef);
        assert_eq!(back.is_crc(), proto == Proto::V2crc);
        assert_eq!(back.header("service"), Some("svc"));
        assert_eq!(&back.body()[..], b"payload");
    }
}

#[test]
fn echo_acks_heartbeats_and_ignores_oneway() {
    use std::io::{Read, Write};
    use strait_codec_bolt::BoltFrame;
    use strait_codec_framework::FrameKind;

    let (_echo, addr) = start_echo("e2");
    let mut out = BytesMut::new();
    for (kind, id) in [(FrameKind::Oneway, 7u32), (FrameKind::Heartbeat, 8)] {
        Proto::V2crc
            .apply(BoltFrame::builder(kind))
            .request_id(id)
            .content(if kind == FrameKind::Oneway {
                &b"x"[..]
            } else {
                &b""[..]
            })
            .build()
            .unwrap()
            .encode(&mut out)
            .unwrap();
    }
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.write_all(&out).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut codec = BoltCodec::new(Limits::default());
    let mut buf = BytesMut::new();
    let ack = loop {
        if let Some(f) = codec.decode_bolt(&mut buf).unwrap() {
            break f;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "echo closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    };
    // The oneway request (sent first) got nothing: the first answer is the ack.
    assert_eq!(ack.kind(), FrameKind::HeartbeatAck);
    assert_eq!(ack.request_id(), 8);
    assert!(ack.is_crc());
    // And nothing else arrives.
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut rest = [0u8; 64];
    assert!(
        stream.read(&mut rest).is_err(),
        "unexpected bytes after the heartbeat ack"
    );
}
