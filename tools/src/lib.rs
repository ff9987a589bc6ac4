//! Shared pieces of the Strait Bolt tools (`strait-echo`, `strait-call`, `strait-load`):
//! protocol-version selection, request templates and duration parsing.
#![forbid(unsafe_code)]

use std::time::Duration;

use bytes::Bytes;
use strait_codec_bolt::{BoltBuilder, BoltFrame};
use strait_codec_framework::{CodecError, FrameKind};

/// Default `service` header (the SOFA RPC test service of the interop peers).
pub const DEFAULT_SERVICE: &str = "com.alipay.test.TestService:1.0";
/// Default `sofa_head_method_name` header.
pub const DEFAULT_METHOD: &str = "echo";
/// Class name written in requests (what the Java SOFA RPC client writes).
pub const REQUEST_CLASS: &str = "com.alipay.sofa.rpc.core.request.SofaRequest";
/// Header-map key the echo backend adds to each response.
pub const SERVED_BY: &str = "x-served-by";

/// Which Bolt framing a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// Bolt v1 (first byte 0x01).
    V1,
    /// Bolt v2 (first byte 0x02), ver1 = 2, switch 0: no CRC trailer.
    V2,
    /// Bolt v2, ver1 = 2, switch bit 0 set: a CRC-32 trailer on every frame.
    V2crc,
}

impl Proto {
    /// Applies this framing to a builder.
    pub fn apply(self, b: BoltBuilder) -> BoltBuilder {
        match self {
            Proto::V1 => b.v1(),
            Proto::V2 => b.v2(2, 0),
            Proto::V2crc => b.v2(2, 1),
        }
    }
}

/// What a request carries besides its id.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// Framing.
    pub proto: Proto,
    /// `service` header (the routing key).
    pub service: String,
    /// `sofa_head_method_name` header.
    pub method: String,
    /// Timeout field in milliseconds.
    pub timeout_ms: i32,
    /// Content (echoed back by `strait-echo`).
    pub content: Bytes,
}

impl RequestSpec {
    /// Builds the request frame with id `id`.
    pub fn build(&self, id: u32) -> Result<BoltFrame, CodecError> {
        self.proto
            .apply(BoltFrame::builder(FrameKind::Request))
            .request_id(id)
            .timeout_ms(self.timeout_ms)
            .class_name(REQUEST_CLASS)
            .header("service", &self.service)
            .header("sofa_head_method_name", &self.method)
            .content(self.content.clone())
            .build()
    }
}

/// Parses `10s`, `500ms`, `2m`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 10s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "us" => n / 1_000_000.0,
        _ => return Err(format!("invalid duration unit {unit:?} in {s:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// A tokio runtime with `threads` workers (1 or less: a single-threaded runtime).
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}
