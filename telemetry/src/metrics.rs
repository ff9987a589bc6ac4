//! Request metrics recorded at the one request hook: per listener (connections,
//! requests by protocol, route and outcome, bytes, protocol errors, total time by
//! route) and per cluster (total and upstream time). Recording is relaxed atomic adds
//! into arrays laid out when the configuration is loaded: no allocation, no lock, no
//! name lookup on the request path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use strait_codec_framework::{Outcome, ProxyFailure, RequestHook, RequestRecord};

use crate::exposition::{Exposition, Family, Kind, Value};
use crate::histogram::Histogram;

/// The label value of requests that matched no route.
pub const NO_ROUTE_LABEL: &str = "(none)";
/// The label value of a protocol a listener did not expect (a hook shared by mistake).
const OTHER_PROTOCOL: &str = "other";

/// What a listener's metrics are laid out by.
#[derive(Debug, Clone)]
pub struct ListenerLayout {
    /// The listener's name.
    pub name: String,
    /// Its routes' names in table order (`None` for an unnamed route, labelled `#N`
    /// by its position).
    pub routes: Vec<Option<String>>,
}

/// Latencies of the requests one cluster served.
#[derive(Debug, Default)]
struct ClusterTimes {
    total: Histogram,
    upstream: Histogram,
}

/// Every listener's and cluster's request metrics of one configuration.
#[derive(Debug)]
pub struct Metrics {
    listeners: Vec<Arc<ListenerMetrics>>,
    clusters: Arc<[ClusterTimes]>,
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
        let times: Arc<[ClusterTimes]> = clusters.iter().map(|_| ClusterTimes::default()).collect();
        let protocols: Arc<[&'static str]> =
            protocols.iter().copied().chain([OTHER_PROTOCOL]).collect();
        Metrics {
            listeners: listeners
                .iter()
                .map(|l| Arc::new(ListenerMetrics::new(l, protocols.clone(), times.clone())))
                .collect(),
            clusters: times,
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
            bytes_in.int(&listener, l.request_bytes.load(Ordering::Relaxed));
            bytes_out.int(&listener, l.response_bytes.load(Ordering::Relaxed));
            for (p, protocol) in l.protocols.iter().enumerate() {
                let n = l.protocol_errors[p].load(Ordering::Relaxed);
                if n > 0 {
                    errors.int(&[("listener", name), ("protocol", protocol)], n);
                }
                for (r, route) in l.route_labels.iter().enumerate() {
                    for outcome in Outcome::ALL {
                        let n = l.requests[l.slot(p, r, outcome)].load(Ordering::Relaxed);
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
                let h = l.durations[r].snapshot();
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
        for (name, times) in self.cluster_names.iter().zip(self.clusters.iter()) {
            let label = [("cluster", name.as_str())];
            let h = times.total.snapshot();
            if h.count > 0 {
                total.push(&label, Value::Histogram(h));
            }
            let h = times.upstream.snapshot();
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
#[derive(Debug)]
pub struct ListenerMetrics {
    name: String,
    protocols: Arc<[&'static str]>,
    /// Route label values by position, then [`NO_ROUTE_LABEL`].
    route_labels: Vec<String>,
    /// By protocol, then route slot, then outcome ([`ListenerMetrics::slot`]).
    requests: Box<[AtomicU64]>,
    /// Total time, by route slot.
    durations: Box<[Histogram]>,
    protocol_errors: Box<[AtomicU64]>,
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
    connections_active: AtomicU64,
    connections_total: AtomicU64,
    clusters: Arc<[ClusterTimes]>,
}

impl ListenerMetrics {
    fn new(
        layout: &ListenerLayout,
        protocols: Arc<[&'static str]>,
        clusters: Arc<[ClusterTimes]>,
    ) -> Self {
        let route_labels: Vec<String> = layout
            .routes
            .iter()
            .enumerate()
            .map(|(i, name)| name.clone().unwrap_or_else(|| format!("#{i}")))
            .chain([NO_ROUTE_LABEL.to_string()])
            .collect();
        let cells = protocols.len() * route_labels.len() * Outcome::COUNT;
        ListenerMetrics {
            name: layout.name.clone(),
            requests: (0..cells).map(|_| AtomicU64::new(0)).collect(),
            durations: route_labels.iter().map(|_| Histogram::default()).collect(),
            protocol_errors: protocols.iter().map(|_| AtomicU64::new(0)).collect(),
            route_labels,
            protocols,
            request_bytes: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            connections_active: AtomicU64::new(0),
            connections_total: AtomicU64::new(0),
            clusters,
        }
    }

    fn slot(&self, protocol: usize, route: usize, outcome: Outcome) -> usize {
        (protocol * self.route_labels.len() + route) * Outcome::COUNT + outcome.index()
    }

    /// The position of `protocol` among the counted ones (the last: "other").
    /// Protocol names are the registry's `'static` strings, so the address usually
    /// decides; the text decides otherwise.
    fn protocol_index(&self, protocol: &str) -> usize {
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
        self.protocol_errors[self.protocol_index(protocol)].fetch_add(1, Ordering::Relaxed);
    }
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

    fn on_request_end(&self, record: &RequestRecord<'_>) {
        let protocol = self.protocol_index(record.protocol);
        let no_route = self.route_labels.len() - 1;
        let route = record
            .route_index
            .map_or(no_route, |r| (r as usize).min(no_route));
        self.requests[self.slot(protocol, route, record.outcome)].fetch_add(1, Ordering::Relaxed);
        self.durations[route].record(record.duration);
        self.request_bytes
            .fetch_add(record.request_bytes, Ordering::Relaxed);
        self.response_bytes
            .fetch_add(record.response_bytes, Ordering::Relaxed);
        if record.outcome == Outcome::Failed(ProxyFailure::CodecError) {
            self.protocol_errors[protocol].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(times) = record
            .cluster_index
            .and_then(|c| self.clusters.get(c as usize))
        {
            times.total.record(record.duration);
            if let Some(upstream) = record.upstream_duration {
                times.upstream.record(upstream);
            }
        }
    }
}
