//! `wire-formats.md` §6.1: Bolt codec cases B1-B14 (framing), one test each.

use std::time::Duration;

use bytes::BytesMut;
use strait_codec_bolt::{BoltFrame, decode_frame, protocol, status};
use strait_codec_framework::{CodecError, Frame, FrameKind, Limits, ProxyFailure};

use crate::support::*;

const REQ: &str = "bolt_v1_request_hessian2";
const SERVICE: &str = "com.alipay.test.TestService:1.0";

#[test]
fn b01_v1_request_round_trip() {
    let bytes = fx(REQ);
    let f = decode_one(&bytes);
    assert_eq!(
        (f.cmd_type(), f.cmdcode(), f.request_id(), f.codec()),
        (1, 1, 1, 1)
    );
    assert_eq!(f.kind(), FrameKind::Request);
    assert_eq!(f.timeout(), Some(Duration::from_millis(3000)));
    assert_eq!(
        f.class_name(),
        b"com.alipay.sofa.rpc.core.request.SofaRequest"
    );
    assert_eq!(
        headers(&f),
        vec![("service".to_string(), SERVICE.to_string())]
    );
    assert_eq!(f.variable("service").as_deref(), Some(SERVICE));
    assert_eq!(f.variable("protocol").as_deref(), Some("bolt"));
    assert_eq!(f.body().len(), 207);
    assert_eq!(&f.body()[..], &bytes[22 + 44 + 46..]);
    assert_eq!(encode(&f), bytes);
}

#[test]
fn b02_v1_oneway() {
    let f = decode_one(&fx("bolt_v1_request_oneway"));
    assert_eq!(f.cmd_type(), 2);
    assert_eq!(f.kind(), FrameKind::Oneway);
    assert_eq!(f.request_id(), 2);
    assert!(f.kind().is_request());
    assert!(
        protocol()
            .error_response(&f, ProxyFailure::NoRoute)
            .is_none()
    );
}

#[test]
fn b03_v1_success_response() {
    let bytes = fx("bolt_v1_response_success");
    let f = decode_one(&bytes);
    assert_eq!((f.cmd_type(), f.cmdcode(), f.status()), (0, 2, Some(0)));
    assert_eq!(f.kind(), FrameKind::Response);
    assert_eq!(f.timeout(), None);
    // 20-byte fixed part: class starts at offset 20.
    assert_eq!(&bytes[20..20 + 46], f.class_name());
    assert_eq!(bytes.len(), 20 + 46 + 98);
}

#[test]
fn b04_v1_error_response_with_body() {
    let f = decode_one(&fx("suite_sofa_bolt_node_v1_rpc_server_exception"));
    assert_eq!(f.status(), Some(u32::from(status::SERVER_EXCEPTION)));
    assert_eq!(
        f.class_name(),
        b"com.alipay.remoting.rpc.exception.RpcServerException"
    );
    assert_eq!(f.class_name().len(), 52);
    assert_eq!(f.body().len(), 1121);
}

#[test]
fn b05_heartbeat_and_ack() {
    let hb = fx("bolt_v1_heartbeat");
    let ack = fx("bolt_v1_heartbeat_ack");
    assert_eq!((hb.len(), ack.len()), (22, 20));
    let hb = decode_one(&hb);
    let ack = decode_one(&ack);
    assert_eq!(
        (hb.kind(), hb.cmdcode(), hb.request_id()),
        (FrameKind::Heartbeat, 0, 3)
    );
    assert_eq!(
        (ack.kind(), ack.cmdcode(), ack.request_id()),
        (FrameKind::HeartbeatAck, 0, 3)
    );
    assert_eq!(ack.status(), Some(0));
}

#[test]
fn b06_v2_ver1_no_crc() {
    let bytes = fx("bolt_v2_ver1_request");
    let f = decode_one(&bytes);
    assert_eq!(
        (f.version(), f.ver1(), f.switch(), f.is_crc()),
        (2, Some(1), Some(0), false)
    );
    assert_eq!(bytes.len(), 24 + 44 + 46 + 207);
    assert_eq!(f.header("service"), Some(SERVICE));
}

#[test]
fn b07_v2_ver2_crc_valid() {
    let bytes = fx("suite_sofa_bolt_node_v2_crc_response");
    assert_eq!(bytes.len(), 22 + 46 + 750 + 4);
    let f = decode_one(&bytes);
    assert!(f.is_crc());
    assert_eq!(crc32fast::hash(&bytes[..818]), 0xfa4b_beb0);
    for name in ["request", "response_success", "heartbeat", "heartbeat_ack"] {
        assert!(decode_one(&fx(&format!("bolt_v2_ver2_crc_{name}"))).is_crc());
    }
}

#[test]
fn b08_v2_crc_mismatch_is_fatal() {
    let mut bytes = fx("suite_sofa_bolt_node_v2_crc_response");
    bytes[500] ^= 0x01;
    let err = fatal(&bytes);
    assert_eq!(
        err,
        CodecError::Checksum {
            expected: 0xfa4b_beb0,
            actual: crc32fast::hash(&bytes[..818])
        }
    );
    let mut trailer = fx("bolt_v2_ver2_crc_heartbeat");
    trailer[27] ^= 0xff;
    assert!(matches!(fatal(&trailer), CodecError::Checksum { .. }));
}

#[test]
fn b09_v2_ver1_with_switch_one_has_no_crc() {
    let mut bytes = fx("bolt_v2_ver1_request");
    bytes[11] = 0x01;
    let f = decode_one(&bytes);
    assert_eq!((f.switch(), f.is_crc()), (Some(1), false));
    assert_eq!(encode(&f), bytes);
}

#[test]
fn b10_v2_ver2_switch_zero_has_no_crc() {
    let mut bytes = fx("bolt_v2_ver1_request");
    bytes[1] = 2;
    let f = decode_one(&bytes);
    assert_eq!(
        (f.ver1(), f.switch(), f.is_crc()),
        (Some(2), Some(0), false)
    );
    assert_eq!(encode(&f), bytes);
}

#[test]
fn b11_switch_high_bit_rejected() {
    for fixture in ["bolt_v2_ver1_request", "bolt_v2_ver2_crc_request"] {
        let mut bytes = fx(fixture);
        bytes[11] = 0x80;
        assert!(matches!(
            fatal(&bytes),
            CodecError::Malformed {
                section: "switch",
                ..
            }
        ));
    }
    let built = BoltFrame::builder(FrameKind::Request).v2(1, 0x81).build();
    assert!(built.is_err());
}

fn split_fixtures() -> Vec<Vec<u8>> {
    [
        "bolt_v1_request_hessian2",
        "bolt_v1_response_success",
        "bolt_v1_heartbeat",
        "bolt_v1_heartbeat_ack",
    ]
    .into_iter()
    .chain([
        "suite_sofa_bolt_node_v2_crc_response",
        "bolt_v2_ver2_crc_request",
    ])
    .map(fx)
    .collect()
}

#[test]
fn b12_split_at_every_byte() {
    for bytes in split_fixtures() {
        for cut in 1..bytes.len() {
            let mut src = BytesMut::from(&bytes[..cut]);
            let r = decode_frame(&mut src, Limits::default());
            assert!(matches!(r, Ok(None)), "cut {cut}: {r:?}");
            assert_eq!(&src[..], &bytes[..cut], "cut {cut} changed the buffer");
            src.extend_from_slice(&bytes[cut..]);
            let f = decode_frame(&mut src, Limits::default())
                .expect("ok")
                .expect("frame");
            assert!(src.is_empty());
            assert_eq!(encode(&f), bytes);
        }
    }
}

#[test]
fn b12_one_byte_at_a_time() {
    for bytes in split_fixtures() {
        let mut src = BytesMut::new();
        let mut frames = 0;
        for (i, b) in bytes.iter().enumerate() {
            src.extend_from_slice(&[*b]);
            match decode_frame(&mut src, Limits::default()).expect("no error") {
                Some(f) => {
                    assert_eq!(i, bytes.len() - 1, "frame emitted before the last byte");
                    assert_eq!(encode(&f), bytes);
                    frames += 1;
                }
                None => assert_eq!(src.len(), i + 1),
            }
        }
        assert_eq!((frames, src.len()), (1, 0));
    }
}

#[test]
fn b13_many_frames_in_one_read() {
    let parts = [
        fx("bolt_v1_request_hessian2"),
        fx("bolt_v1_response_success"),
        fx("bolt_v1_heartbeat"),
        fx("suite_sofa_bolt_node_v2_crc_response"),
    ];
    let fifth = fx("bolt_v2_ver1_request");
    let mut src = BytesMut::new();
    parts.iter().for_each(|p| src.extend_from_slice(p));
    src.extend_from_slice(&fifth[..fifth.len() / 2]);
    for p in &parts {
        let f = decode_frame(&mut src, Limits::default())
            .expect("ok")
            .expect("frame");
        assert_eq!(&encode(&f), p);
    }
    assert!(
        decode_frame(&mut src, Limits::default())
            .expect("ok")
            .is_none()
    );
    assert_eq!(&src[..], &fifth[..fifth.len() / 2]);
    src.extend_from_slice(&fifth[fifth.len() / 2..]);
    let f = decode_frame(&mut src, Limits::default())
        .expect("ok")
        .expect("frame");
    assert_eq!(f.version(), 2);
}

#[test]
fn b14_fixed_part_incomplete() {
    need_more(&fx(REQ)[..21]);
    need_more(&fx("bolt_v1_response_success")[..19]);
    need_more(&fx("bolt_v2_ver1_request")[..23]);
    need_more(&fx("bolt_v2_ver1_response_success")[..21]);
    need_more(&[]);
}
