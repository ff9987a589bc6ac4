//! Bytes to [`BoltFrame`]s: fixed-header parsing, limit checks, CRC and header-map
//! validation.
//!
//! Every length is checked against the protocol range and [`Limits`] from the fixed
//! header alone, before a single byte of the body is buffered or reserved.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use strait_codec_framework::{CodecError, DecodeError, Frame, Limits};

use crate::frame::BoltFrame;
use crate::header_map::{self, KeyLengths};
use crate::status::CODEC_EXCEPTION;
use crate::types::*;

/// The fixed header of one frame, checked and decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub layout: Layout,
    /// v2 `ver1`; 1 for v1 frames (same semantics).
    pub ver1: u8,
    /// v2 switch; 0 for v1 frames.
    pub switch: u8,
    pub cmd_type: u8,
    pub cmdcode: u16,
    /// The id as it is in the raw bytes.
    pub request_id: u32,
    pub codec: u8,
    pub class_len: u16,
    pub header_len: u16,
    pub content_len: u32,
}

impl Head {
    /// Whether the frame carries a CRC-32 trailer: ver1 = 2 and switch bit 0 (Java's rule).
    pub fn crc(&self) -> bool {
        // A v1 frame's `ver1` is VER1_1 (set so at parse), so no version check is needed.
        self.ver1 == VER1_2 && self.switch & SWITCH_CRC != 0
    }

    /// End of the content, i.e. the bytes the CRC covers.
    pub fn content_end(&self) -> usize {
        self.layout.fixed_len()
            + usize::from(self.class_len)
            + usize::from(self.header_len)
            + self.content_len as usize
    }

    /// Length of the whole frame, trailer included.
    pub fn total_len(&self) -> usize {
        self.content_end() + if self.crc() { CRC_LEN } else { 0 }
    }

    pub fn class_range(&self) -> Range<usize> {
        let start = self.layout.fixed_len();
        start..start + usize::from(self.class_len)
    }

    pub fn header_range(&self) -> Range<usize> {
        let start = self.class_range().end;
        start..start + usize::from(self.header_len)
    }

    pub fn content_range(&self) -> Range<usize> {
        self.header_range().end..self.content_end()
    }
}

/// What the fixed-header parser found.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// At least this many bytes are needed to go on.
    NeedMore(usize),
    /// A complete, checked fixed header, and the frame's whole length (worked out once).
    Head(Head, usize),
}

/// Parses and checks the fixed header at the front of `b`. Fields are checked as soon as
/// they are available, so garbage is rejected without waiting for a full header.
pub(crate) fn parse_head(b: &[u8], max_frame_size: usize) -> Result<Parsed, CodecError> {
    let Some(&version) = b.first() else {
        return Ok(Parsed::NeedMore(1));
    };
    if version != PROTO_V1 && version != PROTO_V2 {
        return Err(CodecError::BadMagic(version));
    }
    let type_off = Layout::type_off(version);
    if version == PROTO_V2 {
        match b.get(1) {
            None => return Ok(Parsed::NeedMore(2)),
            Some(&v) if v != VER1_1 && v != VER1_2 => return Err(CodecError::BadMagic(v)),
            Some(_) => {}
        }
    }
    let Some(&cmd_type) = b.get(type_off) else {
        return Ok(Parsed::NeedMore(type_off + 1));
    };
    if !matches!(cmd_type, TYPE_RESPONSE | TYPE_REQUEST | TYPE_ONEWAY) {
        return Err(CodecError::UnknownType(u16::from(cmd_type)));
    }
    let layout = Layout {
        version,
        request: cmd_type != TYPE_RESPONSE,
    };
    let cmd_off = layout.cmd_off();
    if b.len() < cmd_off + 2 {
        return Ok(Parsed::NeedMore(cmd_off + 2));
    }
    let cmdcode = be_u16(b, cmd_off);
    // MOSN's GoAway (100) is not SOFA Bolt and nothing else is defined (B21, B28).
    if !matches!(cmdcode, CMD_HEARTBEAT | CMD_REQUEST | CMD_RESPONSE) {
        return Err(CodecError::UnknownType(cmdcode));
    }
    if b.len() < layout.fixed_len() {
        return Ok(Parsed::NeedMore(layout.fixed_len()));
    }
    let switch = if version == PROTO_V2 {
        b[layout.switch_off()]
    } else {
        0
    };
    if switch > MAX_SWITCH {
        return Err(CodecError::Malformed {
            section: "switch",
            reason: format!("{switch:#04x} is outside 0..=0x7f"),
        });
    }
    let lens = layout.lens_off();
    let head = Head {
        layout,
        ver1: if version == PROTO_V2 { b[1] } else { VER1_1 },
        switch,
        cmd_type,
        cmdcode,
        request_id: be_u32(b, layout.id_off()),
        codec: b[layout.codec_off()],
        class_len: section_len(b, lens, "classLen")?,
        header_len: section_len(b, lens + 2, "headerLen")?,
        content_len: be_u32(b, lens + 4),
    };
    if head.content_len > MAX_CONTENT_LEN {
        return Err(CodecError::BadLength {
            field: "contentLen",
            value: i64::from(head.content_len),
        });
    }
    // Cannot overflow: at most 24 + 2 * 0x7fff + (2^31 - 1) + 4 bytes.
    let total = head.total_len();
    if total > max_frame_size {
        return Err(CodecError::FrameTooLarge {
            len: total as u64,
            max: max_frame_size,
        });
    }
    Ok(Parsed::Head(head, total))
}

fn section_len(b: &[u8], off: usize, field: &'static str) -> Result<u16, CodecError> {
    let len = be_u16(b, off);
    if len > MAX_SECTION_LEN {
        return Err(CodecError::BadLength {
            field,
            value: i64::from(len),
        });
    }
    Ok(len)
}

/// Checks the CRC trailer of a complete frame, if it has one.
fn verify_crc(frame: &[u8], head: &Head) -> Result<(), CodecError> {
    if !head.crc() {
        return Ok(());
    }
    let end = head.content_end();
    let expected = be_u32(frame, end);
    let actual = crc32fast::hash(&frame[..end]);
    if expected != actual {
        return Err(CodecError::Checksum { expected, actual });
    }
    Ok(())
}

/// Decodes one frame from the front of `src` (see [`strait_codec_framework::Codec`]).
pub fn decode_frame(src: &mut BytesMut, limits: Limits) -> Result<Option<BoltFrame>, DecodeError> {
    decode_into(src, limits, BoltFrame::from_parts)
}

/// [`decode_frame`] straight into a box, as the proxy holds frames: built in place
/// rather than moved into the box.
pub(crate) fn decode_boxed(
    src: &mut BytesMut,
    limits: Limits,
) -> Result<Option<Box<BoltFrame>>, DecodeError> {
    decode_into(src, limits, |raw, head, keys| {
        Box::new(BoltFrame::from_parts(raw, head, keys))
    })
}

#[inline]
fn decode_into<T>(
    src: &mut BytesMut,
    limits: Limits,
    make: impl FnOnce(Bytes, Head, KeyLengths) -> T,
) -> Result<Option<T>, DecodeError> {
    let (head, total) = match parse_head(src, limits.max_frame_size)? {
        Parsed::NeedMore(n) => {
            src.reserve(n.saturating_sub(src.len()));
            return Ok(None);
        }
        Parsed::Head(head, total) => (head, total),
    };
    if src.len() < total {
        // Bounded by the limit checked in parse_head.
        src.reserve(total - src.len());
        return Ok(None);
    }
    verify_crc(&src[..total], &head)?;
    let header_check = header_map::validate(&src[head.header_range()]);
    let raw = src.split_to(total).freeze();
    match header_check {
        Ok(keys) => Ok(Some(make(raw, head, keys))),
        // The frame is delimited and its id known: answer it and keep the connection.
        Err(error) if head.layout.request => Err(DecodeError::Rejected {
            error,
            reply: codec_exception_reply(&head),
        }),
        Err(error) => Err(DecodeError::Fatal(error)),
    }
}

/// The CODEC_EXCEPTION answer to a request whose header map was malformed; `None` for
/// oneway requests and heartbeats, which never get an error.
fn codec_exception_reply(head: &Head) -> Option<Box<dyn Frame>> {
    if head.cmd_type != TYPE_REQUEST || head.cmdcode == CMD_HEARTBEAT {
        return None;
    }
    let reply = crate::encode::error_reply(head, head.request_id, CODEC_EXCEPTION)?;
    Some(Box::new(reply))
}

/// Parses a complete frame held in `raw` (used by the builder): it must be exactly one
/// valid frame.
pub(crate) fn parse_complete(raw: Bytes) -> Result<BoltFrame, CodecError> {
    let head = match parse_head(&raw, usize::MAX)? {
        Parsed::Head(head, _) => head,
        Parsed::NeedMore(n) => {
            return Err(CodecError::Encode(format!(
                "frame of {} bytes is shorter than its fixed header ({n})",
                raw.len()
            )));
        }
    };
    if head.total_len() != raw.len() {
        return Err(CodecError::Encode(format!(
            "lengths say {} bytes, frame has {}",
            head.total_len(),
            raw.len()
        )));
    }
    verify_crc(&raw, &head)?;
    let keys = header_map::validate(&raw[head.header_range()])?;
    Ok(BoltFrame::from_parts(raw, head, keys))
}
