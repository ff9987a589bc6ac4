//! What every request of every protocol shares: the clusters a route leads to, the
//! deadline, and the one place requests end.
//!
//! Framed connections (through [`strait_stream::RequestHandler::finished`]) and HTTP
//! exchanges alike hand their request's [`RequestContext`] and [`RequestEnd`] to
//! [`ListenerPipeline::finish`]: the cluster and host counters are raised there, and
//! the [`RequestHook`]s (the listener's metrics and access log, the pipeline's own)
//! see the one [`RequestRecord`]. Nothing is allocated or locked for it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use strait_codec_framework::{
    AttemptRecord, Frame, Outcome, RequestCount, RequestHook, RequestRecord, RequestView,
    StartFilter, ViewSlot, fast_random,
};
use strait_router::{RetryPolicy, RouteAction, RouteTable, StatusSpace};
use strait_stream::{Moment, RequestContext, RequestEnd, Tally};
use strait_upstream::Cluster;

/// The clusters of one configuration snapshot: by name for routing, by position for
/// the number a request carries in its context.
#[derive(Default)]
pub struct ClusterSet {
    by_name: HashMap<String, u32, BuildHasherDefault<NameHasher>>,
    list: Vec<Arc<Cluster>>,
}

impl ClusterSet {
    /// The set of `clusters`, numbered in order.
    pub fn new(clusters: Vec<Arc<Cluster>>) -> Self {
        let by_name = clusters
            .iter()
            .enumerate()
            // Cluster lists come from config text: far fewer than 2^32.
            .map(|(i, c)| (c.name().to_string(), u32::try_from(i).unwrap_or(u32::MAX)))
            .collect();
        ClusterSet {
            by_name,
            list: clusters,
        }
    }

    /// The cluster called `name`, with its number.
    pub fn get(&self, name: &str) -> Option<(u32, &Arc<Cluster>)> {
        let index = *self.by_name.get(name)?;
        Some((index, self.list.get(index as usize)?))
    }

    /// The cluster numbered `index`.
    pub fn at(&self, index: usize) -> Option<&Arc<Cluster>> {
        self.list.get(index)
    }

    /// The cluster a route chose: by the route's precomputed number when it names one
    /// cluster ([`RouteClusters`]), by name otherwise (weighted splits).
    fn for_route(
        &self,
        pre: &RouteClusters,
        route: u32,
        name: &str,
    ) -> Option<(u32, &Arc<Cluster>)> {
        match pre.0.get(route as usize) {
            Some(&index) if index != RequestContext::NONE => {
                Some((index, self.list.get(index as usize)?))
            }
            _ => self.get(name),
        }
    }

    /// Every cluster, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Cluster>> {
        self.list.iter()
    }
}

/// For each route of a table (by [`strait_router::RouteDecision::route_index`]), the
/// number of the one cluster it forwards to: resolved once per listener, so a request
/// does not hash its cluster's name.
struct RouteClusters(Box<[u32]>);

impl RouteClusters {
    fn new(routes: &RouteTable, clusters: &ClusterSet) -> Self {
        let numbers = (0u32..)
            .map_while(|i| routes.route_at(i))
            .map(|(_, route)| match &route.action {
                RouteAction::Cluster(name) => clusters.get(name).map(|(i, _)| i),
                _ => None,
            })
            .map(|number| number.unwrap_or(RequestContext::NONE))
            .collect();
        RouteClusters(numbers)
    }
}

/// A word-at-a-time multiplicative hasher for cluster names (SipHash's flood resistance
/// is not needed for keys that only the configuration defines). Looked up once per
/// request.
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

/// Where requests end: the clusters they count against and the hook that hears them.
pub struct Pipeline {
    clusters: Arc<ClusterSet>,
    hook: Option<Arc<dyn RequestHook>>,
    /// `hook`, if it hears each request's end ([`RequestHook::wants_each_end`]).
    end_hook: Option<Arc<dyn RequestHook>>,
}

impl Pipeline {
    /// The pipeline of one configuration's `clusters`; `hook`, if any, hears every
    /// request's end.
    pub fn new(clusters: Arc<ClusterSet>, hook: Option<Arc<dyn RequestHook>>) -> Self {
        let end_hook = hook.clone().filter(|h| h.wants_each_end());
        Pipeline {
            clusters,
            hook,
            end_hook,
        }
    }

    /// The clusters requests go to.
    pub fn clusters(&self) -> &Arc<ClusterSet> {
        &self.clusters
    }

    /// Counts `n` requests of cluster `cluster` and host `host` (numbers as in a
    /// [`RequestContext`]) that ended with `outcome`.
    pub(crate) fn count(&self, cluster: u32, host: u32, outcome: Outcome, n: u64) {
        let cluster = RequestContext::known(cluster).and_then(|i| self.clusters.at(i));
        if let Some(cluster) = cluster {
            cluster.record_n(RequestContext::known(host), outcome, n);
        }
    }

    /// Tells the hooks that hear each end (the listener's own, then the pipeline's) how
    /// one request ended. `routes` is the table its route number refers to.
    #[allow(clippy::too_many_arguments)] // the one place a record is put together
    fn report(
        &self,
        listener: &str,
        listener_hooks: &[Arc<dyn RequestHook>],
        wants_names: bool,
        protocol: &str,
        routes: &RouteTable,
        ctx: &RequestContext,
        end: RequestEnd,
        view: Option<&RequestView>,
    ) {
        let hook = self.end_hook.as_ref();
        if hook.is_none() && listener_hooks.is_empty() {
            return;
        }
        // A listener's hooks that read names (the tracer, the access log) read them only
        // for requests whose view they kept: an unsampled request costs no lookup.
        let names = (wants_names && view.is_some()) || hook.is_some();
        let cluster = RequestContext::known(ctx.cluster)
            .filter(|_| names)
            .and_then(|i| self.clusters.at(i));
        let host = RequestContext::known(ctx.host);
        let route = RequestContext::known(ctx.route)
            .filter(|_| names)
            .and_then(|i| routes.route_at(i as u32))
            .and_then(|(_, route)| route.name.as_deref());
        let host = cluster
            .zip(host)
            .and_then(|(c, h)| c.host(h))
            .map(|h| h.addr());
        let record = RequestRecord {
            listener,
            protocol,
            route,
            route_index: (ctx.route != RequestContext::NONE).then_some(ctx.route),
            cluster: cluster.map(|c| c.name()),
            cluster_index: (ctx.cluster != RequestContext::NONE).then_some(ctx.cluster),
            host,
            attempt: ctx.attempt,
            outcome: end.outcome,
            status: end.status,
            duration: Moment::between(ctx.start_nanos, end.at),
            upstream_duration: ctx.sent.map(|s| Moment::between(s, end.at)),
            request_bytes: ctx.request_bytes,
            response_bytes: end.response_bytes,
            view,
        };
        for hook in listener_hooks.iter().chain(hook) {
            hook.on_request_end(&record);
        }
    }
}

/// One listener's entry into the pipeline, shared by every connection it accepts and
/// by every protocol it serves: its name, its route table with each route's cluster
/// resolved once, and the pipeline.
pub struct ListenerPipeline {
    pub(crate) name: Arc<str>,
    pub(crate) routes: Arc<RouteTable>,
    route_clusters: RouteClusters,
    pub(crate) pipeline: Arc<Pipeline>,
    /// The listener's own hooks (its metrics, its access log).
    hooks: Vec<Arc<dyn RequestHook>>,
    /// Those of `hooks` that hear each request's end ([`RequestHook::wants_each_end`]).
    end_hooks: Vec<Arc<dyn RequestHook>>,
    /// Whether every hook that hears ends does something only for a request whose
    /// view was kept ([`RequestHook::ends_need_view`]).
    ends_need_view: bool,
    /// The hooks (the listener's, then the pipeline's) that read each request's head
    /// ([`RequestHook::wants_view`]).
    view_hooks: Vec<Arc<dyn RequestHook>>,
    /// Each view hook's [`RequestHook::start_filter`], in the same order.
    view_filters: Vec<Option<StartFilter>>,
    /// Whether any hook reads the times of counted requests
    /// ([`RequestHook::wants_counts`]).
    timed: bool,
    /// Whether any hook needs each request's view.
    wants_view: bool,
    /// Whether any of `hooks` reads the record's names.
    wants_names: bool,
}

impl ListenerPipeline {
    /// The entry of the listener called `name`, routing with `routes`; `hooks` hear
    /// the start and end of every request of this listener, in order (before the
    /// pipeline's own hook).
    pub fn new(
        name: &str,
        routes: Arc<RouteTable>,
        pipeline: Arc<Pipeline>,
        hooks: Vec<Arc<dyn RequestHook>>,
    ) -> Self {
        let route_clusters = RouteClusters::new(&routes, &pipeline.clusters);
        let view_hooks: Vec<_> = hooks
            .iter()
            .chain(pipeline.hook.as_ref())
            .filter(|h| h.wants_view())
            .cloned()
            .collect();
        let wants_view = !view_hooks.is_empty();
        let view_filters = view_hooks.iter().map(|h| h.start_filter()).collect();
        let wants_names = hooks.iter().any(|h| h.wants_names());
        let end_hooks: Vec<_> = hooks
            .iter()
            .filter(|h| h.wants_each_end())
            .cloned()
            .collect();
        let ends_need_view = end_hooks
            .iter()
            .chain(pipeline.end_hook.as_ref())
            .all(|h| h.ends_need_view());
        let timed = hooks
            .iter()
            .chain(pipeline.hook.as_ref())
            .any(|h| h.wants_counts());
        ListenerPipeline {
            name: Arc::from(name),
            routes,
            route_clusters,
            pipeline,
            hooks,
            end_hooks,
            ends_need_view,
            view_hooks,
            view_filters,
            timed,
            wants_view,
            wants_names,
        }
    }

    /// Whether the requests' times are counted ([`RequestHook::wants_counts`]).
    pub(crate) fn timed(&self) -> bool {
        self.timed
    }

    /// Counts ended requests of `protocol`, in groups: on their clusters and hosts,
    /// and to every hook.
    pub(crate) fn count(&self, protocol: &str, counts: &[RequestCount]) {
        for c in counts {
            self.pipeline.count(c.cluster, c.host, c.outcome, c.n);
        }
        for hook in self.hooks.iter().chain(self.pipeline.hook.as_ref()) {
            hook.on_requests_counted(protocol, counts);
        }
    }

    /// Whether any hook hears this listener's requests (what only hooks read need not
    /// be gathered otherwise).
    pub(crate) fn records(&self) -> bool {
        !self.hooks.is_empty() || self.pipeline.hook.is_some()
    }

    /// Starts one decoded request from `peer`: when a hook wants views, lets each read
    /// the head into a view and set headers on it (before the route's own edits); the
    /// view is kept (boxed) only when some hook needs it at the end.
    #[inline]
    pub(crate) fn start(
        &self,
        request: &mut dyn Frame,
        peer: Option<std::net::SocketAddr>,
    ) -> Option<Box<RequestView>> {
        if !self.wants_view {
            return None;
        }
        self.start_view(request, peer)
    }

    /// [`ListenerPipeline::start`] for a listener whose hooks want views. Inlined into
    /// the driver's routing, which keeps its registers already: as a call of its own,
    /// its entry and exit cost a traced request a third of what its hooks cost.
    #[inline(always)]
    fn start_view(
        &self,
        request: &mut dyn Frame,
        peer: Option<std::net::SocketAddr>,
    ) -> Option<Box<RequestView>> {
        let mut made = None;
        let keep = match (&self.view_hooks[..], &self.view_filters[..]) {
            // One hook (a tracer, an access log), the usual case: no loop.
            ([hook], [filter]) => match passes(filter, request) {
                Some(picked) => {
                    hook.on_request_start(request, &mut ViewSlot::new(peer, &mut made, picked))
                }
                None => false,
            },
            (hooks, filters) => {
                let mut keep = false;
                for (hook, filter) in hooks.iter().zip(filters) {
                    if let Some(picked) = passes(filter, request) {
                        let mut slot = ViewSlot::new(peer, &mut made, picked);
                        keep |= hook.on_request_start(request, &mut slot);
                    }
                }
                keep
            }
        };
        if keep {
            Some(kept_view(made, peer))
        } else {
            None
        }
    }

    /// The cluster [`Self::cluster`] found for `ctx`, by the number it noted there.
    pub(crate) fn routed_cluster(&self, ctx: &RequestContext) -> Option<&Arc<Cluster>> {
        RequestContext::known(ctx.cluster).and_then(|i| self.pipeline.clusters.at(i))
    }

    /// The cluster the request's route leads to (`name`, as the route decision gave
    /// it), recorded in `ctx`: the admission step every protocol takes.
    pub(crate) fn cluster(&self, ctx: &mut RequestContext, name: &str) -> Option<&Arc<Cluster>> {
        let (index, cluster) =
            self.pipeline
                .clusters
                .for_route(&self.route_clusters, ctx.route, name)?;
        ctx.cluster = index;
        Some(cluster)
    }

    /// Ends one request of this listener: counts its outcome on its cluster and host,
    /// then tells the hooks.
    pub(crate) fn finish(
        &self,
        protocol: &str,
        ctx: &RequestContext,
        end: RequestEnd,
        view: Option<&RequestView>,
    ) {
        self.count(protocol, &[Tally::one(ctx, &end, self.timed)]);
        self.report(protocol, ctx, end, view);
    }

    /// [`ListenerPipeline::finish`] without the counts, which the caller hands over
    /// in batches ([`ListenerPipeline::count`]).
    pub(crate) fn report(
        &self,
        protocol: &str,
        ctx: &RequestContext,
        end: RequestEnd,
        view: Option<&RequestView>,
    ) {
        self.end_retry(ctx);
        if view.is_none() && self.ends_need_view {
            return;
        }
        self.pipeline.report(
            &self.name,
            &self.end_hooks,
            self.wants_names,
            protocol,
            &self.routes,
            ctx,
            end,
            view,
        );
    }

    /// A retried request gives its cluster's retry admission back as it ends.
    fn end_retry(&self, ctx: &RequestContext) {
        if ctx.retried
            && let Some(cluster) =
                RequestContext::known(ctx.cluster).and_then(|i| self.pipeline.clusters.at(i))
        {
            cluster.end_retry();
        }
    }

    /// Tells the hooks that the attempt `ctx` describes failed with `outcome` and the
    /// request goes again; `set_header` edits the next attempt's request. Called before
    /// [`ListenerPipeline::next_attempt`] resets `ctx` for it.
    pub(crate) fn attempt_failed(
        &self,
        ctx: &RequestContext,
        outcome: Outcome,
        view: Option<&mut RequestView>,
        set_header: &mut dyn FnMut(&str, &str),
    ) {
        let Some(view) = view else { return };
        let host = RequestContext::known(ctx.cluster)
            .and_then(|c| self.pipeline.clusters.at(c))
            .zip(RequestContext::known(ctx.host))
            .and_then(|(c, h)| c.host(h))
            .map(|h| h.addr());
        let now = Moment::now();
        let attempt = AttemptRecord {
            attempt: ctx.attempt,
            host,
            outcome,
            sent: ctx.sent.map(|s| Moment::between(ctx.start_nanos, s)),
            ended: Moment::between(ctx.start_nanos, now.nanos),
        };
        for hook in self.hooks.iter().chain(self.pipeline.hook.as_ref()) {
            if hook.wants_view() {
                hook.on_attempt_failed(&attempt, view, set_header);
            }
        }
    }

    /// The retry policy and whole-request timeout of the route `ctx` took, if it
    /// has a policy and `outcome` (with `status`, in `space`) is worth another attempt
    /// under it: the step every protocol's retry starts with.
    pub(crate) fn retry_plan(
        &self,
        ctx: &RequestContext,
        outcome: Outcome,
        status: Option<u32>,
        space: StatusSpace,
    ) -> Option<(&Arc<RetryPolicy>, &Arc<Cluster>)> {
        let (_, route) = self
            .routes
            .route_at(u32::try_from(RequestContext::known(ctx.route)?).ok()?)?;
        let policy = route.retry_policy.as_ref()?;
        if ctx.attempt > policy.num_retries || !policy.retriable(outcome, status, space) {
            return None;
        }
        let cluster = self
            .pipeline
            .clusters
            .at(RequestContext::known(ctx.cluster)?)?;
        Some((policy, cluster))
    }

    /// Takes the next attempt of a request whose last attempt ended with `outcome`
    /// and may be retried (see [`ListenerPipeline::retry_plan`]): the back-off to wait
    /// first, unless it would reach past `deadline` or the cluster's retry admission
    /// (`max_retries`, the retry budget) says no. Counts the failed attempt on its host
    /// and updates `ctx` for the next attempt.
    pub(crate) fn next_attempt(
        policy: &RetryPolicy,
        cluster: &Cluster,
        ctx: &mut RequestContext,
        outcome: Outcome,
        deadline: tokio::time::Instant,
    ) -> Option<Duration> {
        let back_off = policy.back_off(ctx.attempt, rand::random());
        if tokio::time::Instant::now() + back_off >= deadline {
            return None;
        }
        if !ctx.retried {
            if !cluster.begin_retry() {
                return None;
            }
            ctx.retried = true;
        }
        if let Some(host) = RequestContext::known(ctx.host) {
            cluster.record_attempt(ctx.host, outcome);
            ctx.tried |= strait_upstream::host_bit(host);
        }
        ctx.attempt += 1;
        ctx.sent = None;
        ctx.host = RequestContext::NONE;
        Some(back_off)
    }
}

/// A request's deadline when neither its route nor the request itself sets one.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

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

/// Whether a request reaches a hook with `filter`, and if so whether the coin picked
/// it: `None` for a request with none of the filter's headers that the coin passed
/// over (most requests of a tracer sampling 1%), which then costs the hook nothing.
#[inline(always)]
fn passes(filter: &Option<StartFilter>, request: &dyn Frame) -> Option<bool> {
    let Some(filter) = filter else {
        return Some(true);
    };
    let picked = coin(filter.threshold);
    if picked
        || filter
            .context_headers
            .iter()
            .any(|name| request.header(name).is_some())
    {
        Some(picked)
    } else {
        None
    }
}

/// True with a chance of `threshold` in 2^64 (always for `u64::MAX`).
#[inline(always)]
fn coin(threshold: u64) -> bool {
    threshold == u64::MAX || fast_random() < threshold
}

/// The view a hook kept: the one a hook made, or an empty one, stamped with the wall
/// clock. Out of line: most requests of a traced listener keep none.
#[inline(never)]
fn kept_view(
    made: Option<Box<RequestView>>,
    peer: Option<std::net::SocketAddr>,
) -> Box<RequestView> {
    let mut view = made.unwrap_or_else(|| Box::new(RequestView::new(peer)));
    view.started = std::time::SystemTime::now();
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coin_picks_its_share() {
        assert!((0..1000).all(|_| coin(u64::MAX)));
        assert!((0..1000).all(|_| !coin(0)));
        // A quarter, within 2% over 100,000 tosses.
        let picked = (0..100_000).filter(|_| coin(u64::MAX / 4)).count();
        assert!((23_000..27_000).contains(&picked), "{picked}");
    }

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
