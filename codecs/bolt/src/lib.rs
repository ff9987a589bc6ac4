//! SOFA Bolt v1/v2 codec for Strait.
//!
//! One protocol, `"bolt"`, decodes v1 (first byte 0x01) and v2 (0x02) frame by frame, so
//! both may be mixed on a connection. Frames keep their raw bytes: forwarding patches the
//! request id (and recomputes a v2 CRC) and re-serialises the header map only when a
//! header was changed. See `wire-formats.md` §1 for the format and §3.2 for statuses.
#![forbid(unsafe_code)]

mod builder;
mod decode;
mod detect;
mod encode;
mod frame;
pub mod fuzz_logic;
mod header_map;
pub mod status;
pub mod types;

use std::sync::Arc;

use bytes::BytesMut;
use strait_codec_framework::{
    Codec, DecodeError, Detect, Frame, FrameKind, IdWidth, Limits, PoolMode, Protocol,
    ProxyFailure, RequestId, ResponseClass,
};

pub use builder::BoltBuilder;
pub use decode::decode_frame;
pub use detect::detect;
pub use frame::BoltFrame;

/// The protocol name used in configuration.
pub const NAME: &str = "bolt";

/// The Bolt protocol (v1 and v2).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bolt;

/// The Bolt protocol, ready for a [`strait_codec_framework::Registry`].
pub fn protocol() -> Arc<dyn Protocol> {
    Arc::new(Bolt)
}

/// Decodes one connection's Bolt frames.
#[derive(Debug, Clone)]
pub struct BoltCodec {
    limits: Limits,
}

impl BoltCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        BoltCodec { limits }
    }

    /// Like [`Codec::decode`], but returns the concrete frame type.
    pub fn decode_bolt(&mut self, src: &mut BytesMut) -> Result<Option<BoltFrame>, DecodeError> {
        decode_frame(src, self.limits)
    }
}

impl Codec for BoltCodec {
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Box<dyn Frame>>, DecodeError> {
        let frame = decode::decode_boxed(src, self.limits)?;
        Ok(frame.map(|f| f as Box<dyn Frame>))
    }
}

impl Protocol for Bolt {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, prefix: &[u8]) -> Detect {
        detect::detect(prefix)
    }

    fn new_codec(&self, limits: Limits) -> Box<dyn Codec> {
        Box::new(BoltCodec::new(limits))
    }

    fn id_width(&self) -> IdWidth {
        IdWidth::U32
    }

    fn pool_mode(&self) -> PoolMode {
        PoolMode::Multiplex
    }

    fn heartbeat_reply(&self, request: &dyn Frame) -> Option<Box<dyn Frame>> {
        let req = request.as_any().downcast_ref::<BoltFrame>()?;
        if req.kind() != FrameKind::Heartbeat || req.cmd_type() == types::TYPE_ONEWAY {
            return None;
        }
        let ack = req
            .response_builder()
            .status(status::SUCCESS)
            .build()
            .ok()?;
        Some(Box::new(ack))
    }

    fn heartbeat_request(&self, id: RequestId) -> Option<Box<dyn Frame>> {
        let id = u32::try_from(id).ok()?;
        let probe = BoltBuilder::new(FrameKind::Heartbeat)
            .request_id(id)
            .timeout_ms(types::NO_TIMEOUT)
            .build()
            .ok()?;
        Some(Box::new(probe))
    }

    /// A route's `direct_response`: a response with `status` (one of the statuses Bolt
    /// defines; others are refused, as Java clients reject them) and, when a body is
    /// configured, its text in the `x-proxy-error` header-map entry.
    fn direct_response(
        &self,
        request: &dyn Frame,
        status: u32,
        body: Option<&str>,
    ) -> Option<Box<dyn Frame>> {
        let status = u16::try_from(status)
            .ok()
            .filter(|s| status::is_known(*s))?;
        let req = request.as_any().downcast_ref::<BoltFrame>()?;
        if req.kind() != FrameKind::Request {
            return None;
        }
        let mut reply = encode::error_reply(req.head(), req.current_id(), status)?;
        if let Some(text) = body {
            reply.set_header("x-proxy-error", text);
        }
        Some(Box::new(reply))
    }

    fn classify(&self, response: &dyn Frame) -> ResponseClass {
        status::classify(response.status().and_then(|s| u16::try_from(s).ok()))
    }

    fn error_response(&self, request: &dyn Frame, failure: ProxyFailure) -> Option<Box<dyn Frame>> {
        if request.kind() != FrameKind::Request {
            return None;
        }
        let status = status::status_for(failure);
        let mut reply = match request.as_any().downcast_ref::<BoltFrame>() {
            Some(req) => encode::error_reply(req.head(), req.current_id(), status)?,
            // Not ours (should not happen): answer in plain v1 with the frame's id.
            None => BoltBuilder::new(FrameKind::Response)
                .request_id(u32::try_from(request.request_id()).ok()?)
                .status(status)
                .build()
                .ok()?,
        };
        // Bolt's status says which failure; the text says what was asked for, where a
        // client (or `strait-call`) can show it. Java clients ignore entries they do
        // not know.
        reply.set_header(
            "x-proxy-error",
            &format!("{} (strait)", failure.text_for(request)),
        );
        Some(Box::new(reply))
    }
}
