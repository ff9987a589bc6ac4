//! Clusters, load balancers and multiplexed connection pools.
