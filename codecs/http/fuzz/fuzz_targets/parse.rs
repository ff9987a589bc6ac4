//! Parses arbitrary bytes as pipelined HTTP/1.1 requests (heads and bodies) and checks the
//! codec's properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_codec_http::h1::fuzz_logic::parse_request(data);
});
