//! Shared helpers of the conformance tests.

#![allow(dead_code)]

use bytes::BytesMut;
use strait_codec_dubbo::{DubboFrame, decode_frame};
use strait_codec_framework::{CodecError, DecodeError, Frame, Limits};

pub use strait_conformance_fixtures::hex as fx;

/// Decodes `bytes` as exactly one frame.
pub fn decode_one(bytes: &[u8]) -> DubboFrame {
    let mut src = BytesMut::from(bytes);
    match decode_frame(&mut src, Limits::default()) {
        Ok(Some(frame)) => {
            assert!(src.is_empty(), "{} bytes left after the frame", src.len());
            frame
        }
        other => panic!("expected one frame, got {other:?}"),
    }
}

/// Decodes and expects a fatal error, with explicit limits.
pub fn fatal_with(bytes: &[u8], limits: Limits) -> CodecError {
    let mut src = BytesMut::from(bytes);
    match decode_frame(&mut src, limits) {
        Err(DecodeError::Fatal(e)) => e,
        other => panic!("expected a fatal error, got {other:?}"),
    }
}

/// Decodes and expects a fatal error.
pub fn fatal(bytes: &[u8]) -> CodecError {
    fatal_with(bytes, Limits::default())
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

/// Every attachment pair, in wire order, through the `Frame` view.
pub fn headers(frame: &dyn Frame) -> Vec<(String, String)> {
    let mut out = Vec::new();
    frame.for_each_header(&mut |k, v| out.push((k.to_string(), v.to_string())));
    out
}

/// Owned copies of a `(key, value)` table.
pub fn pairs(table: &[(&str, &str)]) -> Vec<(String, String)> {
    table
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A 16-byte header followed by `body`.
pub fn frame(flag: u8, status: u8, id: u64, body: &[u8]) -> Vec<u8> {
    let mut b = vec![0xda, 0xbb, flag, status];
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&(body.len() as u32).to_be_bytes());
    b.extend_from_slice(body);
    b
}

/// A hessian2 short/medium string (tests only use strings under 1024 units).
pub fn hs(s: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    strait_codec_dubbo::hessian2::writer::write_string(&mut out, s);
    out.to_vec()
}

/// A request body: the five fields, `args` as given, then `attachments` as given.
pub fn request_body(
    path: &str,
    version: Option<&str>,
    method: &str,
    desc: &str,
    args: &[u8],
    attachments: &[u8],
) -> Vec<u8> {
    let mut b = hs("2.0.2");
    b.extend(hs(path));
    match version {
        Some(v) => b.extend(hs(v)),
        None => b.push(b'N'),
    }
    b.extend(hs(method));
    b.extend(hs(desc));
    b.extend_from_slice(args);
    b.extend_from_slice(attachments);
    b
}

/// An untyped `H … Z` map of strings.
pub fn hmap(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = vec![b'H'];
    for (k, v) in entries {
        b.extend(hs(k));
        b.extend(hs(v));
    }
    b.push(b'Z');
    b
}
