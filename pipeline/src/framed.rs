//! The request handler of a framed downstream connection: route, pick a cluster and a
//! connection, all without waiting unless a connection must be made first; and report
//! each request's end to the [`Pipeline`].

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;
use slab::Slab;
use strait_codec_framework::{Frame, Outcome, Protocol, ProxyFailure, RequestCount, RequestView};
use strait_router::{RouteTarget, StatusSpace};
use strait_stream::{RequestContext, RequestEnd, RequestHandler, Route, UpstreamConnection};
use strait_upstream::Selected;

use crate::core::{ListenerPipeline, effective_timeout};
use crate::slot::ListenerSlot;

/// Handles the requests of one framed downstream connection.
pub struct FramedForwarder {
    listener: Arc<ListenerPipeline>,
    /// Where a reloaded configuration's pipeline appears, and the version of it this
    /// handler routes with.
    slot: Arc<ListenerSlot>,
    version: u64,
    protocol: Arc<dyn Protocol>,
    peer: Option<SocketAddr>,
    /// The views of this connection's requests in flight, by
    /// [`RequestContext::view`] (used only when a hook wants views; only this
    /// connection's task takes the lock).
    views: Mutex<Slab<Box<RequestView>>>,
}

impl FramedForwarder {
    /// The handler of a connection of the listener in `slot` speaking `protocol`, from
    /// `peer`.
    pub fn new(
        slot: Arc<ListenerSlot>,
        protocol: Arc<dyn Protocol>,
        peer: Option<SocketAddr>,
    ) -> Self {
        let (version, listener) = slot.versioned();
        FramedForwarder {
            listener,
            slot,
            version,
            protocol,
            peer,
            views: Mutex::new(Slab::new()),
        }
    }
}

impl RequestHandler for FramedForwarder {
    fn route(
        &self,
        request: &mut dyn Frame,
        ctx: &mut RequestContext,
        recent: Option<&UpstreamConnection>,
    ) -> Route {
        if let Some(view) = self.listener.start(request, self.peer) {
            let mut views = self.views.lock();
            let key = views.insert(view);
            match u32::try_from(key) {
                Ok(key) => ctx.view = key,
                // Past 2^32 views in flight on one connection: this one goes unkept.
                Err(_) => drop(views.remove(key)),
            }
        }
        match self.decide(request, ctx, recent) {
            Ok(route) => route,
            Err(failure) => Route::Fail(failure),
        }
    }

    fn finished(&self, ctx: &RequestContext, end: RequestEnd) {
        let view =
            RequestContext::known(ctx.view).and_then(|key| self.views.lock().try_remove(key));
        self.listener
            .report(self.protocol.name(), ctx, end, view.as_deref());
    }

    fn retry(
        &self,
        request: &mut dyn Frame,
        ctx: &mut RequestContext,
        outcome: Outcome,
        status: Option<u32>,
    ) -> Option<Route> {
        let Some((policy, cluster)) =
            self.listener
                .retry_plan(ctx, outcome, status, StatusSpace::Protocol)
        else {
            tracing::debug!(attempt = ctx.attempt, %outcome, "not retried: policy");
            return None;
        };
        let route = u32::try_from(RequestContext::known(ctx.route)?).ok()?;
        let (_, r) = self.listener.routes.route_at(route)?;
        let timeout = effective_timeout(r.timeout, request.timeout());
        let failed = *ctx;
        let Some(back_off) =
            ListenerPipeline::next_attempt(policy, cluster, ctx, outcome, ctx.start + timeout)
        else {
            tracing::debug!(attempt = ctx.attempt, %outcome, "not retried: deadline or admission");
            return None;
        };
        if let Some(key) = RequestContext::known(failed.view) {
            let mut views = self.views.lock();
            let view = views.get_mut(key).map(|v| &mut **v);
            self.listener
                .attempt_failed(&failed, outcome, view, &mut |name, value| {
                    request.set_header(name, value)
                });
        }
        // The attempt's own timeout counts from when it starts, within the request's.
        let elapsed = ctx.start.elapsed() + back_off;
        let attempt_timeout = policy
            .per_try_timeout
            .map_or(timeout, |per_try| (elapsed + per_try).min(timeout));
        let (cluster, hash, tried) = (cluster.clone(), cluster.request_hash(request), ctx.tried);
        Some(Route::Later(
            Box::pin(async move {
                tokio::time::sleep(back_off).await;
                match cluster.select_retry(hash, tried)? {
                    Selected::Ready(conn) => Ok(conn),
                    Selected::Connecting(connecting) => connecting.await,
                    // A retry passes no recent connection, so none is picked.
                    Selected::Recent => Err(ProxyFailure::NoHealthyUpstream),
                }
            }),
            attempt_timeout,
        ))
    }

    fn successor(&self) -> Option<Arc<Self>> {
        if self.slot.version() == self.version {
            return None;
        }
        let next = FramedForwarder::new(self.slot.clone(), self.protocol.clone(), self.peer);
        Some(Arc::new(next))
    }

    fn count(&self, counts: &[RequestCount]) {
        self.listener.count(self.protocol.name(), counts);
    }

    fn times_requests(&self) -> bool {
        self.listener.timed()
    }
}

impl FramedForwarder {
    fn decide(
        &self,
        request: &mut dyn Frame,
        ctx: &mut RequestContext,
        recent: Option<&UpstreamConnection>,
    ) -> Result<Route, ProxyFailure> {
        let Some(decision) = self.listener.routes.route(None, request) else {
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
        let cluster = self
            .listener
            .cluster(ctx, cluster_name)
            .ok_or(ProxyFailure::NoHealthyUpstream)?;
        if !same_name(cluster.transport().name(), self.protocol.name()) {
            tracing::warn!(
                cluster = cluster_name,
                "route leads to a cluster of another protocol"
            );
            return Err(ProxyFailure::NoHealthyUpstream);
        }
        // The caller's own deadline as it sent it, before the route edits what goes
        // upstream (a removed timeout field still bounds this request).
        let timeout = effective_timeout(decision.timeout(), request.timeout());
        // With a retry policy, the first attempt has its own timeout too.
        let timeout = match decision.retry_policy().and_then(|p| p.per_try_timeout) {
            Some(per_try) => per_try.min(timeout),
            None => timeout,
        };
        let hash = cluster.request_hash(request);
        decision.apply_request_headers(request);
        Ok(match cluster.select(hash, recent)? {
            Selected::Recent => Route::SendRecent(timeout),
            Selected::Ready(conn) => Route::Send(conn, timeout),
            Selected::Connecting(connecting) => Route::Later(connecting, timeout),
        })
    }
}

/// Whether two protocol names are the same: the registry's names are static strings,
/// so the addresses usually decide without comparing bytes.
#[inline]
fn same_name(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}
