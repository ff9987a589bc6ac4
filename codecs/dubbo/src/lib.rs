//! Apache Dubbo 2 over TCP for Strait, with a Hessian 2.0 reader.
//!
//! One protocol, `"dubbo"`. Frames keep their raw bytes: forwarding patches the 8-byte
//! request id and nothing else; the body's routing metadata (service, method, version,
//! attachments) is read lazily, at most once, and only as far as the attachments map
//! (arguments are skipped, never decoded). A changed attachment is written into a fresh
//! map on encode, never dropped. See `wire-formats.md` §2 for the format, §3.3 for the
//! statuses the proxy answers with.
#![forbid(unsafe_code)]

mod builder;
mod decode;
mod detect;
mod encode;
mod frame;
pub mod fuzz_logic;
pub mod hessian2;
mod metadata;
pub mod status;
pub mod types;

use std::sync::Arc;

use bytes::BytesMut;
use strait_codec_framework::{
    Codec, DecodeError, Detect, Frame, FrameKind, IdWidth, Limits, PoolMode, Protocol,
    ProxyFailure, RequestId, ResponseClass,
};

pub use builder::{RequestBuilder, ResponseBuilder};
pub use decode::{decode_frame, parse_complete};
pub use detect::detect;
pub use frame::DubboFrame;
pub use metadata::{MetadataError, argument_count};

/// The protocol name used in configuration.
pub const NAME: &str = "dubbo";

/// The Dubbo 2 protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dubbo;

/// The Dubbo protocol, ready for a [`strait_codec_framework::Registry`].
pub fn protocol() -> Arc<dyn Protocol> {
    Arc::new(Dubbo)
}

/// Decodes one connection's Dubbo frames.
#[derive(Debug, Clone)]
pub struct DubboCodec {
    limits: Limits,
}

impl DubboCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        DubboCodec { limits }
    }

    /// Like [`Codec::decode`], but returns the concrete frame type.
    pub fn decode_dubbo(&mut self, src: &mut BytesMut) -> Result<Option<DubboFrame>, DecodeError> {
        decode_frame(src, self.limits)
    }
}

impl Codec for DubboCodec {
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Box<dyn Frame>>, DecodeError> {
        let frame = decode::decode_boxed(src, self.limits)?;
        Ok(frame.map(|f| f as Box<dyn Frame>))
    }
}

impl Protocol for Dubbo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, prefix: &[u8]) -> Detect {
        detect::detect(prefix)
    }

    fn new_codec(&self, limits: Limits) -> Box<dyn Codec> {
        Box::new(DubboCodec::new(limits))
    }

    fn id_width(&self) -> IdWidth {
        IdWidth::U64
    }

    fn pool_mode(&self) -> PoolMode {
        PoolMode::Multiplex
    }

    /// Only two-way heartbeats are answered (Java's `HeartbeatHandler`; D9): flag
    /// event + the request's serialization, status 20, same id, and the request's own body
    /// (the serialization's null, so exactly `4e` for hessian2, where MOSN sends `4e 4e`).
    fn heartbeat_reply(&self, request: &dyn Frame) -> Option<Box<dyn Frame>> {
        let req = request.as_any().downcast_ref::<DubboFrame>()?;
        if req.kind() != FrameKind::Heartbeat || !req.is_two_way() {
            return None;
        }
        let flag = types::FLAG_EVENT | req.serialization_id();
        let body = req.body();
        if body.len() > 64 {
            return None;
        }
        Some(Box::new(DubboFrame::fixed(
            flag,
            status::OK,
            req.current_id(),
            &body,
        )))
    }

    fn heartbeat_request(&self, id: RequestId) -> Option<Box<dyn Frame>> {
        Some(Box::new(DubboFrame::heartbeat(id, true)))
    }

    fn classify(&self, response: &dyn Frame) -> ResponseClass {
        status::classify(response.status().and_then(|s| u8::try_from(s).ok()))
    }

    /// A route's `direct_response`: a response with `status` (one Java defines, §2.3),
    /// none for oneway requests and events. Status 20 carries `body` as a string result
    /// (RESPONSE_VALUE), or a null result (RESPONSE_NULL_VALUE) without one; any other
    /// status carries `body`, or the status's name, as the error message.
    fn direct_response(
        &self,
        request: &dyn Frame,
        status: u32,
        body: Option<&str>,
    ) -> Option<Box<dyn Frame>> {
        let status = u8::try_from(status).ok().filter(|s| status::is_known(*s))?;
        if request.kind() != FrameKind::Request {
            return None;
        }
        let b = DubboFrame::response(request.request_id());
        let b = match (status, body) {
            (status::OK, Some(text)) => b.value(text),
            (status::OK, None) => b.null_value(),
            (s, text) => b.error(s, text.unwrap_or(status::default_text(s))),
        };
        Some(Box::new(b.build().ok()?))
    }

    /// The §3.3 status for `failure` and a message in MOSN's `"<code>|<text>"` shape, so
    /// MOSN users' parsers keep working. None for oneway requests and events.
    fn error_response(&self, request: &dyn Frame, failure: ProxyFailure) -> Option<Box<dyn Frame>> {
        if request.kind() != FrameKind::Request {
            return None;
        }
        let text = error_text(request, failure);
        let reply = DubboFrame::response(request.request_id())
            .error(status::status_for(failure), &text)
            .build()
            .ok()?;
        Some(Box::new(reply))
    }
}

/// The error message of the proxy's answer to `request` for `failure`.
fn error_text(request: &dyn Frame, failure: ProxyFailure) -> String {
    let code = status::mosn_code(failure);
    let cause = match failure {
        ProxyFailure::CodecError => {
            let reason = request
                .as_any()
                .downcast_ref::<DubboFrame>()
                .and_then(|f| f.metadata_error().map(ToString::to_string))
                .unwrap_or_else(|| failure.description().to_string());
            format!("bad request: {reason}")
        }
        _ => failure.text_for(request),
    };
    format!("{code}|{cause} (strait)")
}
