//! `wire-formats.md` §6.2: Dubbo codec cases D1-D16 (frames and framing), and §6.3
//! detection cases A3 and A7.

use std::time::Duration;

use bytes::BytesMut;
use strait_codec_dubbo::{DubboFrame, decode_frame, detect, protocol};
use strait_codec_framework::{CodecError, Detect, Frame, FrameKind, Limits, ProxyFailure};

use crate::support::*;

const DEMO: &str = "org.apache.dubbo.demo.DemoService";

#[test]
fn d01_two_way_request() {
    let f = decode_one(&fx("dubbo_request_twoway"));
    assert_eq!(f.flag(), 0xc2);
    assert!(f.is_request() && f.is_two_way() && !f.is_event());
    assert_eq!((f.serialization_id(), f.request_id()), (2, 1));
    assert_eq!(f.kind(), FrameKind::Request);
    assert_eq!(f.variable("service").as_deref(), Some(DEMO));
    assert_eq!(f.variable("version").as_deref(), Some("1.0.0"));
    assert_eq!(f.variable("method").as_deref(), Some("sayHello"));
    assert_eq!(f.variable("group").as_deref(), Some("g1"));
    assert_eq!(f.variable("path").as_deref(), Some(DEMO));
    assert_eq!(f.variable("protocol").as_deref(), Some("dubbo"));
    assert_eq!(f.variable("host"), None);
    assert_eq!(f.timeout(), Some(Duration::from_millis(3000)));
    assert_eq!(f.status(), None);
}

#[test]
fn d02_oneway_request_never_gets_an_answer() {
    let f = decode_one(&fx("dubbo_request_oneway"));
    assert_eq!((f.flag(), f.request_id()), (0x82, 2));
    assert!(f.is_request() && !f.is_two_way());
    assert_eq!(f.kind(), FrameKind::Oneway);
    assert_eq!(f.variable("service").as_deref(), Some(DEMO));
    let p = protocol();
    for failure in [
        ProxyFailure::NoRoute,
        ProxyFailure::Timeout,
        ProxyFailure::CodecError,
        ProxyFailure::Overflow,
    ] {
        assert!(p.error_response(&f, failure).is_none(), "{failure}");
    }
    assert!(p.direct_response(&f, 20, Some("x")).is_none());
    assert!(p.heartbeat_reply(&f).is_none());
}

#[test]
fn d03_object_argument_and_class_definition_are_skipped() {
    let f = decode_one(&fx("dubbo_request_object_arg"));
    assert_eq!((f.request_id(), f.kind()), (5, FrameKind::Request));
    assert_eq!(f.parameter_types(), Some("Lorg/apache/dubbo/demo/User;J"));
    assert_eq!(f.variable("group").as_deref(), Some("g2"));
    assert_eq!(f.timeout(), Some(Duration::from_millis(500)));
    assert_eq!(
        f.variable("service").as_deref(),
        Some("org.apache.dubbo.demo.UserService")
    );
    assert_eq!(f.arguments().map(|a| a.len()), Some(78));
}

#[test]
fn d05_response_value_with_attachments() {
    let f = decode_one(&fx("dubbo_response_ok_value_with_attachments"));
    assert_eq!(f.kind(), FrameKind::Response);
    assert_eq!((f.status(), f.result_flag()), (Some(20), Some(4)));
    assert_eq!(f.response_value(), Some("Hello world"));
    assert_eq!(f.header("dubbo"), Some("2.0.2"));
    assert_eq!(headers(&f), pairs(&[("dubbo", "2.0.2")]));
    assert_eq!(f.error_message(), None);
    assert_eq!(f.timeout(), None);
}

#[test]
fn d06_response_flags_one_and_five_and_unknown_flags() {
    let v = decode_one(&fx("dubbo_response_ok_value"));
    assert_eq!(
        (v.result_flag(), v.response_value()),
        (Some(1), Some("Hello world"))
    );
    assert_eq!(headers(&v), []);
    let n = decode_one(&fx("dubbo_response_ok_null_with_attachments"));
    assert_eq!((n.result_flag(), n.response_value()), (Some(5), None));
    assert_eq!(n.header("dubbo"), Some("2.0.2"));
    // Flag 0 with an exception object, flag 3 with one and attachments.
    let exc = [
        0x90, 0x43, 0x01, b'E', 0x91, 0x01, b'm', 0x60, 0x02, b'h', b'i',
    ];
    let f = decode_one(&frame(0x02, 20, 3, &exc));
    assert_eq!((f.result_flag(), f.response_value()), (Some(0), None));
    assert_eq!(f.metadata_error(), None);
    let mut exc3 = exc.to_vec();
    exc3[0] = 0x93;
    exc3.extend(hmap(&[("k", "v")]));
    let f = decode_one(&frame(0x02, 20, 3, &exc3));
    assert_eq!((f.result_flag(), f.header("k")), (Some(3), Some("v")));
    // A non-string value is skipped, the attachments after it still read.
    let mut val = vec![0x94, 0xd5, 0x00, 0x01];
    val.extend(hmap(&[("dubbo", "2.0.2")]));
    let f = decode_one(&frame(0x02, 20, 3, &val));
    assert_eq!(
        (f.response_value(), f.header("dubbo")),
        (None, Some("2.0.2"))
    );
    // Java: "Unknown result flag". The frame still forwards unchanged.
    for flag in [0x96u8, 0x8f, 0xbf] {
        let bytes = frame(0x02, 20, 3, &[flag]);
        let f = decode_one(&bytes);
        assert_eq!(
            f.metadata_error().map(ToString::to_string),
            Some(format!("unknown result flag {}", i32::from(flag) - 0x90))
        );
        assert_eq!((f.result_flag(), f.kind()), (None, FrameKind::Response));
        assert!(!f.metadata_unreadable(), "only requests need metadata");
        assert_eq!(encode(&f), bytes);
    }
}

#[test]
fn d07_error_response_body_is_one_string() {
    let f = decode_one(&fx("dubbo_response_service_not_found"));
    assert_eq!(f.status(), Some(60));
    assert_eq!(f.error_message(), Some("404|router unavailable"));
    assert_eq!((f.result_flag(), f.response_value()), (None, None));
    // Status 90 (CLIENT_ERROR) with a medium-length message.
    let msg = "x".repeat(40);
    let f = decode_one(&frame(0x02, 90, 9, &hs(&msg)));
    assert_eq!(
        (f.status(), f.error_message()),
        (Some(90), Some(msg.as_str()))
    );
    // A null message.
    let f = decode_one(&frame(0x02, 70, 9, b"N"));
    assert_eq!((f.error_message(), f.metadata_error()), (None, None));
}

#[test]
fn d08_heartbeat_is_answered_with_the_response_fixture() {
    let f = decode_one(&fx("dubbo_heartbeat_request"));
    assert_eq!(f.kind(), FrameKind::Heartbeat);
    assert!(f.is_event() && f.is_two_way());
    assert_eq!(&f.body()[..], &[0x4e]);
    let reply = protocol().heartbeat_reply(&f).expect("answered");
    assert_eq!(reply.kind(), FrameKind::HeartbeatAck);
    assert_eq!(encode(reply.as_ref()), fx("dubbo_heartbeat_response"));
    let ack = decode_one(&fx("dubbo_heartbeat_response"));
    assert_eq!(
        (ack.kind(), ack.status(), ack.request_id()),
        (FrameKind::HeartbeatAck, Some(20), 7)
    );
}

#[test]
fn d09_oneway_heartbeat_is_not_answered() {
    let mut bytes = fx("dubbo_heartbeat_request");
    bytes[2] = 0xa2;
    let f = decode_one(&bytes);
    assert_eq!(f.kind(), FrameKind::Heartbeat);
    assert!(!f.is_two_way());
    assert!(protocol().heartbeat_reply(&f).is_none());
    assert!(
        protocol()
            .error_response(&f, ProxyFailure::NoRoute)
            .is_none()
    );
}

#[test]
fn d10_readonly_event_is_go_away_not_heartbeat() {
    let f = decode_one(&fx("dubbo_readonly_event_request"));
    assert_eq!(f.kind(), FrameKind::GoAway);
    assert!(f.is_readonly_event() && f.is_event());
    assert_eq!(&f.body()[..], &[0x01, b'R']);
    assert!(protocol().heartbeat_reply(&f).is_none());
    assert!(
        protocol()
            .error_response(&f, ProxyFailure::NoRoute)
            .is_none()
    );
    assert!(!f.metadata_unreadable());
    assert_eq!(f.variable("service"), None);
    assert_eq!(f.header("path"), None);
    assert_eq!(encode(&f), fx("dubbo_readonly_event_request"));
}

#[test]
fn d11_long_event_body_passes_through_unparsed() {
    let mut body = vec![0x10];
    body.extend_from_slice(b"0123456789abcdef");
    let bytes = frame(0xe2, 0, 4, &body);
    let f = decode_one(&bytes);
    assert_eq!(f.kind(), FrameKind::GoAway);
    assert_eq!((f.metadata_error(), f.metadata_unreadable()), (None, false));
    assert_eq!(f.service_path(), None);
    assert_eq!(encode(&f), bytes);
}

#[test]
fn d12_bad_magic_closes() {
    assert_eq!(fatal(&[0x00; 16]), CodecError::BadMagic(0x00));
    let mut b = fx("dubbo_request_twoway");
    b[1] = 0x00;
    assert_eq!(fatal(&b), CodecError::BadMagic(0x00));
    let mut b = fx("dubbo_request_twoway");
    b[0] = 0x00;
    assert_eq!(fatal(&b), CodecError::BadMagic(0x00));
    // Refused as soon as the first bytes arrive, not after 16.
    assert_eq!(fatal(&[0x00]), CodecError::BadMagic(0x00));
    assert_eq!(fatal(&[0xda, 0x00]), CodecError::BadMagic(0x00));
    assert_eq!(fatal(b"ls\r\n"), CodecError::BadMagic(b'l'));
}

#[test]
fn d13_garbage_before_magic_closes() {
    let mut b = vec![0x00, 0x00];
    b.extend(fx("dubbo_request_twoway"));
    assert_eq!(fatal(&b), CodecError::BadMagic(0x00));
}

#[test]
fn d14_header_need_more() {
    let b = fx("dubbo_request_twoway");
    need_more(&b[..11]);
    for n in 0..16 {
        need_more(&b[..n]);
    }
}

#[test]
fn d15_body_need_more() {
    let mut b = frame(0xc2, 0, 1, &[0x05, b'2']);
    b[12..16].copy_from_slice(&0x0101u32.to_be_bytes());
    need_more(&b);
    let mut src = BytesMut::from(&b[..]);
    assert!(matches!(
        decode_frame(&mut src, Limits::default()),
        Ok(None)
    ));
    assert!(
        src.capacity() >= 16 + 0x0101,
        "reserves the announced frame"
    );
    // A huge announced length reserves at most 64 KiB ahead.
    let mut b = frame(0xc2, 0, 1, &[0x05]);
    b[12..16].copy_from_slice(&(15u32 << 20).to_be_bytes());
    let mut src = BytesMut::from(&b[..]);
    assert!(matches!(
        decode_frame(&mut src, Limits::default()),
        Ok(None)
    ));
    assert!(src.capacity() >= 17 + 64 * 1024);
    assert!(src.capacity() < 1 << 20, "{}", src.capacity());
}

/// Feeds `bytes` split at every point, and one byte at a time: exactly one frame comes
/// out, after the last byte.
fn split_everywhere(bytes: &[u8]) {
    let whole = decode_one(bytes);
    for cut in 1..bytes.len() {
        let mut codec = protocol().new_codec(Limits::default());
        let mut src = BytesMut::from(&bytes[..cut]);
        assert!(
            codec.decode(&mut src).expect("no error").is_none(),
            "cut {cut}"
        );
        assert_eq!(src.len(), cut);
        src.extend_from_slice(&bytes[cut..]);
        let f = codec.decode(&mut src).expect("no error").expect("a frame");
        assert!(src.is_empty());
        assert_eq!(encode(f.as_ref()), bytes);
        assert_eq!(f.kind(), whole.kind());
    }
    let mut codec = protocol().new_codec(Limits::default());
    let mut src = BytesMut::new();
    let mut out = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        src.extend_from_slice(&[*b]);
        if let Some(f) = codec.decode(&mut src).expect("no error") {
            out.push((i, f));
        }
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, bytes.len() - 1);
}

#[test]
fn d16_split_at_every_byte() {
    for name in [
        "dubbo_request_twoway",
        "dubbo_response_ok_value_with_attachments",
        "dubbo_heartbeat_request",
        "dubbo_request_object_arg",
    ] {
        split_everywhere(&fx(name));
    }
}

#[test]
fn d16_ten_requests_and_ten_responses_in_one_buffer() {
    let mut src = BytesMut::new();
    let mut want = Vec::new();
    for i in 0..10u64 {
        let req = DubboFrame::request(DEMO, "sayHello")
            .id(100 + i)
            .string_argument(&format!("world {i}"))
            .attachment("timeout", "1000")
            .build()
            .unwrap();
        src.extend_from_slice(&encode(&req));
        want.push((FrameKind::Request, 100 + i));
    }
    for i in 0..10u64 {
        let res = DubboFrame::response(100 + i)
            .value(&format!("hello {i}"))
            .build()
            .unwrap();
        src.extend_from_slice(&encode(&res));
        want.push((FrameKind::Response, 100 + i));
    }
    let half = fx("dubbo_request_twoway");
    src.extend_from_slice(&half[..100]);
    let mut codec = protocol().new_codec(Limits::default());
    let mut got = Vec::new();
    let mut values = Vec::new();
    while let Some(f) = codec.decode(&mut src).expect("decodes") {
        got.push((f.kind(), f.request_id()));
        let d = f.as_any().downcast_ref::<DubboFrame>().unwrap();
        values.push(d.response_value().or(d.method()).map(str::to_string));
    }
    assert_eq!(got, want);
    assert_eq!(values[0].as_deref(), Some("sayHello"));
    assert_eq!(values[19].as_deref(), Some("hello 9"));
    assert_eq!(&src[..], &half[..100], "the partial frame waits");
}

#[test]
fn a03_magic_split_across_reads() {
    assert_eq!(detect(&[]), Detect::NeedMore);
    assert_eq!(detect(&[0xda]), Detect::NeedMore);
    assert_eq!(detect(&[0xda, 0xbb]), Detect::Match);
    assert_eq!(protocol().detect(&[0xda]), Detect::NeedMore);
    assert_eq!(protocol().detect(&[0xda, 0xbb]), Detect::Match);
}

#[test]
fn a07_unknown_prefix() {
    assert_eq!(detect(&[0xff, 0, 0, 0, 0, 0, 0, 0]), Detect::NoMatch);
    assert_eq!(detect(&[0xda, 0xbc]), Detect::NoMatch);
    assert_eq!(detect(b"PRI * HTTP/2.0"), Detect::NoMatch);
}
