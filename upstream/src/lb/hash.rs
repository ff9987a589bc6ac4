//! The hash behind the consistent-hashing balancers: xxHash64.
//!
//! It must give the same value for the same bytes in every process, on every machine and
//! with every Rust version, so that two proxies send one user to the same host. `std`'s
//! `DefaultHasher` promises none of that, so this is the published xxHash64 algorithm
//! (the one Envoy uses for its ring hash and Maglev), written out here.

use std::net::SocketAddr;

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

/// xxHash64 of `bytes` with seed 0: stable across processes, machines and versions.
pub fn hash_key(bytes: &[u8]) -> u64 {
    xxh64(bytes, 0)
}

/// A host's identity on a hash ring: the hash of its address as text (`10.0.0.1:8080`,
/// `[::1]:80`), so every proxy places the same host at the same positions.
pub fn hash_host(addr: &SocketAddr) -> u64 {
    hash_key(addr.to_string().as_bytes())
}

/// xxHash64 with an explicit seed (Maglev derives two hashes from one identity).
pub(super) fn xxh64(input: &[u8], seed: u64) -> u64 {
    let stripes = input.chunks_exact(32);
    let rest = stripes.remainder();
    let mut h = if input.len() >= 32 {
        let mut acc = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        for stripe in stripes {
            for (a, lane) in acc.iter_mut().zip(stripe.chunks_exact(8)) {
                *a = round(*a, read_le(lane));
            }
        }
        let mut h = acc[0]
            .rotate_left(1)
            .wrapping_add(acc[1].rotate_left(7))
            .wrapping_add(acc[2].rotate_left(12))
            .wrapping_add(acc[3].rotate_left(18));
        for a in acc {
            h = (h ^ round(0, a)).wrapping_mul(P1).wrapping_add(P4);
        }
        h
    } else {
        seed.wrapping_add(P5)
    };
    // usize is at most 64 bits on every supported target, so this is lossless.
    h = h.wrapping_add(input.len() as u64);

    let words = rest.chunks_exact(8);
    let rest = words.remainder();
    for word in words {
        h ^= round(0, read_le(word));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
    }
    let halves = rest.chunks_exact(4);
    let rest = halves.remainder();
    for half in halves {
        h ^= read_le(half).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
    }
    for &byte in rest {
        h ^= u64::from(byte).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }

    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

fn round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

/// Little-endian value of up to 8 bytes (callers pass 8 or 4).
fn read_le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| (acc << 8) | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from the reference C library (libxxhash 0.8.1, `XXH64`), chosen to
    /// cover every tail path: 1-byte steps, a 4-byte step, 8-byte steps, 32-byte stripes.
    #[test]
    fn matches_reference_xxh64_vectors() {
        let hundred: Vec<u8> = (0..100).collect();
        let cases: [(&[u8], u64, u64); 6] = [
            (b"", 0xEF46_DB37_51D8_E999, 0xD5AF_BA13_36A3_BE4B),
            (b"a", 0xD24E_C4F1_A98C_6E5B, 0xDEC2_BC81_C3CD_46C6),
            (b"abc", 0x44BC_2CF5_AD77_0999, 0xBEA9_CA81_9932_8908),
            (
                b"10.0.0.1:8080",
                0xCB97_2177_068E_B685,
                0x0DFC_E9EF_D349_B428,
            ),
            (
                b"The quick brown fox jumps over the lazy dog",
                0x0B24_2D36_1FDA_71BC,
                0xDF50_91B6_DAD2_C6DB,
            ),
            (&hundred, 0x6AC1_E580_3216_6597, 0x3D19_A3A2_098A_7023),
        ];
        for (input, seed0, seed1) in cases {
            assert_eq!(hash_key(input), seed0, "{input:?}");
            assert_eq!(xxh64(input, 1), seed1, "{input:?} seed 1");
        }
    }

    #[test]
    fn host_identity_is_the_hash_of_the_address_text() {
        let v4: SocketAddr = "10.0.0.1:8080".parse().expect("valid address");
        assert_eq!(hash_host(&v4), 0xCB97_2177_068E_B685);
        let v6: SocketAddr = "[::1]:80".parse().expect("valid address");
        assert_eq!(hash_host(&v6), hash_key(b"[::1]:80"));
        assert_ne!(hash_host(&v4), hash_host(&v6));
    }

    #[test]
    fn one_bit_of_input_flips_about_half_the_output() {
        // Avalanche check: keys that differ in one bit must land far apart on a ring.
        let mut total = 0;
        for i in 0u64..1_000 {
            total += (hash_key(&i.to_le_bytes()) ^ hash_key(&(i ^ 1).to_le_bytes())).count_ones();
        }
        let mean = f64::from(total) / 1_000.0;
        assert!((28.0..36.0).contains(&mean), "mean flipped bits {mean}");
    }
}
