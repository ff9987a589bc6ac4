//! Unit tests of the HTTP/1.1 codec: every framing rule, every split, limits, random input.

mod decode;
mod encode;
mod fuzz;
mod parse;
mod smuggling;

/// A small deterministic generator (xorshift64*) for the property-style sweeps.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Random bytes biased towards HTTP syntax, so the parsers get past the first line.
    pub(super) fn http_bytes(&mut self, max_len: usize) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"GET ",
            b"HTTP/1.1",
            b"HTTP/1.0",
            b"\r\n",
            b"\n",
            b"\r",
            b" ",
            b"\t",
            b":",
            b";",
            b",",
            b"0",
            b"5",
            b"f",
            b"ffffffffffffffffff",
            b"Host: a",
            b"content-length: ",
            b"transfer-encoding: chunked",
            b"connection: close",
            b"/",
            b"*",
            b"200 OK",
            b"\x00",
            b"\xff",
            b"x-a: b",
            b"\r\n\r\n",
            b"CONNECT ",
            b"a:1",
        ];
        let mut out = Vec::new();
        while out.len() < max_len {
            if self.below(4) == 0 {
                out.push(self.next() as u8);
            } else {
                out.extend_from_slice(PIECES[self.below(PIECES.len())]);
            }
        }
        out.truncate(max_len);
        out
    }
}
