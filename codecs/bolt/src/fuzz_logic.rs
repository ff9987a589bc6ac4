//! Properties checked on arbitrary input, shared by the fuzz target and the robustness
//! test: decoding never panics, and every frame that decodes re-encodes to bytes that
//! decode to the same frame.
//!
//! A panic is how this module reports a broken property to the fuzzer: its `expect`s and
//! `assert`s are the checks themselves, not error handling.

use bytes::BytesMut;
use strait_codec_framework::{DecodeError, Frame, Limits};

use crate::{BoltFrame, decode_frame};

/// Limit used while fuzzing, small so huge announced lengths are exercised.
const FUZZ_MAX_FRAME: usize = 64 * 1024;

/// Decodes every frame in `data` and checks each one's round trips. Panics (which the
/// fuzzer reports) if a property does not hold. Returns how many frames decoded, so
/// tests can check their inputs reach the interesting paths.
pub fn decode_roundtrip(data: &[u8]) -> usize {
    let mut frames = 0;
    let limits = Limits {
        max_frame_size: FUZZ_MAX_FRAME,
    };
    let mut src = BytesMut::from(data);
    loop {
        let before = src.len();
        match decode_frame(&mut src, limits) {
            Ok(Some(frame)) => {
                assert!(src.len() < before, "a frame consumed no bytes");
                check_frame(frame, limits);
                frames += 1;
            }
            Ok(None) => {
                assert_eq!(src.len(), before, "need-more consumed bytes");
                return frames;
            }
            Err(DecodeError::Rejected { reply, .. }) => {
                assert!(src.len() < before, "a rejected frame was not consumed");
                if let Some(reply) = reply {
                    let mut out = BytesMut::new();
                    reply.encode(&mut out).expect("replies encode");
                    decode_exact(&out, limits);
                }
            }
            Err(DecodeError::Fatal(_)) => return frames,
        }
    }
}

/// Re-encodes `frame` unchanged, with a new id, and with a header change.
fn check_frame(mut frame: BoltFrame, limits: Limits) {
    let mut out = BytesMut::new();
    frame.encode(&mut out).expect("an unmodified frame encodes");
    assert_eq!(
        &out[..],
        &frame.raw_bytes()[..],
        "unmodified re-encode differs"
    );

    frame.for_each_header(&mut |_, _| {});
    let _ = (
        frame.variable("service"),
        frame.variable("method"),
        frame.body(),
    );

    let new_id = frame.request_id() as u32 ^ 0x5a5a_5a5a;
    frame.set_request_id(u64::from(new_id));
    let again = encode_and_decode(&frame, limits);
    assert_eq!(again.request_id(), u64::from(new_id));
    assert_eq!(again.kind(), frame.kind());
    assert_eq!(again.body(), frame.body());

    frame.set_header("x-fuzz", "é1");
    let removed = frame.remove_header("service");
    let mut out = BytesMut::new();
    // Growing the map may exceed headerLen's range: an error is fine, a panic is not.
    if frame.encode(&mut out).is_ok() {
        let again = decode_exact(&out, limits);
        assert_eq!(again.header("x-fuzz"), Some("é1"));
        if removed {
            assert_eq!(again.header("service"), None);
        }
        assert_eq!(again.body(), frame.body());
    }
}

fn encode_and_decode(frame: &BoltFrame, limits: Limits) -> BoltFrame {
    let mut out = BytesMut::new();
    frame.encode(&mut out).expect("an id patch encodes");
    decode_exact(&out, limits)
}

/// Decodes `bytes` as exactly one valid frame. Limits are relaxed by the header growth a
/// test may add.
fn decode_exact(bytes: &[u8], limits: Limits) -> BoltFrame {
    let limits = Limits {
        max_frame_size: limits.max_frame_size + 0x10000,
    };
    let mut src = BytesMut::from(bytes);
    match decode_frame(&mut src, limits) {
        Ok(Some(frame)) if src.is_empty() => frame,
        other => panic!("re-encoded bytes do not decode to one frame: {other:?}"),
    }
}
