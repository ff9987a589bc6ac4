//! The hessian2 reader and writer on their own: string forms and chunking, 4-byte UTF-8,
//! number forms, nested maps, class definitions, objects and refs, truncation at every
//! cut, depth and count limits.

use bytes::BytesMut;
use strait_codec_dubbo::hessian2::writer::{write_int, write_null, write_string, write_string_map};
use strait_codec_dubbo::hessian2::{Error, HString, MAX_DEPTH, Reader};

use crate::cases_body::every_bytecode;

fn written(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut out = BytesMut::new();
    f(&mut out);
    out.to_vec()
}

fn read(bytes: &[u8]) -> String {
    let mut r = Reader::new(bytes);
    let s = r.read_string().expect("reads").into_string();
    assert!(r.is_at_end(), "trailing bytes");
    s
}

#[test]
fn writer_picks_the_string_form_by_utf16_length() {
    for (units, header) in [
        (0usize, vec![0x00]),
        (31, vec![0x1f]),
        (32, vec![0x30, 0x20]),
        (1023, vec![0x33, 0xff]),
        (1024, vec![b'S', 0x04, 0x00]),
        (0x8000, vec![b'S', 0x80, 0x00]),
    ] {
        let s = "a".repeat(units);
        let out = written(|o| write_string(o, &s));
        assert_eq!(&out[..header.len()], &header[..], "{units}");
        assert_eq!(out.len(), header.len() + units, "{units}");
        assert_eq!(read(&out), s);
    }
    // "é" is one unit in two bytes: 31 of them still take the short form.
    let s = "é".repeat(31);
    let out = written(|o| write_string(o, &s));
    assert_eq!((out[0], out.len()), (0x1f, 63));
}

#[test]
fn long_strings_are_chunked_at_0x8000_units() {
    let s = "b".repeat(0x8001);
    let out = written(|o| write_string(o, &s));
    assert_eq!(&out[..3], &[b'R', 0x80, 0x00]);
    assert_eq!(&out[3 + 0x8000..], &[0x01, b'b']);
    assert_eq!(read(&out), s);
    let s = "c".repeat(3 * 0x8000 + 2000);
    let out = written(|o| write_string(o, &s));
    let chunk = 3 + 0x8000;
    assert_eq!(&out[chunk..chunk + 3], &[b'R', 0x80, 0x00]);
    assert_eq!(&out[3 * chunk..3 * chunk + 3], &[b'S', 0x07, 0xd0]);
    assert_eq!(read(&out), s);
}

#[test]
fn chunks_never_split_a_surrogate_pair() {
    // 0x7fff units of 'a', then U+1F600 (two units), then 'b'.
    let s = format!("{}😀b", "a".repeat(0x7fff));
    let out = written(|o| write_string(o, &s));
    assert_eq!(
        &out[..3],
        &[b'R', 0x7f, 0xff],
        "the pair moves to the next chunk"
    );
    let tail = &out[3 + 0x7fff..];
    // Java's encoding: each surrogate half as a 3-byte sequence (D83D, DE00).
    assert_eq!(tail, &[0x03, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80, b'b']);
    assert_eq!(read(&out), s);
}

#[test]
fn four_byte_utf8_counts_two_units() {
    // Lenient reading of proper UTF-8: U+1F600 is one 4-byte sequence, 2 units.
    let bytes = [0x03, 0xf0, 0x9f, 0x98, 0x80, b'x'];
    let mut r = Reader::new(&bytes);
    assert_eq!(
        r.read_string(),
        Ok(HString::Borrowed {
            at: 1, text: "😀x"
        })
    );
    assert_eq!(
        Reader::new(&[0x01, 0xf0, 0x9f, 0x98, 0x80]).read_string(),
        Err(Error::BadUtf8 { at: 1 })
    );
    assert_eq!(
        Reader::new(&[0x02, 0xf0, 0x9f, 0x98]).read_string(),
        Err(Error::Truncated { at: 4 })
    );
    assert_eq!(
        Reader::new(&[0x01, 0xf8, 0x80, 0x80, 0x80]).read_string(),
        Err(Error::BadUtf8 { at: 1 })
    );
    // Java-style halves decode to the same text, owned.
    let cesu = [0x02, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80];
    assert_eq!(
        Reader::new(&cesu).read_string(),
        Ok(HString::Owned("😀".into()))
    );
}

#[test]
fn borrowed_strings_know_where_they_are() {
    let bytes = b"\x01a\x30\x02bcS\x00\x01dR\x00\x01eS\x00\x01f";
    let mut r = Reader::new(bytes);
    assert_eq!(r.read_string().unwrap().range(), Some(1..2));
    assert_eq!(r.read_string().unwrap().range(), Some(4..6));
    assert_eq!(r.read_string().unwrap().range(), Some(9..10));
    let chunked = r.read_string().unwrap();
    assert_eq!((chunked.range(), chunked.as_str()), (None, "ef"));
    assert!(r.is_at_end());
}

#[test]
fn writer_int_forms_and_round_trip() {
    let cases: [(i32, &[u8]); 14] = [
        (0, &[0x90]),
        (-16, &[0x80]),
        (47, &[0xbf]),
        (48, &[0xc8, 0x30]),
        (-17, &[0xc7, 0xef]),
        (2047, &[0xcf, 0xff]),
        (-2048, &[0xc0, 0x00]),
        (2048, &[0xd4, 0x08, 0x00]),
        (-2049, &[0xd3, 0xf7, 0xff]),
        (262_143, &[0xd7, 0xff, 0xff]),
        (-262_144, &[0xd0, 0x00, 0x00]),
        (262_144, &[b'I', 0x00, 0x04, 0x00, 0x00]),
        (i32::MAX, &[b'I', 0x7f, 0xff, 0xff, 0xff]),
        (i32::MIN, &[b'I', 0x80, 0x00, 0x00, 0x00]),
    ];
    for (v, bytes) in cases {
        assert_eq!(written(|o| write_int(o, v)), bytes, "{v}");
        assert_eq!(Reader::new(bytes).read_int(), Ok(v));
    }
    for v in (-300_000..300_000).step_by(997) {
        let out = written(|o| write_int(o, v));
        assert_eq!(Reader::new(&out).read_int(), Ok(v));
    }
    assert_eq!(written(write_null), b"N");
    let map = written(|o| write_string_map(o, [("a", "b"), ("c", "")]));
    assert_eq!(map, b"H\x01a\x01b\x01c\x00Z");
}

#[test]
fn doubles_booleans_and_null() {
    let cases: [(&[u8], f64); 7] = [
        (&[0x5b], 0.0),
        (&[0x5c], 1.0),
        (&[0x5d, 0x80], -128.0),
        (&[0x5e, 0x80, 0x00], -32768.0),
        (&[0x5f, 0x00, 0x00, 0x2e, 0xe0], 12.0),
        (
            &[b'D', 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18],
            std::f64::consts::PI,
        ),
        (&[b'D', 0, 0, 0, 0, 0, 0, 0, 0], 0.0),
    ];
    for (bytes, v) in cases {
        assert_eq!(Reader::new(bytes).read_double(), Ok(v), "{bytes:02x?}");
    }
    let mut r = Reader::new(b"TFN");
    assert_eq!(
        (r.read_bool(), r.read_bool(), r.read_null()),
        (Ok(true), Ok(false), Ok(()))
    );
    assert!(r.is_at_end());
    assert_eq!(
        Reader::new(b"N").read_bool(),
        Err(Error::Unexpected {
            expected: "boolean",
            found: b'N',
            at: 0
        })
    );
    assert_eq!(Reader::new(b"N").read_string_or_null(), Ok(None));
}

#[test]
fn nested_maps_keep_only_string_pairs() {
    let bytes = b"H\x02k1\x02v1\x02k2H\x01a\x01bZ\x91\x01x\x02k3\x02v3Z";
    let mut r = Reader::new(bytes);
    let map = r.read_string_map().unwrap().unwrap();
    let map: Vec<_> = map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(map, [("k1", "v1"), ("k3", "v3")]);
    assert!(r.is_at_end());
    let mut entries = Vec::new();
    let info = Reader::new(bytes)
        .read_map(|e| entries.push((e.key.map(|k| k.into_string()), e.raw)))
        .unwrap()
        .unwrap();
    assert_eq!((info.span, info.open), (0..bytes.len(), 0..1));
    assert_eq!(
        entries,
        [
            (Some("k1".to_string()), 1..7),
            (Some("k2".to_string()), 7..16),
            (None, 16..19),
            (Some("k3".to_string()), 19..25),
        ]
    );
    // A map key with a value missing before `Z` is an error.
    assert_eq!(
        Reader::new(b"H\x01kZ").read_string_map(),
        Err(Error::StrayEnd { at: 3 })
    );
    assert_eq!(
        Reader::new(b"H\x01k\x01vZ")
            .read_string_map()
            .map(|m| m.map(|m| m.len())),
        Ok(Some(1))
    );
}

#[test]
fn string_lists_in_every_form() {
    for bytes in [
        &b"V\x04[str\x92\x01a\x01b"[..],
        b"X\x92\x01a\x01b",
        b"r\x04[str\x01a\x01b",
        b"z\x01a\x01b",
        b"U\x04[str\x01a\x91\x01bZ",
        b"W\x01a\x01bZ",
    ] {
        let mut r = Reader::new(bytes);
        let list = r.read_string_list().unwrap().unwrap();
        let list: Vec<_> = list.iter().map(HString::as_str).collect();
        assert_eq!(list, ["a", "b"], "{bytes:02x?}");
        assert!(r.is_at_end());
    }
    assert_eq!(Reader::new(b"N").read_string_list(), Ok(None));
    assert_eq!(
        Reader::new(b"X\x8f").read_string_list(),
        Err(Error::BadLength { len: -1, at: 1 })
    );
}

#[test]
fn class_definitions_objects_and_refs() {
    // def 0 {a, b}; def 1 {c}; instance of 1 holding an instance of 0; a ref; an 'O' form.
    let bytes = b"C\x01T\x92\x01a\x01bC\x01U\x91\x01c\x61\x60\x01x\x91Q\x90O\x91\x90";
    let mut r = Reader::new(bytes);
    assert_eq!(r.skip_value(), Ok(()));
    assert_eq!(r.class_field_counts(), &[2, 1]);
    assert_eq!(r.position(), 19);
    assert_eq!(r.skip_value(), Ok(())); // Q 0
    assert_eq!(r.skip_value(), Ok(())); // O 1 with one field
    assert!(r.is_at_end());
    // A class definition in front of a string is consumed by `read_string` too.
    let mut r = Reader::new(b"C\x01T\x90\x02hi");
    assert_eq!(
        r.read_string().map(HString::into_string),
        Ok("hi".to_string())
    );
    assert_eq!(r.class_field_counts(), &[0]);
    // Errors.
    assert_eq!(
        Reader::new(b"\x60").skip_value(),
        Err(Error::UndefinedClass { index: 0, at: 0 })
    );
    assert_eq!(
        Reader::new(b"O\x8f").skip_value(),
        Err(Error::UndefinedClass { index: -1, at: 1 })
    );
    assert_eq!(
        Reader::new(b"C\x01T\x8f").skip_value(),
        Err(Error::BadLength { len: -1, at: 3 })
    );
    assert_eq!(
        Reader::new(b"C\x01TI\x7f\xff\xff\xff").skip_value(),
        Err(Error::Truncated { at: 8 })
    );
    assert_eq!(
        Reader::new(b"C\x01T\x90").skip_value(),
        Err(Error::Truncated { at: 4 })
    );
}

#[test]
fn reserved_bytes_and_stray_end() {
    for byte in [0x40u8, 0x45, 0x47, 0x50] {
        assert_eq!(
            Reader::new(&[byte]).skip_value(),
            Err(Error::Reserved { byte, at: 0 })
        );
        assert_eq!(
            Reader::new(&[b'W', 0x90, byte, b'Z']).skip_value(),
            Err(Error::Reserved { byte, at: 2 })
        );
    }
    assert_eq!(
        Reader::new(b"Z").skip_value(),
        Err(Error::StrayEnd { at: 0 })
    );
    assert_eq!(
        Reader::new(b"X\x91Z").skip_value(),
        Err(Error::StrayEnd { at: 2 })
    );
    assert_eq!(
        Reader::new(b"H\x90Z").skip_value(),
        Err(Error::StrayEnd { at: 2 })
    );
    assert_eq!(
        Reader::new(b"M\x40Z").skip_value(),
        Err(Error::Unexpected {
            expected: "type name or type reference",
            found: 0x40,
            at: 1
        })
    );
}

#[test]
fn truncated_values_fail_at_every_cut() {
    let mut samples = every_bytecode();
    samples.push((
        "chunked",
        written(|o| write_string(o, &"é".repeat(0x8000 + 5))),
    ));
    samples.push((
        "map",
        written(|o| write_string_map(o, [("k", "v"), ("é", "😀")])),
    ));
    let mut cuts = 0;
    for (name, value) in &samples {
        // Every cut of the small samples; of the 64 KiB chunked string, a stride plus
        // every cut around the chunk boundary.
        let boundary = 3 + 2 * 0x8000;
        let every: Vec<usize> = if value.len() < 1000 {
            (0..value.len()).collect()
        } else {
            (0..value.len())
                .filter(|c| c % 101 == 0 || c.abs_diff(boundary) < 8)
                .collect()
        };
        for cut in every {
            let part = &value[..cut];
            let r = Reader::new(part).skip_value();
            assert!(
                matches!(r, Err(Error::Truncated { .. })),
                "{name} cut {cut}: {r:?}"
            );
            let _ = Reader::new(part).read_string();
            let _ = Reader::new(part).read_string_map();
            let _ = Reader::new(part).read_string_list();
            let _ = Reader::new(part).read_long();
            let _ = Reader::new(part).read_double();
            cuts += 1;
        }
    }
    assert_eq!(cuts, 895);
}

#[test]
fn depth_limit_for_every_container() {
    for (open, close) in [
        (&b"W"[..], &b"Z"[..]),
        (b"\x79", b""),
        (b"H\x01k", b"Z"),
        (b"U\x01t", b"Z"),
        (b"V\x01t\x91", b""),
    ] {
        let deep: Vec<u8> = [open.repeat(10_000), vec![0x90], close.repeat(10_000)].concat();
        let r = Reader::new(&deep).skip_value();
        assert_eq!(
            r,
            Err(Error::TooDeep {
                max: MAX_DEPTH,
                at: 64 * open.len()
            }),
            "{open:02x?}"
        );
        let ok: Vec<u8> = [open.repeat(64), vec![0x90], close.repeat(64)].concat();
        let mut r = Reader::new(&ok);
        assert_eq!(r.skip_value(), Ok(()), "{open:02x?}");
        assert!(r.is_at_end());
    }
    // Objects nest too.
    let mut deep = b"C\x01T\x91\x01a".to_vec();
    deep.extend(vec![0x60; 10_000]);
    deep.push(0x90);
    assert_eq!(
        Reader::new(&deep).skip_value(),
        Err(Error::TooDeep {
            max: 64,
            at: 6 + 64
        })
    );
    // A map value inside `read_string_map` has one level less.
    let ok: Vec<u8> = [
        b"H\x01k".to_vec(),
        b"W".repeat(63),
        vec![0x90],
        b"Z".repeat(63),
        b"Z".to_vec(),
    ]
    .concat();
    assert_eq!(
        Reader::new(&ok)
            .read_string_map()
            .map(|m| m.map(|m| m.len())),
        Ok(Some(0))
    );
    let deep: Vec<u8> = [
        b"H\x01k".to_vec(),
        b"W".repeat(64),
        vec![0x90],
        b"Z".repeat(64),
        b"Z".to_vec(),
    ]
    .concat();
    assert_eq!(
        Reader::new(&deep).read_string_map(),
        Err(Error::TooDeep {
            max: 64,
            at: 3 + 63
        })
    );
}

#[test]
fn absurd_lengths_fail_without_work() {
    assert_eq!(
        Reader::new(b"XI\x7f\xff\xff\xff").skip_value(),
        Err(Error::Truncated { at: 6 })
    );
    assert_eq!(
        Reader::new(b"X\x8f").skip_value(),
        Err(Error::BadLength { len: -1, at: 1 })
    );
    assert_eq!(
        Reader::new(b"S\xff\xff").read_string(),
        Err(Error::Truncated { at: 3 })
    );
    assert_eq!(
        Reader::new(b"B\xff\xff").skip_value(),
        Err(Error::Truncated { at: 3 })
    );
    // Many empty chunks are fine (each takes 3 bytes).
    let mut many = b"R\x00\x00".repeat(10_000);
    many.extend(b"\x01a");
    assert_eq!(
        Reader::new(&many).read_string().map(HString::into_string),
        Ok("a".to_string())
    );
}
