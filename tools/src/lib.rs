//! Shared pieces of the Strait RPC tools (`strait-echo`, `strait-call`, `strait-load`)
//! for SOFA Bolt and Dubbo: protocol selection, request templates, echo answers and
//! duration parsing.
#![forbid(unsafe_code)]

pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strait_codec_bolt::{BoltBuilder, BoltFrame};
use strait_codec_dubbo::DubboFrame;
use strait_codec_framework::{CodecError, Frame, FrameKind, Protocol};

/// Default `service` header (the SOFA RPC test service of the interop peers).
pub const DEFAULT_SERVICE: &str = "com.alipay.test.TestService:1.0";
/// Default `sofa_head_method_name` header.
pub const DEFAULT_METHOD: &str = "echo";
/// Class name written in requests (what the Java SOFA RPC client writes).
pub const REQUEST_CLASS: &str = "com.alipay.sofa.rpc.core.request.SofaRequest";
/// Header-map key the echo backend adds to each response.
pub const SERVED_BY: &str = "x-served-by";

/// Which protocol (and Bolt framing) a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    /// Bolt v1 (first byte 0x01).
    V1,
    /// Bolt v2 (first byte 0x02), ver1 = 2, switch 0: no CRC trailer.
    V2,
    /// Bolt v2, ver1 = 2, switch bit 0 set: a CRC-32 trailer on every frame.
    V2crc,
    /// Dubbo 2 with hessian2 bodies: the content travels as one string argument, and
    /// the `timeout` attachment carries the timeout.
    Dubbo,
}

impl Proto {
    /// Applies this framing to a Bolt builder (Dubbo: unchanged).
    pub fn apply(self, b: BoltBuilder) -> BoltBuilder {
        match self {
            Proto::V1 => b.v1(),
            Proto::V2 => b.v2(2, 0),
            Proto::V2crc => b.v2(2, 1),
            Proto::Dubbo => b,
        }
    }

    /// The protocol, for its codec.
    pub fn protocol(self) -> Arc<dyn Protocol> {
        match self {
            Proto::Dubbo => strait_codec_dubbo::protocol(),
            _ => strait_codec_bolt::protocol(),
        }
    }

    /// The status of a successful response.
    pub fn ok_status(self) -> u32 {
        match self {
            Proto::Dubbo => u32::from(strait_codec_dubbo::status::OK),
            _ => 0,
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
    /// Builds the request frame with id `id`, in the spec's protocol.
    pub fn build_frame(&self, id: u32) -> Result<Box<dyn Frame>, CodecError> {
        if self.proto != Proto::Dubbo {
            return Ok(Box::new(self.build(id)?));
        }
        let content = std::str::from_utf8(&self.content)
            .map_err(|_| CodecError::Encode("Dubbo content must be UTF-8 text".into()))?;
        let request = DubboFrame::request(&self.service, &self.method)
            .id(u64::from(id))
            .string_argument(content);
        let request = if self.timeout_ms > 0 {
            request.attachment("timeout", &self.timeout_ms.to_string())
        } else {
            request
        };
        Ok(Box::new(request.build()?))
    }

    /// Whether `response` is the echo answer to this spec's request: success status
    /// and the content echoed (Bolt: as the content; Dubbo: as the result value).
    pub fn is_echo_answer(&self, response: &dyn Frame, expected_value: &[u8]) -> bool {
        if response.status() != Some(self.proto.ok_status()) {
            return false;
        }
        let body = response.body();
        match self.proto {
            // Result flag, then the value, then (flag 4) the attachments.
            Proto::Dubbo => body.get(1..=expected_value.len()) == Some(expected_value),
            _ => body == expected_value,
        }
    }

    /// What [`RequestSpec::is_echo_answer`] compares: the content for Bolt, the
    /// encoded string argument for Dubbo.
    pub fn expected_value(&self) -> Result<Bytes, CodecError> {
        match self.proto {
            Proto::Dubbo => self
                .build_frame(0)?
                .as_any()
                .downcast_ref::<DubboFrame>()
                .and_then(|f| f.arguments())
                .ok_or_else(|| CodecError::Encode("request without arguments".into())),
            _ => Ok(self.content.clone()),
        }
    }

    /// Builds the Bolt request frame with id `id`.
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

/// The echo backend's answer to `frame` (Bolt or Dubbo), or `None` when it gets none
/// (oneway requests, stray responses). Requests get a success response that carries
/// their content (Bolt) or their arguments as the result (Dubbo) and `x-served-by:
/// name`; heartbeats get their ack.
pub fn echo_answer(frame: &dyn Frame, name: &str) -> Result<Option<Box<dyn Frame>>, CodecError> {
    if let Some(bolt) = frame.as_any().downcast_ref::<BoltFrame>() {
        let reply = match bolt.kind() {
            FrameKind::Request => bolt
                .response_builder()
                .status(strait_codec_bolt::status::SUCCESS)
                .header(SERVED_BY, name)
                .content(bolt.body())
                .build()?,
            FrameKind::Heartbeat => bolt
                .response_builder()
                .status(strait_codec_bolt::status::SUCCESS)
                .build()?,
            _ => return Ok(None),
        };
        return Ok(Some(Box::new(reply)));
    }
    let Some(dubbo) = frame.as_any().downcast_ref::<DubboFrame>() else {
        return Ok(None);
    };
    let reply = match dubbo.kind() {
        FrameKind::Request => DubboFrame::response(dubbo.request_id())
            .raw_value(dubbo.arguments().unwrap_or_else(|| {
                let mut null = BytesMut::new();
                null.extend_from_slice(b"N");
                null.freeze()
            }))
            .attachment(SERVED_BY, name)
            .build()?,
        FrameKind::Heartbeat if dubbo.is_two_way() => DubboFrame::heartbeat_ack(dubbo.request_id()),
        _ => return Ok(None),
    };
    Ok(Some(Box::new(reply)))
}

/// The readable payload of a response: Bolt's content, or Dubbo's result value or error
/// message (lossy UTF-8 of the body when neither can be read).
pub fn answer_text(frame: &dyn Frame) -> String {
    if let Some(dubbo) = frame.as_any().downcast_ref::<DubboFrame>()
        && let Some(text) = dubbo.response_value().or_else(|| dubbo.error_message())
    {
        return text.to_string();
    }
    String::from_utf8_lossy(&frame.body()).into_owned()
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
