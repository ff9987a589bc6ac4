//! Proxy-facing behaviour: the protocol descriptor, id rewriting (P3), local heartbeats
//! (P6, P7, D8/D9), GoAway, synthesised error answers (§3.3, P9-P14) and direct
//! responses.

use std::sync::Arc;

use strait_codec_dubbo::{Dubbo, DubboFrame, NAME, protocol, status};
use strait_codec_framework::{Detect, Frame, FrameKind, IdWidth, PoolMode, ProxyFailure, Registry};

use crate::support::*;

const FRAMES: [&str; 10] = [
    "dubbo_heartbeat_request",
    "dubbo_heartbeat_response",
    "dubbo_readonly_event_request",
    "dubbo_request_object_arg",
    "dubbo_request_oneway",
    "dubbo_request_twoway",
    "dubbo_response_ok_null_with_attachments",
    "dubbo_response_ok_value",
    "dubbo_response_ok_value_with_attachments",
    "dubbo_response_service_not_found",
];

#[test]
fn protocol_descriptor() {
    let p = protocol();
    assert_eq!((p.name(), NAME), ("dubbo", "dubbo"));
    assert_eq!(p.id_width(), IdWidth::U64);
    assert_eq!(p.pool_mode(), PoolMode::Multiplex);
    assert_eq!(p.detect(&[]), Detect::NeedMore);
    let mut reg = Registry::new();
    reg.register(p).expect("registers");
    assert!(reg.register(Arc::new(Dubbo)).is_err());
    assert_eq!(
        reg.detect(&fx("dubbo_request_twoway")).map(|p| p.name()),
        Ok("dubbo")
    );
}

#[test]
fn p03_id_patch_changes_only_bytes_4_to_12() {
    for name in FRAMES {
        let bytes = fx(name);
        let mut f = decode_one(&bytes);
        // Reading metadata does not make encode re-serialise anything.
        let _ = (f.header("group"), f.timeout(), f.variable("service"));
        f.set_request_id(0xdead_beef_0102_0304);
        let out = encode(&f);
        assert_eq!(out.len(), bytes.len(), "{name}");
        assert_eq!(&out[..4], &bytes[..4], "{name}");
        assert_eq!(
            &out[4..12],
            &0xdead_beef_0102_0304u64.to_be_bytes(),
            "{name}"
        );
        assert_eq!(&out[12..], &bytes[12..], "{name}");
        assert_eq!(decode_one(&out).request_id(), 0xdead_beef_0102_0304);
        // Restoring the original id gives the original bytes back.
        f.set_request_id(decode_one(&bytes).request_id());
        assert_eq!(encode(&f), bytes, "{name}");
    }
}

#[test]
fn p03_ids_use_all_64_bits() {
    let p = protocol();
    assert_eq!(
        p.id_width().next(u64::from(u32::MAX)),
        u64::from(u32::MAX) + 1
    );
    assert_eq!(p.id_width().next(u64::MAX), 0);
    let mut f = decode_one(&fx("dubbo_request_twoway"));
    f.set_request_id(u64::MAX);
    assert_eq!(decode_one(&encode(&f)).request_id(), u64::MAX);
}

#[test]
fn p06_heartbeat_reply_uses_the_current_id() {
    let mut req = decode_one(&fx("dubbo_heartbeat_request"));
    req.set_request_id(77);
    let reply = protocol().heartbeat_reply(&req).expect("answered");
    assert_eq!(
        encode(reply.as_ref()),
        frame(0x22, 20, 77, &[0x4e]),
        "flag 0x22, status 20, body exactly 4e (not MOSN's 4e 4e)"
    );
}

#[test]
fn p06_only_two_way_heartbeats_are_answered() {
    let p = protocol();
    for name in [
        "dubbo_request_twoway",
        "dubbo_heartbeat_response",
        "dubbo_readonly_event_request",
        "dubbo_response_ok_value",
    ] {
        assert!(
            p.heartbeat_reply(&decode_one(&fx(name))).is_none(),
            "{name}"
        );
    }
    assert!(
        p.heartbeat_reply(&DubboFrame::heartbeat(1, false))
            .is_none()
    );
    assert!(p.heartbeat_reply(&DubboFrame::heartbeat(1, true)).is_some());
}

#[test]
fn p06_heartbeat_of_another_serialization_is_answered_in_kind() {
    // fastjson2 (23): its null is not hessian's `N`; every event of a serialization we
    // cannot read is a heartbeat, answered with the request's own body and id.
    let req = decode_one(&frame(0xe0 | 23, 0, 5, b"\xaf"));
    assert_eq!(req.kind(), FrameKind::Heartbeat);
    let reply = protocol().heartbeat_reply(&req).expect("answered");
    assert_eq!(encode(reply.as_ref()), frame(0x20 | 23, 20, 5, b"\xaf"));
    // A hessian2 event with another body is not a heartbeat.
    let f = decode_one(&frame(0xe2, 0, 5, b"\x01H"));
    assert_eq!(f.kind(), FrameKind::GoAway);
}

#[test]
fn p07_upstream_keepalive_probe() {
    let probe = protocol()
        .heartbeat_request(42)
        .expect("dubbo has keepalives");
    assert_eq!(encode(probe.as_ref()), frame(0xe2, 0, 42, &[0x4e]));
    assert_eq!(probe.kind(), FrameKind::Heartbeat);
    let big = protocol().heartbeat_request(u64::MAX).unwrap();
    assert_eq!(big.request_id(), u64::MAX);
    // The upstream's answer is an ack the stream layer consumes.
    let ack = decode_one(&fx("dubbo_heartbeat_response"));
    assert_eq!(ack.kind(), FrameKind::HeartbeatAck);
}

#[test]
fn go_away_from_a_provider_shutting_down() {
    let f = decode_one(&encode(&DubboFrame::readonly_event(3)));
    assert_eq!(f.kind(), FrameKind::GoAway);
    assert!(!f.kind().is_request());
}

/// The answer the proxy sends for `failure` to the two-way fixture request with its id
/// rewritten to 99: (status, error message).
fn answer(failure: ProxyFailure) -> (u32, String) {
    let mut req = decode_one(&fx("dubbo_request_twoway"));
    req.set_request_id(99);
    let reply = protocol()
        .error_response(&req, failure)
        .expect("two-way requests are answered");
    let bytes = encode(reply.as_ref());
    assert_eq!(
        &bytes[..4],
        &[0xda, 0xbb, 0x02, bytes[3]],
        "{failure}: flag 0x02"
    );
    let f = decode_one(&bytes);
    assert_eq!(
        (f.kind(), f.request_id()),
        (FrameKind::Response, 99),
        "{failure}"
    );
    (f.status().unwrap(), f.error_message().unwrap().to_string())
}

#[test]
fn p09_p14_error_answers_follow_the_recommended_table() {
    let svc = "org.apache.dubbo.demo.DemoService";
    let table = [
        (
            ProxyFailure::NoRoute,
            60,
            format!("404|no route for {svc}#sayHello (strait)"),
        ),
        (
            ProxyFailure::NoHealthyUpstream,
            60,
            "502|no healthy upstream (strait)".into(),
        ),
        (
            ProxyFailure::ConnectFailure,
            60,
            "502|upstream connect failure (strait)".into(),
        ),
        (
            ProxyFailure::UpstreamReset,
            60,
            "502|upstream reset (strait)".into(),
        ),
        (
            ProxyFailure::Timeout,
            31,
            "504|upstream timeout (strait)".into(),
        ),
        (
            ProxyFailure::Overflow,
            100,
            "503|upstream overflow (strait)".into(),
        ),
        (
            ProxyFailure::RateLimited,
            100,
            "509|rate limited (strait)".into(),
        ),
        (
            ProxyFailure::CodecError,
            40,
            "0|bad request: the request could not be decoded or re-encoded (strait)".into(),
        ),
    ];
    for (failure, status, text) in table {
        assert_eq!(answer(failure), (status, text), "{failure}");
    }
}

#[test]
fn p09_exact_no_route_answer_bytes() {
    let req = DubboFrame::request("org.x.DemoService", "sayHello")
        .id(5)
        .build()
        .unwrap();
    let reply = protocol()
        .error_response(&req, ProxyFailure::NoRoute)
        .unwrap();
    let text = "404|no route for org.x.DemoService#sayHello (strait)";
    let mut body = vec![0x30, text.len() as u8];
    body.extend_from_slice(text.as_bytes());
    assert_eq!(encode(reply.as_ref()), frame(0x02, 60, 5, &body));
    // Unreadable metadata: no service to name.
    let bad = decode_one(&frame(0xc2, 0, 6, b"\xff"));
    let reply = protocol()
        .error_response(&bad, ProxyFailure::NoRoute)
        .unwrap();
    let f = decode_one(&encode(reply.as_ref()));
    assert_eq!(f.error_message(), Some("404|no route (strait)"));
}

#[test]
fn no_error_answer_for_events_oneway_or_responses() {
    let p = protocol();
    for name in [
        "dubbo_request_oneway",
        "dubbo_heartbeat_request",
        "dubbo_readonly_event_request",
        "dubbo_response_ok_value",
        "dubbo_heartbeat_response",
    ] {
        let f = decode_one(&fx(name));
        for failure in [ProxyFailure::NoRoute, ProxyFailure::Timeout] {
            assert!(p.error_response(&f, failure).is_none(), "{name}");
        }
    }
}

#[test]
fn direct_responses() {
    let p = protocol();
    let mut req = decode_one(&fx("dubbo_request_twoway"));
    req.set_request_id(8);
    let ok = p.direct_response(&req, 20, Some("hi")).unwrap();
    assert_eq!(encode(ok.as_ref()), frame(0x02, 20, 8, b"\x91\x02hi"));
    let null = p.direct_response(&req, 20, None).unwrap();
    assert_eq!(encode(null.as_ref()), frame(0x02, 20, 8, b"\x92"));
    let err = p.direct_response(&req, 70, Some("boom")).unwrap();
    assert_eq!(encode(err.as_ref()), frame(0x02, 70, 8, b"\x04boom"));
    let dflt = decode_one(&encode(p.direct_response(&req, 60, None).unwrap().as_ref()));
    assert_eq!(
        (dflt.status(), dflt.error_message()),
        (Some(60), Some("service not found"))
    );
    for bad in [0, 21, 101, 255, 256, 1000] {
        assert!(p.direct_response(&req, bad, None).is_none(), "{bad}");
    }
    for name in [
        "dubbo_request_oneway",
        "dubbo_heartbeat_request",
        "dubbo_response_ok_value",
    ] {
        assert!(
            p.direct_response(&decode_one(&fx(name)), 20, None)
                .is_none(),
            "{name}"
        );
    }
    assert!(status::is_known(100));
}
