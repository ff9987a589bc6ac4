//! Header editing: reads scan raw bytes, writes re-encode the map and are never dropped.

use strait_codec_bolt::BoltFrame;
use strait_codec_framework::{CodecError, Frame, FrameKind};

use crate::support::*;

const SERVICE: &str = "com.alipay.test.TestService:1.0";

#[test]
fn set_header_reencodes_and_decodes_back() {
    for name in [
        "bolt_v1_request_hessian2",
        "bolt_v2_ver1_request",
        "bolt_v2_ver2_crc_request",
        "bolt_v1_response_success",
        "suite_sofa_bolt_node_v2_crc_response",
    ] {
        let bytes = fx(name);
        let mut f = decode_one(&bytes);
        let class = f.class_name().to_vec();
        let body = f.body();
        f.set_header("x-route", "blue");
        assert_eq!(f.header("x-route"), Some("blue"));
        assert!(f.headers_modified());
        let out = encode(&f);
        assert_eq!(out.len(), bytes.len() + 4 + 7 + 4 + 4, "{name}");
        let back = decode_one(&out);
        assert_eq!(back.header("x-route"), Some("blue"), "{name}");
        assert_eq!(back.header_len(), f.header_len() + 19, "{name}");
        assert_eq!(back.class_name(), &class[..], "{name}");
        assert_eq!(back.body(), body, "{name}");
        assert_eq!(back.request_id(), f.request_id());
        assert_eq!(back.is_crc(), f.is_crc());
    }
}

#[test]
fn set_header_replaces_an_existing_value() {
    let mut f = decode_one(&fx("bolt_v1_request_hessian2"));
    f.set_header("service", "other:2.0");
    let back = decode_one(&encode(&f));
    assert_eq!(headers(&back), vec![("service".into(), "other:2.0".into())]);
    assert_eq!(back.variable("service").as_deref(), Some("other:2.0"));
}

#[test]
fn remove_header_reencodes() {
    let mut f = decode_one(&fx("bolt_v2_ver2_crc_request"));
    assert!(f.remove_header("service"));
    assert_eq!(f.header("service"), None);
    let out = encode(&f);
    assert_eq!(out.len(), 325 - 46);
    let back = decode_one(&out);
    assert_eq!((back.header_len(), back.header("service")), (0, None));
    assert!(!f.remove_header("service"));
}

#[test]
fn removing_an_absent_header_keeps_the_raw_bytes() {
    let bytes = fx("bolt_v1_request_hessian2");
    let mut f = decode_one(&bytes);
    assert!(!f.remove_header("nope"));
    assert!(!f.headers_modified());
    assert_eq!(encode(&f), bytes);
}

#[test]
fn header_edit_and_id_patch_together() {
    let mut f = decode_one(&fx("bolt_v2_ver2_crc_request"));
    f.set_header("a", "1");
    f.set_request_id(99);
    let back = decode_one(&encode(&f));
    assert_eq!(
        (back.request_id(), back.header("a"), back.header("service")),
        (99, Some("1"), Some(SERVICE))
    );
}

#[test]
fn duplicate_keys_last_wins_and_set_dedups() {
    let f = BoltFrame::builder(FrameKind::Request)
        .header("k", "1")
        .header("j", "x")
        .header("k", "2")
        .build()
        .expect("builds");
    assert_eq!(f.header("k"), Some("2"));
    assert_eq!(headers(&f).len(), 3);
    let mut g = f.clone();
    g.set_header("k", "3");
    let back = decode_one(&encode(&g));
    assert_eq!(
        headers(&back),
        vec![("k".into(), "3".into()), ("j".into(), "x".into())]
    );
    let mut h = f;
    assert!(h.remove_header("k"));
    assert_eq!(
        headers(&decode_one(&encode(&h))),
        vec![("j".into(), "x".into())]
    );
}

#[test]
fn invalid_utf8_value_is_invisible_but_preserved() {
    let mut map = hs(b"bin");
    map.extend(hs(&[0xff, 0xfe]));
    map.extend(hs(b"ok"));
    map.extend(hs(b"yes"));
    let bytes = v1_request_with_map(1, &map);
    let mut f = decode_one(&bytes);
    assert_eq!(f.header("bin"), None);
    assert_eq!(headers(&f), vec![("ok".into(), "yes".into())]);
    assert_eq!(encode(&f), bytes);
    // Editing another header keeps the binary value on the wire.
    f.set_header("ok", "no");
    let out = encode(&f);
    assert!(out.windows(6).any(|w| w == [0, 0, 0, 2, 0xff, 0xfe]));
    assert_eq!(decode_one(&out).header("ok"), Some("no"));
}

#[test]
fn routing_variables() {
    let f = BoltFrame::builder(FrameKind::Request)
        .header("sofa_head_target_service", "a.B:1.0")
        .header("sofa_head_method_name", "plus")
        .build()
        .expect("builds");
    assert_eq!(f.variable("service").as_deref(), Some("a.B:1.0"));
    assert_eq!(f.variable("method").as_deref(), Some("plus"));
    assert_eq!(f.variable("protocol").as_deref(), Some("bolt"));
    assert_eq!(f.variable("host"), None);
    let g = BoltFrame::builder(FrameKind::Request)
        .header("sofa_head_target_service", "a.B:1.0")
        .header("service", "c.D:2.0")
        .build()
        .expect("builds");
    assert_eq!(g.variable("service").as_deref(), Some("c.D:2.0"));
}

#[test]
fn header_map_overflow_is_an_encode_error() {
    let mut f = decode_one(&fx("bolt_v1_request_hessian2"));
    f.set_header("big", &"x".repeat(0x7fff));
    let mut dst = bytes::BytesMut::new();
    assert!(matches!(f.encode(&mut dst), Err(CodecError::Encode(_))));
}

/// The byte views the router's exact matches read agree with the `str` views, a value
/// that is not UTF-8 included (absent in both, so `service` falls back alike).
#[test]
fn byte_views_agree_with_str_views() {
    let mut map = Vec::new();
    for (k, v) in [
        (&b"service"[..], &b"bad\xff"[..]),
        (b"sofa_head_target_service", b"fallback:1.0"),
        (b"sofa_head_method_name", b"sayHello"),
        (b"x-accented", "caf\u{e9}".as_bytes()),
    ] {
        map.extend(hs(k));
        map.extend(hs(v));
    }
    let odd = decode_one(&v1_request_with_map(1, &map));
    assert_eq!(odd.variable("service").as_deref(), Some("fallback:1.0"));
    let mut frames = vec![odd];
    for name in [
        "bolt_v1_request_hessian2",
        "bolt_v2_ver1_request",
        "bolt_v2_ver2_crc_request",
        "bolt_v1_response_success",
        "bolt_v1_heartbeat",
    ] {
        frames.push(decode_one(&fx(name)));
    }
    let mut edited = decode_one(&fx("bolt_v1_request_hessian2"));
    edited.set_header("service", "edited:2.0");
    frames.push(edited);
    for f in &frames {
        for name in [
            "service",
            "method",
            "protocol",
            "path",
            "x-accented",
            "absent",
        ] {
            let bytes = f.variable_bytes(name).map(|v| v.into_owned());
            let text = f.variable(name).map(|v| v.as_bytes().to_vec());
            assert_eq!(bytes, text, "variable {name}");
        }
        for name in ["service", "sofa_head_method_name", "x-accented", "absent"] {
            assert_eq!(
                f.header_bytes(name),
                f.header(name).map(str::as_bytes),
                "header {name}"
            );
        }
    }
}
