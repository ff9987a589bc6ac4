//! Attachment editing: MOSN silently drops attachment changes on Dubbo frames; here a
//! change is always either on the wire or an encode error.

use strait_codec_dubbo::DubboFrame;
use strait_codec_framework::{CodecError, Frame};

use crate::support::*;

const MAP_AT: usize = 16 + 81; // the attachments map of the two-way fixture

#[test]
fn set_header_is_on_the_wire_and_earlier_bytes_are_identical() {
    let bytes = fx("dubbo_request_twoway");
    let mut f = decode_one(&bytes);
    f.set_header("x-route", "blue");
    f.set_request_id(9);
    assert!(f.attachments_modified());
    let out = encode(&f);
    let again = decode_one(&out);
    assert_eq!(again.header("x-route"), Some("blue"));
    assert_eq!(again.request_id(), 9);
    assert_eq!(&out[..4], &bytes[..4]);
    assert_eq!(
        &out[16..MAP_AT],
        &bytes[16..MAP_AT],
        "body before the map unchanged"
    );
    let added = hs("x-route").len() + hs("blue").len();
    assert_eq!(out.len(), bytes.len() + added);
    assert_eq!(&out[12..16], &((204 + added) as u32).to_be_bytes());
    // The old entries are copied byte for byte, the new one goes last.
    assert_eq!(
        &out[MAP_AT..bytes.len() - 1],
        &bytes[MAP_AT..bytes.len() - 1]
    );
    assert_eq!(
        &out[bytes.len() - 1..out.len() - 1],
        &[hs("x-route"), hs("blue")].concat()[..]
    );
    assert_eq!(out.last(), Some(&b'Z'));
    assert_eq!(
        headers(&again),
        pairs(&[
            ("group", "g1"),
            ("interface", "org.apache.dubbo.demo.DemoService"),
            ("path", "org.apache.dubbo.demo.DemoService"),
            ("timeout", "3000"),
            ("version", "1.0.0"),
            ("x-route", "blue"),
        ])
    );
    assert_eq!(again.method(), Some("sayHello"));
    assert_eq!(again.arguments(), f.arguments());
}

#[test]
fn replacing_and_removing_keep_wire_order() {
    let mut f = decode_one(&fx("dubbo_request_twoway"));
    f.set_header("timeout", "250");
    assert!(f.remove_header("group"));
    assert!(!f.remove_header("absent"));
    assert_eq!(f.header("timeout"), Some("250"), "visible before encode");
    let again = decode_one(&encode(&f));
    assert_eq!(
        headers(&again),
        pairs(&[
            ("interface", "org.apache.dubbo.demo.DemoService"),
            ("path", "org.apache.dubbo.demo.DemoService"),
            ("timeout", "250"),
            ("version", "1.0.0"),
        ])
    );
    assert_eq!(again.timeout(), Some(std::time::Duration::from_millis(250)));
    assert_eq!(again.variable("group"), None);
}

#[test]
fn removing_an_absent_header_keeps_the_raw_fast_path() {
    let bytes = fx("dubbo_request_twoway");
    let mut f = decode_one(&bytes);
    assert!(!f.remove_header("nope"));
    assert!(!f.attachments_modified());
    assert_eq!(encode(&f), bytes);
}

#[test]
fn duplicate_keys_collapse_into_the_first() {
    let body = request_body(
        "a.B",
        None,
        "m",
        "",
        &[],
        &hmap(&[("k", "1"), ("x", "y"), ("k", "2")]),
    );
    let mut f = decode_one(&frame(0xc2, 0, 1, &body));
    f.set_header("k", "3");
    let again = decode_one(&encode(&f));
    assert_eq!(headers(&again), pairs(&[("k", "3"), ("x", "y")]));
}

#[test]
fn null_or_missing_map_is_replaced_by_a_map() {
    let prefix = request_body("a.B", None, "m", "", &[], &[]);
    for tail in [&b"N"[..], &[]] {
        let body = [&prefix[..], tail].concat();
        let mut f = decode_one(&frame(0xc2, 0, 1, &body));
        f.set_header("k", "v");
        let out = encode(&f);
        assert_eq!(
            out,
            frame(0xc2, 0, 1, &[&prefix[..], &hmap(&[("k", "v")])].concat())
        );
    }
}

#[test]
fn non_string_entries_and_typed_maps_are_kept_byte_for_byte() {
    let map = b"M\x07HashMap\x04time\x91\x01k\x01vZ";
    let body = request_body("a.B", None, "m", "", &[], map);
    let mut f = decode_one(&frame(0xc2, 0, 1, &body));
    f.set_header("k", "w");
    f.set_header("n", "1");
    let out = encode(&f);
    let want = request_body(
        "a.B",
        None,
        "m",
        "",
        &[],
        b"M\x07HashMap\x04time\x91\x01k\x01w\x01n\x011Z",
    );
    assert_eq!(out, frame(0xc2, 0, 1, &want));
    // Removing also removes a non-string entry with that key.
    let mut f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!(f.header("time"), None);
    assert!(f.remove_header("time"));
    let out = encode(&f);
    let want = request_body("a.B", None, "m", "", &[], b"M\x07HashMap\x01k\x01vZ");
    assert_eq!(out, frame(0xc2, 0, 1, &want));
}

#[test]
fn long_and_non_ascii_values() {
    let long: String = "é😀a".repeat(20_000); // 80 000 UTF-16 units: chunked
    let mut f = decode_one(&fx("dubbo_request_twoway"));
    f.set_header("long", &long);
    f.set_header("ключ", "значение");
    let again = decode_one(&encode(&f));
    assert_eq!(again.header("long"), Some(long.as_str()));
    assert_eq!(again.header("ключ"), Some("значение"));
}

#[test]
fn response_attachments_can_be_edited_when_present() {
    let bytes = fx("dubbo_response_ok_value_with_attachments");
    let mut f = decode_one(&bytes);
    f.set_header("x", "y");
    let again = decode_one(&encode(&f));
    assert_eq!(headers(&again), pairs(&[("dubbo", "2.0.2"), ("x", "y")]));
    assert_eq!(again.response_value(), Some("Hello world"));
    assert_eq!(&encode(&f)[16..29], &bytes[16..29]);
}

/// Encodes `f` expecting the refusal `text`.
fn refused(f: &DubboFrame, text: &str) {
    let mut dst = bytes::BytesMut::new();
    assert_eq!(
        f.encode(&mut dst),
        Err(CodecError::Encode(text.to_string()))
    );
    assert!(dst.is_empty(), "nothing written");
}

#[test]
fn edits_that_cannot_be_made_fail_the_encode() {
    // Unreadable metadata: the attachment could not be added, so the frame must not go
    // out as if it had been.
    let mut f = decode_one(&frame(0xc2, 0, 1, b"\xff"));
    f.set_header("x-route", "blue");
    refused(
        &f,
        "cannot set attachment \"x-route\": the metadata is unreadable: dubbo version: expected string, found bytecode 0xff at offset 0",
    );
    // Nor can a removal be guaranteed.
    let mut f = decode_one(&frame(0xcf, 0, 1, &fx("dubbo_req_body_hessian2")));
    assert!(!f.remove_header("group"));
    refused(
        &f,
        "cannot remove attachment \"group\": the metadata is unreadable: serialization id 15 is not hessian2 (2)",
    );
    // A response whose result flag has no map.
    let mut f = decode_one(&fx("dubbo_response_ok_value"));
    f.set_header("x", "y");
    refused(
        &f,
        "cannot set attachment \"x\": the response's result flag has no attachments map",
    );
    // An event.
    let mut f = decode_one(&fx("dubbo_heartbeat_request"));
    f.set_header("x", "y");
    refused(
        &f,
        "cannot set attachment \"x\": an event carries no attachments",
    );
    // A refusal sticks even if a later change works.
    let mut f = decode_one(&fx("dubbo_response_ok_value"));
    f.set_header("x", "y");
    f.set_request_id(3);
    refused(
        &f,
        "cannot set attachment \"x\": the response's result flag has no attachments map",
    );
}

#[test]
fn removing_from_a_frame_without_a_map_is_a_no_op() {
    for name in ["dubbo_response_ok_value", "dubbo_heartbeat_request"] {
        let bytes = fx(name);
        let mut f = decode_one(&bytes);
        assert!(!f.remove_header("x"), "{name}");
        assert_eq!(encode(&f), bytes, "{name}");
    }
}

#[test]
fn entries_later_values_refer_to_stay_on_the_wire() {
    // "a" holds an object whose class definition "b" reuses; "l" a list (a ref target).
    let map = b"H\x01aC\x01T\x91\x01f\x60\x01x\x01b\x60\x01y\x01l\x79\x90\x01k\x01vZ";
    let body = request_body("a.B", None, "m", "", &[], map);
    let mut f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!(headers(&f), pairs(&[("k", "v")]));
    f.set_header("a", "s");
    f.set_header("k", "w");
    let out = encode(&f);
    let want = request_body(
        "a.B",
        None,
        "m",
        "",
        &[],
        b"H\x01aC\x01T\x91\x01f\x60\x01x\x01b\x60\x01y\x01l\x79\x90\x01k\x01w\x01a\x01sZ",
    );
    assert_eq!(
        out,
        frame(0xc2, 0, 1, &want),
        "the object stays, the new value goes last"
    );
    let again = decode_one(&out);
    assert_eq!(
        (again.header("a"), again.metadata_error()),
        (Some("s"), None)
    );
    // Removing the object would leave "b" pointing at an undefined class: refused.
    let mut f = decode_one(&frame(0xc2, 0, 1, &body));
    assert!(!f.remove_header("a"));
    refused(
        &f,
        "cannot remove attachment \"a\": it holds a class definition, list, map or object later values may refer to",
    );
    let mut f = decode_one(&frame(0xc2, 0, 1, &body));
    assert!(!f.remove_header("l"));
    assert!(matches!(
        f.encode(&mut bytes::BytesMut::new()),
        Err(CodecError::Encode(_))
    ));
    // Plain entries go as usual.
    let mut f = decode_one(&frame(0xc2, 0, 1, &body));
    assert!(f.remove_header("k"));
    let again = decode_one(&encode(&f));
    assert_eq!((headers(&again), again.metadata_error()), (vec![], None));
}

/// The byte views the router's exact matches read agree with the `str` views, for the
/// captured requests, responses and events, an edited frame and a body that cannot be
/// read.
#[test]
fn byte_views_agree_with_str_views() {
    let mut frames: Vec<DubboFrame> = [
        "dubbo_request_twoway",
        "dubbo_request_oneway",
        "dubbo_request_object_arg",
        "dubbo_heartbeat_request",
        "dubbo_response_ok_value_with_attachments",
    ]
    .iter()
    .map(|name| decode_one(&fx(name)))
    .collect();
    let mut edited = decode_one(&fx("dubbo_request_twoway"));
    edited.set_header("interface", "com.example.Edited");
    edited.set_header("group", "g1");
    frames.push(edited);
    frames.push(decode_one(&frame(0xc2, 0, 7, b"\xff not hessian")));
    for f in &frames {
        for name in [
            "service", "path", "method", "version", "group", "protocol", "x",
        ] {
            let bytes = f.variable_bytes(name).map(|v| v.into_owned());
            let text = f.variable(name).map(|v| v.as_bytes().to_vec());
            assert_eq!(bytes, text, "variable {name}");
        }
        for name in ["interface", "timeout", "group", "path", "x"] {
            assert_eq!(
                f.header_bytes(name),
                f.header(name).map(str::as_bytes),
                "header {name}"
            );
        }
    }
    assert_eq!(
        frames[5].variable_bytes("service").as_deref(),
        Some(&b"com.example.Edited"[..])
    );
}
