//! Any bytes, decoded as a connection would and every frame re-encoded: nothing may
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_conformance_fixtures::kit::decode_stream(&*strait_example_lenproto::protocol(), data);
});
