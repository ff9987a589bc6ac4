//! A fast per-thread pseudo-random `u64` for the request path: a sampling coin, span
//! ids. Not for anything secret.

thread_local! {
    /// wyrand state, seeded once per thread from the OS's randomness: a draw costs a
    /// few instructions, not a ChaCha block refill.
    static STATE: std::cell::Cell<u64> = std::cell::Cell::new(rand::random::<u64>() | 1);
}

/// The next pseudo-random `u64` of this thread (wyrand).
#[inline]
pub fn fast_random() -> u64 {
    STATE.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_spread_over_both_halves() {
        let draws: Vec<u64> = (0..10_000).map(|_| fast_random()).collect();
        let mut unique = draws.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), draws.len());
        let high = draws.iter().filter(|d| **d >= 1 << 63).count();
        assert!((4_700..5_300).contains(&high), "{high}");
    }
}
