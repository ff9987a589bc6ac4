//! The request handler of a framed downstream connection: route, pick a cluster and a
//! connection, all without waiting unless a connection must be made first; and report
//! each request's end to the [`Pipeline`].

use std::sync::Arc;
use std::time::Duration;

use strait_codec_framework::{Frame, Protocol, ProxyFailure};
use strait_router::{RouteTable, RouteTarget};
use strait_stream::{RequestContext, RequestEnd, RequestHandler, Route};
use strait_upstream::Selected;

use crate::config::DEFAULT_ROUTE_TIMEOUT;
use crate::pipeline::{Pipeline, RouteClusters};

/// Handles the requests of one downstream connection.
pub struct Forwarder {
    pub(crate) listener: Arc<str>,
    pub(crate) protocol: Arc<dyn Protocol>,
    pub(crate) routes: Arc<RouteTable>,
    pub(crate) route_clusters: Arc<RouteClusters>,
    pub(crate) pipeline: Arc<Pipeline>,
}

impl RequestHandler for Forwarder {
    fn route(&self, request: &mut dyn Frame, ctx: &mut RequestContext) -> Route {
        match self.decide(request, ctx) {
            Ok(route) => route,
            Err(failure) => Route::Fail(failure),
        }
    }

    fn finished(&self, ctx: &RequestContext, end: RequestEnd) {
        let protocol = self.protocol.name();
        self.pipeline
            .finish(&self.listener, protocol, &self.routes, ctx, end);
    }
}

impl Forwarder {
    fn decide(
        &self,
        request: &mut dyn Frame,
        ctx: &mut RequestContext,
    ) -> Result<Route, ProxyFailure> {
        let Some(decision) = self.routes.route(None, request) else {
            // A request whose metadata could not be read is malformed, not unrouted.
            return Err(if request.metadata_unreadable() {
                ProxyFailure::CodecError
            } else {
                ProxyFailure::NoRoute
            });
        };
        ctx.route = decision.route_index();
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
        let (index, cluster) = self
            .pipeline
            .clusters
            .for_route(&self.route_clusters, ctx.route, cluster_name)
            .ok_or(ProxyFailure::NoHealthyUpstream)?;
        ctx.cluster = index;
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
            Selected::Connecting(connecting) => Route::Later(connecting, timeout),
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
