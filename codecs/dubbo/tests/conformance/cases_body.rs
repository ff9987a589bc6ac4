//! `wire-formats.md` §6.2: Dubbo cases D17-D32 (lengths, serialization ids and the
//! hessian2 body: string and number forms, skipping, limits, metadata rules).

use bytes::BytesMut;
use strait_codec_dubbo::hessian2::{Error, Reader};
use strait_codec_dubbo::{DubboFrame, MetadataError, argument_count, decode_frame, protocol};
use strait_codec_framework::{CodecError, Frame, FrameKind, Limits, ProxyFailure};

use crate::support::*;

/// A two-way request with descriptor `desc`, arguments `args` and `{group: g}`.
fn request_with_args(desc: &str, args: &[u8]) -> Vec<u8> {
    let body = request_body(
        "a.B",
        Some("1.0"),
        "m",
        desc,
        args,
        &hmap(&[("group", "g")]),
    );
    frame(0xc2, 0, 11, &body)
}

/// Offset of the arguments in a body built by [`request_with_args`] for `desc`.
fn args_offset(desc: &str) -> usize {
    request_body("a.B", Some("1.0"), "m", desc, &[], &[]).len()
}

/// The error text of the proxy's CodecError answer to `f`.
fn bad_request_text(f: &DubboFrame) -> String {
    let reply = protocol()
        .error_response(f, ProxyFailure::CodecError)
        .expect("a two-way request is answered");
    let reply = decode_one(&encode(reply.as_ref()));
    assert_eq!(
        (reply.status(), reply.request_id()),
        (Some(40), f.request_id())
    );
    reply.error_message().unwrap().to_string()
}

#[test]
fn d17_zero_length_body() {
    let f = decode_one(&frame(0xc2, 0, 12, &[]));
    assert_eq!((f.kind(), f.body().len()), (FrameKind::Request, 0));
    assert!(f.metadata_unreadable());
    assert_eq!(
        f.metadata_error(),
        Some(&MetadataError::Hessian {
            field: "dubbo version",
            source: Error::Truncated { at: 0 },
        })
    );
    assert_eq!(
        bad_request_text(&f),
        "0|bad request: dubbo version: input ends inside a value (offset 0) (strait)"
    );
    // Responses and events with an empty body are framed too.
    assert_eq!(
        decode_one(&frame(0x02, 20, 12, &[])).kind(),
        FrameKind::Response
    );
    assert_eq!(
        decode_one(&frame(0xe2, 0, 12, &[])).kind(),
        FrameKind::GoAway
    );
}

#[test]
fn d18_oversize_length_is_refused_before_buffering() {
    let mut b = frame(0xc2, 0, 1, &[]);
    b[12..16].copy_from_slice(&0x0101_0101u32.to_be_bytes());
    assert_eq!(
        fatal(&b),
        CodecError::FrameTooLarge {
            len: 16 + 0x0101_0101,
            max: Limits::DEFAULT_MAX_FRAME_SIZE,
        }
    );
    let limits = Limits {
        max_frame_size: 1000,
    };
    b[12..16].copy_from_slice(&985u32.to_be_bytes());
    assert_eq!(
        fatal_with(&b, limits),
        CodecError::FrameTooLarge {
            len: 1001,
            max: 1000
        }
    );
    b[12..16].copy_from_slice(&984u32.to_be_bytes());
    let mut src = BytesMut::from(&b[..]);
    assert!(matches!(decode_frame(&mut src, limits), Ok(None)));
    // Responses too: Java answers itself with CLIENT_ERROR; a proxy closes.
    b[2] = 0x02;
    b[12..16].copy_from_slice(&985u32.to_be_bytes());
    assert!(matches!(
        fatal_with(&b, limits),
        CodecError::FrameTooLarge { .. }
    ));
}

#[test]
fn d19_negative_length_closes() {
    let mut b = frame(0xc2, 0, 1, &[]);
    for (len, value) in [(0x8000_0000u32, i64::from(i32::MIN)), (0xffff_ffff, -1)] {
        b[12..16].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            fatal(&b),
            CodecError::BadLength {
                field: "body length",
                value,
            }
        );
    }
}

#[test]
fn d20_other_serialization_ids_forward_without_metadata() {
    let body = fx("dubbo_req_body_hessian2");
    // 0x8f: request, oneway, serialization 15.
    let f = decode_one(&frame(0x8f, 0, 3, &body));
    assert_eq!((f.kind(), f.serialization_id()), (FrameKind::Oneway, 15));
    assert!(f.metadata_unreadable());
    assert_eq!(f.metadata_error(), Some(&MetadataError::Serialization(15)));
    assert_eq!(
        (f.variable("service"), f.header("group"), f.timeout()),
        (None, None, None)
    );
    // Two-way: answered 40 when routing needs the metadata.
    let bytes = frame(0xcf, 0, 3, &body);
    let f = decode_one(&bytes);
    assert_eq!(f.kind(), FrameKind::Request);
    assert_eq!(
        bad_request_text(&f),
        "0|bad request: serialization id 15 is not hessian2 (2) (strait)"
    );
    assert_eq!(encode(&f), bytes, "forwarded unchanged");
    // A 0x1f response passes through.
    let bytes = frame(0x1f, 20, 3, b"\x91\x01x");
    let f = decode_one(&bytes);
    assert_eq!((f.kind(), f.serialization_id()), (FrameKind::Response, 31));
    assert!(!f.metadata_unreadable());
    assert_eq!(f.response_value(), None);
    assert_eq!(encode(&f), bytes);
}

#[test]
fn d21_corrupt_hessian_body() {
    let f = decode_one(&frame(0xc2, 0, 21, &[0xff, 0xfe, 0xfd, 0xfc]));
    assert!(f.metadata_unreadable());
    assert_eq!(
        f.metadata_error(),
        Some(&MetadataError::Hessian {
            field: "dubbo version",
            source: Error::Unexpected {
                expected: "string",
                found: 0xff,
                at: 0,
            },
        })
    );
    assert_eq!(
        bad_request_text(&f),
        "0|bad request: dubbo version: expected string, found bytecode 0xff at offset 0 (strait)"
    );
    // For a response it is only a missing value: nothing needs it.
    let f = decode_one(&frame(0x02, 20, 21, &[0xff, 0xfe, 0xfd, 0xfc]));
    assert!(!f.metadata_unreadable());
    assert_eq!(
        f.metadata_error(),
        Some(&MetadataError::Hessian {
            field: "result flag",
            source: Error::Unexpected {
                expected: "int",
                found: 0xff,
                at: 0,
            },
        })
    );
}

#[test]
fn d22_string_forms_read_the_same() {
    let forms: [&[u8]; 4] = [
        b"\x05hello",
        b"\x30\x05hello",
        b"S\x00\x05hello",
        b"R\x00\x02heR\x00\x00\x03llo",
    ];
    for bytes in forms {
        let mut r = Reader::new(bytes);
        assert_eq!(r.read_string().unwrap().as_str(), "hello", "{bytes:02x?}");
        assert!(r.is_at_end());
    }
    let chunked = b"R\x00\x07hello, \x05world";
    assert_eq!(
        Reader::new(chunked).read_string().unwrap().as_str(),
        "hello, world"
    );
    assert_eq!(
        Reader::new(&[0x01, 0xc3, 0x83])
            .read_string()
            .unwrap()
            .as_str(),
        "Ã"
    );
    // As the method field of a request.
    for m in [
        &b"\x30\x08sayHello"[..],
        b"S\x00\x08sayHello",
        b"R\x00\x03sayS\x00\x05Hello",
    ] {
        let mut body = hs("2.0.2");
        body.extend(hs("a.B"));
        body.push(b'N');
        body.extend_from_slice(m);
        body.extend(hs(""));
        body.extend(hmap(&[("group", "g")]));
        let f = decode_one(&frame(0xc2, 0, 1, &body));
        assert_eq!(f.method(), Some("sayHello"));
        assert_eq!(f.header("group"), Some("g"));
    }
}

#[test]
fn d23_int_and_long_forms() {
    let ints: [(&[u8], i32); 11] = [
        (&[0x90], 0),
        (&[0x80], -16),
        (&[0xbf], 47),
        (&[0xc8, 0x00], 0),
        (&[0xc0, 0x00], -2048),
        (&[0xc7, 0x00], -256),
        (&[0xcf, 0xff], 2047),
        (&[0xd4, 0x00, 0x00], 0),
        (&[0xd0, 0x00, 0x00], -262_144),
        (&[0xd7, 0xff, 0xff], 262_143),
        (&[b'I', 0x00, 0x00, 0x01, 0x2c], 300),
    ];
    for (bytes, v) in ints {
        let mut r = Reader::new(bytes);
        assert_eq!(r.read_int(), Ok(v), "{bytes:02x?}");
        assert!(r.is_at_end());
        assert_eq!(
            Reader::new(bytes).read_long(),
            Ok(i64::from(v)),
            "ints widen"
        );
    }
    let longs: [(&[u8], i64); 12] = [
        (&[0xe0], 0),
        (&[0xd8], -8),
        (&[0xef], 15),
        (&[0xf8, 0x00], 0),
        (&[0xf0, 0x00], -2048),
        (&[0xf7, 0x00], -256),
        (&[0xff, 0xff], 2047),
        (&[0x3c, 0x00, 0x00], 0),
        (&[0x38, 0x00, 0x00], -262_144),
        (&[0x3f, 0xff, 0xff], 262_143),
        (&[0x59, 0x00, 0x00, 0x01, 0x2c], 300),
        (&[b'L', 0, 0, 0, 0, 0, 0, 0x01, 0x2c], 300),
    ];
    for (bytes, v) in longs {
        let mut r = Reader::new(bytes);
        assert_eq!(r.read_long(), Ok(v), "{bytes:02x?}");
        assert!(r.is_at_end());
    }
    assert_eq!(
        Reader::new(&[0xe0]).read_int(),
        Err(Error::Unexpected {
            expected: "int",
            found: 0xe0,
            at: 0
        })
    );
    assert_eq!(
        Reader::new(&[b'I', 0]).read_int(),
        Err(Error::Truncated { at: 2 })
    );
}

/// One sample value of every row of the §2.6 table.
pub fn every_bytecode() -> Vec<(&'static str, Vec<u8>)> {
    let d8 = [0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18];
    let mut v: Vec<(&'static str, Vec<u8>)> = vec![
        ("short string", b"\x03abc".to_vec()),
        ("binary 0x20", vec![0x23, 1, 2, 3]),
        ("medium string", b"\x30\x03abc".to_vec()),
        ("binary 0x34", vec![0x34, 3, 1, 2, 3]),
        ("long 0x38", vec![0x3c, 1, 2]),
        (
            "binary chunks",
            vec![b'A', 0, 2, 0xaa, 0xbb, b'B', 0, 1, 0xcc],
        ),
        ("binary chunk + short", vec![b'A', 0, 1, 0xaa, 0x21, 0xbb]),
        (
            "binary chunk + medium",
            vec![b'A', 0, 1, 0xaa, 0x34, 1, 0xbb],
        ),
        ("class def + O", b"C\x01T\x91\x01aO\x90\x03xyz".to_vec()),
        ("double", [&[b'D'][..], &d8].concat()),
        ("false", vec![b'F']),
        ("true", vec![b'T']),
        ("null", vec![b'N']),
        ("untyped map", b"H\x01k\x91\x92\x01vZ".to_vec()),
        ("int", vec![b'I', 0, 0, 1, 0]),
        ("date ms", vec![0x4a, 0, 0, 0x01, 0x8b, 0, 0, 0, 0]),
        ("date min", vec![0x4b, 0, 0x1b, 0x9f, 0x20]),
        ("long", vec![b'L', 0, 0, 0, 0, 0, 0, 0, 1]),
        ("typed map", b"M\x04Type\x01k\x01vZ".to_vec()),
        ("typed map, type ref", b"M\x90Z".to_vec()),
        ("ref", vec![b'Q', 0x90]),
        ("chunked string", b"R\x00\x01aS\x00\x01b".to_vec()),
        ("final string", b"S\x00\x02ab".to_vec()),
        ("typed var list", b"U\x01t\x91\x92Z".to_vec()),
        ("typed fixed list", b"V\x01t\x92\x91\x92".to_vec()),
        ("untyped var list", b"W\x91Z".to_vec()),
        ("untyped fixed list", b"X\x92\x91\x92".to_vec()),
        ("long as int32", vec![b'Y', 0, 0, 0, 1]),
        ("double 0", vec![0x5b]),
        ("double 1", vec![0x5c]),
        ("double byte", vec![0x5d, 0x80]),
        ("double short", vec![0x5e, 0x80, 0x00]),
        ("double mills", vec![0x5f, 0, 0, 0x2e, 0xe0]),
        ("compact object", b"C\x01T\x92\x01a\x01b`\x91\x92".to_vec()),
        ("compact typed list", b"r\x01t\x91\x92".to_vec()),
        ("compact untyped list", vec![0x7a, 0x91, 0x92]),
        ("int 1 byte", vec![0xa0]),
        ("int 2 bytes", vec![0xc9, 0x01]),
        ("int 3 bytes", vec![0xd5, 0x01, 0x02]),
        ("long 1 byte", vec![0xe5]),
        ("long 2 bytes", vec![0xf9, 0x01]),
        ("nested", b"H\x01kW\x7a\x90\x91M\x01t\x01x\x01yZZZ".to_vec()),
    ];
    v.push(("empty string", vec![0x00]));
    v
}

#[test]
fn d24_every_bytecode_is_skipped_exactly() {
    let desc = "Ljava/lang/Object;";
    let at = args_offset(desc);
    for (name, value) in every_bytecode() {
        let f = decode_one(&request_with_args(desc, &value));
        assert_eq!(f.metadata_error(), None, "{name}");
        assert_eq!(f.arguments().as_deref(), Some(&value[..]), "{name}");
        assert_eq!(f.header("group"), Some("g"), "{name}");
        let mut r = Reader::new(&value);
        assert_eq!(r.skip_value(), Ok(()), "{name}");
        assert!(r.is_at_end(), "{name}");
    }
    for byte in [0x40, 0x45, 0x47, 0x50] {
        let f = decode_one(&request_with_args(desc, &[byte]));
        assert_eq!(
            f.metadata_error(),
            Some(&MetadataError::Hessian {
                field: "arguments",
                source: Error::Reserved { byte, at },
            })
        );
        assert!(f.metadata_unreadable());
    }
    let f = decode_one(&request_with_args(desc, b"Z"));
    assert_eq!(
        f.metadata_error(),
        Some(&MetadataError::Hessian {
            field: "arguments",
            source: Error::StrayEnd { at },
        })
    );
}

#[test]
fn d25_truncated_body_is_an_error_at_every_cut() {
    let body = fx("dubbo_req_body_hessian2");
    for cut in 0..body.len() {
        let f = decode_one(&frame(0xc2, 0, 1, &body[..cut]));
        if cut == 81 {
            // The body ends right after the arguments: no attachments at all.
            assert_eq!(f.metadata_error(), None);
            assert_eq!(headers(&f), []);
            assert_eq!(f.method(), Some("sayHello"));
        } else {
            assert!(f.metadata_unreadable(), "cut {cut}");
            assert!(
                matches!(
                    f.metadata_error(),
                    Some(MetadataError::Hessian {
                        source: Error::Truncated { .. },
                        ..
                    })
                ),
                "cut {cut}: {:?}",
                f.metadata_error()
            );
        }
    }
    let obj = fx("dubbo_req_body_object_arg");
    for cut in 82..160 {
        let f = decode_one(&frame(0xc2, 0, 1, &obj[..cut]));
        assert!(
            matches!(
                f.metadata_error(),
                Some(MetadataError::Hessian {
                    field: "arguments",
                    source: Error::Truncated { .. }
                })
            ),
            "cut {cut}: {:?}",
            f.metadata_error()
        );
    }
}

#[test]
fn d26_deep_nesting_hits_the_depth_limit() {
    let desc = "Ljava/lang/Object;";
    let mut args = vec![0x57; 10_000];
    args.extend(vec![b'Z'; 10_000]);
    let f = decode_one(&request_with_args(desc, &args));
    assert_eq!(
        f.metadata_error(),
        Some(&MetadataError::Hessian {
            field: "arguments",
            source: Error::TooDeep {
                max: 64,
                at: args_offset(desc) + 64,
            },
        })
    );
    // 64 levels are fine.
    let mut ok = vec![0x57; 64];
    ok.extend(vec![b'Z'; 64]);
    let f = decode_one(&request_with_args(desc, &ok));
    assert_eq!((f.metadata_error(), f.header("group")), (None, Some("g")));
}

#[test]
fn d27_object_of_undefined_class() {
    let desc = "Ljava/lang/Object;";
    let at = args_offset(desc);
    let f = decode_one(&request_with_args(desc, &[0x61]));
    assert_eq!(
        f.metadata_error(),
        Some(&MetadataError::Hessian {
            field: "arguments",
            source: Error::UndefinedClass { index: 1, at },
        })
    );
    // Class 0 exists, class 1 does not.
    let def = b"C\x01T\x90";
    let f = decode_one(&request_with_args(
        "Ljava/lang/Object;Ljava/lang/Object;",
        &[&def[..], &[0x60, 0x61]].concat(),
    ));
    assert!(matches!(
        f.metadata_error(),
        Some(MetadataError::Hessian {
            source: Error::UndefinedClass { index: 1, .. },
            ..
        })
    ));
    assert_eq!(
        Reader::new(b"O\x95").skip_value(),
        Err(Error::UndefinedClass { index: 5, at: 1 })
    );
}

#[test]
fn d28_null_or_empty_version() {
    let body = request_body("a.B", None, "m", "", &[], &hmap(&[]));
    let f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!((f.service_version(), f.variable("version")), (None, None));
    assert_eq!(f.variable("service").as_deref(), Some("a.B"));
    let body = request_body("a.B", Some(""), "m", "", &[], &hmap(&[]));
    let f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!(
        (f.service_version(), f.variable("version")),
        (Some(""), None)
    );
}

#[test]
fn d29_null_attachments_and_non_string_values() {
    let body = request_body("a.B", None, "m", "", &[], b"N");
    let f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!((f.metadata_error(), headers(&f)), (None, vec![]));
    assert_eq!(f.header("group"), None);
    let body = request_body("a.B", None, "m", "", &[], b"H\x04time\x91Z");
    let f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!((headers(&f), f.header("time")), (vec![], None));
    // Mixed: non-string keys and values are skipped, string pairs kept in order.
    let map = b"H\x01a\x01b\x91\x01x\x01cH\x01k\x01vZ\x01d\x01eZ";
    let body = request_body("a.B", None, "m", "", &[], map);
    let f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!(headers(&f), pairs(&[("a", "b"), ("d", "e")]));
    assert_eq!(f.header("c"), None);
    // The last of duplicate keys wins (Java's HashMap.put).
    let body = request_body("a.B", None, "m", "", &[], &hmap(&[("k", "1"), ("k", "2")]));
    assert_eq!(decode_one(&frame(0xc2, 0, 1, &body)).header("k"), Some("2"));
    // A string entry shadowed by a later non-string one is listed but not found.
    let body = request_body("a.B", None, "m", "", &[], b"H\x00\x01x\x00\x91Z");
    let f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!((headers(&f), f.header("")), (pairs(&[("", "x")]), None));
    // A typed map works as well.
    let body = request_body("a.B", None, "m", "", &[], b"M\x07HashMap\x01k\x01vZ");
    assert_eq!(decode_one(&frame(0xc2, 0, 1, &body)).header("k"), Some("v"));
}

#[test]
fn d30_interface_attachment_overrides_path() {
    let body = request_body("a.B", None, "m", "", &[], &hmap(&[("interface", "a.C")]));
    let f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!(f.variable("service").as_deref(), Some("a.C"));
    assert_eq!(f.variable("path").as_deref(), Some("a.B"));
    assert_eq!(f.service_path(), Some("a.B"));
    let body = request_body("a.B", None, "m", "", &[], &hmap(&[("interface", "")]));
    let f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!(f.variable("service").as_deref(), Some("a.B"));
}

#[test]
fn d31_generic_invoke_skips_three_arguments() {
    let desc = "Ljava/lang/String;[Ljava/lang/String;[Ljava/lang/Object;";
    let mut args = hs("sayHello");
    args.extend_from_slice(b"\x71\x07[string\x10java.lang.String");
    args.extend_from_slice(b"\x71\x07[object\x05world");
    let body = request_body(
        "a.B",
        None,
        "$invoke",
        desc,
        &args,
        &hmap(&[("generic", "true")]),
    );
    let f = decode_one(&frame(0xc2, 0, 1, &body));
    assert_eq!(f.method(), Some("$invoke"));
    assert_eq!(f.header("generic"), Some("true"));
    assert_eq!(f.arguments().as_deref(), Some(&args[..]));
    // The real method is the first argument.
    let args = f.arguments().unwrap();
    let mut r = Reader::new(&args);
    assert_eq!(r.read_string().unwrap().as_str(), "sayHello");
    assert_eq!(
        r.read_string_list()
            .unwrap()
            .map(|l| l.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["java.lang.String".to_string()])
    );
}

#[test]
fn d32_descriptor_counting() {
    let desc = "[I[[Ljava/lang/String;JZLa/B;";
    assert_eq!(argument_count(desc), 5);
    let args = b"\x71\x04[int\x91\x70\x08[[string\xe1TN";
    let f = decode_one(&request_with_args(desc, args));
    assert_eq!(f.metadata_error(), None);
    assert_eq!(f.arguments().as_deref(), Some(&args[..]));
    assert_eq!(f.header("group"), Some("g"));
    // One value short: the map is taken for the fifth argument, then the body ends.
    let f = decode_one(&request_with_args(desc, &args[..args.len() - 1]));
    assert_eq!(
        f.arguments().map(|a| a.len()),
        Some(args.len() - 1 + hmap(&[("group", "g")]).len())
    );
    assert_eq!(f.header("group"), None);
}

#[test]
fn builders_refuse_what_cannot_be_expressed() {
    assert!(DubboFrame::response(1).error(20, "x").build().is_err());
    assert!(
        DubboFrame::response(1)
            .status(60)
            .value("x")
            .build()
            .is_err()
    );
    assert!(
        DubboFrame::response(1)
            .error(60, "x")
            .attachment("k", "v")
            .build()
            .is_err()
    );
    let f = DubboFrame::response(1).status(70).build().unwrap();
    assert_eq!(&f.body()[..], b"N");
}
