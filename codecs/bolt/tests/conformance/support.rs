//! Shared helpers of the conformance tests.

use bytes::BytesMut;
use strait_codec_bolt::{BoltFrame, decode_frame};
use strait_codec_framework::{CodecError, DecodeError, Frame, Limits};

pub use strait_conformance_fixtures::hex as fx;

/// Decodes `bytes` as exactly one frame.
pub fn decode_one(bytes: &[u8]) -> BoltFrame {
    let mut src = BytesMut::from(bytes);
    match decode_frame(&mut src, Limits::default()) {
        Ok(Some(frame)) => {
            assert!(src.is_empty(), "{} bytes left after the frame", src.len());
            frame
        }
        other => panic!("expected one frame, got {other:?}"),
    }
}

/// Decodes `bytes` and expects a decode error, returning it and the bytes left.
pub fn decode_err(bytes: &[u8]) -> (DecodeError, BytesMut) {
    decode_err_with(bytes, Limits::default())
}

/// As [`decode_err`] with explicit limits.
pub fn decode_err_with(bytes: &[u8], limits: Limits) -> (DecodeError, BytesMut) {
    let mut src = BytesMut::from(bytes);
    match decode_frame(&mut src, limits) {
        Err(e) => (e, src),
        Ok(other) => panic!("expected an error, got {other:?}"),
    }
}

/// Decodes and expects a fatal error.
pub fn fatal(bytes: &[u8]) -> CodecError {
    match decode_err(bytes).0 {
        DecodeError::Fatal(e) => e,
        other => panic!("expected a fatal error, got {other:?}"),
    }
}

/// Decodes and expects need-more with `src` untouched.
pub fn need_more(bytes: &[u8]) {
    let mut src = BytesMut::from(bytes);
    let r = decode_frame(&mut src, Limits::default());
    assert!(matches!(r, Ok(None)), "expected need-more, got {r:?}");
    assert_eq!(&src[..], bytes, "need-more changed the buffer");
}

/// The wire bytes of `frame`.
pub fn encode(frame: &dyn Frame) -> Vec<u8> {
    let mut dst = BytesMut::new();
    frame.encode(&mut dst).expect("encodes");
    dst.to_vec()
}

/// Every header pair, in wire order.
pub fn headers(frame: &dyn Frame) -> Vec<(String, String)> {
    let mut out = Vec::new();
    frame.for_each_header(&mut |k, v| out.push((k.to_string(), v.to_string())));
    out
}

/// Overwrites a big-endian u16 at `off`.
pub fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_be_bytes());
}

/// Overwrites a big-endian u32 at `off`.
pub fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

/// Recomputes the CRC trailer of a v2 CRC frame held in `b`.
pub fn fix_crc(b: &mut [u8]) {
    let n = b.len() - 4;
    let crc = crc32fast::hash(&b[..n]);
    put_u32(b, n, crc);
}

/// A bare v1 frame: fixed header with the given lengths, then `body` (class + header map +
/// content) as given.
pub fn v1_frame(
    cmd_type: u8,
    cmdcode: u16,
    id: u32,
    lens: (u16, u16, u32),
    body: &[u8],
) -> Vec<u8> {
    let mut b = vec![1, cmd_type];
    b.extend_from_slice(&cmdcode.to_be_bytes());
    b.push(1);
    b.extend_from_slice(&id.to_be_bytes());
    b.push(1);
    if cmd_type == 0 {
        b.extend_from_slice(&0u16.to_be_bytes());
    } else {
        b.extend_from_slice(&3000u32.to_be_bytes());
    }
    b.extend_from_slice(&lens.0.to_be_bytes());
    b.extend_from_slice(&lens.1.to_be_bytes());
    b.extend_from_slice(&lens.2.to_be_bytes());
    b.extend_from_slice(body);
    b
}

/// A header-map string: i32 length then bytes.
pub fn hs(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

/// A v1 request (type 1, cmdcode 1, id 9) whose header section is `map` and content "c".
pub fn v1_request_with_map(cmd_type: u8, map: &[u8]) -> Vec<u8> {
    let mut body = map.to_vec();
    body.push(b'c');
    v1_frame(cmd_type, 1, 9, (0, map.len() as u16, 1), &body)
}
