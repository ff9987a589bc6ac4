use super::hash::xxh64;
use super::{LbHost, eligible};

/// Ineligible picks retried with a rehashed key before scanning the hosts in order.
const REHASH_ATTEMPTS: u64 = 8;

/// Consistent hashing with a Maglev lookup table (Google's Maglev paper, as Envoy's
/// `MAGLEV`).
///
/// Every host walks its own permutation of the table slots (an offset and a skip derived
/// from its identity hash) and hosts take turns claiming their next free slot until the
/// table is full. A key goes to `table[hash % size]`: one lookup, no search, and equal
/// weights get slot counts within one of each other. The price, compared with
/// [`RingHash`], is a little extra movement between remaining hosts when membership
/// changes.
///
/// Weighted as Envoy does: a host of weight `w` takes a turn in `w / max_weight` of the
/// rounds, so it fills slots in proportion to its weight.
///
/// The table holds indices into the host list it was built from; `pick` must get a slice
/// in the same order (rebuild on membership change). Health and weight 0 are read live:
/// a key whose host is ineligible is rehashed up to eight times, then goes to the next
/// eligible host after it in the slice; keys of eligible hosts never move.
///
/// [`RingHash`]: super::RingHash
#[derive(Debug, Clone, Default)]
pub struct Maglev {
    table: Vec<usize>,
}

impl Maglev {
    /// Envoy's default table size: a prime, and at least 100 slots per host (Envoy's
    /// advice) up to 655 hosts.
    pub const DEFAULT_TABLE_SIZE: usize = 65537;

    /// A table for `hosts`, given as `(identity hash, weight)` in the order `pick` will see
    /// them (see [`hash_host`](super::hash_host)). Hosts of weight 0 get no slots. The
    /// size is rounded up to a prime (at least 2): a permutation only visits every slot
    /// when the skip is coprime with the size.
    pub fn new(hosts: &[(u64, u32)], table_size: usize) -> Self {
        let size = next_prime(table_size.max(2));
        let m = size as u64;
        let mut builders: Vec<Builder> = hosts
            .iter()
            .enumerate()
            .filter(|&(_, &(_, weight))| weight > 0)
            .map(|(index, &(identity, weight))| {
                let bytes = identity.to_le_bytes();
                Builder {
                    index,
                    slot: xxh64(&bytes, 0) % m,
                    skip: xxh64(&bytes, 1) % (m - 1) + 1,
                    weight: u128::from(weight),
                    due: 0,
                }
            })
            .collect();
        let Some(max_weight) = builders.iter().map(|b| b.weight).max() else {
            return Maglev::default();
        };

        let mut table = vec![EMPTY; size];
        let mut filled = 0;
        // Ends: the heaviest host takes a turn every round, and each turn finds a free slot
        // because the permutation (skip coprime with the prime size) visits every slot.
        let mut round: u128 = 1;
        while filled < size {
            for b in &mut builders {
                if filled == size {
                    break;
                }
                if round * b.weight < b.due {
                    continue;
                }
                b.due += max_weight;
                while table[b.slot as usize] != EMPTY {
                    b.slot = (b.slot + b.skip) % m;
                }
                table[b.slot as usize] = b.index;
                filled += 1;
            }
            round += 1;
        }
        Maglev { table }
    }

    /// The index in `hosts` of the host owning `hash`, or `None` if no host is eligible.
    pub fn pick<H: LbHost>(&self, hosts: &[H], hash: u64) -> Option<usize> {
        let usable = |i: usize| hosts.get(i).is_some_and(|h| eligible(h));
        let size = self.table.len() as u64;
        let mut first = None;
        if size > 0 {
            for attempt in 0..=REHASH_ATTEMPTS {
                // Each retry looks at a different, still deterministic slot for the key.
                let key = match attempt {
                    0 => hash,
                    n => xxh64(&hash.to_le_bytes(), n),
                };
                let host = self.table[(key % size) as usize];
                if usable(host) {
                    return Some(host);
                }
                first.get_or_insert(host);
            }
        }
        // Scanning from the first choice spreads the leftovers of different dead hosts
        // over different successors; also covers a table that does not match `hosts`.
        let start = first.unwrap_or(0);
        let n = hosts.len();
        (0..n).map(|k| (start + k) % n).find(|&i| usable(i))
    }

    /// Number of slots in the table (0 if no host had weight).
    pub fn table_size(&self) -> usize {
        self.table.len()
    }
}

/// Marks a slot no host has claimed yet; none is left once the table is built.
const EMPTY: usize = usize::MAX;

/// A host's state while the table is populated.
struct Builder {
    index: usize,
    /// The next slot of this host's permutation to try.
    slot: u64,
    skip: u64,
    weight: u128,
    /// The host takes its next turn in the first round where `round * weight >= due`.
    due: u128,
}

/// The smallest prime `>= n`, by trial division (table sizes are small).
fn next_prime(n: usize) -> usize {
    let is_prime = |p: usize| {
        p >= 2
            && (2..)
                .take_while(|d| d * d <= p)
                .all(|d| !p.is_multiple_of(d))
    };
    // There is always a prime below usize::MAX above any table size that fits in memory.
    (n..).find(|&p| is_prime(p)).unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::super::HostView;
    use super::super::hash_test_support::*;
    use super::*;

    fn maglev(ids: &[u64], weights: &[u32]) -> Maglev {
        let hosts: Vec<_> = ids.iter().copied().zip(weights.iter().copied()).collect();
        Maglev::new(&hosts, Maglev::DEFAULT_TABLE_SIZE)
    }

    fn slot_counts(table: &Maglev, n: usize) -> Vec<usize> {
        let mut counts = vec![0; n];
        for &i in &table.table {
            counts[i] += 1;
        }
        counts
    }

    #[test]
    fn equal_weights_fill_equal_slots_and_spread_within_3_percent() {
        let table = maglev(&identities(5), &[1; 5]);
        let slots = slot_counts(&table, 5);
        // Round-robin turns: the shares differ by at most one slot.
        assert!(slots.iter().max().unwrap_or(&0) - slots.iter().min().unwrap_or(&0) <= 1);
        // Then keys are binomial around 20,000 (sd ~126), so ±3% is more than 4 sigma.
        let shares = shares(&table, &views(&[1; 5]));
        println!("maglev 5 equal hosts: slots {slots:?}, shares {shares:.4?}");
        for share in &shares {
            assert!((share / 0.2 - 1.0).abs() < 0.03, "{shares:?}");
        }
    }

    #[test]
    fn weights_1_2_3_get_shares_within_3_percent_of_proportional() {
        let table = maglev(&identities(3), &[1, 2, 3]);
        let slots = slot_counts(&table, 3);
        let shares = shares(&table, &views(&[1, 2, 3]));
        println!("maglev weights 1,2,3: slots {slots:?}, shares {shares:.4?}");
        for ((share, slot), weight) in shares.iter().zip(&slots).zip([1.0, 2.0, 3.0]) {
            let expected = weight / 6.0;
            let slot_share = *slot as f64 / table.table_size() as f64;
            assert!((slot_share / expected - 1.0).abs() < 0.001, "{slots:?}");
            assert!((share / expected - 1.0).abs() < 0.03, "{shares:?}");
        }
    }

    #[test]
    fn table_size_is_a_prime_and_fully_claimed() {
        let ids = identities(3);
        assert_eq!(Maglev::new(&[(ids[0], 1)], 10).table_size(), 11);
        assert_eq!(Maglev::new(&[(ids[0], 1)], 0).table_size(), 2);
        let table = maglev(&ids, &[1, 0, 4]);
        assert_eq!(table.table_size(), Maglev::DEFAULT_TABLE_SIZE);
        assert!(
            table.table.iter().all(|&i| i == 0 || i == 2),
            "weight 0 gets no slot"
        );
        assert_eq!(Maglev::new(&[], 101).table_size(), 0);
        assert_eq!(Maglev::new(&[(ids[0], 0)], 101).table_size(), 0);
    }

    #[test]
    fn removing_one_of_5_hosts_moves_about_a_fifth_of_the_keys() {
        let ids = identities(5);
        let before = owners(&maglev(&ids, &[1; 5]), &ids, &views(&[1; 5]));
        let removed = ids[2];
        let rest: Vec<u64> = ids.iter().copied().filter(|&id| id != removed).collect();
        let after = owners(&maglev(&rest, &[1; 4]), &rest, &views(&[1; 4]));

        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let kept = before.iter().filter(|&&b| b != removed).count();
        let moved_between_survivors = before
            .iter()
            .zip(&after)
            .filter(|&(&b, &a)| b != removed && b != a)
            .count();
        let moved_share = moved as f64 / KEYS as f64;
        let survivor_share = moved_between_survivors as f64 / kept as f64;
        println!(
            "maglev 5 -> 4 hosts: moved {moved} of {KEYS} keys ({moved_share:.4}), \
             {moved_between_survivors} of {kept} keys of remaining hosts ({survivor_share:.4})"
        );
        // Maglev trades a little extra movement for even shares (the paper measures a
        // few percent at most). Allow 1/N + 2% overall, and 2% of the keys whose host
        // stayed.
        assert!(moved_share <= 0.2 + 0.02, "{moved_share}");
        assert!(survivor_share <= 0.02, "{survivor_share}");
    }

    #[test]
    fn an_ineligible_hosts_keys_go_elsewhere_and_no_other_key_moves() {
        let ids = identities(5);
        let table = maglev(&ids, &[1; 5]);
        let mut hosts = views(&[1; 5]);
        let before = owners(&table, &ids, &hosts);
        hosts[1].healthy = false;
        hosts[3].weight = 0;
        let after = owners(&table, &ids, &hosts);
        let mut rehomed = vec![0usize; 5];
        for (b, a) in before.iter().zip(&after) {
            if *b == ids[1] || *b == ids[3] {
                assert!(*a != ids[1] && *a != ids[3]);
                let to = ids.iter().position(|id| id == a).expect("a known host");
                rehomed[to] += 1;
            } else {
                assert_eq!(a, b);
            }
        }
        println!("maglev: keys of 2 ineligible hosts re-homed to {rehomed:?}");
        // Rehashing spreads them over all eligible hosts, not onto one neighbour.
        for i in [0, 2, 4] {
            assert!(rehomed[i] > 10_000, "{rehomed:?}");
        }
    }

    #[test]
    fn none_when_no_host_is_eligible_or_the_table_is_empty() {
        let ids = identities(3);
        let table = maglev(&ids, &[1; 3]);
        let mut down = views(&[1; 3]);
        for h in &mut down {
            h.healthy = false;
        }
        assert_eq!(table.pick(&down, key(7)), None);
        assert_eq!(table.pick(&views(&[0; 3]), key(7)), None);
        assert_eq!(table.pick::<HostView>(&[], key(7)), None);
        assert_eq!(Maglev::default().pick::<HostView>(&[], key(7)), None);
        // Only one host left: the scan after the rehashes always finds it.
        down[2].healthy = true;
        assert!((0..1_000).all(|i| table.pick(&down, key(i)) == Some(2)));
    }

    #[test]
    fn same_key_same_host_and_same_table_from_the_same_hosts() {
        let ids = identities(5);
        let a = maglev(&ids, &[1; 5]);
        let b = maglev(&ids, &[1; 5]);
        assert_eq!(a.table, b.table);
        let hosts = views(&[1; 5]);
        for i in 0..1_000 {
            let first = a.pick(&hosts, key(i));
            assert!(first.is_some());
            assert_eq!(a.pick(&hosts, key(i)), first);
        }
    }
}
