//! Decodes arbitrary bytes as a Dubbo stream; reads every frame's metadata and checks its
//! round trips (unchanged, new id, edited attachments).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_codec_dubbo::fuzz_logic::decode_roundtrip(data);
});
