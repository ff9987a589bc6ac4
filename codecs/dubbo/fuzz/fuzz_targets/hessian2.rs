//! Reads arbitrary bytes as a stream of Hessian 2.0 values with every reader method.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    strait_codec_dubbo::fuzz_logic::hessian_read(data);
});
