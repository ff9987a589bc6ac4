//! Properties checked on arbitrary input, shared by the fuzz targets and the robustness
//! test: decoding and metadata reads never panic, and every frame that decodes re-encodes
//! (unchanged, with a new id, with an edited attachment) to bytes that decode back to the
//! same frame.
//!
//! A panic is how this module reports a broken property to the fuzzer: its `expect`s and
//! `assert`s are the checks themselves, not error handling.

use bytes::BytesMut;
use strait_codec_framework::{DecodeError, Frame, Limits};

use crate::hessian2::{self, Reader};
use crate::{DubboFrame, decode_frame};

/// Limit used while fuzzing, small so huge announced lengths are exercised.
const FUZZ_MAX_FRAME: usize = 64 * 1024;

/// Decodes every frame in `data` and checks each one's round trips. Returns how many
/// frames decoded, so tests can check their inputs reach the interesting paths.
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
                check_frame(frame);
                frames += 1;
            }
            Ok(None) => {
                assert_eq!(src.len(), before, "need-more consumed bytes");
                assert_eq!(
                    &src[..],
                    &data[data.len() - before..],
                    "need-more changed bytes"
                );
                return frames;
            }
            Err(DecodeError::Rejected { .. }) => panic!("dubbo never rejects a single frame"),
            Err(DecodeError::Fatal(_)) => return frames,
        }
    }
}

/// Reads every view of `frame`, re-encodes it unchanged, with a new id, and with an
/// attachment set and one removed.
fn check_frame(mut frame: DubboFrame) {
    if frame.is_request() && !frame.is_event() {
        // The fast reading of a request, where it accepts the body, is the general one.
        if let (Some(fast), general) = crate::metadata::parse_request_both(frame.body_slice()) {
            assert_eq!(Ok(fast), general, "fast and general metadata differ");
        }
    }
    let mut out = BytesMut::new();
    frame.encode(&mut out).expect("an unmodified frame encodes");
    assert_eq!(
        &out[..],
        &frame.raw_bytes()[..],
        "unmodified re-encode differs"
    );

    let kind = frame.kind();
    let _ = (
        frame.variable("service"),
        frame.variable("method"),
        frame.variable("version"),
        frame.variable("group"),
        frame.timeout(),
        frame.metadata_unreadable(),
        frame.arguments(),
        frame.response_value(),
        frame.error_message(),
        frame.result_flag(),
    );
    let headers: Vec<(String, String)> = frame
        .attachments()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, _) in &headers {
        // The last entry of a key wins (Java's HashMap): the last listed string value,
        // or nothing when a later entry with that key holds a non-string.
        let last = headers
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str());
        let got = frame.header(k);
        assert!(
            got.is_none() || got == last,
            "attachment {k:?}: {got:?} vs {last:?}"
        );
    }

    let new_id = frame.request_id() ^ 0x5a5a_5a5a_5a5a_5a5a;
    frame.set_request_id(new_id);
    let again = reencode(&frame).expect("an id patch encodes");
    assert_eq!(again.request_id(), new_id);
    assert_eq!(again.kind(), kind);
    assert_eq!(again.body(), frame.body());

    let body = frame.body();
    // A pinned "path" entry (one holding a list, map or object) cannot be removed.
    let editable = frame
        .attachments_ref()
        .is_some_and(|a| !a.pins(&body, "path"));
    frame.set_header("x-fuzz", "é1😀");
    let removed = frame.remove_header("path");
    match reencode(&frame) {
        Ok(again) => {
            assert!(editable, "an edit on a frame without attachments encoded");
            assert_eq!(again.header("x-fuzz"), Some("é1😀"));
            if removed {
                assert_eq!(again.header("path"), None);
            }
            assert_eq!(again.kind(), kind);
            assert_eq!(again.metadata_error(), None);
            let span = frame.attachments_ref().map(|a| a.span.start).unwrap_or(0);
            assert_eq!(
                &again.body()[..span],
                &frame.body()[..span],
                "bytes before the map changed"
            );
        }
        Err(_) => assert!(!editable, "an editable frame failed to encode"),
    }
}

fn reencode(frame: &DubboFrame) -> Result<DubboFrame, strait_codec_framework::CodecError> {
    let mut out = BytesMut::new();
    frame.encode(&mut out)?;
    Ok(DubboFrame::from_bytes(out.freeze()).expect("re-encoded bytes are one frame"))
}

/// Reads `data` as a stream of Hessian values with every reader method in turn, checking
/// that nothing panics, the position only moves forward and stays in bounds, and that a
/// string read back through the writer reads the same. Returns how many values were read.
pub fn hessian_read(data: &[u8]) -> usize {
    let mut r = Reader::new(data);
    let mut values = 0;
    while !r.is_at_end() {
        let before = r.position();
        // Try a typed read on a copy (keeping the class table); fall back to a skip.
        let mut attempt = r.clone();
        let ok = match values % 6 {
            0 => match attempt.read_string() {
                Ok(s) => {
                    let mut out = BytesMut::new();
                    hessian2::writer::write_string(&mut out, s.as_str());
                    let back = Reader::new(&out)
                        .read_string()
                        .expect("written strings read");
                    assert_eq!(back.as_str(), s.as_str(), "string writer round trip");
                    true
                }
                Err(_) => false,
            },
            1 => attempt.read_string_map().is_ok(),
            2 => attempt.read_long().is_ok(),
            3 => attempt.read_string_list().is_ok(),
            4 => attempt.read_double().is_ok() || attempt.read_bool().is_ok(),
            _ => attempt.read_int().is_ok() || attempt.read_null().is_ok(),
        };
        assert!(attempt.position() <= data.len(), "position past the end");
        if ok {
            r = attempt;
        } else if r.skip_value().is_err() {
            break;
        }
        assert!(r.position() > before, "a value consumed no bytes");
        values += 1;
    }
    values
}
