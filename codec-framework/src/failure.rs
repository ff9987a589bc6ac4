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
    /// What went wrong, for a person reading an error answer: the text protocols put in
    /// their error message field (Dubbo's message, Bolt's `x-proxy-error` entry).
    /// [`ProxyFailure::text_for`] adds what the request asked for.
    pub fn description(self) -> &'static str {
        match self {
            ProxyFailure::NoRoute => "no route",
            ProxyFailure::NoHealthyUpstream => "no healthy upstream",
            ProxyFailure::Overflow => "upstream overflow",
            ProxyFailure::Timeout => "upstream timeout",
            ProxyFailure::ConnectFailure => "upstream connect failure",
            ProxyFailure::UpstreamReset => "upstream reset",
            ProxyFailure::CodecError => "the request could not be decoded or re-encoded",
            ProxyFailure::RateLimited => "rate limited",
        }
    }

    /// [`ProxyFailure::description`] for `request`: a missing route names the service
    /// and method it was looked up by (`no route for com.acme.Orders:1.0#create`).
    pub fn text_for(self, request: &dyn crate::Frame) -> String {
        match (
            self,
            request.variable("service"),
            request.variable("method"),
        ) {
            (ProxyFailure::NoRoute, Some(service), Some(method)) => {
                format!("no route for {service}#{method}")
            }
            _ => self.description().to_string(),
        }
    }

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
