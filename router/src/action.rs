use crate::{Redirect, RouteError};

/// What a matched route does with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Forward to one cluster.
    Cluster(String),
    /// Forward to one of several clusters, chosen at random by weight (traffic splitting).
    WeightedClusters(WeightedClusters),
    /// Answer locally without contacting any upstream.
    DirectResponse {
        /// Status to answer with, in the numbering of the request's protocol.
        status: u32,
        /// Optional response body.
        body: Option<String>,
    },
    /// Answer with an HTTP redirect to a location built from the request.
    Redirect(Redirect),
}

impl RouteAction {
    /// Forward to `cluster`; rejects an empty name.
    pub fn cluster(cluster: impl Into<String>) -> Result<Self, RouteError> {
        let cluster = cluster.into();
        if cluster.is_empty() {
            return Err(RouteError::EmptyClusterName);
        }
        Ok(RouteAction::Cluster(cluster))
    }

    /// Split traffic by weight, see [`WeightedClusters::new`].
    pub fn weighted(clusters: Vec<(String, u32)>) -> Result<Self, RouteError> {
        WeightedClusters::new(clusters).map(RouteAction::WeightedClusters)
    }

    /// Answer locally with `status` and an optional body.
    pub fn direct(status: u32, body: Option<String>) -> Self {
        RouteAction::DirectResponse { status, body }
    }

    /// Answer with a redirect, see [`Redirect`].
    pub fn redirect(redirect: Redirect) -> Self {
        RouteAction::Redirect(redirect)
    }
}

/// A validated traffic split: at least one cluster and a positive total weight.
///
/// Each entry owns the half-open range `[end - weight, end)` of `[0, total)`; picking is a
/// binary search of the ends, so it costs `O(log n)` and allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedClusters {
    clusters: Vec<(String, u32)>,
    /// Running sums of the weights: `ends[i]` is the exclusive end of entry `i`'s range.
    ends: Vec<u64>,
    total: u64,
}

impl WeightedClusters {
    /// Validates a split. Zero-weight entries are allowed (a cluster being drained) and are
    /// never picked; an empty list, an empty cluster name or an all-zero split is an error.
    pub fn new(clusters: Vec<(String, u32)>) -> Result<Self, RouteError> {
        if clusters.is_empty() {
            return Err(RouteError::EmptyWeightedClusters);
        }
        if clusters.iter().any(|(name, _)| name.is_empty()) {
            return Err(RouteError::EmptyClusterName);
        }
        // u64 cannot overflow: it would take 2^32 entries of u32::MAX.
        let ends: Vec<u64> = clusters
            .iter()
            .scan(0u64, |sum, (_, weight)| {
                *sum += u64::from(*weight);
                Some(*sum)
            })
            .collect();
        let total = ends.last().copied().unwrap_or(0);
        if total == 0 {
            return Err(RouteError::ZeroTotalWeight);
        }
        Ok(WeightedClusters {
            clusters,
            ends,
            total,
        })
    }

    /// The configured `(cluster, weight)` entries, in order.
    pub fn clusters(&self) -> &[(String, u32)] {
        &self.clusters
    }

    /// The sum of all weights (always > 0).
    pub fn total_weight(&self) -> u64 {
        self.total
    }

    /// The deterministic core of the weighted choice: maps `rng_value` onto `[0, total)`
    /// by remainder and returns the cluster owning that point. Over `rng_value` in
    /// `0..total` every cluster is returned exactly `weight` times. The remainder's bias on
    /// a uniform `u64` is at most `total / 2^64`, far below anything measurable.
    pub fn pick_cluster(&self, rng_value: u64) -> &str {
        let point = rng_value % self.total;
        // First entry whose range ends after `point`; zero-weight entries share their
        // predecessor's end and are therefore skipped.
        let index = self.ends.partition_point(|&end| end <= point);
        // `point < total == ends[last]`, so some end is > point and `index` is in range.
        &self.clusters[index].0
    }

    /// Picks a cluster with the thread-local random generator.
    pub fn pick_cluster_random(&self) -> &str {
        self.pick_cluster(rand::random())
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::SmallRng};

    use super::*;

    fn split(entries: &[(&str, u32)]) -> Result<WeightedClusters, RouteError> {
        WeightedClusters::new(entries.iter().map(|(n, w)| (n.to_string(), *w)).collect())
    }

    #[test]
    fn validation_errors_are_typed() {
        assert_eq!(split(&[]), Err(RouteError::EmptyWeightedClusters));
        assert_eq!(
            split(&[("a", 0), ("b", 0)]),
            Err(RouteError::ZeroTotalWeight)
        );
        assert_eq!(split(&[("", 1)]), Err(RouteError::EmptyClusterName));
        assert_eq!(RouteAction::cluster(""), Err(RouteError::EmptyClusterName));
    }

    #[test]
    fn deterministic_core_is_exact_over_one_period() {
        let w = split(&[("a", 90), ("drained", 0), ("b", 10)]).expect("valid");
        let (mut a, mut b) = (0, 0);
        for value in 0..10_000u64 {
            match w.pick_cluster(value) {
                "a" => a += 1,
                "b" => b += 1,
                other => panic!("picked {other}"),
            }
        }
        assert_eq!((a, b), (9_000, 1_000));
        assert_eq!(w.pick_cluster(89), "a");
        assert_eq!(w.pick_cluster(90), "b");
        assert_eq!(w.pick_cluster(u64::MAX), w.pick_cluster(u64::MAX % 100));
    }

    #[test]
    fn seeded_random_split_is_within_tolerance() {
        let w = split(&[("a", 90), ("b", 10)]).expect("valid");
        let mut rng = SmallRng::seed_from_u64(7);
        let b = (0..10_000)
            .filter(|_| w.pick_cluster(rng.random()) == "b")
            .count();
        // Binomial(10_000, 0.1): sd = 30, so ±150 is five sigma.
        assert!((850..=1_150).contains(&b), "b picked {b} times");
    }

    #[test]
    fn single_cluster_always_wins() {
        let w = split(&[("only", 3)]).expect("valid");
        assert!((0..100).all(|_| w.pick_cluster_random() == "only"));
    }
}
