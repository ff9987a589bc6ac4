//! Proxy-facing behaviour: id rewriting (P1, P2), local heartbeats (P6, P7), mixed
//! versions (P17) and synthesised error responses (P18).

use bytes::BytesMut;
use strait_codec_bolt::{Bolt, BoltFrame, NAME, protocol, status};
use strait_codec_framework::{
    Detect, Frame, FrameKind, IdWidth, Limits, PoolMode, ProxyFailure, Registry,
};

use crate::support::*;

const NO_CRC: [&str; 10] = [
    "bolt_v1_request_hessian2",
    "bolt_v1_request_oneway",
    "bolt_v1_response_success",
    "bolt_v1_heartbeat",
    "bolt_v1_heartbeat_ack",
    "suite_sofa_bolt_node_v1_rpc_server_exception",
    "bolt_v2_ver1_request",
    "bolt_v2_ver1_response_success",
    "bolt_v2_ver1_heartbeat",
    "bolt_v2_ver1_heartbeat_ack",
];

const CRC: [&str; 5] = [
    "bolt_v2_ver2_crc_request",
    "bolt_v2_ver2_crc_response_success",
    "bolt_v2_ver2_crc_heartbeat",
    "bolt_v2_ver2_crc_heartbeat_ack",
    "suite_sofa_bolt_node_v2_crc_response",
];

fn id_off(bytes: &[u8]) -> usize {
    if bytes[0] == 1 { 5 } else { 6 }
}

#[test]
fn protocol_descriptor() {
    let p = protocol();
    assert_eq!((p.name(), NAME), ("bolt", "bolt"));
    assert_eq!(p.id_width(), IdWidth::U32);
    assert_eq!(p.pool_mode(), PoolMode::Multiplex);
    assert_eq!(p.detect(&[]), Detect::NeedMore);
    let mut reg = Registry::new();
    reg.register(p).expect("registers");
    assert!(reg.register(std::sync::Arc::new(Bolt)).is_err());
    assert_eq!(
        reg.detect(&fx("bolt_v2_ver1_request")).map(|p| p.name()),
        Ok("bolt")
    );
}

#[test]
fn p01_id_patch_changes_only_the_id_bytes() {
    for name in NO_CRC {
        let bytes = fx(name);
        let mut f = decode_one(&bytes);
        f.set_request_id(0xdead_beef);
        let out = encode(&f);
        let off = id_off(&bytes);
        assert_eq!(out.len(), bytes.len(), "{name}");
        assert_eq!(&out[..off], &bytes[..off], "{name}");
        assert_eq!(&out[off..off + 4], &0xdead_beefu32.to_be_bytes(), "{name}");
        assert_eq!(&out[off + 4..], &bytes[off + 4..], "{name}");
        assert_eq!(decode_one(&out).request_id(), 0xdead_beef);
        // Restoring the original id gives the original bytes back.
        f.set_request_id(decode_one(&bytes).request_id());
        assert_eq!(encode(&f), bytes, "{name}");
    }
}

#[test]
fn p01_id_wraps_in_u32_space() {
    let p = protocol();
    assert_eq!(p.id_width().next(u64::from(u32::MAX)), 0);
    let mut f = decode_one(&fx("bolt_v1_request_hessian2"));
    f.set_request_id(u64::from(u32::MAX));
    assert_eq!(decode_one(&encode(&f)).request_id(), u64::from(u32::MAX));
}

#[test]
fn p02_crc_valid_after_id_patch() {
    for name in CRC {
        let bytes = fx(name);
        let mut f = decode_one(&bytes);
        f.set_request_id(0x0102_0304);
        let out = encode(&f);
        let n = out.len() - 4;
        assert_eq!(out.len(), bytes.len(), "{name}");
        assert_eq!(&out[..6], &bytes[..6], "{name}");
        assert_eq!(&out[6..10], &[1, 2, 3, 4], "{name}");
        assert_eq!(&out[10..n], &bytes[10..n], "{name}");
        let mut expected = bytes.clone();
        put_u32(&mut expected, 6, 0x0102_0304);
        fix_crc(&mut expected);
        assert_eq!(out, expected, "{name}");
        assert_eq!(
            &out[n..],
            &crc32fast::hash(&out[..n]).to_be_bytes(),
            "{name}"
        );
        assert_ne!(&out[n..], &bytes[n..], "{name}: CRC not recomputed");
        assert!(decode_one(&out).is_crc());
    }
}

#[test]
fn p06_heartbeat_reply_matches_the_ack_fixtures() {
    let p = protocol();
    for (hb, ack) in [
        ("bolt_v1_heartbeat", "bolt_v1_heartbeat_ack"),
        ("bolt_v2_ver1_heartbeat", "bolt_v2_ver1_heartbeat_ack"),
        (
            "bolt_v2_ver2_crc_heartbeat",
            "bolt_v2_ver2_crc_heartbeat_ack",
        ),
    ] {
        let req = decode_one(&fx(hb));
        let reply = p.heartbeat_reply(&req).expect("a heartbeat is answered");
        assert_eq!(reply.kind(), FrameKind::HeartbeatAck);
        assert_eq!(encode(reply.as_ref()), fx(ack), "{hb}");
    }
}

#[test]
fn p06_heartbeat_reply_uses_the_current_id() {
    let mut req = decode_one(&fx("bolt_v2_ver2_crc_heartbeat"));
    req.set_request_id(77);
    let reply = protocol().heartbeat_reply(&req).expect("answered");
    let out = encode(reply.as_ref());
    assert_eq!(out.len(), 26);
    assert_eq!(decode_one(&out).request_id(), 77);
}

#[test]
fn p06_only_heartbeats_are_answered_locally() {
    let p = protocol();
    for name in [
        "bolt_v1_request_hessian2",
        "bolt_v1_heartbeat_ack",
        "bolt_v1_request_oneway",
    ] {
        assert!(
            p.heartbeat_reply(&decode_one(&fx(name))).is_none(),
            "{name}"
        );
    }
}

#[test]
fn p07_upstream_keepalive_probe() {
    let probe = protocol()
        .heartbeat_request(42)
        .expect("bolt has keepalives");
    let out = encode(probe.as_ref());
    assert_eq!(
        out,
        [
            1, 1, 0, 0, 1, 0, 0, 0, 42, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
    let f = decode_one(&out);
    assert_eq!(
        (f.kind(), f.timeout_ms(), f.timeout()),
        (FrameKind::Heartbeat, Some(-1), None)
    );
    assert!(
        protocol()
            .heartbeat_request(u64::from(u32::MAX) + 1)
            .is_none()
    );
}

#[test]
fn p17_mixed_versions_on_one_connection() {
    let mut codec = protocol().new_codec(Limits::default());
    let mut src = BytesMut::new();
    for name in [
        "bolt_v1_request_hessian2",
        "bolt_v2_ver2_crc_request",
        "bolt_v2_ver1_heartbeat",
        "bolt_v1_heartbeat",
    ] {
        src.extend_from_slice(&fx(name));
    }
    let mut versions = Vec::new();
    while let Some(f) = codec.decode(&mut src).expect("decodes") {
        let bolt = f
            .as_any()
            .downcast_ref::<BoltFrame>()
            .expect("a bolt frame");
        versions.push((bolt.version(), f.kind()));
    }
    assert_eq!(
        versions,
        [
            (1, FrameKind::Request),
            (2, FrameKind::Request),
            (2, FrameKind::Heartbeat),
            (1, FrameKind::Heartbeat)
        ]
    );
}

fn error_bytes(request: &str, failure: ProxyFailure) -> Vec<u8> {
    let req = decode_one(&fx(request));
    let reply = protocol()
        .error_response(&req, failure)
        .expect("two-way requests are answered");
    assert_eq!(reply.kind(), FrameKind::Response);
    encode(reply.as_ref())
}

/// The header map of an error answer: one `x-proxy-error` entry holding `text`.
fn error_header(text: &str) -> Vec<u8> {
    let mut map = Vec::new();
    for part in ["x-proxy-error", text] {
        map.extend_from_slice(&(part.len() as u32).to_be_bytes());
        map.extend_from_slice(part.as_bytes());
    }
    map
}

#[test]
fn p18_error_response_v1_shape() {
    let out = error_bytes("bolt_v1_request_hessian2", ProxyFailure::NoRoute);
    // The fixture names no service: the text says no more than that.
    let header = error_header("no route (strait)");
    let mut want = vec![1, 0, 0, 2, 1, 0, 0, 0, 1, 1, 0, 6, 0, 0];
    want.extend_from_slice(&(header.len() as u16).to_be_bytes());
    want.extend_from_slice(&[0, 0, 0, 0]);
    want.extend_from_slice(&header);
    assert_eq!(out, want);
}

#[test]
fn p18_error_response_v2_ver1_shape() {
    let out = error_bytes("bolt_v2_ver1_request", ProxyFailure::Timeout);
    let header = error_header("upstream timeout (strait)");
    let mut want = vec![2, 1, 0, 0, 2, 1, 0, 0, 0, 1, 1, 0, 0, 7, 0, 0];
    want.extend_from_slice(&(header.len() as u16).to_be_bytes());
    want.extend_from_slice(&[0, 0, 0, 0]);
    want.extend_from_slice(&header);
    assert_eq!(out, want);
}

#[test]
fn p18_error_response_v2_crc_keeps_ver1_switch_and_adds_crc() {
    let out = error_bytes("bolt_v2_ver2_crc_request", ProxyFailure::Overflow);
    let header = error_header("upstream overflow (strait)");
    let end = 22 + header.len();
    assert_eq!(out.len(), end + 4);
    let mut want = vec![2, 2, 0, 0, 2, 1, 0, 0, 0, 1, 1, 1, 0, 4, 0, 0];
    want.extend_from_slice(&(header.len() as u16).to_be_bytes());
    want.extend_from_slice(&[0, 0, 0, 0]);
    want.extend_from_slice(&header);
    assert_eq!(&out[..end], &want[..]);
    assert_eq!(&out[end..], &crc32fast::hash(&out[..end]).to_be_bytes());
    let f = decode_one(&out);
    assert!(f.is_crc());
    assert_eq!(f.status(), Some(4));
}

#[test]
fn p18_error_response_keeps_the_request_codec() {
    let mut bytes = fx("bolt_v1_request_hessian2");
    bytes[9] = 11;
    let reply = protocol()
        .error_response(&decode_one(&bytes), ProxyFailure::CodecError)
        .expect("answered");
    let out = encode(reply.as_ref());
    assert_eq!((out[9], reply.status()), (11, Some(9)));
}

#[test]
fn p18_status_for_every_failure() {
    use ProxyFailure::*;
    for (failure, want) in [
        (NoRoute, 6),
        (NoHealthyUpstream, 6),
        (ConnectFailure, 6),
        (UpstreamReset, 6),
        (Timeout, 7),
        (Overflow, 4),
        (RateLimited, 4),
        (CodecError, 9),
    ] {
        let out = error_bytes("bolt_v1_request_hessian2", failure);
        assert_eq!(u16::from_be_bytes([out[10], out[11]]), want, "{failure}");
        assert_eq!(status::status_for(failure), want);
        assert!(status::is_known(want));
    }
}

#[test]
fn p08_no_error_for_oneway_heartbeat_or_response() {
    let p = protocol();
    for name in [
        "bolt_v1_request_oneway",
        "bolt_v1_heartbeat",
        "bolt_v2_ver2_crc_heartbeat",
        "bolt_v1_response_success",
        "bolt_v1_heartbeat_ack",
    ] {
        assert!(
            p.error_response(&decode_one(&fx(name)), ProxyFailure::NoRoute)
                .is_none(),
            "{name}"
        );
    }
}

#[test]
fn oneway_heartbeat_is_a_heartbeat_never_answered() {
    let mut raw = fx("bolt_v1_heartbeat");
    raw[1] = 0x02; // type: oneway
    let frame = decode_one(&raw);
    assert_eq!(
        frame.kind(),
        FrameKind::Heartbeat,
        "never routed or forwarded"
    );
    assert!(
        protocol().heartbeat_reply(&frame).is_none(),
        "and never answered"
    );
    let two_way = decode_one(&fx("bolt_v1_heartbeat"));
    assert!(protocol().heartbeat_reply(&two_way).is_some());
}
