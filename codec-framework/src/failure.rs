/// A failure of the proxy itself (not of the upstream application), which each protocol
/// turns into its own wire answer with [`crate::Protocol::error_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyFailure {
    /// No route matched the request.
    NoRoute,
    /// The routed cluster has no healthy, reachable host.
    NoHealthyUpstream,
    /// A concurrency limit (pool, cluster, circuit breaker) is full.
    Overflow,
    /// The upstream did not answer within the request's deadline.
    Timeout,
    /// Connecting to the upstream failed.
    ConnectFailure,
    /// The upstream connection died with the request in flight.
    UpstreamReset,
    /// The request could not be decoded or re-encoded.
    CodecError,
    /// A rate limit rejected the request.
    RateLimited,
}

impl ProxyFailure {
    /// A short stable name, used in logs, metrics labels and error texts.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyFailure::NoRoute => "no_route",
            ProxyFailure::NoHealthyUpstream => "no_healthy_upstream",
            ProxyFailure::Overflow => "upstream_overflow",
            ProxyFailure::Timeout => "upstream_timeout",
            ProxyFailure::ConnectFailure => "connect_failure",
            ProxyFailure::UpstreamReset => "upstream_reset",
            ProxyFailure::CodecError => "codec_error",
            ProxyFailure::RateLimited => "rate_limited",
        }
    }
}

impl std::fmt::Display for ProxyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
