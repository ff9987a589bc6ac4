//! [`BoltFrame`] to bytes.
//!
//! Three paths, cheapest first: an untouched frame is copied as is; a frame whose id
//! changed is copied with the 4 id bytes patched (and its CRC recomputed over the output);
//! a frame whose headers changed gets a new header map and headerLen. None allocates
//! beyond growing `dst`.

use bytes::{BufMut, BytesMut};
use strait_codec_framework::{CodecError, FrameKind};

use crate::builder::BoltBuilder;
use crate::decode::Head;
use crate::frame::BoltFrame;
use crate::header_map;
use crate::types::*;

/// Appends the wire bytes of `frame` to `dst`.
pub(crate) fn encode_frame(frame: &BoltFrame, dst: &mut BytesMut) -> Result<(), CodecError> {
    let head = frame.head();
    let raw = frame.raw();
    let id = frame.current_id();
    let Some(pairs) = frame.owned_headers() else {
        if id == head.request_id {
            dst.extend_from_slice(raw);
            return Ok(());
        }
        let start = dst.len();
        let id_off = head.layout.id_off();
        let end = head.content_end();
        dst.reserve(raw.len());
        dst.put_slice(&raw[..id_off]);
        dst.put_u32(id);
        dst.put_slice(&raw[id_off + 4..end]);
        put_crc(head, dst, start);
        return Ok(());
    };

    let header_len = header_map::encoded_len(pairs)?;
    let start = dst.len();
    let id_off = head.layout.id_off();
    let lens = head.layout.lens_off();
    let total = head.total_len() - usize::from(head.header_len) + usize::from(header_len);
    dst.reserve(total);
    dst.put_slice(&raw[..id_off]);
    dst.put_u32(id);
    dst.put_slice(&raw[id_off + 4..lens]);
    dst.put_u16(head.class_len);
    dst.put_u16(header_len);
    dst.put_u32(head.content_len);
    dst.put_slice(&raw[head.class_range()]);
    header_map::write(pairs, dst);
    dst.put_slice(&raw[head.content_range()]);
    put_crc(head, dst, start);
    Ok(())
}

/// Appends the CRC of `dst[start..]` if the frame has a trailer.
fn put_crc(head: &Head, dst: &mut BytesMut, start: usize) {
    if head.crc() {
        let crc = crc32fast::hash(&dst[start..]);
        dst.put_u32(crc);
    }
}

/// A response with empty class, header map and content that answers the request
/// described by `head` with `status`: same version bytes, switch (so a CRC iff the
/// request had one, P18) and codec. `None` only if the request's bytes are themselves
/// unencodable, which a decoded head never is.
pub(crate) fn error_reply(head: &Head, id: u32, status: u16) -> Option<BoltFrame> {
    let b = BoltBuilder::new(FrameKind::Response)
        .request_id(id)
        .codec(head.codec)
        .status(status);
    let b = if head.layout.version == PROTO_V2 {
        b.v2(head.ver1, head.switch)
    } else {
        b
    };
    b.build().ok()
}
