use super::{LbHost, LoadBalancer, RandomSource, ThreadRandom, below, eligible};

/// Weighted random: each eligible host is chosen with probability `weight / sum`.
///
/// Stateless apart from the generator, so concurrent picks never contend (with the
/// default [`ThreadRandom`]). Two passes over the hosts, no allocation.
#[derive(Debug, Default)]
pub struct Random<R: RandomSource = ThreadRandom> {
    random: R,
}

impl Random {
    /// A balancer using the thread-local generator.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<R: RandomSource> Random<R> {
    /// A balancer drawing from `random` (a seeded source in tests).
    pub fn with_random(random: R) -> Self {
        Random { random }
    }
}

impl<H: LbHost, R: RandomSource> LoadBalancer<H> for Random<R> {
    fn pick(&self, hosts: &[H]) -> Option<usize> {
        let total: u64 = hosts
            .iter()
            .filter(|h| eligible(*h))
            .map(|h| u64::from(h.weight()))
            .sum();
        if total == 0 {
            return None;
        }
        let mut point = below(self.random.next_u64(), total);
        for (i, host) in hosts.iter().enumerate() {
            if !eligible(host) {
                continue;
            }
            let weight = u64::from(host.weight());
            if point < weight {
                return Some(i);
            }
            point -= weight;
        }
        // Only reachable if a host's weight or health changed between the two passes
        // (live atomics): fall back to the last eligible host rather than fail the request.
        hosts.iter().rposition(|h| eligible(h))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HostView, SeededRandom};
    use super::*;

    #[test]
    fn distribution_follows_weights() {
        let lb = Random::with_random(SeededRandom::new(11));
        let mut hosts = vec![
            HostView::new(1),
            HostView::new(3),
            HostView::new(6),
            HostView::new(5),
        ];
        hosts[3].healthy = false;
        let mut counts = [0usize; 4];
        for _ in 0..100_000 {
            counts[lb.pick(&hosts).expect("a host")] += 1;
        }
        assert_eq!(counts[3], 0, "unhealthy host picked");
        // Expected 10k / 30k / 60k; binomial sd is at most ~160, so ±1000 is > 6 sigma.
        for (count, expected) in counts.iter().zip([10_000, 30_000, 60_000]) {
            assert!(count.abs_diff(expected) < 1_000, "{counts:?}");
        }
    }

    #[test]
    fn same_seed_same_sequence() {
        let hosts = [HostView::new(1), HostView::new(1), HostView::new(1)];
        let a = Random::with_random(SeededRandom::new(5));
        let b = Random::with_random(SeededRandom::new(5));
        let seq_a: Vec<_> = (0..32).map(|_| a.pick(&hosts)).collect();
        let seq_b: Vec<_> = (0..32).map(|_| b.pick(&hosts)).collect();
        assert_eq!(seq_a, seq_b);
    }

    #[test]
    fn thread_random_covers_every_host() {
        let lb = Random::new();
        let hosts = [HostView::new(1), HostView::new(1)];
        let picks: Vec<_> = (0..200).filter_map(|_| lb.pick(&hosts)).collect();
        assert!(picks.contains(&0) && picks.contains(&1));
    }
}
