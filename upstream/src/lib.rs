//! Upstream machinery: static clusters of weighted hosts, load balancers, and each
//! cluster's connection pool in the mode its protocol asks for
//! ([`strait_codec_framework::PoolMode`]): per-host slots of multiplexed connections
//! (Bolt, Dubbo) that connect ahead of time or on demand, one request at a time per
//! connection (HTTP/1.1), or HTTP/2 streams. One admission count, one connect backoff
//! per host and one outcome count serve every mode.

mod backoff;
mod breakers;
mod cluster;
mod connect;
mod health;
mod health_check;
mod host;
pub mod lb;
mod message_pool;

pub use breakers::{Breaker, BreakerSnapshot, CircuitBreakers, RetryBudget};
pub use cluster::{
    Cluster, ClusterOptions, ClusterSnapshot, Connecting, Discovery, DnsEndpoint, Endpoint,
    HashKey, HostSet, HostSnapshot, Resolve, Selected, SystemResolver, Transport, host_bit,
};
pub use health::{EjectReason, HealthSnapshot, OutlierDetection};
pub use health_check::{CheckKind, HealthCheck};
pub use host::{Host, RequestGuard};
pub use message_pool::{Exchange, SendFailure};
