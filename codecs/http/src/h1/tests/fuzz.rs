//! The bounded CI run of `h1::fuzz_logic`: the smuggling table, then deterministic
//! mutations of valid messages (what `cargo fuzz run parse` does without a time limit).

use super::Rng;
use crate::h1::fuzz_logic::{parse_request, parse_response};
use crate::h1::smuggling::cases;

const SEEDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET /3 HTTP/1.0\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-F: a\r\n b\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nto the end",
];

/// Bytes a mutation splices in: framing syntax, so mutants stay near the interesting paths.
const PIECES: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b",",
    b";",
    b"0",
    b"f",
    b"chunked",
    b"identity",
    b"Content-Length: 5\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Host: b\r\n",
    b"HTTP/1.0",
    b"0\r\n\r\n",
    b"ffffffffffffffff",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 if at < out.len() => out[at] = rng.next() as u8,
            2 => {
                let end = (at + 1 + rng.below(8)).min(out.len());
                out.drain(at.min(end)..end);
            }
            3 => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                let copy = out[at.min(end)..end].to_vec();
                out.splice(at..at, copy);
            }
            4 => out.truncate(at),
            _ => {
                // Half the time at a line start, where a whole field line is meaningful.
                let lines: Vec<usize> = (0..out.len()).filter(|i| out[*i] == b'\n').collect();
                let at = match rng.below(2) {
                    0 if !lines.is_empty() => lines[rng.below(lines.len())] + 1,
                    _ => at,
                };
                let piece = PIECES[rng.below(PIECES.len())];
                out.splice(at..at, piece.iter().copied());
            }
        }
    }
    out
}

#[test]
fn fuzz_logic_holds_on_the_smuggling_table() {
    let mut heads = 0;
    for case in cases() {
        heads += parse_request(&case.raw);
        parse_response(&case.raw);
    }
    // The body cases parse their heads; the accept cases too.
    assert!(heads >= 30, "{heads} heads parsed");
}

#[test]
fn fuzz_logic_holds_on_mutations() {
    let mut rng = Rng::new(0x5eed_f022);
    let (mut requests, mut responses, mut rejected) = (0, 0, 0);
    for _ in 0..20_000 {
        let seed = SEEDS[rng.below(SEEDS.len())];
        let input = mutate(&mut rng, seed);
        let n = parse_request(&input);
        requests += n;
        rejected += usize::from(n == 0);
        responses += parse_response(&input);
    }
    // Not vacuous: thousands of mutants still parse (3,286 request and 5,168 response heads
    // with this seed), and more do not.
    assert!(requests > 1_500, "{requests} request heads");
    assert!(responses > 2_500, "{responses} response heads");
    assert!(rejected > 5_000, "{rejected} inputs without a request head");
}

/// The fuzz crate's hand-written seeds (`*.bin`; libFuzzer's own finds have no extension)
/// must stay valid messages, or the fuzzer starts from noise.
#[test]
fn fuzz_seeds_are_valid_messages() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (dir, parse) in [
        ("parse", parse_request as fn(&[u8]) -> usize),
        ("response", parse_response),
    ] {
        let mut seeds = 0;
        for entry in std::fs::read_dir(corpus.join(dir)).expect("corpus folder") {
            let path = entry.expect("corpus entry").path();
            if path.extension().is_some_and(|e| e == "bin") {
                let bytes = std::fs::read(&path).expect("seed");
                let heads = parse(&bytes);
                assert!(heads > 0, "{} parses no head", path.display());
                if path.ends_with("parse/pipelined.bin") {
                    assert_eq!(heads, 4, "every pipelined request is reached");
                }
                seeds += 1;
            }
        }
        assert!(seeds >= 5, "{seeds} seeds in {dir}");
    }
}
