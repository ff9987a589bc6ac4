//! Request metrics recorded at the one request hook: per listener (connections,
//! requests by protocol, route and outcome, bytes, protocol errors, total time by
//! route) and per cluster (total and upstream time). Recording raises counters laid out
//! when the configuration is loaded, in the recording thread's own shard
//! ([`crate::shards`]): no allocation, no lock, no atomic read-modify-write, no name
//! lookup on the request path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use strait_codec_framework::{Outcome, ProxyFailure, RequestCount, RequestHook, RequestRecord};

use crate::exposition::{Exposition, Family, Kind, Value};
use crate::histogram::{self, CELLS};
use crate::shards::ShardedCounters;

/// The label value of requests that matched no route.
pub const NO_ROUTE_LABEL: &str = "(none)";
/// The label value of a protocol a listener did not expect (a hook shared by mistake).
const OTHER_PROTOCOL: &str = "other";

/// What a listener's metrics are laid out by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerLayout {
    /// The listener's name.
    pub name: String,
    /// Its routes' names in table order (`None` for an unnamed route, labelled `#N`
    /// by its position).
    pub routes: Vec<Option<String>>,
}

/// Where each cluster's latency histograms sit: per cluster, a total-time histogram,
/// then an upstream-time one, at the start of the shared counters.
#[derive(Debug, Clone, Copy)]
struct ClusterTimes {
    clusters: usize,
}

impl ClusterTimes {
    fn cells(self) -> usize {
        self.clusters * 2 * CELLS
    }

    fn total(cluster: usize) -> usize {
        cluster * 2 * CELLS
    }

    fn upstream(cluster: usize) -> usize {
        cluster * 2 * CELLS + CELLS
    }
}

/// Every listener's and cluster's request metrics of one configuration.
#[derive(Debug)]
pub struct Metrics {
    listeners: Vec<Arc<ListenerMetrics>>,
    /// Every counter: the clusters' histograms, then each listener's.
    cells: Arc<ShardedCounters>,
    cluster_names: Vec<String>,
}

impl Metrics {
    /// Metrics for `listeners` and `clusters` (names in configuration order, which is
    /// the order of the indices in a [`RequestRecord`]), for requests of `protocols`
    /// (each listener counts every one of them).
    pub fn new(
        protocols: &[&'static str],
        listeners: &[ListenerLayout],
        clusters: &[String],
    ) -> Self {
        let times = ClusterTimes {
            clusters: clusters.len(),
        };
        let protocols: Arc<[&'static str]> =
            protocols.iter().copied().chain([OTHER_PROTOCOL]).collect();
        let mut base = times.cells();
        let mut laid_out = Vec::new();
        for layout in listeners {
            let l = ListenerMetrics::new(layout, protocols.clone(), base, times);
            base += l.cell_count();
            laid_out.push(l);
        }
        let cells = Arc::new(ShardedCounters::new(base));
        Metrics {
            listeners: laid_out
                .into_iter()
                .map(|mut l| {
                    l.cells = cells.clone();
                    Arc::new(l)
                })
                .collect(),
            cells,
            cluster_names: clusters.to_vec(),
        }
    }

    /// The metrics (and request hook) of the listener called `name`.
    pub fn listener(&self, name: &str) -> Option<&Arc<ListenerMetrics>> {
        self.listeners.iter().find(|l| l.name == name)
    }

    /// Adds every family to `out`.
    pub fn collect(&self, out: &mut Exposition) {
        let mut conn_active = Family::new(
            "strait_listener_connections_active",
            "Downstream connections open now.",
            Kind::Gauge,
        );
        let mut conn_total = Family::new(
            "strait_listener_connections",
            "Downstream connections accepted.",
            Kind::Counter,
        );
        let mut bytes_in = Family::new(
            "strait_listener_request_bytes",
            "Bytes of requests received (frames, or HTTP heads and bodies).",
            Kind::Counter,
        );
        let mut bytes_out = Family::new(
            "strait_listener_response_bytes",
            "Bytes of responses sent to callers.",
            Kind::Counter,
        );
        let mut errors = Family::new(
            "strait_listener_protocol_errors",
            "Malformed requests and connections closed by a decode error, by protocol.",
            Kind::Counter,
        );
        let mut heartbeats = Family::new(
            "strait_listener_heartbeats_answered",
            "Callers' protocol heartbeats answered (never forwarded).",
            Kind::Counter,
        );
        let mut requests = Family::new(
            "strait_requests",
            "Requests ended, by listener, protocol, route and outcome.",
            Kind::Counter,
        );
        let mut durations = Family::new(
            "strait_request_duration_seconds",
            "Time from the decoded request head to its outcome, by listener and route.",
            Kind::Histogram,
        );
        for l in &self.listeners {
            let name = l.name.as_str();
            let listener = [("listener", name)];
            conn_active.int(&listener, l.connections_active.load(Ordering::Relaxed));
            conn_total.int(&listener, l.connections_total.load(Ordering::Relaxed));
            heartbeats.int(&listener, l.heartbeats_answered.load(Ordering::Relaxed));
            bytes_in.int(&listener, l.cells.get(l.request_bytes()));
            bytes_out.int(&listener, l.cells.get(l.response_bytes()));
            for (p, protocol) in l.protocols.iter().enumerate() {
                let n = l.cells.get(l.protocol_errors(p));
                if n > 0 {
                    errors.int(&[("listener", name), ("protocol", protocol)], n);
                }
                for (r, route) in l.route_labels.iter().enumerate() {
                    for outcome in Outcome::ALL {
                        let n = l.cells.get(l.slot(p, r, outcome));
                        if n > 0 {
                            requests.int(
                                &[
                                    ("listener", name),
                                    ("protocol", protocol),
                                    ("route", route),
                                    ("outcome", outcome.as_str()),
                                ],
                                n,
                            );
                        }
                    }
                }
            }
            for (r, route) in l.route_labels.iter().enumerate() {
                let h = histogram::snapshot(&l.cells, l.duration(r));
                if h.count > 0 {
                    durations.push(&[("listener", name), ("route", route)], Value::Histogram(h));
                }
            }
        }
        let mut total = Family::new(
            "strait_cluster_request_duration_seconds",
            "Time from the decoded request head to its outcome, by cluster.",
            Kind::Histogram,
        );
        let mut upstream = Family::new(
            "strait_cluster_upstream_duration_seconds",
            "Time from the request's last write upstream to its outcome, by cluster.",
            Kind::Histogram,
        );
        let times = &*self.cells;
        for (i, name) in self.cluster_names.iter().enumerate() {
            let label = [("cluster", name.as_str())];
            let h = histogram::snapshot(times, ClusterTimes::total(i));
            if h.count > 0 {
                total.push(&label, Value::Histogram(h));
            }
            let h = histogram::snapshot(times, ClusterTimes::upstream(i));
            if h.count > 0 {
                upstream.push(&label, Value::Histogram(h));
            }
        }
        for family in [
            conn_active,
            conn_total,
            bytes_in,
            bytes_out,
            errors,
            heartbeats,
            requests,
            durations,
            total,
            upstream,
        ] {
            out.add(family);
        }
    }
}

/// One listener's metrics; as a [`RequestHook`], it records the requests it hears.
///
/// Its counters, in one [`ShardedCounters`]: requests by protocol, route slot and
/// outcome; a total-time histogram per route slot; request and response bytes;
/// protocol errors by protocol.
#[derive(Debug)]
pub struct ListenerMetrics {
    name: String,
    protocols: Arc<[&'static str]>,
    /// Route label values by position, then [`NO_ROUTE_LABEL`].
    route_labels: Vec<String>,
    /// The counters it shares with the other listeners and the clusters; its own
    /// start at `base`.
    cells: Arc<ShardedCounters>,
    base: usize,
    times: ClusterTimes,
    /// Where its counters sit, worked out once: see [`ListenerMetrics::slot`] and the
    /// functions after it.
    offsets: Offsets,
    /// The position of the protocol of the last request recorded: a listener serves
    /// one protocol as a rule, so this is the answer without a search.
    last_protocol: AtomicUsize,
    connections_active: AtomicU64,
    connections_total: AtomicU64,
    heartbeats_answered: Arc<AtomicU64>,
}

impl ListenerMetrics {
    fn new(
        layout: &ListenerLayout,
        protocols: Arc<[&'static str]>,
        base: usize,
        times: ClusterTimes,
    ) -> Self {
        let route_labels: Vec<String> = layout
            .routes
            .iter()
            .enumerate()
            .map(|(i, name)| name.clone().unwrap_or_else(|| format!("#{i}")))
            .chain([NO_ROUTE_LABEL.to_string()])
            .collect();
        let routes = route_labels.len();
        let durations = base + protocols.len() * routes * Outcome::COUNT;
        let offsets = Offsets {
            per_protocol: routes * Outcome::COUNT,
            durations,
            request_bytes: durations + routes * CELLS,
        };
        ListenerMetrics {
            name: layout.name.clone(),
            // Replaced by the shared counters once every listener is laid out.
            cells: Arc::new(ShardedCounters::new(0)),
            base,
            times,
            offsets,
            last_protocol: AtomicUsize::new(0),
            route_labels,
            protocols,
            connections_active: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            heartbeats_answered: Arc::default(),
        }
    }

    /// Where its framed connections count the callers' heartbeats they answer.
    pub fn heartbeats_answered(&self) -> Arc<AtomicU64> {
        self.heartbeats_answered.clone()
    }

    /// How many counters it has.
    fn cell_count(&self) -> usize {
        self.protocol_errors(self.protocols.len()) - self.base
    }

    /// The requests counter of (protocol, route slot, outcome).
    #[inline]
    fn slot(&self, protocol: usize, route: usize, outcome: Outcome) -> usize {
        self.base + protocol * self.offsets.per_protocol + route * Outcome::COUNT + outcome.index()
    }

    /// The total-time histogram of a route slot.
    #[inline]
    fn duration(&self, route: usize) -> usize {
        self.offsets.durations + route * CELLS
    }

    #[inline]
    fn request_bytes(&self) -> usize {
        self.offsets.request_bytes
    }

    fn response_bytes(&self) -> usize {
        self.request_bytes() + 1
    }

    fn protocol_errors(&self, protocol: usize) -> usize {
        self.request_bytes() + 2 + protocol
    }

    /// The position of `protocol` among the counted ones (the last: "other").
    /// Protocol names are the registry's `'static` strings, so the address usually
    /// decides; the text decides otherwise.
    #[inline]
    fn protocol_index(&self, protocol: &str) -> usize {
        let cached = self.last_protocol.load(Ordering::Relaxed);
        if let Some(p) = self.protocols.get(cached)
            && std::ptr::eq(p.as_ptr(), protocol.as_ptr())
            && p.len() == protocol.len()
        {
            return cached;
        }
        let found = self.find_protocol(protocol);
        self.last_protocol.store(found, Ordering::Relaxed);
        found
    }

    #[cold]
    fn find_protocol(&self, protocol: &str) -> usize {
        let last = self.protocols.len() - 1;
        let known = &self.protocols[..last];
        known
            .iter()
            .position(|p| std::ptr::eq(p.as_ptr(), protocol.as_ptr()) && p.len() == protocol.len())
            .or_else(|| known.iter().position(|p| *p == protocol))
            .unwrap_or(last)
    }

    /// A connection was accepted: counted open until the returned guard drops.
    pub fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        self.connections_total.fetch_add(1, Ordering::Relaxed);
        self.connections_active.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    /// A connection speaking `protocol` was closed because its bytes could not be
    /// decoded (no request could be answered).
    pub fn protocol_error(&self, protocol: &str) {
        let p = self.protocol_index(protocol);
        self.cells.writer().add(self.protocol_errors(p), 1);
    }
}

/// Where a listener's counters sit in the shared ones, beyond its `base`.
#[derive(Debug, Clone, Copy)]
struct Offsets {
    /// Requests counters per protocol: one per route slot and outcome.
    per_protocol: usize,
    /// The first route slot's total-time histogram.
    durations: usize,
    /// The request bytes counter (response bytes and protocol errors follow it).
    request_bytes: usize,
}

/// Counts one downstream connection open while it lives.
#[derive(Debug)]
pub struct OpenConnection(Arc<ListenerMetrics>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RequestHook for ListenerMetrics {
    /// Metrics index by position: no names looked up for them.
    fn wants_names(&self) -> bool {
        false
    }

    /// Metrics count requests in groups ([`RequestHook::on_requests_counted`]), not
    /// one record at a time.
    fn wants_each_end(&self) -> bool {
        false
    }

    /// Latency histograms read the counted requests' times.
    fn wants_counts(&self) -> bool {
        true
    }

    fn on_request_end(&self, _record: &RequestRecord<'_>) {
        // Not called (`wants_each_end` is false): requests arrive counted.
    }

    fn on_requests_counted(&self, protocol: &str, counts: &[RequestCount]) {
        let protocol = self.protocol_index(protocol);
        let no_route = self.route_labels.len() - 1;
        let w = self.cells.writer();
        for c in counts {
            let route = if c.route == RequestCount::NONE {
                no_route
            } else {
                (c.route as usize).min(no_route)
            };
            w.add(self.slot(protocol, route, c.outcome), c.n);
            histogram::add(&w, self.duration(route), &c.total);
            w.add(self.request_bytes(), c.request_bytes);
            w.add(self.response_bytes(), c.response_bytes);
            if c.outcome == Outcome::Failed(ProxyFailure::CodecError) {
                w.add(self.protocol_errors(protocol), c.n);
            }
            let cluster = c.cluster as usize;
            if c.cluster != RequestCount::NONE && cluster < self.times.clusters {
                histogram::add(&w, ClusterTimes::total(cluster), &c.total);
                histogram::add(&w, ClusterTimes::upstream(cluster), &c.upstream);
            }
        }
    }
}
