//! Cost of reading the routing metadata of a request, as the proxy does for every one:
//! decode from bytes, then `timeout()`, `variable("service")` and `header("group")`.
//!
//! `cargo run --release -p strait-codec-dubbo --example parse_bench [millions]`
//!
//! Prints nanoseconds per request for two shapes: the `bench/run --proto dubbo` request
//! (one 128-byte string argument, one `timeout` attachment) and one with eight typical
//! attachments. A measuring tool, not a test: nothing here asserts on timings.

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use strait_codec_dubbo::DubboFrame;
use strait_codec_framework::Frame;

const SERVICE: &str = "com.alipay.test.TestService:1.0";

fn bench_shape() -> Bytes {
    let arg = "x".repeat(128);
    DubboFrame::request(SERVICE, "echo")
        .id(1)
        .string_argument(&arg)
        .attachment("timeout", "5000")
        .build()
        .map(|f| f.raw_bytes().clone())
        .unwrap_or_default()
}

fn typical_shape() -> Bytes {
    let arg = "x".repeat(128);
    DubboFrame::request(SERVICE, "echo")
        .id(1)
        .string_argument(&arg)
        .attachment("path", SERVICE)
        .attachment("interface", SERVICE)
        .attachment("version", "1.0.0")
        .attachment("group", "default")
        .attachment("timeout", "5000")
        .attachment("application", "strait-bench-consumer")
        .attachment("dubbo", "2.0.2")
        .attachment("traceid", "0a1b2c3d4e5f60718293a4b5c6d7e8f9")
        .build()
        .map(|f| f.raw_bytes().clone())
        .unwrap_or_default()
}

/// One request's worth of metadata work; returns something so it is not optimised away.
fn one(raw: &Bytes) -> usize {
    let Ok(frame) = DubboFrame::from_bytes(raw.clone()) else {
        return 0;
    };
    let t = frame.timeout().map_or(0, |d| d.as_millis() as usize);
    let s = frame.variable("service").map_or(0, |s| s.len());
    let g = frame.header("group").map_or(0, str::len);
    t + s + g
}

fn run(name: &str, raw: &Bytes, n: usize) {
    // Warm up caches and branch predictors.
    let mut sink = 0usize;
    for _ in 0..n / 10 {
        sink = sink.wrapping_add(one(black_box(raw)));
    }
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for _ in 0..n {
            sink = sink.wrapping_add(one(black_box(raw)));
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        best = best.min(ns);
    }
    black_box(sink);
    println!("{name:<10} {:>4} B  {best:7.1} ns/request (best of 3 x {n})", raw.len());
}

fn main() {
    let millions: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let n = (millions * 1e6) as usize;
    run("bench", &bench_shape(), n);
    run("typical", &typical_shape(), n);
}
