use super::{LbHost, LoadBalancer, RandomSource, ThreadRandom, below, eligible};

/// Least request by power of two choices: draw two distinct eligible hosts at random
/// and send the request to the less loaded one.
///
/// Load is `(in_flight + 1) / weight`, compared by cross-multiplication so no float or
/// division is involved. The `+ 1` makes weights count even when both hosts are idle
/// (the heavier one wins), and with equal weights it reduces to comparing in-flight
/// counts. Two random candidates instead of a full scan for the minimum avoids herding
/// every proxy onto the same momentarily idle host, and costs O(1) draws.
#[derive(Debug, Default)]
pub struct LeastRequest<R: RandomSource = ThreadRandom> {
    random: R,
}

impl LeastRequest {
    /// A balancer using the thread-local generator.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<R: RandomSource> LeastRequest<R> {
    /// A balancer drawing from `random` (a seeded source in tests).
    pub fn with_random(random: R) -> Self {
        LeastRequest { random }
    }
}

impl<H: LbHost, R: RandomSource> LoadBalancer<H> for LeastRequest<R> {
    fn pick(&self, hosts: &[H]) -> Option<usize> {
        let count = hosts.iter().filter(|h| eligible(*h)).count();
        match count {
            0 => return None,
            1 => return hosts.iter().position(|h| eligible(h)),
            _ => {}
        }
        // Two distinct ordinals among the eligible hosts: draw the second from the
        // `count - 1` others and step over the first.
        let first = below(self.random.next_u64(), count as u64) as usize;
        let mut second = below(self.random.next_u64(), count as u64 - 1) as usize;
        if second >= first {
            second += 1;
        }
        let (a, b) = if count == hosts.len() {
            // Common case, everything healthy: ordinals are indices.
            (first, second)
        } else {
            (nth_eligible(hosts, first)?, nth_eligible(hosts, second)?)
        };
        Some(if less_loaded(&hosts[b], &hosts[a]) {
            b
        } else {
            a
        })
    }
}

/// Whether `x` carries strictly less load per unit of weight than `y`.
fn less_loaded<H: LbHost>(x: &H, y: &H) -> bool {
    // (x.in_flight + 1) / x.weight < (y.in_flight + 1) / y.weight, multiplied out.
    // u128 cannot overflow: a usize times a u32.
    let x_cost = (x.in_flight() as u128 + 1) * u128::from(y.weight());
    let y_cost = (y.in_flight() as u128 + 1) * u128::from(x.weight());
    x_cost < y_cost
}

/// Index of the `n`th eligible host. `None` only if health flipped since it was counted.
fn nth_eligible<H: LbHost>(hosts: &[H], n: usize) -> Option<usize> {
    hosts
        .iter()
        .enumerate()
        .filter(|(_, h)| eligible(*h))
        .nth(n)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::super::{HostView, SeededRandom};
    use super::*;

    fn loaded(weight: u32, in_flight: usize) -> HostView {
        HostView {
            in_flight,
            ..HostView::new(weight)
        }
    }

    /// Replays fixed numbers, to pin down which pair is drawn.
    struct Fixed(parking_lot::Mutex<Vec<u64>>);

    impl RandomSource for Fixed {
        fn next_u64(&self) -> u64 {
            self.0.lock().pop().unwrap_or(0)
        }
    }

    /// Under load, 100,000 picks of requests that each stay in flight for the next 60
    /// picks: shares follow the weights 1:2:3:4 within 10% of each share (measured:
    /// see the assertion message), because load is in-flight per unit of weight.
    #[test]
    fn shares_under_load_follow_weights_over_100k_picks() {
        let lb = LeastRequest::with_random(SeededRandom::new(21));
        let mut hosts = vec![loaded(1, 0), loaded(2, 0), loaded(3, 0), loaded(4, 0)];
        let mut open = std::collections::VecDeque::new();
        let mut counts = [0usize; 4];
        for _ in 0..100_000 {
            let i = lb.pick(&hosts).expect("a host");
            counts[i] += 1;
            hosts[i].in_flight += 1;
            open.push_back(i);
            if open.len() > 60 {
                let done = open.pop_front().expect("non-empty");
                hosts[done].in_flight -= 1;
            }
        }
        for (i, count) in counts.iter().enumerate() {
            let expected = 100_000.0 * (i + 1) as f64 / 10.0;
            let off = (*count as f64 - expected).abs() / expected;
            assert!(off < 0.10, "host {i}: {counts:?}");
        }
    }

    #[test]
    fn two_hosts_always_go_to_the_less_loaded() {
        let lb = LeastRequest::with_random(SeededRandom::new(3));
        let hosts = [loaded(1, 10), loaded(1, 2)];
        assert!((0..100).all(|_| lb.pick(&hosts) == Some(1)));
    }

    #[test]
    fn most_loaded_never_wins_and_idle_wins_most() {
        let lb = LeastRequest::with_random(SeededRandom::new(9));
        let hosts = [loaded(1, 0), loaded(1, 5), loaded(1, 10)];
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[lb.pick(&hosts).expect("a host")] += 1;
        }
        assert_eq!(counts[2], 0, "{counts:?}");
        // The idle host is in two of the three possible pairs.
        assert!(counts[0].abs_diff(20_000) < 600, "{counts:?}");
    }

    #[test]
    fn load_is_relative_to_weight() {
        let lb = LeastRequest::with_random(SeededRandom::new(1));
        // 3 in flight on weight 4 is lighter than 1 in flight on weight 1.
        let hosts = [loaded(1, 1), loaded(4, 3)];
        assert!((0..50).all(|_| lb.pick(&hosts) == Some(1)));
        // Both idle: the heavier host wins.
        let hosts = [loaded(2, 0), loaded(1, 0)];
        assert!((0..50).all(|_| lb.pick(&hosts) == Some(0)));
    }

    #[test]
    fn candidates_are_distinct_eligible_hosts() {
        // Both draws return 0: the first is ordinal 0, the second must step over it.
        let lb = LeastRequest::with_random(Fixed(parking_lot::Mutex::new(vec![0, 0])));
        let mut hosts = [loaded(1, 9), loaded(1, 0), loaded(1, 5)];
        hosts[1].healthy = false;
        // Eligible ordinals 0 and 1 are hosts 0 and 2; host 2 is less loaded.
        assert_eq!(lb.pick(&hosts), Some(2));
    }

    #[test]
    fn unhealthy_hosts_are_never_candidates() {
        let lb = LeastRequest::with_random(SeededRandom::new(4));
        let mut hosts = [loaded(1, 50), loaded(1, 0), loaded(1, 40), loaded(1, 0)];
        hosts[1].healthy = false;
        hosts[3].healthy = false;
        let picks: Vec<_> = (0..200).map(|_| lb.pick(&hosts).expect("a host")).collect();
        assert!(picks.iter().all(|&i| i == 2), "{picks:?}");
    }
}
