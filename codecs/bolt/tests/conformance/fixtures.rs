//! Every Bolt fixture decodes to its expected fields and re-encodes byte for byte.

use strait_codec_bolt::{BoltFrame, detect};
use strait_codec_framework::{Detect, Frame, FrameKind};
use strait_conformance_fixtures::bolt::{BOLT_FIXTURES, BoltKind};

use crate::support::{decode_one, encode, fx, headers};

fn kind(k: BoltKind) -> FrameKind {
    match k {
        BoltKind::Request => FrameKind::Request,
        BoltKind::Oneway => FrameKind::Oneway,
        BoltKind::Response => FrameKind::Response,
        BoltKind::Heartbeat => FrameKind::Heartbeat,
        BoltKind::HeartbeatAck => FrameKind::HeartbeatAck,
    }
}

fn check(f: &BoltFrame, e: &strait_conformance_fixtures::bolt::BoltFixture) {
    let name = e.file;
    assert_eq!(f.kind(), kind(e.kind), "{name}");
    assert_eq!(f.version(), e.version, "{name}");
    assert_eq!(f.ver1(), e.ver1, "{name}");
    assert_eq!(f.switch(), e.switch, "{name}");
    assert_eq!(f.request_id(), u64::from(e.request_id), "{name}");
    assert_eq!(f.codec(), e.codec, "{name}");
    assert_eq!(f.timeout_ms(), e.timeout, "{name}");
    assert_eq!(f.status_code(), e.status, "{name}");
    assert_eq!(f.status(), e.status.map(u32::from), "{name}");
    assert_eq!(f.class_name(), e.class_name.as_bytes(), "{name}");
    let want: Vec<_> = e
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(headers(f), want, "{name}");
    for (k, v) in e.headers {
        assert_eq!(f.header(k), Some(*v), "{name}");
    }
    assert_eq!(f.header_len(), e.header_len, "{name}");
    assert_eq!(f.content_len(), e.content_len, "{name}");
    assert_eq!(f.body().len(), e.content_len as usize, "{name}");
    assert_eq!(f.raw_bytes().len(), e.total_len, "{name}");
    assert_eq!(f.is_crc(), e.crc.is_some(), "{name}");
    let timeout = e
        .timeout
        .filter(|t| *t > 0)
        .map(|t| std::time::Duration::from_millis(t as u64));
    assert_eq!(f.timeout(), timeout, "{name}");
}

#[test]
fn every_bolt_fixture_decodes_to_its_expected_fields() {
    assert_eq!(BOLT_FIXTURES.len(), 18);
    for e in BOLT_FIXTURES {
        let bytes = fx(e.file);
        let f = decode_one(&bytes);
        check(&f, e);
        if let Some(crc) = e.crc {
            let n = bytes.len() - 4;
            assert_eq!(crc32fast::hash(&bytes[..n]), crc, "{}", e.file);
        }
    }
}

#[test]
fn every_bolt_fixture_reencodes_byte_for_byte() {
    for e in BOLT_FIXTURES {
        let bytes = fx(e.file);
        assert_eq!(encode(&decode_one(&bytes)), bytes, "{}", e.file);
    }
}

#[test]
fn every_bolt_fixture_is_detected() {
    for e in BOLT_FIXTURES {
        assert_eq!(detect(&fx(e.file)), Detect::Match, "{}", e.file);
    }
}

#[test]
fn dubbo_fixtures_are_not_bolt() {
    for (name, bytes) in strait_conformance_fixtures::all("dubbo_request") {
        assert_eq!(detect(&bytes), Detect::NoMatch, "{name}");
    }
}

#[test]
fn builder_reproduces_the_fixtures() {
    for e in BOLT_FIXTURES {
        let bytes = fx(e.file);
        let f = decode_one(&bytes);
        let mut b = BoltFrame::builder(kind(e.kind))
            .request_id(e.request_id)
            .codec(e.codec)
            .class_name(e.class_name.as_bytes().to_vec())
            .content(f.body());
        if let (Some(ver1), Some(switch)) = (e.ver1, e.switch) {
            b = b.v2(ver1, switch);
        }
        if let Some(t) = e.timeout {
            b = b.timeout_ms(t);
        }
        if let Some(s) = e.status {
            b = b.status(s);
        }
        for (k, v) in e.headers {
            b = b.header(k, v);
        }
        let built = b.build().expect("builds");
        assert_eq!(encode(&built), bytes, "{}", e.file);
    }
}
