//! Decodes arbitrary bytes as a Bolt stream and checks every frame's round trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_codec_bolt::fuzz_logic::decode_roundtrip(data);
});
