//! Cost of reading the routing metadata of a request, as the proxy does for every one:
//! decode from bytes, then `timeout()`, `variable("service")` and `header("group")`.
//!
//! `cargo run --release -p strait-codec-dubbo --example parse_bench [millions] [shape]`
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

/// The same without the metadata: what decoding and dropping a frame costs alone, to
/// subtract from [`one`].
fn decode_only(raw: &Bytes) -> usize {
    DubboFrame::from_bytes(raw.clone()).map_or(0, |f| f.raw_bytes().len())
}

fn run(name: &str, raw: &Bytes, n: usize) {
    let full = best(raw, n, one);
    let floor = best(raw, n, decode_only);
    println!(
        "{name:<8} {:>4} B  {full:6.1} ns/request, decode alone {floor:5.1}, metadata {:6.1} (best of 7 x {n})",
        raw.len(),
        full - floor
    );
}

fn best(raw: &Bytes, n: usize, one: fn(&Bytes) -> usize) -> f64 {
    // Warm up caches and branch predictors.
    let mut sink = 0usize;
    for _ in 0..n / 10 {
        sink = sink.wrapping_add(one(black_box(raw)));
    }
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..n {
            sink = sink.wrapping_add(one(black_box(raw)));
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        best = best.min(ns);
    }
    black_box(sink);
    best
}

fn main() {
    let millions: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let only = std::env::args().nth(2);
    let n = (millions * 1e6) as usize;
    // Best of several rounds: the machine is shared, the minimum is the least disturbed.
    if only.as_deref().is_none_or(|s| s == "bench") {
        run("bench", &bench_shape(), n);
    }
    if only.as_deref().is_none_or(|s| s == "typical") {
        run("typical", &typical_shape(), n);
    }
}
