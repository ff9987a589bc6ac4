use parking_lot::Mutex;

use super::{LbHost, LoadBalancer, eligible};

/// Smooth weighted round robin, the algorithm of nginx's upstream module.
///
/// Every pick adds each eligible host's weight to its running "current" value, chooses
/// the largest, and takes the sum of weights off the winner. Over one period of
/// `sum(weights)` picks each host is chosen exactly `weight` times, and heavy hosts are
/// interleaved with light ones instead of bunched: weights 5,1,1 give `a a b a c a a`,
/// where a plain counter would give `a a a a a b c`.
///
/// The running values live behind one small lock; the critical section is a single pass
/// over the hosts with integer adds. They are indexed like the slice passed to `pick` and
/// reset when its length changes (a membership update); the cluster should build a new
/// balancer when hosts are replaced without the count changing, or accept one perturbed
/// period.
#[derive(Debug, Default)]
pub struct RoundRobin {
    current: Mutex<Vec<i64>>,
}

impl RoundRobin {
    /// A balancer with no history.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<H: LbHost> LoadBalancer<H> for RoundRobin {
    fn pick(&self, hosts: &[H]) -> Option<usize> {
        let mut current = self.current.lock();
        if current.len() != hosts.len() {
            current.clear();
            current.resize(hosts.len(), 0);
        }
        // i64 holds any sum of u32 weights over a realistic host count, and the running
        // values stay within ±sum(weights), so nothing can overflow.
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for (i, host) in hosts.iter().enumerate() {
            if !eligible(host) {
                continue;
            }
            let weight = i64::from(host.weight());
            current[i] += weight;
            total += weight;
            // Strictly greater: ties go to the earlier host, which makes the sequence
            // deterministic.
            if best.is_none_or(|b| current[i] > current[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        current[chosen] -= total;
        Some(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::super::HostView;
    use super::*;

    fn views(weights: &[u32]) -> Vec<HostView> {
        weights.iter().map(|&w| HostView::new(w)).collect()
    }

    fn sequence(lb: &RoundRobin, hosts: &[HostView], n: usize) -> Vec<usize> {
        (0..n).map(|_| lb.pick(hosts).expect("a host")).collect()
    }

    #[test]
    fn smooth_sequence_for_5_1_1() {
        let lb = RoundRobin::new();
        let hosts = views(&[5, 1, 1]);
        let period = [0, 0, 1, 0, 2, 0, 0];
        // Two periods: the state returns to all zeros after each one.
        let expected: Vec<usize> = period.iter().chain(period.iter()).copied().collect();
        assert_eq!(sequence(&lb, &hosts, 14), expected);
    }

    #[test]
    fn equal_weights_rotate() {
        let lb = RoundRobin::new();
        assert_eq!(sequence(&lb, &views(&[2, 2, 2]), 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn each_host_gets_its_weight_per_period() {
        let lb = RoundRobin::new();
        let hosts = views(&[3, 7, 0, 2]);
        let mut counts = [0; 4];
        for i in sequence(&lb, &hosts, 12 * 50) {
            counts[i] += 1;
        }
        assert_eq!(counts, [150, 350, 0, 100]);
    }

    #[test]
    fn unhealthy_hosts_are_skipped() {
        let lb = RoundRobin::new();
        let mut hosts = views(&[1, 1, 1]);
        hosts[1].healthy = false;
        assert_eq!(sequence(&lb, &hosts, 4), [0, 2, 0, 2]);
    }

    #[test]
    fn membership_change_resets_state() {
        let lb = RoundRobin::new();
        sequence(&lb, &views(&[5, 1, 1]), 3);
        let hosts = views(&[1, 1]);
        assert_eq!(sequence(&lb, &hosts, 4), [0, 1, 0, 1]);
    }
}
