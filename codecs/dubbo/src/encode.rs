//! [`DubboFrame`] to bytes.
//!
//! Three paths, cheapest first: an untouched frame is copied as is; a frame whose id
//! changed is copied with the 8 id bytes patched; a frame whose attachments changed gets
//! the body bytes before the map unchanged, a freshly written map (entries the proxy did
//! not touch are copied byte for byte) and whatever followed the map, under a header
//! with the new length.

use bytes::{BufMut, BytesMut};
use strait_codec_framework::CodecError;

use crate::frame::{DubboFrame, Edit};
use crate::hessian2::{tag, writer};
use crate::types::*;

/// Appends the wire bytes of `frame` to `dst`.
pub(crate) fn encode_frame(frame: &DubboFrame, dst: &mut BytesMut) -> Result<(), CodecError> {
    let raw = frame.raw_bytes();
    let id = frame.current_id();
    match frame.edit() {
        Edit::Refused(why) => Err(CodecError::Encode(why.clone())),
        Edit::None if id == frame.head().request_id => {
            dst.extend_from_slice(raw);
            Ok(())
        }
        Edit::None => {
            let (Some(before), Some(after)) = (raw.get(..ID_OFFSET), raw.get(LEN_OFFSET..)) else {
                return Err(short(raw.len()));
            };
            dst.reserve(raw.len());
            dst.put_slice(before);
            dst.put_u64(id);
            dst.put_slice(after);
            Ok(())
        }
        Edit::Attachments => encode_with_attachments(frame, id, dst),
    }
}

fn short(len: usize) -> CodecError {
    CodecError::Encode(format!("frame of {len} bytes is shorter than its header"))
}

fn encode_with_attachments(
    frame: &DubboFrame,
    id: u64,
    dst: &mut BytesMut,
) -> Result<(), CodecError> {
    let Some(att) = frame.attachments_ref() else {
        return Err(CodecError::Encode(
            "edited attachments are not readable".into(),
        ));
    };
    let raw = frame.raw_bytes();
    let body = frame.body_slice();
    let (Some(head), Some(before), Some(after)) = (
        raw.get(..4),
        body.get(..att.span.start),
        body.get(att.span.end..),
    ) else {
        return Err(short(raw.len()));
    };
    let start = dst.len();
    dst.reserve(raw.len() + 64);
    dst.put_slice(head);
    dst.put_u64(id);
    dst.put_u32(0); // the length, patched below
    dst.put_slice(before);
    match att.open.as_ref().and_then(|r| body.get(r.clone())) {
        Some(open) => dst.put_slice(open),
        None => dst.put_u8(tag::MAP_UNTYPED),
    }
    match att.written(body) {
        Ok(unchanged) => dst.put_slice(unchanged),
        Err(entries) => {
            for e in entries {
                match (&e.raw, &e.key, &e.value) {
                    (Some(r), _, _) => dst.put_slice(body.get(r.clone()).unwrap_or_default()),
                    (None, Some(k), Some(v)) => {
                        writer::write_string(dst, k.as_str(body));
                        writer::write_string(dst, v.as_str(body));
                    }
                    // Entries the proxy wrote always have a string key and value.
                    (None, _, _) => {}
                }
            }
        }
    }
    dst.put_u8(tag::END);
    dst.put_slice(after);
    let len = dst.len() - start - HEADER_LEN;
    let Ok(len) = i32::try_from(len) else {
        dst.truncate(start);
        return Err(CodecError::Encode(format!(
            "body of {len} bytes exceeds the length field"
        )));
    };
    if let Some(field) = dst.get_mut(start + LEN_OFFSET..start + HEADER_LEN) {
        field.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}
