//! [`BoltBuilder`]: builds new Bolt frames (proxy replies, test frames, echo backends).

use bytes::{BufMut, Bytes, BytesMut};
use strait_codec_framework::{CodecError, FrameKind};

use crate::decode;
use crate::frame::BoltFrame;
use crate::header_map;
use crate::status::SUCCESS;
use crate::types::*;

/// Builds a [`BoltFrame`]. Defaults: v1, id 0, Hessian2, timeout -1, status SUCCESS,
/// empty class, header map and content.
#[derive(Debug, Clone)]
pub struct BoltBuilder {
    kind: FrameKind,
    version: u8,
    ver1: u8,
    switch: u8,
    request_id: u32,
    codec: u8,
    timeout_ms: i32,
    status: u16,
    class: Bytes,
    headers: Vec<(Bytes, Bytes)>,
    content: Bytes,
}

impl BoltBuilder {
    /// A builder for a frame of `kind` (`GoAway` fails at [`BoltBuilder::build`]).
    pub fn new(kind: FrameKind) -> Self {
        BoltBuilder {
            kind,
            version: PROTO_V1,
            ver1: VER1_1,
            switch: 0,
            request_id: 0,
            codec: CODEC_HESSIAN2,
            timeout_ms: NO_TIMEOUT,
            status: SUCCESS,
            class: Bytes::new(),
            headers: Vec::new(),
            content: Bytes::new(),
        }
    }

    /// Makes a v1 frame (the default).
    pub fn v1(mut self) -> Self {
        self.version = PROTO_V1;
        self
    }

    /// Makes a v2 frame with these `ver1` and switch bytes (CRC iff ver1 = 2 and switch
    /// bit 0).
    pub fn v2(mut self, ver1: u8, switch: u8) -> Self {
        self.version = PROTO_V2;
        self.ver1 = ver1;
        self.switch = switch;
        self
    }

    /// Sets the request id.
    pub fn request_id(mut self, id: u32) -> Self {
        self.request_id = id;
        self
    }

    /// Sets the serializer id.
    pub fn codec(mut self, codec: u8) -> Self {
        self.codec = codec;
        self
    }

    /// Sets the timeout field in milliseconds (requests only).
    pub fn timeout_ms(mut self, ms: i32) -> Self {
        self.timeout_ms = ms;
        self
    }

    /// Sets the status (responses only).
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Sets the class name.
    pub fn class_name(mut self, class: impl Into<Bytes>) -> Self {
        self.class = class.into();
        self
    }

    /// Appends a header pair (UTF-8; lengths count bytes).
    pub fn header(mut self, key: &str, value: &str) -> Self {
        self.headers.push((
            Bytes::copy_from_slice(key.as_bytes()),
            Bytes::copy_from_slice(value.as_bytes()),
        ));
        self
    }

    /// Sets the content.
    pub fn content(mut self, content: impl Into<Bytes>) -> Self {
        self.content = content.into();
        self
    }

    /// Serialises the frame and parses it back, so a built frame obeys every rule a
    /// decoded one does (switch range, section limits).
    pub fn build(self) -> Result<BoltFrame, CodecError> {
        let (cmd_type, cmdcode) = match self.kind {
            FrameKind::Request => (TYPE_REQUEST, CMD_REQUEST),
            FrameKind::Oneway => (TYPE_ONEWAY, CMD_REQUEST),
            FrameKind::Response => (TYPE_RESPONSE, CMD_RESPONSE),
            FrameKind::Heartbeat => (TYPE_REQUEST, CMD_HEARTBEAT),
            FrameKind::HeartbeatAck => (TYPE_RESPONSE, CMD_HEARTBEAT),
            FrameKind::GoAway => {
                return Err(CodecError::Encode("SOFA Bolt has no GoAway frame".into()));
            }
        };
        let class_len = u16::try_from(self.class.len())
            .ok()
            .filter(|n| *n <= MAX_SECTION_LEN)
            .ok_or_else(|| {
                CodecError::Encode(format!("class name of {} bytes", self.class.len()))
            })?;
        let header_len = header_map::encoded_len(&self.headers)?;
        let content_len = u32::try_from(self.content.len())
            .ok()
            .filter(|n| *n <= MAX_CONTENT_LEN)
            .ok_or_else(|| {
                CodecError::Encode(format!("content of {} bytes", self.content.len()))
            })?;
        let layout = Layout {
            version: self.version,
            request: cmd_type != TYPE_RESPONSE,
        };
        let mut dst = BytesMut::with_capacity(
            layout.fixed_len()
                + self.class.len()
                + usize::from(header_len)
                + self.content.len()
                + CRC_LEN,
        );
        dst.put_u8(self.version);
        if self.version == PROTO_V2 {
            dst.put_u8(self.ver1);
        }
        dst.put_u8(cmd_type);
        dst.put_u16(cmdcode);
        dst.put_u8(CMD_VERSION);
        dst.put_u32(self.request_id);
        dst.put_u8(self.codec);
        if self.version == PROTO_V2 {
            dst.put_u8(self.switch);
        }
        if layout.request {
            dst.put_i32(self.timeout_ms);
        } else {
            dst.put_u16(self.status);
        }
        dst.put_u16(class_len);
        dst.put_u16(header_len);
        dst.put_u32(content_len);
        dst.put_slice(&self.class);
        header_map::write(&self.headers, &mut dst);
        dst.put_slice(&self.content);
        if self.version == PROTO_V2 && self.ver1 == VER1_2 && self.switch & SWITCH_CRC != 0 {
            let crc = crc32fast::hash(&dst);
            dst.put_u32(crc);
        }
        decode::parse_complete(dst.freeze())
    }
}
