//! How a request ended: the one outcome every request of every protocol reaches, and the
//! record a [`RequestHook`] sees. Metrics, tracing, access logs, outlier detection and
//! retry budgets read this and nothing protocol-specific.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use crate::{Frame, ProxyFailure, RequestCount};

/// How a protocol classes an upstream's answer ([`crate::Protocol::classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    /// The call succeeded (Bolt 0, Dubbo 20, HTTP 1xx-3xx, gRPC OK).
    Success,
    /// The caller's fault: the upstream is healthy (HTTP 4xx, Dubbo BAD_REQUEST, gRPC
    /// INVALID_ARGUMENT or NOT_FOUND...).
    ClientError,
    /// The upstream failed (Bolt server exception, Dubbo SERVER_ERROR or SERVICE_ERROR,
    /// HTTP 5xx, gRPC UNAVAILABLE or INTERNAL...): what outlier detection counts.
    ServerError,
}

impl ResponseClass {
    /// A short stable name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseClass::Success => "success",
            ResponseClass::ClientError => "client_error",
            ResponseClass::ServerError => "server_error",
        }
    }
}

/// How one request ended. Every request reaches exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The upstream answered, and its protocol classed the answer.
    Upstream(ResponseClass),
    /// A oneway request was written upstream; no answer exists.
    Forwarded,
    /// The route answered locally (direct response, redirect).
    Local,
    /// The proxy failed the request and answered it in the protocol's terms (nothing
    /// for oneway requests).
    Failed(ProxyFailure),
    /// The caller went away (closed its connection, reset its stream) before its
    /// answer could be written.
    Cancelled,
}

impl Outcome {
    /// Every outcome, in [`Outcome::index`] order (for fixed counter arrays).
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::Upstream(ResponseClass::Success),
        Outcome::Upstream(ResponseClass::ClientError),
        Outcome::Upstream(ResponseClass::ServerError),
        Outcome::Forwarded,
        Outcome::Local,
        Outcome::Failed(ProxyFailure::NoRoute),
        Outcome::Failed(ProxyFailure::NoHealthyUpstream),
        Outcome::Failed(ProxyFailure::Overflow),
        Outcome::Failed(ProxyFailure::Timeout),
        Outcome::Failed(ProxyFailure::ConnectFailure),
        Outcome::Failed(ProxyFailure::UpstreamReset),
        Outcome::Failed(ProxyFailure::CodecError),
        Outcome::Failed(ProxyFailure::RateLimited),
        Outcome::Cancelled,
    ];

    /// A dense index in `0..Outcome::COUNT`, for counter arrays indexed without a map.
    pub fn index(self) -> usize {
        match self {
            Outcome::Upstream(ResponseClass::Success) => 0,
            Outcome::Upstream(ResponseClass::ClientError) => 1,
            Outcome::Upstream(ResponseClass::ServerError) => 2,
            Outcome::Forwarded => 3,
            Outcome::Local => 4,
            Outcome::Failed(f) => 5 + f as usize,
            Outcome::Cancelled => 13,
        }
    }

    /// How many distinct outcomes [`Outcome::index`] numbers.
    pub const COUNT: usize = 14;

    /// A short stable name: `success`, `client_error`, `server_error`, `forwarded`,
    /// `local`, `cancelled`, or the failure's name (`upstream_timeout`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Upstream(class) => class.as_str(),
            Outcome::Forwarded => "forwarded",
            Outcome::Local => "local",
            Outcome::Failed(failure) => failure.as_str(),
            Outcome::Cancelled => "cancelled",
        }
    }

    /// Whether the host that served the request should count it as a failure: the
    /// proxy could not get an answer from it (connect failure, reset, timeout) or it
    /// answered with a server error.
    pub fn is_host_failure(self) -> bool {
        matches!(
            self,
            Outcome::Upstream(ResponseClass::ServerError)
                | Outcome::Failed(
                    ProxyFailure::Timeout
                        | ProxyFailure::ConnectFailure
                        | ProxyFailure::UpstreamReset
                )
        )
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finished request, as the hook sees it. Borrowed, built on the stack at the end
/// of the request: recording costs no allocation.
#[derive(Debug, Clone, Copy)]
pub struct RequestRecord<'a> {
    /// The listener that accepted the request.
    pub listener: &'a str,
    /// The protocol the request was decoded with (`bolt`, `dubbo`, `http1`...).
    pub protocol: &'a str,
    /// The matched route's name, if it has one (and some hook reads names:
    /// [`RequestHook::wants_names`]; likewise `cluster` and `host`).
    pub route: Option<&'a str>,
    /// The matched route's position in its listener's route table, if one matched:
    /// what a hook indexes its per-route state by, without hashing a name.
    pub route_index: Option<u32>,
    /// The cluster the route chose, if one was chosen.
    pub cluster: Option<&'a str>,
    /// The chosen cluster's position in the configuration, if one was chosen.
    pub cluster_index: Option<u32>,
    /// The host the request was last sent to (or tried), if any.
    pub host: Option<SocketAddr>,
    /// Which attempt the outcome belongs to (1 for the first).
    pub attempt: u32,
    /// How it ended.
    pub outcome: Outcome,
    /// The answer's status in the protocol's own numbering (Bolt status, Dubbo status,
    /// HTTP status), whether the upstream or the proxy wrote it; `None` when nothing
    /// was answered (oneway).
    pub status: Option<u32>,
    /// From the decoded request head to the outcome.
    pub duration: Duration,
    /// From the request being written upstream to the outcome, if it was written.
    pub upstream_duration: Option<Duration>,
    /// Request bytes as received (frame, or HTTP head; bodies that stream are counted
    /// as they pass where the driver sees them).
    pub request_bytes: u64,
    /// Response bytes sent to the caller.
    pub response_bytes: u64,
    /// What the request's head said, kept from its start: present when a hook asked
    /// for it ([`RequestHook::wants_view`]) and the request was decoded.
    pub view: Option<&'a RequestView>,
}

/// What hooks keep of a request's decoded head, from its start to its end: the
/// protocol-neutral fields of [`Frame::variable`], taken once when the request starts,
/// and what a hook adds (a trace id). Built only when some hook asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    /// When the request started, on the wall clock.
    pub started: SystemTime,
    /// The caller's address.
    pub peer: Option<SocketAddr>,
    /// The `service` variable (Bolt service, Dubbo interface, gRPC service).
    pub service: Option<String>,
    /// The `method` variable (Dubbo and gRPC method, Bolt `sofa_head_method_name`).
    pub method: Option<String>,
    /// The `path` variable (HTTP path; the protocol's own where it defines one).
    pub path: Option<String>,
    /// The trace the request belongs to, as a hook found or made it (hex).
    pub trace_id: Option<String>,
    /// The spans a tracer started for the request, if it traces it.
    pub trace: Option<TraceIds>,
}

/// The ids of a traced request: its trace, the caller's span, Strait's server span
/// and the client span the upstream request carries as its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceIds {
    /// The trace (the caller's, or a new one).
    pub trace_id: u128,
    /// The caller's span, 0 when the request started the trace.
    pub parent_span_id: u64,
    /// Strait's server span for the request.
    pub span_id: u64,
    /// Strait's client span for the upstream attempt: what the upstream request
    /// names as its parent.
    pub upstream_span_id: u64,
    /// Whether the trace is sampled (recorded and exported).
    pub sampled: bool,
    /// The caller's propagation header where a tracer needs more than the ids (a
    /// SkyWalking `sw8`).
    pub caller_context: Option<String>,
}

impl RequestView {
    /// The view of a request decoded now from a caller at `peer`, its fields not taken
    /// yet ([`RequestView::take_variables`]) and its start time not read yet (the
    /// pipeline reads the clock for the views it keeps): a hook that keeps nothing
    /// costs nothing.
    pub fn new(peer: Option<SocketAddr>) -> Self {
        RequestView {
            started: SystemTime::UNIX_EPOCH,
            peer,
            service: None,
            method: None,
            path: None,
            trace_id: None,
            trace: None,
        }
    }

    /// Takes `service`, `method` and `path` from `request` (once: later calls keep
    /// what the first took).
    pub fn take_variables(&mut self, request: &dyn Frame) {
        if self.service.is_some() || self.method.is_some() || self.path.is_some() {
            return;
        }
        let variable = |name| request.variable(name).map(|v| v.into_owned());
        self.service = variable("service");
        self.method = variable("method");
        self.path = variable("path");
    }
}

/// Where hooks start a request's [`RequestView`]: the view is made only when a hook
/// writes to it ([`ViewSlot::view`]), so a hook that decides it keeps nothing (an
/// unsampled trace) costs no view at all.
#[derive(Debug)]
pub struct ViewSlot<'a> {
    peer: Option<SocketAddr>,
    made: &'a mut Option<Box<RequestView>>,
    picked: bool,
}

impl<'a> ViewSlot<'a> {
    /// The slot of a request from `peer`, its view (if a hook makes one) left in `made`;
    /// `picked`: whether the pipeline's coin picked the request for a hook with a
    /// [`StartFilter`] (true for a hook without one).
    pub fn new(
        peer: Option<SocketAddr>,
        made: &'a mut Option<Box<RequestView>>,
        picked: bool,
    ) -> Self {
        ViewSlot { peer, made, picked }
    }

    /// Whether the pipeline's coin picked this request ([`StartFilter::threshold`]): a
    /// tracer's sampling decision for a request whose caller made none.
    pub fn picked(&self) -> bool {
        self.picked
    }

    /// The caller's address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The view, made now if no hook made it yet.
    pub fn view(&mut self) -> &mut RequestView {
        let peer = self.peer;
        self.made
            .get_or_insert_with(|| Box::new(RequestView::new(peer)))
    }

    /// The view if a hook made it.
    pub fn get(&self) -> Option<&RequestView> {
        self.made.as_deref()
    }
}

/// How a hook that records only some requests (a tracer sampling 1%) chooses them,
/// declared so that the pipeline applies it before calling the hook: a request the
/// hook would pass over costs a coin and a look at a few headers, not a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartFilter {
    /// Headers by which a caller decides for itself (a trace context): a request with
    /// any of them always reaches the hook.
    pub context_headers: &'static [&'static str],
    /// The chance, out of 2^64, that any other request reaches it (`u64::MAX`: all);
    /// the hook learns the coin's side from [`ViewSlot::picked`].
    pub threshold: u64,
}

/// Sees every request end, exactly once, whatever its protocol: the single place that
/// metrics, tracing, access logs and outlier detection attach to.
///
/// Called on the connection's task at the end of each request: it must not block.
pub trait RequestHook: Send + Sync + 'static {
    /// Whether this hook needs each request's [`RequestView`] (an access log, a
    /// tracer). When no hook does, none is built: requests cost nothing more.
    fn wants_view(&self) -> bool {
        false
    }

    /// Whether this hook reads the record's names ([`RequestRecord::route`],
    /// [`RequestRecord::cluster`], [`RequestRecord::host`]); a hook that indexes by
    /// position (metrics) says no, and when no hook reads them they are not looked
    /// up (they are `None`).
    fn wants_names(&self) -> bool {
        true
    }

    /// Which requests reach [`RequestHook::on_request_start`], if not all of them.
    fn start_filter(&self) -> Option<StartFilter> {
        None
    }

    /// A request was decoded and is about to be routed: a hook that wants views may
    /// read its head, note what it needs in the slot's view (its variables through
    /// [`RequestView::take_variables`]), and set headers that go upstream with it (a
    /// trace context). Returns whether it needs the view again at the request's end:
    /// when no hook does, none is kept. Called once per request, before routing.
    fn on_request_start(&self, request: &mut dyn Frame, view: &mut ViewSlot<'_>) -> bool {
        let _ = (request, view);
        false
    }

    /// An attempt of a request failed and the request goes again (a route's retry
    /// policy): a hook that keeps the request's view may note the attempt (a tracer's
    /// client span) and set headers on the next attempt through `set_header`.
    fn on_attempt_failed(
        &self,
        attempt: &AttemptRecord,
        view: &mut RequestView,
        set_header: &mut dyn FnMut(&str, &str),
    ) {
        let _ = (attempt, view, set_header);
    }

    /// Whether this hook hears each request's end ([`RequestHook::on_request_end`]). A
    /// hook that only counts (metrics) says no and hears
    /// [`RequestHook::on_requests_counted`] instead; when no hook hears ends, no record
    /// is put together.
    fn wants_each_end(&self) -> bool {
        true
    }

    /// Whether this hook does anything at a request's end only when it kept the
    /// request's view (a tracer: only sampled requests have spans to end). When every
    /// hook that hears ends says so, a request whose view none kept costs no record.
    fn ends_need_view(&self) -> bool {
        false
    }

    /// Whether this hook reads the bytes and times of the requests it hears counted
    /// ([`RequestCount::request_bytes`], [`RequestCount::total`]...): when none does,
    /// they are not worked out.
    fn wants_counts(&self) -> bool {
        false
    }

    /// A request ended.
    fn on_request_end(&self, record: &RequestRecord<'_>);

    /// Requests of `protocol` ended, counted in groups: once per batch of a
    /// connection's ends (for protocols whose driver batches them) or once per request.
    /// Every request is in exactly one count. Default: ignored.
    fn on_requests_counted(&self, protocol: &str, counts: &[RequestCount]) {
        let _ = (protocol, counts);
    }
}

/// One failed attempt of a request that is tried again.
#[derive(Debug, Clone, Copy)]
pub struct AttemptRecord {
    /// Which attempt failed, from 1.
    pub attempt: u32,
    /// The host it went to, if one was picked.
    pub host: Option<SocketAddr>,
    /// How it ended.
    pub outcome: Outcome,
    /// When it was written upstream, from the request's start (if it was).
    pub sent: Option<Duration>,
    /// When it failed, from the request's start.
    pub ended: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense_and_match_all() {
        let mut seen = [false; Outcome::COUNT];
        for outcome in Outcome::ALL {
            let i = outcome.index();
            assert!(!seen[i], "{outcome} indexed twice");
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s));
        for f in [
            ProxyFailure::NoRoute,
            ProxyFailure::NoHealthyUpstream,
            ProxyFailure::Overflow,
            ProxyFailure::Timeout,
            ProxyFailure::ConnectFailure,
            ProxyFailure::UpstreamReset,
            ProxyFailure::CodecError,
            ProxyFailure::RateLimited,
        ] {
            assert!(Outcome::Failed(f).index() < Outcome::COUNT);
            assert_eq!(Outcome::ALL[Outcome::Failed(f).index()], Outcome::Failed(f));
        }
    }

    #[test]
    fn host_failures_are_the_upstreams_fault() {
        assert!(Outcome::Failed(ProxyFailure::Timeout).is_host_failure());
        assert!(Outcome::Upstream(ResponseClass::ServerError).is_host_failure());
        assert!(!Outcome::Upstream(ResponseClass::ClientError).is_host_failure());
        assert!(!Outcome::Failed(ProxyFailure::Overflow).is_host_failure());
        assert!(!Outcome::Failed(ProxyFailure::NoRoute).is_host_failure());
    }

    #[test]
    fn a_view_slot_makes_its_view_only_when_written() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut made = None;
        {
            let slot = ViewSlot::new(Some(peer), &mut made, true);
            assert_eq!(slot.peer(), Some(peer));
            assert!(slot.get().is_none());
        }
        assert!(made.is_none(), "read, never written: no view");

        let mut slot = ViewSlot::new(Some(peer), &mut made, false);
        assert!(!slot.picked());
        slot.view().trace_id = Some("ab".into());
        slot.view().service = Some("svc".into());
        assert_eq!(slot.get().and_then(|v| v.trace_id.as_deref()), Some("ab"));
        let view = made.expect("written: made once, both writes kept");
        assert_eq!(view.peer, Some(peer));
        assert_eq!(view.service.as_deref(), Some("svc"));
    }
}
