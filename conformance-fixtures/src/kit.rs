//! The conformance kit: what every codec must do with frames its real peers wrote, in
//! one call. [`check_codec`] runs, on the protocol's own codec:
//!
//! - **decode and byte-exact re-encode**: each frame decodes whole (nothing left in the
//!   buffer) and encodes back to the same bytes;
//! - **every-byte splits**: each frame fed in two parts, split at every byte, decodes to
//!   the same frame, and the first part alone gives no frame;
//! - **many frames in one buffer**: all frames back to back decode in order, one each;
//! - **truncation at every cut**: every proper prefix of a frame asks for more bytes
//!   (`Ok(None)`), never a frame and never an error;
//! - **a bounded mutation sweep**: each frame mutated `mutations` times (bit flips,
//!   random bytes, truncation, header corruption, duplication) and decoded to the end;
//!   nothing may panic, and every frame decoded from a mutant must encode.
//!
//! A codec's test is one line:
//!
//! ```ignore
//! strait_conformance_fixtures::kit::check_codec(&*my_codec::protocol(), &frames, 2000);
//! ```
//!
//! where `frames` are `(name, bytes)` pairs: captured fixtures (`crate::all("bolt_")`)
//! or, for a protocol with no captures yet, frames its own encoder wrote.

use bytes::BytesMut;
use strait_codec_framework::{Codec, DecodeError, Frame, Limits, Protocol};

/// What the kit saw, for a test to print or check.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Frames checked.
    pub frames: usize,
    /// Split points fed.
    pub splits: usize,
    /// Mutants decoded to the end.
    pub mutants: usize,
    /// Of those, the ones that gave at least one frame (the sweep must reach the
    /// encoder, not stop at the first byte).
    pub mutants_decoded: usize,
}

/// Runs every check on `protocol` with `frames` (each one whole frame), `mutations`
/// mutants per frame. Panics, naming the frame and the check, on the first failure.
pub fn check_codec(
    protocol: &dyn Protocol,
    frames: &[(&str, Vec<u8>)],
    mutations: usize,
) -> Report {
    assert!(!frames.is_empty(), "the kit needs at least one frame");
    let limits = Limits::default();
    let mut report = Report {
        frames: frames.len(),
        ..Report::default()
    };
    for (name, bytes) in frames {
        let frame = decode_whole(protocol.new_codec(limits).as_mut(), bytes, name);
        assert_eq!(
            encode(&*frame, name),
            *bytes,
            "{name}: re-encode differs from the captured bytes"
        );

        for cut in 0..bytes.len() {
            report.splits += 1;
            let mut codec = protocol.new_codec(limits);
            let mut buf = BytesMut::from(&bytes[..cut]);
            match codec.decode(&mut buf) {
                Ok(None) => {}
                Ok(Some(_)) => panic!(
                    "{name}: a frame from its first {cut} of {} bytes",
                    bytes.len()
                ),
                Err(e) => panic!(
                    "{name}: truncated at {cut} of {} bytes: {e} (expected a wait for more)",
                    bytes.len()
                ),
            }
            buf.extend_from_slice(&bytes[cut..]);
            let again = next_frame(codec.as_mut(), &mut buf, name);
            assert_eq!(
                encode(&*again, name),
                *bytes,
                "{name}: split at {cut} decodes differently"
            );
            assert!(
                buf.is_empty(),
                "{name}: split at {cut} left {} bytes",
                buf.len()
            );
        }
    }

    let mut all = BytesMut::new();
    for (_, bytes) in frames {
        all.extend_from_slice(bytes);
    }
    let mut codec = protocol.new_codec(limits);
    for (name, bytes) in frames {
        let frame = next_frame(codec.as_mut(), &mut all, name);
        assert_eq!(
            encode(&*frame, name),
            *bytes,
            "{name}: differs when read after the frames before it"
        );
    }
    assert!(all.is_empty(), "{} bytes left after every frame", all.len());

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (_, bytes) in frames {
        for _ in 0..mutations {
            report.mutants += 1;
            if decode_stream(protocol, &mutate(&mut rng, bytes.clone())) > 0 {
                report.mutants_decoded += 1;
            }
        }
    }
    report
}

/// The one frame in `bytes`, which it must use up.
fn decode_whole(codec: &mut dyn Codec, bytes: &[u8], name: &str) -> Box<dyn Frame> {
    let mut buf = BytesMut::from(bytes);
    let frame = next_frame(codec, &mut buf, name);
    assert!(
        buf.is_empty(),
        "{name}: {} bytes left after the frame",
        buf.len()
    );
    frame
}

fn next_frame(codec: &mut dyn Codec, buf: &mut BytesMut, name: &str) -> Box<dyn Frame> {
    match codec.decode(buf) {
        Ok(Some(frame)) => frame,
        Ok(None) => panic!("{name}: the codec waits for more bytes after a whole frame"),
        Err(e) => panic!("{name}: does not decode: {e}"),
    }
}

fn encode(frame: &dyn Frame, name: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    frame
        .encode(&mut out)
        .unwrap_or_else(|e| panic!("{name}: does not encode: {e}"));
    out.to_vec()
}

/// Decodes `bytes` to the end as a connection would (a rejected frame is skipped, a
/// fatal error ends it) and encodes every frame; returns the frames decoded. Nothing
/// here may panic: this is also the body of a codec's fuzz target.
pub fn decode_stream(protocol: &dyn Protocol, bytes: &[u8]) -> usize {
    let mut codec = protocol.new_codec(Limits::default());
    let mut buf = BytesMut::from(bytes);
    let mut frames = 0;
    loop {
        let before = buf.len();
        match codec.decode(&mut buf) {
            Ok(Some(frame)) => {
                frames += 1;
                // Encoding may refuse (a frame the proxy cannot forward): it must not panic.
                let _ = frame.encode(&mut BytesMut::new());
            }
            Ok(None) => return frames,
            Err(DecodeError::Rejected { reply, .. }) => {
                if let Some(reply) = reply {
                    let _ = reply.encode(&mut BytesMut::new());
                }
                assert!(buf.len() < before, "a rejected frame must be consumed");
            }
            Err(DecodeError::Fatal(_)) => return frames,
        }
    }
}

/// xorshift64: tiny, deterministic, good enough to pick mutations (codecs' own sweeps use
/// it too).
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    #[allow(clippy::should_implement_trait)] // not an iterator: it never ends
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..=rng.below(3) {
        if b.is_empty() {
            break;
        }
        match rng.below(5) {
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
                // The first bytes, where headers keep their lengths and ids.
                let i = rng.below(b.len().min(24));
                b[i] = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff][rng.below(6)];
            }
            _ => {
                let copy = b.clone();
                b.extend_from_slice(&copy[..rng.below(copy.len() + 1)]);
            }
        }
    }
    b
}
