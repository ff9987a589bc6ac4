//! `lenproto`: a small length-prefixed RPC protocol, added to Strait without touching any
//! other crate; `docs/adding-a-protocol.md` walks through it. Wire format (big-endian):
//!
//! ```text
//! 'L' 'P' | kind u8 | status u8 | id u32 | timeout_ms u32 | headers_len u16 | body_len u32
//! headers: "name=value\n" repeated | body
//! ```
//! kind: 0 request, 1 oneway, 2 response, 3 heartbeat, 4 heartbeat ack.

use std::any::Any;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use strait_codec_framework::{
    Codec, CodecError, DecodeError, Detect, Frame, FrameKind, HeaderIter, IdWidth, Limits, PoolMode,
    Protocol, ProxyFailure, RequestId, ResponseClass,
};

const FIXED: usize = 18;
const KINDS: [FrameKind; 5] = [
    FrameKind::Request,
    FrameKind::Oneway,
    FrameKind::Response,
    FrameKind::Heartbeat,
    FrameKind::HeartbeatAck,
];

/// One lenproto message, fully decoded (the protocol is tiny: no lazy views needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LenFrame {
    /// Message kind.
    pub kind: FrameKind,
    /// Response status (0 = ok).
    pub status: u8,
    /// Request id.
    pub id: u32,
    /// Timeout in milliseconds; 0 = none.
    pub timeout_ms: u32,
    /// Headers, in wire order.
    pub headers: Vec<(String, String)>,
    /// Payload.
    pub body: Bytes,
}

impl LenFrame {
    /// A message of `kind` with no headers or body.
    pub fn new(kind: FrameKind, id: u32, status: u8) -> Self {
        let (timeout_ms, headers, body) = (0, Vec::new(), Bytes::new());
        LenFrame { kind, status, id, timeout_ms, headers, body }
    }

    /// A request for `service` carrying `body`.
    pub fn request(id: u32, service: &str, body: &[u8]) -> Self {
        let mut frame = LenFrame::new(FrameKind::Request, id, 0);
        frame.headers.push(("service".into(), service.into()));
        frame.body = Bytes::copy_from_slice(body);
        frame
    }
}

impl Frame for LenFrame {
    fn kind(&self) -> FrameKind {
        self.kind
    }
    fn request_id(&self) -> RequestId {
        self.id.into()
    }
    fn set_request_id(&mut self, id: RequestId) {
        self.id = id as u32; // the proxy allocates ids within IdWidth::U32
    }
    fn timeout(&self) -> Option<Duration> {
        (self.timeout_ms > 0).then(|| Duration::from_millis(self.timeout_ms.into()))
    }
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().rev().find(|(k, _)| k == name);
        found.map(|(_, v)| v.as_str())
    }
    fn set_header(&mut self, name: &str, value: &str) {
        self.remove_header(name);
        self.headers.push((name.into(), value.into()));
    }
    fn remove_header(&mut self, name: &str) -> bool {
        let before = self.headers.len();
        self.headers.retain(|(k, _)| k != name);
        before != self.headers.len()
    }
    fn for_each_header(&self, f: HeaderIter<'_>) {
        self.headers.iter().for_each(|(k, v)| f(k, v));
    }
    fn variable(&self, name: &str) -> Option<Cow<'_, str>> {
        match name {
            "service" | "method" => self.header(name).map(Cow::Borrowed),
            "protocol" => Some(Cow::Borrowed("lenproto")),
            _ => None,
        }
    }
    fn body(&self) -> Bytes {
        self.body.clone()
    }
    fn status(&self) -> Option<u32> {
        (self.kind == FrameKind::Response).then_some(self.status.into())
    }
    fn encode(&self, dst: &mut BytesMut) -> Result<(), CodecError> {
        let headers: String = self.headers.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let too_long = |what: &str| CodecError::Encode(format!("{what} too long"));
        let hlen = u16::try_from(headers.len()).map_err(|_| too_long("headers"))?;
        let blen = u32::try_from(self.body.len()).map_err(|_| too_long("body"))?;
        let kind = KINDS.iter().position(|k| *k == self.kind).ok_or(too_long("kind"))?;
        dst.reserve(FIXED + headers.len() + self.body.len());
        dst.put_slice(b"LP");
        dst.put_u8(kind as u8);
        dst.put_u8(self.status);
        dst.put_u32(self.id);
        dst.put_u32(self.timeout_ms);
        dst.put_u16(hlen);
        dst.put_u32(blen);
        dst.put_slice(headers.as_bytes());
        dst.put_slice(&self.body);
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct LenCodec(Limits);

impl Codec for LenCodec {
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Box<dyn Frame>>, DecodeError> {
        if src.len() < FIXED {
            return Ok(None);
        }
        if &src[..2] != b"LP" {
            return Err(CodecError::BadMagic(src[0]).into());
        }
        let kind = *KINDS.get(usize::from(src[2])).ok_or(CodecError::UnknownType(src[2].into()))?;
        let hlen = usize::from(u16::from_be_bytes([src[12], src[13]]));
        let blen = u32::from_be_bytes([src[14], src[15], src[16], src[17]]) as usize;
        let total = FIXED + hlen + blen;
        if total > self.0.max_frame_size {
            return Err(CodecError::FrameTooLarge { len: total as u64, max: self.0.max_frame_size }.into());
        }
        if src.len() < total {
            src.reserve(total - src.len()); // bounded by the limit just checked
            return Ok(None);
        }
        let mut raw = src.split_to(total);
        let mut frame = LenFrame::new(kind, u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]), raw[3]);
        frame.timeout_ms = u32::from_be_bytes([raw[8], raw[9], raw[10], raw[11]]);
        raw.advance(FIXED);
        let text = raw.split_to(hlen);
        let malformed = |reason: &str| CodecError::Malformed { section: "headers", reason: reason.into() };
        for line in std::str::from_utf8(&text).map_err(|_| malformed("not UTF-8"))?.lines() {
            let (k, v) = line.split_once('=').ok_or_else(|| malformed("a line without '='"))?;
            frame.headers.push((k.into(), v.into()));
        }
        frame.body = raw.freeze();
        Ok(Some(Box::new(frame)))
    }
}

/// The status lenproto answers a proxy failure with.
pub fn status_for(failure: ProxyFailure) -> u8 {
    match failure {
        ProxyFailure::NoHealthyUpstream | ProxyFailure::ConnectFailure => 3,
        ProxyFailure::UpstreamReset => 3,
        ProxyFailure::NoRoute => 4,
        ProxyFailure::Timeout => 5,
        ProxyFailure::Overflow | ProxyFailure::RateLimited => 6,
        ProxyFailure::CodecError => 7,
    }
}

/// The lenproto protocol descriptor.
pub struct LenProto;

impl Protocol for LenProto {
    fn name(&self) -> &'static str {
        "lenproto"
    }
    fn detect(&self, prefix: &[u8]) -> Detect {
        match prefix {
            [] | [b'L'] => Detect::NeedMore,
            [b'L', b'P', ..] => Detect::Match,
            _ => Detect::NoMatch,
        }
    }
    fn new_codec(&self, limits: Limits) -> Box<dyn Codec> {
        Box::new(LenCodec(limits))
    }
    fn id_width(&self) -> IdWidth {
        IdWidth::U32
    }
    fn pool_mode(&self) -> PoolMode {
        PoolMode::Multiplex
    }
    fn heartbeat_reply(&self, request: &dyn Frame) -> Option<Box<dyn Frame>> {
        let id = request.request_id() as u32;
        Some(Box::new(LenFrame::new(FrameKind::HeartbeatAck, id, 0)))
    }
    fn heartbeat_request(&self, id: RequestId) -> Option<Box<dyn Frame>> {
        Some(Box::new(LenFrame::new(FrameKind::Heartbeat, id as u32, 0)))
    }
    fn classify(&self, response: &dyn Frame) -> ResponseClass {
        match response.status() {
            Some(0) => ResponseClass::Success,
            Some(4 | 7) => ResponseClass::ClientError, // unrouted, malformed: the caller's fault
            _ => ResponseClass::ServerError,
        }
    }
    fn direct_response(
        &self,
        request: &dyn Frame,
        status: u32,
        body: Option<&str>,
    ) -> Option<Box<dyn Frame>> {
        let mut reply =
            LenFrame::new(FrameKind::Response, request.request_id() as u32, status.try_into().ok()?);
        reply.body = Bytes::copy_from_slice(body.unwrap_or("").as_bytes());
        (request.kind() == FrameKind::Request).then(|| Box::new(reply) as Box<dyn Frame>)
    }
    fn error_response(&self, request: &dyn Frame, failure: ProxyFailure) -> Option<Box<dyn Frame>> {
        let (id, status) = (request.request_id() as u32, status_for(failure));
        let reply = LenFrame::new(FrameKind::Response, id, status);
        (request.kind() == FrameKind::Request).then(|| Box::new(reply) as Box<dyn Frame>)
    }
}

/// The protocol, ready to register.
pub fn protocol() -> Arc<dyn Protocol> {
    Arc::new(LenProto)
}
