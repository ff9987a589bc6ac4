//! `wire-formats.md` §6.1: Bolt codec cases B15-B29 (sections, limits, bad input), one
//! test each.

use bytes::BytesMut;
use strait_codec_bolt::{BoltFrame, decode_frame, status};
use strait_codec_framework::{CodecError, DecodeError, Frame, FrameKind, Limits};

use crate::support::*;

const REQ: &str = "bolt_v1_request_hessian2";
const SERVICE: &str = "com.alipay.test.TestService:1.0";

#[test]
fn b15_zero_length_sections() {
    let bytes = v1_frame(1, 1, 5, (0, 0, 0), &[]);
    assert_eq!(bytes.len(), 22);
    let f = decode_one(&bytes);
    assert_eq!(f.kind(), FrameKind::Request);
    assert!(f.class_name().is_empty() && f.body().is_empty());
    assert_eq!(headers(&f), vec![]);
    assert_eq!(encode(&f), bytes);
}

#[test]
fn b16_zero_content_response() {
    let bytes = v1_frame(0, 2, 5, (0, 0, 0), &[]);
    assert_eq!(bytes.len(), 20);
    let f = decode_one(&bytes);
    assert_eq!((f.status(), f.body().len()), (Some(0), 0));
}

#[test]
fn b17_max_class_and_header() {
    // One pair filling exactly 0x7fff bytes: 4 + 1 + 4 + 32758.
    let mut map = hs(b"k");
    map.extend(hs(&vec![b'v'; 0x7fff - 9]));
    assert_eq!(map.len(), 0x7fff);
    let mut body = vec![b'C'; 0x7fff];
    body.extend_from_slice(&map);
    let bytes = v1_frame(1, 1, 1, (0x7fff, 0x7fff, 0), &body);
    let f = decode_one(&bytes);
    assert_eq!((f.class_name().len(), f.header_len()), (0x7fff, 0x7fff));
    assert_eq!(f.header("k").map(str::len), Some(0x7fff - 9));
    for (class_len, header_len) in [(0x8000, 0), (0xffff, 0), (0, 0x8000), (0, 0xffff)] {
        let head = v1_frame(1, 1, 1, (class_len, header_len, 0), &[]);
        let field = if class_len > 0 {
            "classLen"
        } else {
            "headerLen"
        };
        assert_eq!(
            fatal(&head),
            CodecError::BadLength {
                field,
                value: i64::from(class_len.max(header_len))
            }
        );
    }
}

#[test]
fn b18_oversize_content_rejected_before_buffering() {
    let head = v1_frame(1, 1, 1, (0, 0, 0x8000_0000), &[]);
    let (err, src) = decode_err(&head);
    assert!(matches!(
        err,
        DecodeError::Fatal(CodecError::BadLength {
            field: "contentLen",
            ..
        })
    ));
    assert!(src.capacity() < 4096, "buffered for a rejected frame");
    let limits = Limits {
        max_frame_size: 1000,
    };
    let head = v1_frame(1, 1, 1, (0, 0, 1000 - 22 + 1), &[]);
    let (err, src) = decode_err_with(&head, limits);
    assert!(matches!(
        err,
        DecodeError::Fatal(CodecError::FrameTooLarge {
            len: 1001,
            max: 1000
        })
    ));
    assert!(src.capacity() < 4096);
    // Exactly at the limit: waits for the body.
    let head = v1_frame(1, 1, 1, (0, 0, 1000 - 22), &[]);
    let mut src = BytesMut::from(&head[..]);
    assert!(decode_frame(&mut src, limits).expect("ok").is_none());
}

#[test]
fn b19_bad_protocol_byte() {
    let mut bytes = fx(REQ);
    bytes[0] = 0x0d;
    let (err, src) = decode_err(&bytes);
    assert!(matches!(
        err,
        DecodeError::Fatal(CodecError::BadMagic(0x0d))
    ));
    assert_eq!(&src[..], &bytes[..], "reader index moved");
    assert!(matches!(fatal(&[0x0d]), CodecError::BadMagic(0x0d)));
    assert!(matches!(fatal(&[2, 9]), CodecError::BadMagic(9)));
}

#[test]
fn b20_unknown_type() {
    let mut bytes = fx(REQ);
    bytes[1] = 3;
    assert_eq!(fatal(&bytes), CodecError::UnknownType(3));
    assert_eq!(fatal(&[1, 3]), CodecError::UnknownType(3));
}

#[test]
fn b21_unknown_cmdcode() {
    let mut bytes = fx(REQ);
    put_u16(&mut bytes, 2, 7);
    assert_eq!(fatal(&bytes), CodecError::UnknownType(7));
    assert_eq!(fatal(&bytes[..4]), CodecError::UnknownType(7));
}

#[test]
fn b22_unknown_status_forwarded_untouched() {
    let mut bytes = fx("bolt_v1_response_success");
    put_u16(&mut bytes, 10, 0x0013);
    let f = decode_one(&bytes);
    assert_eq!(f.status(), Some(0x13));
    assert!(!status::is_known(0x13));
    assert_eq!(encode(&f), bytes);
}

#[test]
fn b23_header_map_good() {
    let mut map = hs(b"app");
    map.extend(hs(b"x"));
    map.extend([0; 8]);
    let f = decode_one(&v1_request_with_map(1, &map));
    assert_eq!(f.header("app"), Some("x"));
    assert_eq!(f.header(""), Some(""));
    assert_eq!(
        headers(&f),
        vec![("app".into(), "x".into()), (String::new(), String::new())]
    );
}

#[test]
fn b24_header_map_null_value_dropped_aligned() {
    let mut map = hs(b"key1");
    map.extend([0xff; 4]);
    map.extend(hs(b"key2"));
    map.extend(hs(b"val2"));
    let bytes = v1_request_with_map(1, &map);
    let f = decode_one(&bytes);
    assert_eq!(f.header("key1"), None);
    assert_eq!(f.header("key2"), Some("val2"));
    assert_eq!(headers(&f), vec![("key2".into(), "val2".into())]);
    assert_eq!(&f.body()[..], b"c");
    assert_eq!(encode(&f), bytes);
}

fn assert_rejected_with_codec_exception(bytes: &[u8]) {
    let mut src = BytesMut::from(bytes);
    src.extend_from_slice(&fx("bolt_v1_heartbeat"));
    match decode_frame(&mut src, Limits::default()) {
        Err(DecodeError::Rejected {
            error:
                CodecError::Malformed {
                    section: "header map",
                    ..
                },
            reply: Some(reply),
        }) => {
            assert_eq!(reply.kind(), FrameKind::Response);
            assert_eq!(reply.status(), Some(9));
            assert_eq!(reply.request_id(), 9);
            assert_eq!(encode(reply.as_ref()).len(), 20);
        }
        other => panic!("expected a rejection with a reply, got {other:?}"),
    }
    // The frame was consumed and the connection still works.
    let next = decode_frame(&mut src, Limits::default())
        .expect("ok")
        .expect("frame");
    assert_eq!(next.kind(), FrameKind::Heartbeat);
}

#[test]
fn b25_header_map_truncated() {
    let mut map = hs(b"key");
    map.extend_from_slice(&[0, 0, 0, 9, b'v', b'a', b'l']);
    assert_rejected_with_codec_exception(&v1_request_with_map(1, &map));
    // Oneway: rejected, consumed, no reply.
    let (err, src) = decode_err(&v1_request_with_map(2, &map));
    assert!(matches!(err, DecodeError::Rejected { reply: None, .. }));
    assert!(src.is_empty());
    // Response: the stream cannot be trusted.
    let mut body = map.clone();
    body.push(b'c');
    let resp = v1_frame(0, 2, 9, (0, map.len() as u16, 1), &body);
    assert!(matches!(
        decode_err(&resp).0,
        DecodeError::Fatal(CodecError::Malformed { .. })
    ));
}

#[test]
fn b26_header_map_trailing_bytes() {
    for extra in 1..=3 {
        let mut map = hs(b"k");
        map.extend(hs(b"v"));
        map.extend(std::iter::repeat_n(0u8, extra));
        assert_rejected_with_codec_exception(&v1_request_with_map(1, &map));
    }
}

#[test]
fn b27_non_ascii_header_value() {
    let f = BoltFrame::builder(FrameKind::Request)
        .request_id(4)
        .header("名字", "値✓")
        .build()
        .expect("builds");
    let bytes = encode(&f);
    // Lengths count bytes: "名字" is 6 bytes, "値✓" is 6 bytes.
    assert_eq!(f.header_len(), 4 + 6 + 4 + 6);
    assert_eq!(&bytes[22..26], &6u32.to_be_bytes());
    let back = decode_one(&bytes);
    assert_eq!(back.header("名字"), Some("値✓"));
    let mut edit = back;
    edit.set_header("ключ", "значение");
    let again = decode_one(&encode(&edit));
    assert_eq!(again.header("ключ"), Some("значение"));
    assert_eq!(again.header("名字"), Some("値✓"));
}

#[test]
fn b28_goaway_rejected() {
    let bytes = v1_frame(1, 100, 1, (0, 0, 0), &[]);
    assert_eq!(fatal(&bytes), CodecError::UnknownType(100));
    assert!(BoltFrame::builder(FrameKind::GoAway).build().is_err());
}

#[test]
fn b29_hessian4_content_framing_unaffected() {
    let bytes = fx("bolt_v1_request_hessian4dialect");
    let f = decode_one(&bytes);
    assert_eq!(f.body().len(), 202);
    assert_eq!(f.header("service"), Some(SERVICE));
    assert_eq!(encode(&f), bytes);
}
