//! The request handler of a downstream connection: route, pick a cluster and a
//! connection, all without waiting unless a connection must be made first.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use strait_codec_framework::{Frame, Protocol, ProxyFailure};
use strait_router::{RouteTable, RouteTarget};
use strait_stream::{RequestHandler, Route};
use strait_upstream::{Cluster, Selected};

use crate::config::DEFAULT_ROUTE_TIMEOUT;

/// Clusters by name, shared by every listener of one configuration snapshot. Looked up
/// once per request, so keyed with a cheap hasher (names come from our own config).
pub type Clusters = HashMap<String, Arc<Cluster>, BuildHasherDefault<NameHasher>>;

/// A word-at-a-time multiplicative hasher for cluster names (SipHash's flood resistance
/// is not needed for keys that only the configuration defines).
#[derive(Default)]
pub struct NameHasher(u64);

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*byte)).wrapping_mul(K);
        }
    }
}

/// Handles the requests of one downstream connection.
pub struct Forwarder {
    pub(crate) protocol: Arc<dyn Protocol>,
    pub(crate) routes: Arc<RouteTable>,
    pub(crate) clusters: Arc<Clusters>,
}

impl RequestHandler for Forwarder {
    fn route(&self, request: &mut dyn Frame) -> Route {
        match self.decide(request) {
            Ok(route) => route,
            Err(failure) => Route::Fail(failure),
        }
    }
}

impl Forwarder {
    fn decide(&self, request: &mut dyn Frame) -> Result<Route, ProxyFailure> {
        let Some(decision) = self.routes.route(None, request) else {
            // A request whose metadata could not be read is malformed, not unrouted.
            return Err(if request.metadata_unreadable() {
                ProxyFailure::CodecError
            } else {
                ProxyFailure::NoRoute
            });
        };
        let cluster_name = match decision.target {
            RouteTarget::Cluster(name) => name,
            RouteTarget::DirectResponse { status, body } => {
                return self
                    .protocol
                    .direct_response(request, status, body)
                    .map(Route::Reply)
                    .ok_or(ProxyFailure::NoRoute);
            }
            // HTTP-only: rejected at load for framed listeners; a framed request that
            // reaches one through an `auto` listener is unrouted.
            RouteTarget::Redirect { .. } => return Err(ProxyFailure::NoRoute),
        };
        let cluster = self
            .clusters
            .get(cluster_name)
            .ok_or(ProxyFailure::NoHealthyUpstream)?;
        if cluster.transport().name() != self.protocol.name() {
            tracing::warn!(
                cluster = cluster_name,
                "route leads to a cluster of another protocol"
            );
            return Err(ProxyFailure::NoHealthyUpstream);
        }
        decision.apply_request_headers(request);
        let timeout = effective_timeout(decision.timeout(), request.timeout());
        Ok(match cluster.select()? {
            Selected::Ready(conn) => Route::Send(conn, timeout),
            Selected::Connecting(connecting) => {
                Route::Later(Box::pin(async move { Ok((connecting.await?, timeout)) }))
            }
        })
    }
}

/// The route's timeout caps the request's own (a Bolt timeout field, a Dubbo `timeout`
/// attachment, `grpc-timeout`): a caller that will give up after 100 ms gets its TIMEOUT
/// answer at 100 ms, not at the route's 3 s.
pub(crate) fn effective_timeout(route: Option<Duration>, frame: Option<Duration>) -> Duration {
    match (route, frame) {
        (Some(r), Some(f)) => r.min(f),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => DEFAULT_ROUTE_TIMEOUT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_timeout_caps_frame_timeout() {
        let s = Duration::from_secs;
        assert_eq!(effective_timeout(Some(s(3)), Some(s(1))), s(1));
        assert_eq!(effective_timeout(Some(s(1)), Some(s(3))), s(1));
        assert_eq!(effective_timeout(None, Some(s(2))), s(2));
        assert_eq!(effective_timeout(Some(s(2)), None), s(2));
        assert_eq!(effective_timeout(None, None), DEFAULT_ROUTE_TIMEOUT);
    }
}
