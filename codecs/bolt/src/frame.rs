//! [`BoltFrame`]: one decoded Bolt v1/v2 frame that keeps its raw bytes.

use std::any::Any;
use std::borrow::Cow;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strait_codec_framework::{CodecError, Frame, FrameKind, HeaderIter, RequestId};

use crate::builder::BoltBuilder;
use crate::decode::Head;
use crate::header_map::{self, KeyLengths, OwnedPairs, RawPairs};
use crate::types::*;

/// One Bolt frame (v1 or v2, any type).
///
/// The whole frame is kept as received (`Bytes`, zero-copy from the read buffer). Reads
/// scan those bytes. A new request id is remembered and patched in on encode; the first
/// header change switches the header map to an owned list (whose unchanged entries still
/// point into the raw bytes) and makes encode re-serialise the map.
#[derive(Debug, Clone)]
pub struct BoltFrame {
    raw: Bytes,
    head: Head,
    /// The current id; differs from `head.request_id` after [`Frame::set_request_id`].
    request_id: u32,
    /// `Some` once a header was set or removed.
    headers: Option<OwnedPairs>,
    /// The raw header map's key lengths: rules absent keys out without a walk.
    keys: KeyLengths,
}

// === impl BoltFrame ===

impl BoltFrame {
    /// A builder for a new frame of `kind` (v1, Hessian2, no timeout, status SUCCESS).
    pub fn builder(kind: FrameKind) -> BoltBuilder {
        BoltBuilder::new(kind)
    }

    #[inline]
    pub(crate) fn from_parts(raw: Bytes, head: Head, keys: KeyLengths) -> Self {
        BoltFrame {
            request_id: head.request_id,
            raw,
            head,
            headers: None,
            keys,
        }
    }

    pub(crate) fn head(&self) -> &Head {
        &self.head
    }

    pub(crate) fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub(crate) fn owned_headers(&self) -> Option<&OwnedPairs> {
        self.headers.as_ref()
    }

    pub(crate) fn current_id(&self) -> u32 {
        self.request_id
    }

    /// A builder for the answer to this frame: same version bytes, switch, codec and id,
    /// kind `HeartbeatAck` for a heartbeat and `Response` otherwise.
    pub fn response_builder(&self) -> BoltBuilder {
        let kind = if self.head.cmdcode == CMD_HEARTBEAT {
            FrameKind::HeartbeatAck
        } else {
            FrameKind::Response
        };
        let b = BoltBuilder::new(kind)
            .request_id(self.request_id)
            .codec(self.head.codec);
        match self.ver1() {
            Some(ver1) => b.v2(ver1, self.head.switch),
            None => b,
        }
    }

    /// The protocol byte: 1 or 2.
    pub fn version(&self) -> u8 {
        self.head.layout.version
    }

    /// The v2 `ver1` byte; `None` for v1.
    pub fn ver1(&self) -> Option<u8> {
        (self.version() == PROTO_V2).then_some(self.head.ver1)
    }

    /// The v2 switch byte; `None` for v1.
    pub fn switch(&self) -> Option<u8> {
        (self.version() == PROTO_V2).then_some(self.head.switch)
    }

    /// Whether the frame carries a CRC-32 trailer (v2, ver1 = 2, switch bit 0).
    pub fn is_crc(&self) -> bool {
        self.head.crc()
    }

    /// The type byte: 0 response, 1 request, 2 oneway.
    pub fn cmd_type(&self) -> u8 {
        self.head.cmd_type
    }

    /// The command code: 0 heartbeat, 1 request, 2 response.
    pub fn cmdcode(&self) -> u16 {
        self.head.cmdcode
    }

    /// The serializer id (1 = Hessian2).
    pub fn codec(&self) -> u8 {
        self.head.codec
    }

    /// The raw timeout field in milliseconds (requests only; -1 and 0 mean none).
    pub fn timeout_ms(&self) -> Option<i32> {
        let off = self.head.layout.tail_off();
        self.head
            .layout
            .request
            .then(|| be_u32(&self.raw, off) as i32)
    }

    /// The status field (responses only).
    pub fn status_code(&self) -> Option<u16> {
        let off = self.head.layout.tail_off();
        (!self.head.layout.request).then(|| be_u16(&self.raw, off))
    }

    /// The class-name section as received (UTF-8 in practice).
    pub fn class_name(&self) -> &[u8] {
        &self.raw[self.head.class_range()]
    }

    /// The header-map section length as received.
    pub fn header_len(&self) -> u16 {
        self.head.header_len
    }

    /// The content length.
    pub fn content_len(&self) -> u32 {
        self.head.content_len
    }

    /// The frame as received or built (without a later id patch or header change).
    pub fn raw_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// Whether a header was changed, so encode re-serialises the header map.
    pub fn headers_modified(&self) -> bool {
        self.headers.is_some()
    }

    fn raw_header_section(&self) -> &[u8] {
        &self.raw[self.head.header_range()]
    }

    /// Switches to the owned header list on first change.
    fn owned_mut(&mut self) -> &mut OwnedPairs {
        let raw = &self.raw;
        let section = &raw[self.head.header_range()];
        self.headers
            .get_or_insert_with(|| header_map::to_owned(raw, section))
    }

    /// Calls `f` with every pair in wire order, as raw bytes.
    fn each_raw_pair(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match &self.headers {
            Some(pairs) => pairs.iter().for_each(|(k, v)| f(k, v)),
            None => RawPairs::new(self.raw_header_section()).for_each(|(k, v)| f(k, v)),
        }
    }

    /// The last value of `name` (Java's `HashMap.put` keeps the last), as raw bytes.
    /// Inlined, with the scans out of line: a header the map cannot hold (a tracer's
    /// `traceparent` on most requests) costs a length check, not a call.
    #[inline]
    fn last_raw(&self, name: &str) -> Option<&[u8]> {
        let name = name.as_bytes();
        match &self.headers {
            Some(pairs) => last_pair(pairs, name),
            None if !self.keys.may_hold(name.len()) => None,
            None => header_map::last_value(self.raw_header_section(), name),
        }
    }
}

/// The last of `pairs` named `name`.
#[inline(never)]
fn last_pair<'a>(pairs: &'a [(Bytes, Bytes)], name: &[u8]) -> Option<&'a [u8]> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| &v[..])
}

// === impl Frame for BoltFrame ===

impl Frame for BoltFrame {
    fn kind(&self) -> FrameKind {
        // By type (response, request, oneway) and whether the command is a heartbeat: a
        // table lookup, as the proxy asks several times per request. A oneway heartbeat
        // is a heartbeat (never forwarded) that `heartbeat_reply` leaves unanswered, as it
        // must every oneway request.
        const KINDS: [[FrameKind; 2]; 3] = [
            [FrameKind::Response, FrameKind::HeartbeatAck],
            [FrameKind::Request, FrameKind::Heartbeat],
            [FrameKind::Oneway, FrameKind::Heartbeat],
        ];
        let heartbeat = usize::from(self.head.cmdcode == CMD_HEARTBEAT);
        KINDS
            .get(usize::from(self.head.cmd_type))
            .map_or(FrameKind::Response, |k| k[heartbeat])
    }

    fn request_id(&self) -> RequestId {
        RequestId::from(self.request_id)
    }

    fn set_request_id(&mut self, id: RequestId) {
        // Bolt ids are 32 bits (IdWidth::U32); the proxy allocates within that space, so
        // keeping the low 32 bits is the documented wrap, not a silent loss.
        debug_assert!(id <= u64::from(u32::MAX), "bolt id {id} exceeds u32");
        self.request_id = id as u32;
    }

    fn timeout(&self) -> Option<Duration> {
        match self.timeout_ms() {
            Some(ms) if ms > 0 => Some(Duration::from_millis(ms as u64)),
            _ => None,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.last_raw(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    fn set_header(&mut self, name: &str, value: &str) {
        let pairs = self.owned_mut();
        let value = Bytes::copy_from_slice(value.as_bytes());
        // Replace the first occurrence in place (keeps wire order), drop any duplicates.
        let mut seen = false;
        pairs.retain_mut(|(k, v)| {
            if k != name.as_bytes() {
                return true;
            }
            if seen {
                return false;
            }
            seen = true;
            *v = value.clone();
            true
        });
        if !seen {
            pairs.push((Bytes::copy_from_slice(name.as_bytes()), value));
        }
    }

    fn remove_header(&mut self, name: &str) -> bool {
        // Removing an absent header changes nothing: keep the raw fast path.
        if self.last_raw(name).is_none() {
            return false;
        }
        self.owned_mut().retain(|(k, _)| k != name.as_bytes());
        true
    }

    fn for_each_header(&self, f: HeaderIter<'_>) {
        self.each_raw_pair(|k, v| {
            // Pairs that are not UTF-8 cannot be shown as &str; they stay on the wire.
            if let (Ok(k), Ok(v)) = (std::str::from_utf8(k), std::str::from_utf8(v)) {
                f(k, v);
            }
        });
    }

    fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        // What `header` gives: a value that is not UTF-8 reads as absent. ASCII, the
        // usual case, is checked a word at a time.
        self.last_raw(name)
            .filter(|v| v.is_ascii() || std::str::from_utf8(v).is_ok())
    }

    fn variable_bytes(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        let value = match name {
            "service" => self
                .header_bytes("service")
                .or_else(|| self.header_bytes("sofa_head_target_service")),
            "method" => self.header_bytes("sofa_head_method_name"),
            "protocol" => Some(crate::NAME.as_bytes()),
            _ => None,
        };
        value.map(Cow::Borrowed)
    }

    fn variable(&self, name: &str) -> Option<Cow<'_, str>> {
        let value = match name {
            "service" => self
                .header("service")
                .or_else(|| self.header("sofa_head_target_service")),
            "method" => self.header("sofa_head_method_name"),
            "protocol" => Some(crate::NAME),
            _ => None,
        };
        value.map(Cow::Borrowed)
    }

    fn body(&self) -> Bytes {
        self.raw.slice(self.head.content_range())
    }

    fn status(&self) -> Option<u32> {
        self.status_code().map(u32::from)
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), CodecError> {
        crate::encode::encode_frame(self, dst)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
