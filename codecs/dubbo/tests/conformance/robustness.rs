//! Deterministic no-panic sweeps: every fixture (and the MOSN vectors) truncated at every
//! byte and with every byte flipped, then mutated thousands of times at random, all fed
//! to the same property check the fuzz targets run (decode, read every view, re-encode
//! unchanged, with a new id and with an edited attachment).

use strait_codec_dubbo::fuzz_logic::{decode_roundtrip, hessian_read};
use strait_conformance_fixtures::dubbo::{DUBBO_FIXTURES, DubboKind};
use strait_conformance_fixtures::kit::Rng;

use crate::mosn::{BENCHMARK_DATA, COMPLEX_DATA};
use crate::support::*;

/// Every fixture as a whole frame (bodies get a header), plus the MOSN vectors.
fn frames() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = DUBBO_FIXTURES
        .iter()
        .map(|e| match e.kind {
            DubboKind::RequestBody => frame(0xc2, 0, 1, &fx(e.file)),
            DubboKind::ResponseBody => frame(0x02, 20, 1, &fx(e.file)),
            _ => fx(e.file),
        })
        .collect();
    out.push(COMPLEX_DATA.to_vec());
    out.push(BENCHMARK_DATA.to_vec());
    out
}

/// Sets the length field to what the buffer holds after the header.
fn fix_len(b: &mut [u8]) {
    let len = (b.len() - 16) as u32;
    b[12..16].copy_from_slice(&len.to_be_bytes());
}

#[test]
fn every_truncation_and_byte_flip_is_safe() {
    let (mut inputs, mut decoded) = (0, 0);
    for original in frames() {
        assert_eq!(decode_roundtrip(&original), 1);
        for cut in 0..original.len() {
            // As received: a partial frame waits.
            assert_eq!(decode_roundtrip(&original[..cut]), 0);
            // As a complete frame whose body was cut.
            if cut >= 16 {
                let mut b = original[..cut].to_vec();
                fix_len(&mut b);
                decoded += decode_roundtrip(&b);
                inputs += 1;
            }
        }
        for i in 0..original.len() {
            for x in [0xff, 0x01, 0x80] {
                let mut b = original.clone();
                b[i] ^= x;
                decoded += decode_roundtrip(&b);
                inputs += 1;
            }
        }
        // Bodies read on their own, with every reader method.
        for cut in 16..=original.len() {
            hessian_read(&original[16..cut]);
        }
    }
    eprintln!("{decoded} of {inputs} inputs decoded");
    assert!(
        decoded * 10 > inputs * 8,
        "only {decoded} of {inputs} decoded"
    );
}

/// Bytecodes worth planting in a body: containers, refs, reserved bytes, ends.
const INTERESTING: [u8; 20] = [
    b'C', b'O', 0x60, 0x61, b'Q', b'H', b'M', b'U', b'V', b'W', b'X', 0x71, 0x79, b'Z', b'R', b'A',
    0x40, 0x50, b'N', 0x30,
];

fn mutate(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = 16 + rng.below(b.len().saturating_sub(16));
                if i < b.len() {
                    b[i] = INTERESTING[rng.below(INTERESTING.len())];
                }
            }
            2 => {
                // Insert or delete a byte in the body and keep the length consistent.
                let i = 16 + rng.below(b.len().saturating_sub(15));
                if rng.below(2) == 0 {
                    b.insert(i.min(b.len()), INTERESTING[rng.below(INTERESTING.len())]);
                } else if i < b.len() {
                    b.remove(i);
                }
                if b.len() >= 16 {
                    fix_len(&mut b);
                }
            }
            3 => b.truncate(rng.below(b.len() + 1)),
            4 => {
                let copy = b.clone();
                b.extend_from_slice(&copy[..rng.below(copy.len() + 1)]);
            }
            _ => {
                // The flag byte: every kind and serialization.
                if b.len() > 2 {
                    b[2] = rng.next() as u8;
                }
            }
        }
        if b.is_empty() {
            break;
        }
    }
    b
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut inputs, mut decoded) = (0, 0);
    for original in frames() {
        for _ in 0..3000 {
            inputs += 1;
            let m = mutate(&mut rng, original.clone());
            if decode_roundtrip(&m) > 0 {
                decoded += 1;
            }
            hessian_read(m.get(16..).unwrap_or_default());
        }
    }
    eprintln!("{decoded} of {inputs} mutants decoded");
    assert!(
        decoded * 2 > inputs,
        "only {decoded} of {inputs} mutants decoded"
    );
}

#[test]
fn concatenations_decode_in_order() {
    let all: Vec<u8> = frames().concat();
    assert_eq!(decode_roundtrip(&all), 15);
    for end in 0..all.len().min(3000) {
        decode_roundtrip(&all[..end]);
    }
}

/// Inputs the fuzzer found, kept byte for byte in `regressions/`, and how many frames
/// each decodes to.
const REGRESSIONS: &[(&str, &[u8], usize)] = &[
    // An attachment listed as a string but shadowed by a later non-string entry with
    // the same key: `header` follows Java's last-put-wins and says `None`.
    (
        "decode-shadowed-attachment",
        include_bytes!("regressions/decode-shadowed-attachment"),
        1,
    ),
];

#[test]
fn fuzz_regressions() {
    for (name, bytes, frames) in REGRESSIONS {
        assert_eq!(decode_roundtrip(bytes), *frames, "{name}");
        hessian_read(bytes.get(16..).unwrap_or_default());
    }
}

/// The shared conformance kit over every whole Dubbo frame captured from dubbo2.js
/// (the `*_body_*` fixtures are bodies alone, not frames).
#[test]
fn the_conformance_kit_passes_on_every_capture() {
    let frames: Vec<_> = strait_conformance_fixtures::all("dubbo_")
        .into_iter()
        .filter(|(name, _)| !name.contains("_body_"))
        .collect();
    let report = strait_conformance_fixtures::kit::check_codec(
        &*strait_codec_dubbo::protocol(),
        &frames,
        500,
    );
    assert_eq!(report.frames, 10);
    assert!(report.mutants_decoded * 10 > report.mutants, "{report:?}");
}
