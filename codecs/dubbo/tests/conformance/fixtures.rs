//! Every Dubbo fixture decodes to its expected fields and re-encodes byte for byte.

use std::time::Duration;

use strait_codec_dubbo::hessian2::Reader;
use strait_codec_dubbo::{DubboFrame, detect};
use strait_codec_framework::{Detect, Frame, FrameKind};
use strait_conformance_fixtures::dubbo::{
    DUBBO_FIXTURES, DubboFixture, DubboKind, dubbo_fixture, dubbo_frames,
};

use crate::support::*;

fn kind(k: DubboKind) -> FrameKind {
    match k {
        DubboKind::Request | DubboKind::RequestBody => FrameKind::Request,
        DubboKind::Oneway => FrameKind::Oneway,
        DubboKind::Response | DubboKind::ResponseBody => FrameKind::Response,
        DubboKind::Heartbeat => FrameKind::Heartbeat,
        DubboKind::HeartbeatAck => FrameKind::HeartbeatAck,
        DubboKind::ReadonlyEvent => FrameKind::GoAway,
    }
}

/// The fixture as a frame: body-only fixtures get a header (request 0xc2 id 0, or
/// response 0x02 status 20 id 0).
fn as_frame(e: &DubboFixture) -> DubboFrame {
    let bytes = fx(e.file);
    match e.kind {
        DubboKind::RequestBody => decode_one(&frame(0xc2, 0, 0, &bytes)),
        DubboKind::ResponseBody => decode_one(&frame(0x02, 20, 0, &bytes)),
        _ => decode_one(&bytes),
    }
}

fn check(f: &DubboFrame, e: &DubboFixture) {
    let name = e.file;
    assert_eq!(f.kind(), kind(e.kind), "{name}");
    if let Some(flag) = e.flag {
        assert_eq!(f.flag(), flag, "{name}");
        assert_eq!(f.request_id(), e.request_id, "{name}");
        assert_eq!(f.raw_bytes().len(), e.total_len, "{name}");
    }
    assert_eq!(f.body().len(), e.body_len, "{name}");
    assert_eq!(f.serialization_id(), 2, "{name}");
    let is_response = matches!(
        e.kind,
        DubboKind::Response | DubboKind::ResponseBody | DubboKind::HeartbeatAck
    );
    assert_eq!(
        f.status(),
        is_response.then_some(u32::from(e.status)),
        "{name}"
    );
    assert_eq!(
        f.is_event(),
        matches!(
            e.kind,
            DubboKind::Heartbeat | DubboKind::HeartbeatAck | DubboKind::ReadonlyEvent
        ),
        "{name}"
    );
    assert_eq!(
        f.is_readonly_event(),
        e.kind == DubboKind::ReadonlyEvent,
        "{name}"
    );
    assert_eq!(headers(f), pairs(e.attachments), "{name}");
    let listed: Vec<_> = f
        .attachments()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(listed, pairs(e.attachments), "{name}");
    for (k, v) in e.attachments {
        assert_eq!(f.header(k), Some(*v), "{name}");
    }
    assert_eq!(f.metadata_error(), None, "{name}");
    assert!(!f.metadata_unreadable(), "{name}");
    match e.invocation {
        Some(inv) => {
            assert_eq!(f.dubbo_version(), Some(inv.dubbo_version), "{name}");
            assert_eq!(f.service_path(), Some(inv.path), "{name}");
            assert_eq!(f.service_version(), inv.version, "{name}");
            assert_eq!(f.method(), Some(inv.method), "{name}");
            assert_eq!(f.parameter_types(), Some(inv.parameter_types), "{name}");
            let body = f.body();
            assert_eq!(
                f.arguments().as_deref(),
                Some(&body[inv.args.0..inv.args.1]),
                "{name}"
            );
            assert_eq!(f.variable("service").as_deref(), Some(inv.path), "{name}");
            assert_eq!(f.variable("method").as_deref(), Some(inv.method), "{name}");
            assert_eq!(f.variable("version").as_deref(), inv.version, "{name}");
            let timeout = e
                .attachments
                .iter()
                .find(|(k, _)| *k == "timeout")
                .map(|(_, v)| Duration::from_millis(v.parse().unwrap()));
            assert_eq!(f.timeout(), timeout, "{name}");
        }
        None => {
            assert_eq!(f.service_path(), None, "{name}");
            assert_eq!(f.method(), None, "{name}");
            assert_eq!(f.arguments(), None, "{name}");
            assert_eq!(f.variable("service"), None, "{name}");
            assert_eq!(f.timeout(), None, "{name}");
        }
    }
    assert_eq!(f.variable("protocol").as_deref(), Some("dubbo"), "{name}");
    assert_eq!(f.result_flag(), e.result_flag, "{name}");
    assert_eq!(f.response_value(), e.value, "{name}");
    assert_eq!(f.error_message(), e.error, "{name}");
}

#[test]
fn every_dubbo_fixture_decodes_to_its_expected_fields() {
    assert_eq!(DUBBO_FIXTURES.len(), 13);
    for e in DUBBO_FIXTURES {
        check(&as_frame(e), e);
    }
}

#[test]
fn every_dubbo_frame_fixture_reencodes_byte_for_byte() {
    for e in dubbo_frames() {
        let bytes = fx(e.file);
        let f = decode_one(&bytes);
        // Reading the metadata first must not change what is written.
        let _ = f.header("group");
        assert_eq!(encode(&f), bytes, "{}", e.file);
    }
}

#[test]
fn every_dubbo_frame_fixture_is_detected() {
    for e in dubbo_frames() {
        assert_eq!(detect(&fx(e.file)), Detect::Match, "{}", e.file);
        assert_eq!(detect(&fx(e.file)[..1]), Detect::NeedMore, "{}", e.file);
    }
}

#[test]
fn bolt_fixtures_are_not_dubbo() {
    for (name, bytes) in strait_conformance_fixtures::all("bolt_") {
        assert_eq!(detect(&bytes), Detect::NoMatch, "{name}");
    }
}

#[test]
fn request_builder_reproduces_the_twoway_fixture() {
    let e = dubbo_fixture("dubbo_request_twoway").unwrap();
    let inv = e.invocation.unwrap();
    let mut b = DubboFrame::request(inv.path, inv.method)
        .id(1)
        .version(inv.version)
        .string_argument("world");
    for (k, v) in e.attachments {
        b = b.attachment(k, v);
    }
    let built = b.build().expect("builds");
    assert_eq!(encode(&built), fx(e.file));
    let oneway = DubboFrame::request(inv.path, inv.method)
        .id(2)
        .oneway()
        .version(inv.version)
        .string_argument("world");
    let oneway = e
        .attachments
        .iter()
        .fold(oneway, |b, (k, v)| b.attachment(k, v))
        .build()
        .unwrap();
    assert_eq!(encode(&oneway), fx("dubbo_request_oneway"));
}

#[test]
fn response_builder_reproduces_the_response_fixtures() {
    let built = [
        DubboFrame::response(1).value("Hello world").build(),
        DubboFrame::response(1)
            .value("Hello world")
            .attachment("dubbo", "2.0.2")
            .build(),
        DubboFrame::response(1).attachment("dubbo", "2.0.2").build(),
        DubboFrame::response(1)
            .error(60, "404|router unavailable")
            .build(),
    ];
    let names = [
        "dubbo_response_ok_value",
        "dubbo_response_ok_value_with_attachments",
        "dubbo_response_ok_null_with_attachments",
        "dubbo_response_service_not_found",
    ];
    for (b, name) in built.into_iter().zip(names) {
        assert_eq!(encode(&b.expect("builds")), fx(name), "{name}");
    }
}

#[test]
fn event_builders_reproduce_the_event_fixtures() {
    assert_eq!(
        encode(&DubboFrame::heartbeat(7, true)),
        fx("dubbo_heartbeat_request")
    );
    assert_eq!(
        encode(&DubboFrame::heartbeat_ack(7)),
        fx("dubbo_heartbeat_response")
    );
    assert_eq!(
        encode(&DubboFrame::readonly_event(8)),
        fx("dubbo_readonly_event_request")
    );
}

#[test]
fn object_argument_is_skipped_to_the_attachments() {
    let f = decode_one(&fx("dubbo_request_object_arg"));
    let args = f.arguments().unwrap();
    let mut r = Reader::new(&args);
    r.skip_value().unwrap();
    assert_eq!(r.class_field_counts(), &[3]);
    assert_eq!(r.read_long().unwrap(), 0x0000_011f_71fb_04cb);
    assert!(r.is_at_end());
}
