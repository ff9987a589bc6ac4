//! `lenproto`: a small length-prefixed RPC protocol, added to Strait without touching
//! any other crate. It exists to prove that the codec framework is a real plugin
//! boundary; `docs/adding-a-protocol.md` walks through it.
//!
//! Wire format (big-endian), an 18-byte fixed header then two sections:
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
    Codec, CodecError, DecodeError, Detect, Frame, FrameKind, HeaderIter, IdWidth, Limits,
    PoolMode, Protocol, ProxyFailure, RequestId,
};

const HEADER_LEN: usize = 18;
const KINDS: [FrameKind; 5] = [
    FrameKind::Request,
    FrameKind::Oneway,
    FrameKind::Response,
    FrameKind::Heartbeat,
    FrameKind::HeartbeatAck,
];

/// One lenproto message, fully decoded (the protocol is tiny, so no lazy views).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LenFrame {
    /// Message kind.
    pub kind: FrameKind,
    /// Response status (0 = ok); 0 in requests.
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
    /// A request for `service` with a body.
    pub fn request(id: u32, service: &str, body: &[u8]) -> Self {
        LenFrame {
            kind: FrameKind::Request,
            status: 0,
            id,
            timeout_ms: 0,
            headers: vec![("service".into(), service.into())],
            body: Bytes::copy_from_slice(body),
        }
    }

    fn reply(kind: FrameKind, status: u8, id: u32) -> Box<dyn Frame> {
        Box::new(LenFrame {
            kind,
            status,
            id,
            timeout_ms: 0,
            headers: Vec::new(),
            body: Bytes::new(),
        })
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
        self.id = id as u32; // ids are allocated within IdWidth::U32
    }
    fn timeout(&self) -> Option<Duration> {
        (self.timeout_ms > 0).then(|| Duration::from_millis(self.timeout_ms.into()))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
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
        let headers: String = self
            .headers
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        let hlen = u16::try_from(headers.len())
            .map_err(|_| CodecError::Encode("headers longer than 65535 bytes".into()))?;
        let kind = KINDS.iter().position(|k| *k == self.kind).unwrap_or(0) as u8;
        dst.reserve(HEADER_LEN + headers.len() + self.body.len());
        dst.put_slice(b"LP");
        dst.put_u8(kind);
        dst.put_u8(self.status);
        dst.put_u32(self.id);
        dst.put_u32(self.timeout_ms);
        dst.put_u16(hlen);
        dst.put_u32(self.body.len() as u32);
        dst.put_slice(headers.as_bytes());
        dst.put_slice(&self.body);
        Ok(())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

struct LenCodec {
    limits: Limits,
}

impl Codec for LenCodec {
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Box<dyn Frame>>, DecodeError> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        if &src[..2] != b"LP" {
            return Err(CodecError::BadMagic(src[0]).into());
        }
        let kind = *KINDS
            .get(src[2] as usize)
            .ok_or(CodecError::UnknownType(src[2].into()))?;
        let hlen = u16::from_be_bytes([src[12], src[13]]) as usize;
        let body_len = read_u32(&src[HEADER_LEN - 4..HEADER_LEN]) as usize;
        let total = HEADER_LEN + hlen + body_len;
        if total > self.limits.max_frame_size {
            return Err(CodecError::FrameTooLarge {
                len: total as u64,
                max: self.limits.max_frame_size,
            }
            .into());
        }
        if src.len() < total {
            src.reserve(total - src.len());
            return Ok(None);
        }
        let mut frame = src.split_to(total);
        let status = frame[3];
        let id = read_u32(&frame[4..8]);
        let timeout_ms = read_u32(&frame[8..12]);
        frame.advance(HEADER_LEN);
        let headers_raw = frame.split_to(hlen);
        let text = std::str::from_utf8(&headers_raw).map_err(|_| malformed("not UTF-8"))?;
        let headers = text
            .lines()
            .map(|l| {
                l.split_once('=')
                    .map(|(k, v)| (k.into(), v.into()))
                    .ok_or_else(|| malformed("no '='"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Box::new(LenFrame {
            kind,
            status,
            id,
            timeout_ms,
            headers,
            body: frame.freeze(),
        })))
    }
}

fn read_u32(b: &[u8]) -> u32 {
    b.iter().fold(0, |acc, byte| (acc << 8) | u32::from(*byte))
}

fn malformed(reason: &str) -> DecodeError {
    CodecError::Malformed {
        section: "headers",
        reason: reason.into(),
    }
    .into()
}

/// The lenproto protocol descriptor; register it with [`protocol`].
pub struct LenProto;

/// Status a proxy failure maps to.
pub fn status_for(failure: ProxyFailure) -> u8 {
    match failure {
        ProxyFailure::NoRoute => 4,
        ProxyFailure::Timeout => 5,
        ProxyFailure::Overflow | ProxyFailure::RateLimited => 6,
        ProxyFailure::CodecError => 7,
        ProxyFailure::NoHealthyUpstream
        | ProxyFailure::ConnectFailure
        | ProxyFailure::UpstreamReset => 3,
    }
}

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
        Box::new(LenCodec { limits })
    }
    fn id_width(&self) -> IdWidth {
        IdWidth::U32
    }
    fn pool_mode(&self) -> PoolMode {
        PoolMode::Multiplex
    }
    fn heartbeat_reply(&self, request: &dyn Frame) -> Option<Box<dyn Frame>> {
        Some(LenFrame::reply(
            FrameKind::HeartbeatAck,
            0,
            request.request_id() as u32,
        ))
    }
    fn heartbeat_request(&self, id: RequestId) -> Option<Box<dyn Frame>> {
        Some(LenFrame::reply(FrameKind::Heartbeat, 0, id as u32))
    }
    fn error_response(&self, request: &dyn Frame, failure: ProxyFailure) -> Option<Box<dyn Frame>> {
        (request.kind() == FrameKind::Request).then(|| {
            LenFrame::reply(
                FrameKind::Response,
                status_for(failure),
                request.request_id() as u32,
            )
        })
    }
}

/// The protocol, ready to register.
pub fn protocol() -> Arc<dyn Protocol> {
    Arc::new(LenProto)
}
