//! Deterministic no-panic sweep: each fixture is mutated thousands of times (byte flips,
//! truncations, length-field corruption, duplication) and fed to the same property check
//! the fuzz target runs.

use strait_codec_bolt::fuzz_logic::decode_roundtrip;
use strait_conformance_fixtures::bolt::BOLT_FIXTURES;
use strait_conformance_fixtures::kit::Rng;

use crate::support::fx;

fn mutate(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            2 => b.truncate(rng.below(b.len() + 1)),
            3 => {
                // Corrupt a byte of the fixed header, where the lengths and ids are.
                let i = rng.below(b.len().min(24));
                b[i] = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff][rng.below(6)];
            }
            4 => {
                let copy = b.clone();
                b.extend_from_slice(&copy[..rng.below(copy.len() + 1)]);
            }
            _ => {
                // Corrupt a header-map length field inside the body.
                let i = 20 + rng.below(b.len().saturating_sub(20).max(1));
                if i + 4 <= b.len() {
                    b[i..i + 4]
                        .copy_from_slice(&(rng.next() as u32 >> rng.below(32)).to_be_bytes());
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
    for e in BOLT_FIXTURES {
        let original = fx(e.file);
        assert_eq!(decode_roundtrip(&original), 1, "{}", e.file);
        for _ in 0..3000 {
            inputs += 1;
            if decode_roundtrip(&mutate(&mut rng, original.clone())) > 0 {
                decoded += 1;
            }
        }
    }
    // The sweep must reach the re-encode checks, not only the early rejections.
    eprintln!("{decoded} of {inputs} mutants decoded");
    assert!(
        decoded * 10 > inputs,
        "only {decoded} of {inputs} mutants decoded"
    );
}

#[test]
fn prefixes_and_concatenations_never_panic() {
    let all: Vec<u8> = BOLT_FIXTURES.iter().flat_map(|e| fx(e.file)).collect();
    for end in 0..all.len().min(4096) {
        decode_roundtrip(&all[..end]);
    }
    assert_eq!(decode_roundtrip(&all), BOLT_FIXTURES.len());
}

/// The shared conformance kit over every Bolt capture (requests, responses and
/// heartbeats of v1, v2 and v2 with CRC, from sofa-bolt-node and SOFA's suite).
#[test]
fn the_conformance_kit_passes_on_every_capture() {
    let mut frames = strait_conformance_fixtures::all("bolt_");
    frames.extend(strait_conformance_fixtures::all("suite_"));
    let report = strait_conformance_fixtures::kit::check_codec(
        &*strait_codec_bolt::protocol(),
        &frames,
        500,
    );
    assert_eq!(report.frames, 18);
    assert!(report.mutants_decoded * 10 > report.mutants, "{report:?}");
}
