//! Upstream machinery: static clusters of weighted hosts, load balancers, and per-host
//! pools of multiplexed connections that connect ahead of time or on demand and
//! reconnect with backoff.

mod backoff;
mod cluster;
mod host;
pub mod lb;

pub use cluster::{
    Cluster, ClusterOptions, ClusterSnapshot, Connecting, Endpoint, HostSnapshot, Selected,
    Transport,
};
pub use host::{Host, RequestGuard};
