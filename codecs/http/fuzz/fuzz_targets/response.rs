//! Parses arbitrary bytes as an HTTP/1.1 response (head and body) to GET, HEAD and CONNECT
//! and checks the codec's properties.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_codec_http::h1::fuzz_logic::parse_response(data);
});
