//! Load balancers: choose one host of a cluster for each request.
//!
//! The balancers own no host list. The caller passes the cluster's current hosts as a
//! slice of anything implementing [`LbHost`] (weight, health, in-flight count) and gets an
//! index back, so membership updates never have to be pushed into the balancer and the
//! hot path does not allocate. Hosts that are unhealthy or have weight 0 (draining) are
//! never picked; when no host is left, `pick` returns `None` and the proxy answers
//! "no healthy upstream".
//!
//! [`Balancer`] dispatches over the three policies with a `match` (no vtable), which is
//! what a cluster should hold; [`LoadBalancer`] is the same operation as a trait, for
//! callers that prefer `Box<dyn LoadBalancer<H>>`.

mod hash;
mod least_request;
mod maglev;
mod random;
mod ring_hash;
mod round_robin;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

pub use hash::{hash_host, hash_key};
pub use least_request::LeastRequest;
pub use maglev::Maglev;
pub use random::Random;
pub use ring_hash::RingHash;
pub use round_robin::RoundRobin;

/// The load-balancing policy of a cluster, as named in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LbPolicy {
    /// Smooth weighted round robin.
    #[default]
    RoundRobin,
    /// Weighted random.
    Random,
    /// Power of two choices on in-flight requests per unit of weight.
    LeastRequest,
    /// Consistent hashing on a ring of virtual nodes (ketama): a key keeps its host,
    /// and a host leaving moves only its own keys.
    RingHash,
    /// Consistent hashing through Maglev's lookup table: even spread, about 1/N of the
    /// keys move when one of N hosts leaves.
    Maglev,
}

impl LbPolicy {
    /// The configuration name: `round_robin`, `random`, `least_request`, `ring_hash`
    /// or `maglev`.
    pub fn as_str(self) -> &'static str {
        match self {
            LbPolicy::RoundRobin => "round_robin",
            LbPolicy::Random => "random",
            LbPolicy::LeastRequest => "least_request",
            LbPolicy::RingHash => "ring_hash",
            LbPolicy::Maglev => "maglev",
        }
    }

    /// Whether the policy picks by a request's hash key.
    pub fn is_hashing(self) -> bool {
        matches!(self, LbPolicy::RingHash | LbPolicy::Maglev)
    }
}

impl fmt::Display for LbPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A load-balancing policy name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown load-balancing policy {0:?} (expected round_robin, random, least_request, ring_hash or maglev)"
)]
pub struct UnknownLbPolicy(pub String);

impl FromStr for LbPolicy {
    type Err = UnknownLbPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "round_robin" => Ok(LbPolicy::RoundRobin),
            "random" => Ok(LbPolicy::Random),
            "least_request" => Ok(LbPolicy::LeastRequest),
            "ring_hash" => Ok(LbPolicy::RingHash),
            "maglev" => Ok(LbPolicy::Maglev),
            other => Err(UnknownLbPolicy(other.to_string())),
        }
    }
}

/// What a balancer needs to know about a host. Implement it on the pool's host type
/// (typically backed by atomics) so picking reads live values without copying.
pub trait LbHost {
    /// Relative weight; 0 means the host takes no new requests.
    fn weight(&self) -> u32;
    /// Whether health checking (or outlier detection) currently allows the host.
    fn healthy(&self) -> bool;
    /// Requests currently outstanding on the host.
    fn in_flight(&self) -> usize;
}

impl<T: LbHost + ?Sized> LbHost for &T {
    fn weight(&self) -> u32 {
        (**self).weight()
    }
    fn healthy(&self) -> bool {
        (**self).healthy()
    }
    fn in_flight(&self) -> usize {
        (**self).in_flight()
    }
}

impl<T: LbHost + ?Sized> LbHost for Arc<T> {
    fn weight(&self) -> u32 {
        (**self).weight()
    }
    fn healthy(&self) -> bool {
        (**self).healthy()
    }
    fn in_flight(&self) -> usize {
        (**self).in_flight()
    }
}

/// A plain snapshot of a host's balancing inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostView {
    /// Relative weight.
    pub weight: u32,
    /// Whether the host may be picked.
    pub healthy: bool,
    /// Outstanding requests.
    pub in_flight: usize,
}

impl HostView {
    /// A healthy, idle host of the given weight.
    pub fn new(weight: u32) -> Self {
        HostView {
            weight,
            healthy: true,
            in_flight: 0,
        }
    }
}

impl LbHost for HostView {
    fn weight(&self) -> u32 {
        self.weight
    }
    fn healthy(&self) -> bool {
        self.healthy
    }
    fn in_flight(&self) -> usize {
        self.in_flight
    }
}

/// Picks one host out of a cluster's hosts.
pub trait LoadBalancer<H: LbHost>: Send + Sync {
    /// The index in `hosts` of the chosen host, or `None` if no host is eligible
    /// (all unhealthy, all weight 0, or the slice is empty).
    fn pick(&self, hosts: &[H]) -> Option<usize>;
}

/// Where the randomised balancers get their numbers. Injected so tests are repeatable.
pub trait RandomSource: Send + Sync {
    /// A uniformly distributed `u64`.
    fn next_u64(&self) -> u64;
}

/// The thread-local generator of `rand`: no lock shared between worker threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn next_u64(&self) -> u64 {
        rand::random()
    }
}

/// A seeded generator behind a lock: for tests and reproducible simulations, not for
/// the request path of a busy proxy (every pick would contend on the lock).
#[derive(Debug)]
pub struct SeededRandom(Mutex<SmallRng>);

impl SeededRandom {
    /// A generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom(Mutex::new(SmallRng::seed_from_u64(seed)))
    }
}

impl RandomSource for SeededRandom {
    fn next_u64(&self) -> u64 {
        self.0.lock().next_u64()
    }
}

/// One of the balancers, chosen by [`LbPolicy`]; dispatch is a `match`.
#[derive(Debug)]
pub enum Balancer<R: RandomSource = ThreadRandom> {
    /// Smooth weighted round robin.
    RoundRobin(RoundRobin),
    /// Weighted random.
    Random(Random<R>),
    /// Power of two choices.
    LeastRequest(LeastRequest<R>),
    /// A hash ring; requests without a key are spread at random.
    RingHash(RingHash, Random<R>),
    /// A Maglev table; requests without a key are spread at random.
    Maglev(Maglev, Random<R>),
}

impl Balancer {
    /// A balancer for `policy` using the thread-local generator (a hashing policy
    /// built for no hosts: see [`Balancer::for_hosts`]).
    pub fn new(policy: LbPolicy) -> Self {
        Balancer::with_random(policy, ThreadRandom)
    }

    /// A balancer for `policy` over hosts given as (identity, weight) pairs, in the
    /// order `pick` will see them (the hashing policies place them by identity, see
    /// [`hash_host`]).
    pub fn for_hosts(policy: LbPolicy, hosts: &[(u64, u32)]) -> Self {
        Balancer::for_hosts_with_random(policy, hosts, ThreadRandom)
    }
}

impl<R: RandomSource> Balancer<R> {
    /// A balancer for `policy` drawing from `random` (unused by round robin).
    pub fn with_random(policy: LbPolicy, random: R) -> Self {
        Balancer::for_hosts_with_random(policy, &[], random)
    }

    /// [`Balancer::for_hosts`] drawing from `random`.
    pub fn for_hosts_with_random(policy: LbPolicy, hosts: &[(u64, u32)], random: R) -> Self {
        match policy {
            LbPolicy::RoundRobin => Balancer::RoundRobin(RoundRobin::new()),
            LbPolicy::Random => Balancer::Random(Random::with_random(random)),
            LbPolicy::LeastRequest => Balancer::LeastRequest(LeastRequest::with_random(random)),
            LbPolicy::RingHash => Balancer::RingHash(
                RingHash::new(
                    hosts,
                    RingHash::DEFAULT_MIN_RING_SIZE,
                    RingHash::DEFAULT_MAX_RING_SIZE,
                ),
                Random::with_random(random),
            ),
            LbPolicy::Maglev => Balancer::Maglev(
                Maglev::new(hosts, Maglev::DEFAULT_TABLE_SIZE),
                Random::with_random(random),
            ),
        }
    }

    /// The policy this balancer implements.
    pub fn policy(&self) -> LbPolicy {
        match self {
            Balancer::RoundRobin(_) => LbPolicy::RoundRobin,
            Balancer::Random(_) => LbPolicy::Random,
            Balancer::LeastRequest(_) => LbPolicy::LeastRequest,
            Balancer::RingHash(..) => LbPolicy::RingHash,
            Balancer::Maglev(..) => LbPolicy::Maglev,
        }
    }

    /// Picks a host, see [`LoadBalancer::pick`] (a hashing balancer picks at random).
    pub fn pick<H: LbHost>(&self, hosts: &[H]) -> Option<usize> {
        self.pick_hashed(hosts, None)
    }

    /// Picks a host for a request whose hash key is `hash`: the hashing policies map
    /// it to its host (falling back to random without one); the others ignore it.
    pub fn pick_hashed<H: LbHost>(&self, hosts: &[H], hash: Option<u64>) -> Option<usize> {
        // One host, the common sidecar case: every policy picks it if it is eligible,
        // so skip the policy's state (and its lock) entirely.
        if let [only] = hosts {
            return eligible(only).then_some(0);
        }
        match self {
            Balancer::RoundRobin(lb) => lb.pick(hosts),
            Balancer::Random(lb) => lb.pick(hosts),
            Balancer::LeastRequest(lb) => lb.pick(hosts),
            Balancer::RingHash(ring, random) => match hash {
                Some(hash) => ring.pick(hosts, hash),
                None => random.pick(hosts),
            },
            Balancer::Maglev(table, random) => match hash {
                Some(hash) => table.pick(hosts, hash),
                None => random.pick(hosts),
            },
        }
    }
}

impl<H: LbHost, R: RandomSource> LoadBalancer<H> for Balancer<R> {
    fn pick(&self, hosts: &[H]) -> Option<usize> {
        Balancer::pick(self, hosts)
    }
}

/// A boxed balancer for `policy`, for callers that keep `Box<dyn LoadBalancer<H>>`
/// (for a cluster of `Arc<Host>`: `new_balancer::<Arc<Host>>(policy)`).
pub fn new_balancer<H: LbHost>(policy: LbPolicy) -> Box<dyn LoadBalancer<H>> {
    Box::new(Balancer::new(policy))
}

/// Whether a host may receive new requests at all.
fn eligible<H: LbHost>(host: &H) -> bool {
    host.healthy() && host.weight() > 0
}

/// A uniformly random number in `0..n` from the thread-local generator (0 when `n` is
/// 0): for jitter and the like, off the balancers' injected sources.
pub(crate) fn random_below(n: u64) -> u64 {
    below(rand::random(), n)
}

/// Maps a uniform `u64` onto `0..n` by multiply-high (Lemire): no division, and a bias
/// of at most `n / 2^64`, negligible for any host count.
fn below(random: u64, n: u64) -> u64 {
    ((u128::from(random) * u128::from(n)) >> 64) as u64
}

/// What the hashing balancers' tests share: 100,000 keys, host identities, and the
/// share and owner of each key.
#[cfg(test)]
pub(crate) mod hash_test_support {
    use super::{HostView, Maglev, RingHash, hash_host, hash_key};

    /// Keys per distribution or stability test.
    pub(crate) const KEYS: u64 = 100_000;

    /// Identity hashes of hosts 10.0.0.1:8080, 10.0.0.2:8080, ...
    pub(crate) fn identities(n: u8) -> Vec<u64> {
        (1..=n)
            .map(|i| hash_host(&([10, 0, 0, i], 8080).into()))
            .collect()
    }

    /// The hash of key number `i`.
    pub(crate) fn key(i: u64) -> u64 {
        hash_key(&i.to_le_bytes())
    }

    /// Healthy, idle hosts of these weights.
    pub(crate) fn views(weights: &[u32]) -> Vec<HostView> {
        weights.iter().map(|&w| HostView::new(w)).collect()
    }

    /// A balancer that picks by hash.
    pub(crate) trait PickByHash {
        fn pick_by(&self, hosts: &[HostView], hash: u64) -> Option<usize>;
    }

    impl PickByHash for RingHash {
        fn pick_by(&self, hosts: &[HostView], hash: u64) -> Option<usize> {
            self.pick(hosts, hash)
        }
    }

    impl PickByHash for Maglev {
        fn pick_by(&self, hosts: &[HostView], hash: u64) -> Option<usize> {
            self.pick(hosts, hash)
        }
    }

    /// Share of the keys picked by each host.
    pub(crate) fn shares(lb: &impl PickByHash, hosts: &[HostView]) -> Vec<f64> {
        let mut counts = vec![0u64; hosts.len()];
        for i in 0..KEYS {
            counts[lb.pick_by(hosts, key(i)).expect("a host")] += 1;
        }
        counts.iter().map(|&c| c as f64 / KEYS as f64).collect()
    }

    /// The identity of the host each key goes to.
    pub(crate) fn owners(lb: &impl PickByHash, ids: &[u64], hosts: &[HostView]) -> Vec<u64> {
        (0..KEYS)
            .map(|i| ids[lb.pick_by(hosts, key(i)).expect("a host")])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_round_trip() {
        for policy in [
            LbPolicy::RoundRobin,
            LbPolicy::Random,
            LbPolicy::LeastRequest,
            LbPolicy::RingHash,
            LbPolicy::Maglev,
        ] {
            assert_eq!(policy.as_str().parse::<LbPolicy>(), Ok(policy));
            assert_eq!(Balancer::new(policy).policy(), policy);
        }
        assert_eq!(
            "weighted".parse::<LbPolicy>(),
            Err(UnknownLbPolicy("weighted".to_string()))
        );
    }

    #[test]
    fn below_stays_in_range() {
        assert_eq!(below(0, 7), 0);
        assert_eq!(below(u64::MAX, 7), 6);
        assert_eq!(below(u64::MAX / 2, 2), 0);
        assert_eq!(below(u64::MAX / 2 + 1, 2), 1);
    }

    #[test]
    fn every_policy_handles_empty_single_and_all_unhealthy() {
        let down = HostView {
            healthy: false,
            ..HostView::new(1)
        };
        for policy in [
            LbPolicy::RoundRobin,
            LbPolicy::Random,
            LbPolicy::LeastRequest,
            LbPolicy::RingHash,
            LbPolicy::Maglev,
        ] {
            let lb = Balancer::with_random(policy, SeededRandom::new(1));
            assert_eq!(lb.pick::<HostView>(&[]), None, "{policy}");
            assert_eq!(lb.pick(&[down, down]), None, "{policy}");
            assert_eq!(
                lb.pick(&[HostView::new(0)]),
                None,
                "{policy}: weight 0 drains"
            );
            assert!(
                (0..10).all(|_| lb.pick(&[HostView::new(3)]) == Some(0)),
                "{policy}"
            );
            assert!(
                (0..10).all(|_| lb.pick(&[down, HostView::new(1)]) == Some(1)),
                "{policy}"
            );
        }
    }

    #[test]
    fn works_through_references_and_trait_objects() {
        let hosts = [Arc::new(HostView::new(1)), Arc::new(HostView::new(1))];
        let lb: Box<dyn LoadBalancer<Arc<HostView>>> = new_balancer(LbPolicy::Random);
        assert!(lb.pick(&hosts).is_some_and(|i| i < 2));
        let refs: Vec<&HostView> = hosts.iter().map(|h| &**h).collect();
        assert!(Balancer::new(LbPolicy::LeastRequest).pick(&refs).is_some());
    }
}
