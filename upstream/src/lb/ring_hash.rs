use super::hash::hash_key;
use super::{LbHost, eligible};

/// Consistent hashing on a ring of virtual nodes (ketama, as Envoy's `RING_HASH`).
///
/// Each host is placed at many pseudo-random positions derived from its identity hash,
/// as many as its weight asks for; a key goes to the first position at or after its
/// hash. Adding or removing a host only moves the keys that land on that host's
/// positions, and every proxy that knows the same hosts builds the same ring.
///
/// Sizing: like Envoy, the ring has at least `min_ring_size` entries (more entries, more
/// even shares) and at most about `max_ring_size`. Unlike Envoy, the number of entries
/// per unit of weight is a power of two (`min_ring_size / total weight` rounded up, or
/// `1 / 2^k`), so a membership change leaves the remaining hosts' entries alone and moves
/// no key between them, unless `min_ring_size / total weight` crosses a power of two:
/// then every host's entry count doubles or halves and about 40% of the remaining hosts'
/// keys move (8 -> 7 equal hosts). Envoy recomputes the count on every change, which
/// moves about 11% of them every time (5 -> 4 or 8 -> 7 equal hosts).
///
/// The ring holds indices into the host list it was built from; `pick` must get a slice
/// in the same order (rebuild on membership change). Health and weight 0 are read live
/// at pick time, so a host going down needs no rebuild: its keys walk on to the next
/// host on the ring while every other key stays where it was.
#[derive(Debug, Clone, Default)]
pub struct RingHash {
    /// `(position, host index)`, sorted.
    ring: Vec<(u64, usize)>,
}

impl RingHash {
    /// Envoy's default minimum ring size.
    pub const DEFAULT_MIN_RING_SIZE: usize = 1024;
    /// Envoy's default maximum ring size.
    pub const DEFAULT_MAX_RING_SIZE: usize = 8 * 1024 * 1024;

    /// A ring for `hosts`, given as `(identity hash, weight)` in the order `pick` will see
    /// them (see [`hash_host`](super::hash_host)). Hosts of weight 0 get no entries.
    pub fn new(hosts: &[(u64, u32)], min_ring_size: usize, max_ring_size: usize) -> Self {
        let total: u64 = hosts.iter().map(|&(_, w)| u64::from(w)).sum();
        if total == 0 {
            return RingHash::default();
        }
        let (num, den) = entries_per_weight(total, min_ring_size as u64, max_ring_size as u64);
        let entries = |weight: u32| (u128::from(weight) * num).div_ceil(den) as u64;
        let mut ring = Vec::with_capacity(hosts.iter().map(|&(_, w)| entries(w) as usize).sum());
        for (index, &(identity, weight)) in hosts.iter().enumerate() {
            for replica in 0..entries(weight) {
                ring.push((position(identity, replica), index));
            }
        }
        // The index breaks ties between equal positions, so the order is still fixed.
        ring.sort_unstable();
        RingHash { ring }
    }

    /// The index in `hosts` of the host owning `hash`, or `None` if no host is eligible.
    /// Costs a binary search, plus a walk past the entries of ineligible hosts (the
    /// whole ring when none is eligible).
    pub fn pick<H: LbHost>(&self, hosts: &[H], hash: u64) -> Option<usize> {
        let start = self.ring.partition_point(|&(pos, _)| pos < hash);
        let usable = |i: usize| hosts.get(i).is_some_and(|h| eligible(h));
        // Once around the ring, starting at the owner: the first eligible host is where
        // the key would go if the ineligible ones were removed.
        self.ring[start..]
            .iter()
            .chain(&self.ring[..start])
            .map(|&(_, i)| i)
            .find(|&i| usable(i))
            // Only for a ring that does not match `hosts` (a host with weight 0 at build
            // time that has weight now): serve the request rather than fail it.
            .or_else(|| (0..hosts.len()).find(|&i| usable(i)))
    }

    /// Number of entries (virtual nodes) on the ring.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the ring has no entries (no host had weight).
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

/// Ring entries per unit of weight, as the fraction `num / den`: a power of two (or its
/// inverse) so that it does not change with every membership update, unless the ring
/// would exceed `max_ring`.
fn entries_per_weight(total: u64, min_ring: u64, max_ring: u64) -> (u128, u128) {
    let (num, den) = if total < min_ring {
        (min_ring.div_ceil(total).next_power_of_two(), 1)
    } else {
        // total / min_ring >= 1 here (min_ring 0 counts as 1), so ilog2 cannot panic.
        (1, 1_u64 << (total / min_ring.max(1)).ilog2())
    };
    let (num, den) = (u128::from(num), u128::from(den));
    if u128::from(total) * num > u128::from(max_ring) * den {
        (u128::from(max_ring), u128::from(total))
    } else {
        (num, den)
    }
}

/// Position of a host's `replica`-th virtual node.
fn position(identity: u64, replica: u64) -> u64 {
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&identity.to_le_bytes());
    bytes[8..].copy_from_slice(&replica.to_le_bytes());
    hash_key(&bytes)
}

#[cfg(test)]
mod tests {
    use super::super::HostView;
    use super::super::hash_test_support::*;
    use super::*;

    fn ring(ids: &[u64], weights: &[u32], min_ring: usize) -> RingHash {
        let hosts: Vec<_> = ids.iter().copied().zip(weights.iter().copied()).collect();
        RingHash::new(&hosts, min_ring, RingHash::DEFAULT_MAX_RING_SIZE)
    }

    #[test]
    fn equal_weights_spread_within_10_percent_of_the_mean() {
        // Each host's share of the ring is a sum of about V arcs, so it varies by about
        // 1/sqrt(V): 2048 entries per host (min ring 8192) make ±10% a > 4 sigma bound.
        let hosts = views(&[1; 5]);
        let large = shares(&ring(&identities(5), &[1; 5], 8192), &hosts);
        println!("ring min 8192, 5 equal hosts: shares {large:.4?}");
        for share in &large {
            assert!((share / 0.2 - 1.0).abs() < 0.10, "{large:?}");
        }
        // At Envoy's default size (256 entries per host, ~6% sd) expect up to ±25%.
        let default = ring(&identities(5), &[1; 5], RingHash::DEFAULT_MIN_RING_SIZE);
        let small = shares(&default, &hosts);
        println!("ring min 1024 (len {}): shares {small:.4?}", default.len());
        for share in &small {
            assert!((share / 0.2 - 1.0).abs() < 0.25, "{small:?}");
        }
    }

    #[test]
    fn weights_1_2_3_get_shares_within_10_percent_of_proportional() {
        let ring = ring(&identities(3), &[1, 2, 3], 8192);
        assert_eq!(
            ring.len(),
            2048 * 6,
            "entries per weight rounded up to 2048"
        );
        let shares = shares(&ring, &views(&[1, 2, 3]));
        println!("ring weights 1,2,3: shares {shares:.4?}");
        for (share, weight) in shares.iter().zip([1.0, 2.0, 3.0]) {
            assert!((share / (weight / 6.0) - 1.0).abs() < 0.10, "{shares:?}");
        }
    }

    #[test]
    fn ring_size_respects_min_and_max() {
        let ids = identities(5);
        // 1024 / 5 per host, rounded up to a power of two.
        assert_eq!(ring(&ids, &[1; 5], 1024).len(), 5 * 256);
        // Total weight above the minimum: half an entry per unit of weight, rounded up.
        assert_eq!(
            ring(&ids, &[1000, 1000, 1000, 1, 1], 1024).len(),
            3 * 500 + 2
        );
        let capped = RingHash::new(&[(ids[0], 1), (ids[1], 3)], 1 << 20, 1000);
        assert_eq!(capped.len(), 1000);
        assert!(RingHash::new(&[], 1024, 1 << 20).is_empty());
        assert!(RingHash::new(&[(ids[0], 0)], 1024, 1 << 20).is_empty());
    }

    #[test]
    fn removing_a_host_moves_only_its_own_keys() {
        let ids = identities(5);
        let before = owners(&ring(&ids, &[1; 5], 1024), &ids, &views(&[1; 5]));
        let removed = ids[2];
        let rest: Vec<u64> = ids.iter().copied().filter(|&id| id != removed).collect();
        let after = owners(&ring(&rest, &[1; 4], 1024), &rest, &views(&[1; 4]));

        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        let orphaned = before.iter().filter(|&&b| b == removed).count();
        let moved_between_survivors = before
            .iter()
            .zip(&after)
            .filter(|&(&b, &a)| b != removed && b != a)
            .count();
        println!(
            "ring 5 -> 4 hosts: moved {moved} of {KEYS} keys, {orphaned} owned by the removed \
             host, {moved_between_survivors} moved between remaining hosts"
        );
        assert_eq!(moved_between_survivors, 0);
        assert_eq!(moved, orphaned);
        // The removed host held about 1/5 of the keys (±25% at this ring size).
        assert!(moved as f64 / KEYS as f64 <= 0.2 * 1.25, "{moved}");
    }

    #[test]
    fn crossing_a_power_of_two_rescales_every_host() {
        // 1024 / 8 = 128 entries per host, 1024 / 7 rounds up to 256: the one membership
        // change (per doubling of the total weight) that moves keys between remaining hosts.
        let ids = identities(8);
        let before = ring(&ids, &[1; 8], 1024);
        let after = ring(&ids[..7], &[1; 7], 1024);
        assert_eq!((before.len(), after.len()), (8 * 128, 7 * 256));
        let owners_before = owners(&before, &ids, &views(&[1; 8]));
        let owners_after = owners(&after, &ids[..7], &views(&[1; 7]));
        let kept = owners_before.iter().filter(|&&b| b != ids[7]).count();
        let moved = owners_before
            .iter()
            .zip(&owners_after)
            .filter(|&(&b, &a)| b != ids[7] && b != a)
            .count();
        println!("ring 8 -> 7 hosts: {moved} of {kept} keys of remaining hosts moved");
        // New entries take about half of the ring; 6 in 7 of those change owner.
        assert!((moved as f64 / kept as f64) < 0.5, "{moved}");
    }

    #[test]
    fn an_ineligible_hosts_keys_go_elsewhere_and_no_other_key_moves() {
        let ids = identities(5);
        let ring = ring(&ids, &[1; 5], 1024);
        let mut hosts = views(&[1; 5]);
        let before = owners(&ring, &ids, &hosts);
        hosts[1].healthy = false;
        hosts[3].weight = 0;
        let after = owners(&ring, &ids, &hosts);
        let mut rehomed = 0;
        for (b, a) in before.iter().zip(&after) {
            if *b == ids[1] || *b == ids[3] {
                assert!(*a != ids[1] && *a != ids[3]);
                rehomed += 1;
            } else {
                assert_eq!(a, b);
            }
        }
        println!("ring: {rehomed} keys of 2 ineligible hosts re-homed, all others unchanged");
    }

    #[test]
    fn none_when_no_host_is_eligible_or_the_ring_is_empty() {
        let ids = identities(3);
        let ring = ring(&ids, &[1; 3], 1024);
        let mut down = views(&[1; 3]);
        for h in &mut down {
            h.healthy = false;
        }
        assert_eq!(ring.pick(&down, key(7)), None);
        assert_eq!(ring.pick(&views(&[0; 3]), key(7)), None);
        assert_eq!(ring.pick::<HostView>(&[], key(7)), None);
        assert_eq!(RingHash::default().pick::<HostView>(&[], key(7)), None);
        // A ring built while every weight was 0 still serves once a host is eligible.
        let stale = RingHash::new(&[(ids[0], 0), (ids[1], 0)], 1024, 1 << 20);
        assert_eq!(stale.pick(&views(&[0, 1]), key(7)), Some(1));
    }

    #[test]
    fn same_key_same_host_and_same_ring_from_the_same_hosts() {
        let ids = identities(5);
        let a = ring(&ids, &[1; 5], 1024);
        let b = ring(&ids, &[1; 5], 1024);
        let hosts = views(&[1; 5]);
        for i in 0..1_000 {
            let first = a.pick(&hosts, key(i));
            assert!(first.is_some());
            assert_eq!(a.pick(&hosts, key(i)), first);
            assert_eq!(b.pick(&hosts, key(i)), first);
        }
        // Wrap-around: a hash past the last entry goes to the first one.
        assert_eq!(a.pick(&hosts, u64::MAX), Some(a.ring[0].1));
    }
}
