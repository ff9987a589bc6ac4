use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Version};
use strait_codec_framework::{Frame, Outcome, PoolMode, Protocol, ProxyFailure};
use strait_stream::http::{Body, ClientOptions};
use strait_stream::{HeartbeatCounters, RequestContext, UpstreamConnection, UpstreamOptions};
use tokio::sync::watch;

use crate::breakers::{Breaker, BreakerSnapshot, Breakers, CircuitBreakers};
use crate::health::{ClusterHealth, EjectReason, OutlierDetection, success_rate_outliers};
use crate::health_check::{HealthCheck, Speaks};
use crate::host::{Admission, ClusterShared, ConnectError, Connector, Host, RequestGuard};
use crate::lb::{Balancer, LbHost, LbPolicy, hash_host, hash_key};
use crate::message_pool::{Exchange, MessagePool, SendFailure};

/// One endpoint of a static cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Where the host listens.
    pub addr: SocketAddr,
    /// Its load-balancing weight (≥ 1).
    pub weight: u32,
}

/// Everything a cluster is built from.
#[derive(Clone)]
pub struct ClusterOptions {
    /// Cluster name, as routes refer to it.
    pub name: String,
    /// What the hosts speak and who owns the connections.
    pub transport: Transport,
    /// How a host is picked.
    pub lb_policy: LbPolicy,
    /// What a hashing policy (`ring_hash`, `maglev`) hashes in each request.
    pub hash_key: Option<HashKey>,
    /// Bound on one connection attempt.
    pub connect_timeout: Duration,
    /// Multiplexed connections per host.
    pub max_connections_per_host: usize,
    /// Connect every pool slot at start and keep them connected, instead of on demand.
    pub preconnect: bool,
    /// Bounds on connections, pending requests, requests and retries.
    pub circuit_breakers: CircuitBreakers,
    /// Active health checking of the hosts, if any.
    pub health_check: Option<HealthCheck>,
    /// Passive health checking (ejection) from request outcomes, if any.
    pub outlier_detection: Option<OutlierDetection>,
    /// A host that becomes healthy ramps its weight up over this window.
    pub slow_start: Option<Duration>,
    /// Below this percentage of healthy hosts, the balancer ignores health and uses
    /// every host (0: never).
    pub panic_threshold: u32,
    /// Settings of each upstream connection (limits, keepalive).
    pub connection: UpstreamOptions,
    /// The hosts of a static cluster.
    pub endpoints: Vec<Endpoint>,
    /// How the hosts are found: as listed, or by DNS names re-resolved periodically.
    pub discovery: Discovery,
    /// TLS for every connection to the hosts (traffic and health checks), if any.
    pub tls: Option<Arc<strait_tls::ClientTls>>,
}

/// How a cluster finds its hosts.
#[derive(Clone, Default)]
pub enum Discovery {
    /// The `endpoints` listed.
    #[default]
    Static,
    /// Every address each name resolves to is a host (`type: strict_dns`), resolved at
    /// start and every `refresh`: hosts come and go with the answers, and the
    /// connections of one that went are drained.
    StrictDns {
        /// The names, each with its port and weight.
        names: Vec<DnsEndpoint>,
        /// Time between resolutions.
        refresh: Duration,
        /// Who answers (the system's resolver; a scripted one in tests).
        resolver: Arc<dyn Resolve>,
    },
}

/// One `host:port` endpoint of a DNS cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEndpoint {
    /// The name resolved.
    pub host: String,
    /// The port every address gets.
    pub port: u16,
    /// Every address's weight.
    pub weight: u32,
}

/// Resolves a name to its addresses (blocking: it runs on a blocking thread).
pub trait Resolve: Send + Sync + 'static {
    /// The addresses `host` names, each with `port`.
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The system resolver (`getaddrinfo`, so `/etc/hosts` too).
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        use std::net::ToSocketAddrs;
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

/// The part of a request a hashing balancer maps to a host: requests with the same
/// value go to the same host while it is healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// A header (a Bolt header-map entry, a Dubbo attachment, an HTTP header).
    Header(String),
    /// A routing variable (`service`, `method`, `path`...), as routes match them.
    Variable(String),
}

impl HashKey {
    /// The key's hash in `request`, `None` when the request does not carry it.
    pub fn hash(&self, request: &dyn Frame) -> Option<u64> {
        match self {
            HashKey::Header(name) => request.header_bytes(name).map(hash_key),
            HashKey::Variable(name) => request.variable_bytes(name).map(|v| hash_key(&v)),
        }
    }
}

/// What a cluster's hosts speak, and so which mode its pool works in.
#[derive(Clone)]
pub enum Transport {
    /// A framed protocol (Bolt, Dubbo...): per-host slots of multiplexed connections,
    /// handed out by [`Cluster::select`].
    Framed(Arc<dyn Protocol>),
    /// One version of a message protocol (HTTP/1.1, HTTP/2): one request at a time per
    /// connection, or HTTP/2 streams, by `pool_mode`; requests go through
    /// [`Cluster::send`].
    Messages {
        /// The version's name, as configured (`http1`, `http2`).
        name: &'static str,
        /// How its connections are shared; picks the pool's mode.
        pool_mode: PoolMode,
        /// Limits of each client connection.
        client: ClientOptions,
    },
}

impl Transport {
    /// The protocol name, as configured.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Framed(p) => p.name(),
            Transport::Messages { name, .. } => name,
        }
    }

    /// How connections to the hosts are shared (the protocol's own pool mode).
    pub fn pool_mode(&self) -> PoolMode {
        match self {
            Transport::Framed(p) => p.pool_mode(),
            Transport::Messages { pool_mode, .. } => *pool_mode,
        }
    }
}

/// A connection being made for a request that found none open (the stream driver's
/// own type: it waits for it with the request's deadline).
pub use strait_stream::Connecting;

/// Where a request can go, decided without waiting when a connection is open.
pub enum Selected {
    /// The open connection the caller passed as its recent one: use it again.
    Recent,
    /// An open connection.
    Ready(UpstreamConnection),
    /// No connection is open yet: this connects one (trying other hosts on failure).
    Connecting(Connecting),
}

/// A cluster: hosts, a load balancer and per-host connection pools.
pub struct Cluster {
    name: String,
    preconnect: bool,
    breakers: Arc<Breakers>,
    health: Arc<ClusterHealth>,
    health_check: Option<Arc<HealthCheck>>,
    panic_threshold: u32,
    transport: Transport,
    connector: Option<Connector>,
    /// Heartbeats its framed connections sent, and those unanswered.
    heartbeats: Arc<HeartbeatCounters>,
    /// The pool of a message cluster (one request at a time, or HTTP/2 streams).
    messages: Option<MessagePool>,
    /// The hosts and the balancer built for them, swapped whole when DNS answers
    /// change. A host keeps its position for the cluster's life (a removed one stays,
    /// marked, in case it comes back), so a position in a request's context stays
    /// valid across swaps.
    set: Hosts,
    lb_policy: LbPolicy,
    max_connections_per_host: usize,
    shared: ClusterShared,
    discovery: Discovery,
    hash_key: Option<HashKey>,
    /// Requests in flight across the cluster, from admission (a request waiting for a
    /// connect counts) to their end.
    in_flight: Arc<AtomicUsize>,
    /// Requests ended, by [`Outcome::index`].
    outcomes: [AtomicU64; Outcome::COUNT],
    stop: watch::Sender<bool>,
}

/// A point-in-time view of a cluster, for the admin API.
#[derive(Debug, Clone)]
pub struct ClusterSnapshot {
    /// Cluster name.
    pub name: String,
    /// Requests in flight across the cluster.
    pub in_flight: usize,
    /// Requests ended so far, by outcome name (`success`, `upstream_timeout`...);
    /// outcomes that never happened are left out.
    pub outcomes: Vec<(&'static str, u64)>,
    /// Per-host state.
    pub hosts: Vec<HostSnapshot>,
    /// The circuit breakers' bounds, counts and overflows.
    pub breakers: BreakerSnapshot,
    /// The active check's kind (`tcp`, `http`, `grpc`, `protocol`), if any.
    pub health_check: Option<&'static str>,
    /// Whether so few hosts are healthy that the balancer uses them all (panic).
    pub panic: bool,
    /// Heartbeats its connections sent on idle time.
    pub heartbeats_sent: u64,
    /// Of those, the ones left unanswered.
    pub heartbeats_unanswered: u64,
}

/// A point-in-time view of one host.
#[derive(Debug, Clone)]
pub struct HostSnapshot {
    /// Host address.
    pub addr: SocketAddr,
    /// Load-balancing weight.
    pub weight: u32,
    /// Whether the host can be picked (healthy, not backing off after connect
    /// failures).
    pub available: bool,
    /// Whether the host left the cluster (DNS stopped naming it) and is draining.
    pub removed: bool,
    /// Active check, ejection and slow start.
    pub health: crate::HealthSnapshot,
    /// Requests in flight to this host.
    pub in_flight: usize,
    /// Open pooled connections.
    pub connections: usize,
    /// Requests that reached the host and ended (answered, failed or cancelled).
    pub requests: u64,
    /// Of those, the ones the host failed: reset, timed out, or answered with the
    /// protocol's server-error class.
    pub failures: u64,
    /// Consecutive failed connection attempts.
    pub connect_failures: u32,
    /// Responses dropped because their id was not in flight (late or unknown).
    pub unknown_responses: u64,
}

/// A cluster's hosts and their balancer.
pub struct HostSet {
    hosts: Vec<Arc<Host>>,
    lb: Balancer,
}

impl HostSet {
    fn new(hosts: Vec<Arc<Host>>, policy: LbPolicy) -> Self {
        let identities: Vec<(u64, u32)> = hosts
            .iter()
            // A removed host has no place on a hash ring.
            .map(|h| {
                (
                    hash_host(&h.addr()),
                    if h.removed() { 0 } else { h.weight() },
                )
            })
            .collect();
        HostSet {
            lb: Balancer::for_hosts(policy, &identities),
            hosts,
        }
    }

    /// The hosts, in position order (removed ones included, see [`Host::removed`]).
    pub fn hosts(&self) -> &[Arc<Host>] {
        &self.hosts
    }
}

/// A cluster's host set: fixed for a static cluster (read with no atomic swap on the
/// request path), swappable for a DNS one.
enum Hosts {
    Fixed(Arc<HostSet>),
    Dynamic(ArcSwap<HostSet>),
}

/// The host set as it is now, borrowed for one pick or one count.
enum HostsNow<'a> {
    Fixed(&'a HostSet),
    Dynamic(arc_swap::Guard<Arc<HostSet>>),
}

impl std::ops::Deref for HostsNow<'_> {
    type Target = HostSet;

    fn deref(&self) -> &HostSet {
        match self {
            HostsNow::Fixed(set) => set,
            HostsNow::Dynamic(guard) => guard,
        }
    }
}

impl Hosts {
    #[inline]
    fn now(&self) -> HostsNow<'_> {
        match self {
            Hosts::Fixed(set) => HostsNow::Fixed(set),
            Hosts::Dynamic(swap) => HostsNow::Dynamic(swap.load()),
        }
    }

    fn full(&self) -> Arc<HostSet> {
        match self {
            Hosts::Fixed(set) => set.clone(),
            Hosts::Dynamic(swap) => swap.load_full(),
        }
    }

    /// Replaces a DNS cluster's set (a static one's never changes).
    fn store(&self, set: Arc<HostSet>) {
        if let Hosts::Dynamic(swap) = self {
            swap.store(set);
        }
    }
}

// === impl Cluster ===

impl Cluster {
    /// Builds the cluster; call [`Cluster::start`] inside a runtime to pre-connect.
    pub fn new(options: ClusterOptions) -> Self {
        let name: Arc<str> = Arc::from(options.name.as_str());
        let breakers = Arc::new(Breakers::new(options.circuit_breakers));
        let health = Arc::new(ClusterHealth::new(
            options.endpoints.len(),
            options.outlier_detection.clone(),
            options.slow_start,
        ));
        let checked = options.health_check.is_some();
        let shared = ClusterShared {
            name,
            health: health.clone(),
            breakers: breakers.clone(),
            tls: options.tls.clone(),
        };
        let messages_mode = matches!(options.transport, Transport::Messages { .. });
        let endpoints = match &options.discovery {
            Discovery::Static => options.endpoints.clone(),
            // The first answers, before any listener takes traffic (a name that does
            // not resolve yet leaves the cluster empty until it does).
            Discovery::StrictDns {
                names, resolver, ..
            } => resolve_all(&shared.name, names, resolver.as_ref()),
        };
        health.hosts.store(endpoints.len(), Ordering::Relaxed);
        let hosts = endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| {
                Arc::new(Host::new(
                    &shared,
                    // Endpoint lists come from config text: far fewer than 2^32.
                    u32::try_from(i).unwrap_or(u32::MAX),
                    e.addr,
                    e.weight.max(1),
                    options.max_connections_per_host,
                    messages_mode,
                    // With an active check, a host takes traffic once it passed one.
                    checked,
                ))
            })
            .collect::<Vec<_>>();
        let messages = match &options.transport {
            Transport::Messages {
                pool_mode, client, ..
            } => MessagePool::new(
                *pool_mode,
                options.connect_timeout,
                options.max_connections_per_host,
                client.clone(),
            ),
            Transport::Framed(_) => None,
        };
        let (stop, _) = watch::channel(false);
        let heartbeats = Arc::new(HeartbeatCounters::default());
        Cluster {
            heartbeats: heartbeats.clone(),
            name: options.name,
            breakers,
            health,
            health_check: options.health_check.map(Arc::new),
            panic_threshold: options.panic_threshold,
            preconnect: options.preconnect,
            connector: match &options.transport {
                Transport::Framed(protocol) => Some(Connector {
                    protocol: protocol.clone(),
                    options: UpstreamOptions {
                        heartbeats: Some(heartbeats.clone()),
                        ..options.connection
                    },
                    connect_timeout: options.connect_timeout,
                }),
                Transport::Messages { .. } => None,
            },
            transport: options.transport,
            messages,
            set: {
                let set = Arc::new(HostSet::new(hosts, options.lb_policy));
                match options.discovery {
                    Discovery::Static => Hosts::Fixed(set),
                    Discovery::StrictDns { .. } => Hosts::Dynamic(ArcSwap::new(set)),
                }
            },
            lb_policy: options.lb_policy,
            max_connections_per_host: options.max_connections_per_host,
            shared,
            discovery: options.discovery,
            hash_key: options.hash_key,
            in_flight: Arc::new(AtomicUsize::new(0)),
            outcomes: std::array::from_fn(|_| AtomicU64::new(0)),
            stop,
        }
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the hosts speak.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The framed protocol spoken to the hosts, if the cluster manages its connections.
    pub fn protocol(&self) -> Option<&Arc<dyn Protocol>> {
        self.connector.as_ref().map(|c| &c.protocol)
    }

    /// The hosts and their balancer as they are now.
    pub fn host_set(&self) -> Arc<HostSet> {
        self.set.full()
    }

    /// The host at `position` (as a request's context keeps it).
    pub fn host(&self, position: usize) -> Option<Arc<Host>> {
        self.set.now().hosts.get(position).cloned()
    }

    /// How many positions the host set has (removed hosts included).
    pub(crate) fn host_count(&self) -> usize {
        self.set.now().hosts.len()
    }

    /// Starts the cluster's background work: active health checks, the outlier
    /// detection sweep, and pre-connecting with its reconnect task.
    pub fn start(self: &Arc<Self>) {
        if let Some(check) = &self.health_check {
            let speaks = match &self.transport {
                Transport::Framed(protocol) => Speaks::Framed(protocol.clone()),
                Transport::Messages {
                    pool_mode, client, ..
                } => Speaks::Http {
                    mode: *pool_mode,
                    client: client.clone(),
                    authority: self.name.clone(),
                },
            };
            for host in self.set.now().hosts.iter() {
                self.spawn_check(host, check, &speaks);
            }
        }
        if let Discovery::StrictDns { refresh, .. } = &self.discovery {
            tokio::spawn(refresh_dns(
                Arc::downgrade(self),
                *refresh,
                self.stop.subscribe(),
            ));
        }
        if let Some(outlier) = &self.health.outlier {
            tokio::spawn(sweep_outliers(
                Arc::downgrade(self),
                outlier.interval,
                self.stop.subscribe(),
            ));
        }
        if !self.preconnect || self.connector.is_none() {
            return;
        }
        let cluster = Arc::downgrade(self);
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            loop {
                let Some(c) = cluster.upgrade() else { return };
                if let Some(connector) = &c.connector {
                    let set = c.set.full();
                    for host in set.hosts.iter().filter(|h| !h.removed()) {
                        host.fill_all(connector, &c.in_flight).await;
                    }
                }
                drop(c);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }

    /// Waits until every host has had its first active check (at most the check's
    /// timeout and a little more), so that no request goes to a host before one passed:
    /// how Envoy warms a cluster before its listeners take traffic. At once without an
    /// active check.
    pub async fn first_checks(&self) {
        let Some(check) = &self.health_check else {
            return;
        };
        let until = tokio::time::Instant::now() + check.timeout + Duration::from_millis(100);
        while tokio::time::Instant::now() < until {
            if self.set.now().hosts.iter().all(|h| !h.health().pending()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops background work and closes every connection (a message cluster's busy
    /// connections close as their exchanges end).
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        for host in self.set.now().hosts.iter() {
            host.close_all();
        }
    }

    /// What the health checks of this cluster's hosts speak.
    fn speaks(&self) -> Speaks {
        match &self.transport {
            Transport::Framed(protocol) => Speaks::Framed(protocol.clone()),
            Transport::Messages {
                pool_mode, client, ..
            } => Speaks::Http {
                mode: *pool_mode,
                client: client.clone(),
                authority: self.name.clone(),
            },
        }
    }

    /// Starts `host`'s active check; it ends with the cluster, or when the host leaves.
    fn spawn_check(&self, host: &Arc<Host>, check: &Arc<HealthCheck>, speaks: &Speaks) {
        tokio::spawn(crate::health_check::run(
            host.clone(),
            self.health.clone(),
            check.clone(),
            speaks.clone(),
            self.stop.subscribe(),
        ));
    }

    /// Makes the cluster's hosts `wanted` (DNS answers): hosts no longer named are
    /// removed (no new requests, their connections drained), hosts named again come
    /// back, new ones are added; the set and its balancer are swapped at once.
    pub(crate) fn update_hosts(&self, wanted: &[Endpoint]) {
        let current = self.set.full();
        let mut hosts = current.hosts.clone();
        let mut changed = false;
        for host in &hosts {
            let named = wanted.iter().any(|e| e.addr == host.addr());
            if !named && !host.removed() {
                host.remove(Duration::from_secs(60));
                changed = true;
            }
        }
        let checked = self.health_check.is_some();
        for e in wanted {
            match hosts.iter().find(|h| h.addr() == e.addr) {
                Some(host) if host.removed() => {
                    host.revive(checked);
                    changed = true;
                }
                Some(_) => {}
                None => {
                    let position = u32::try_from(hosts.len()).unwrap_or(u32::MAX);
                    let host = Arc::new(Host::new(
                        &self.shared,
                        position,
                        e.addr,
                        e.weight.max(1),
                        self.max_connections_per_host,
                        self.messages.is_some(),
                        checked,
                    ));
                    self.health.hosts.fetch_add(1, Ordering::AcqRel);
                    tracing::info!(cluster = %self.name, host = %e.addr, "upstream host added");
                    if let Some(check) = &self.health_check {
                        self.spawn_check(&host, check, &self.speaks());
                    }
                    hosts.push(host);
                    changed = true;
                }
            }
        }
        if changed {
            self.set
                .store(Arc::new(HostSet::new(hosts, self.lb_policy)));
        }
    }

    /// The HTTP version requests to this cluster must be prepared for; `None` for a
    /// framed cluster.
    pub fn message_version(&self) -> Option<Version> {
        self.messages.as_ref().map(MessagePool::version)
    }

    /// Sends `request` to a host of a message cluster and waits for the response head.
    /// Admission, host picking, connect backoff and retrying a request that certainly
    /// never left on another host are the cluster's, as for framed requests; `ctx`
    /// learns each attempt's host and when the request was handed to it. Past
    /// `deadline` (connecting, or waiting for the response head) it fails with
    /// [`ProxyFailure::Timeout`].
    // A plain fn returning the pool's future: an `async fn` here would be one more
    // layer holding its own copy of the request in every request's future. The request
    // comes boxed for the same reason: each layer of the send (cluster, host pool,
    // connection) holds it until it is written, and a box is 8 bytes there, not 368.
    pub fn send<'a>(
        &'a self,
        request: Box<Request<Body>>,
        ctx: &'a mut RequestContext,
        hash: Option<u64>,
        deadline: tokio::time::Instant,
    ) -> impl Future<Output = Result<Exchange, SendFailure>> + Send + 'a {
        MessagePool::send(self.messages.as_ref(), self, request, ctx, hash, deadline)
    }

    /// The hash a hashing balancer picks `request`'s host by (`None`: the cluster
    /// does not hash, or the request lacks the key). Read it before the route edits
    /// the request.
    #[inline]
    pub fn request_hash(&self, request: &dyn Frame) -> Option<u64> {
        self.hash_key.as_ref()?.hash(request)
    }

    /// Picks a host and one of its connections for the next request. Fails with
    /// overflow past `max_requests`, and with no healthy upstream when every host is
    /// backing off after connect failures. When the pick is `recent` (the connection
    /// the caller sent its last request over, still open), it says
    /// [`Selected::Recent`] instead of cloning a handle to it.
    pub fn select(
        self: &Arc<Self>,
        hash: Option<u64>,
        recent: Option<&UpstreamConnection>,
    ) -> Result<Selected, ProxyFailure> {
        if self.connector.is_none() {
            // A message cluster's requests go through `send`.
            return Err(ProxyFailure::NoHealthyUpstream);
        }
        let set = self.set.now();
        let index = self.pick_in(&set, hash)?;
        self.select_in(&set, index, hash, recent)
    }

    /// Picks a host for a retry, preferring one not in `tried` (bits by host position,
    /// as `RequestContext::tried` keeps them), and one of its connections.
    pub fn select_retry(
        self: &Arc<Self>,
        hash: Option<u64>,
        tried: u64,
    ) -> Result<Selected, ProxyFailure> {
        let set = self.set.now();
        let index = self.pick_retry_in(&set, hash, tried)?;
        self.select_in(&set, index, hash, None)
    }

    /// A connection to the host at `index` of `set`, or the connect that makes one.
    #[inline]
    fn select_in(
        self: &Arc<Self>,
        set: &HostSet,
        index: usize,
        hash: Option<u64>,
        recent: Option<&UpstreamConnection>,
    ) -> Result<Selected, ProxyFailure> {
        let Some(connector) = &self.connector else {
            return Err(ProxyFailure::NoHealthyUpstream);
        };
        let host = &set.hosts[index];
        match host.ready_connection(connector, &self.in_flight, recent) {
            Some(selected) => Ok(selected),
            None => {
                let pending = self.breakers.pending().ok_or(ProxyFailure::Overflow)?;
                let cluster = self.clone();
                let admitted = Admission::new(&self.in_flight);
                Ok(Selected::Connecting(Box::pin(async move {
                    let connected = cluster.connect(index, hash).await;
                    // The connection counts the request from here on.
                    drop((admitted, pending));
                    connected
                })))
            }
        }
    }

    /// Picks a host for a request of a message cluster (overflow past
    /// `max_requests`, no healthy upstream when every host is backing off). Pair it with
    /// [`Cluster::begin_request`]. Returns the host with its position. Prefers a host
    /// not in `tried` (a retry): a few more picks when the balancer lands on one (a
    /// hashing balancer with a varied hash), then whatever it gives.
    pub(crate) fn pick(
        &self,
        hash: Option<u64>,
        tried: u64,
    ) -> Result<(usize, Arc<Host>), ProxyFailure> {
        let set = self.set.now();
        let index = self.pick_retry_in(&set, hash, tried)?;
        Ok((index, set.hosts[index].clone()))
    }

    fn pick_retry_in(
        &self,
        set: &HostSet,
        hash: Option<u64>,
        tried: u64,
    ) -> Result<usize, ProxyFailure> {
        let mut index = self.pick_in(set, hash)?;
        for round in 1..set.hosts.len().min(8) {
            if tried & host_bit(index) == 0 {
                break;
            }
            index = self.pick_in(set, vary(hash, round as u64))?;
        }
        Ok(index)
    }

    /// Admits a retry of one of this cluster's requests (within `max_retries` or the
    /// retry budget); the request releases it with [`Cluster::end_retry`] when it ends.
    pub fn begin_retry(&self) -> bool {
        self.breakers
            .begin_retry(self.in_flight.load(Ordering::Relaxed))
    }

    /// A retried request ended (see [`Cluster::begin_retry`]).
    pub fn end_retry(&self) {
        self.breakers.end_retry();
    }

    /// Counts one attempt on the host at position `host` that ended with `outcome` and
    /// is tried again: the host's counters and outlier detection hear it; the request's
    /// own end is counted once, later, by [`Cluster::record`].
    pub fn record_attempt(&self, host: u32, outcome: Outcome) {
        if let Some(host) = self.set.now().hosts.get(host as usize) {
            host.record(outcome, 1);
        }
    }

    #[inline]
    fn pick_in(&self, set: &HostSet, hash: Option<u64>) -> Result<usize, ProxyFailure> {
        if self.in_flight.load(Ordering::Relaxed) >= self.breakers.limits.max_requests {
            self.breakers.overflowed(Breaker::Requests);
            return Err(ProxyFailure::Overflow);
        }
        self.pick_host_in(set, hash)
            .ok_or(ProxyFailure::NoHealthyUpstream)
    }

    /// The balancer's pick among healthy hosts, or among all of them in panic.
    #[inline]
    fn pick_host_in(&self, set: &HostSet, hash: Option<u64>) -> Option<usize> {
        // One host, the common sidecar case: no balancer needed. Healthy, or in panic
        // (which one unhealthy host of one is, unless the threshold is 0).
        if let [only] = &set.hosts[..] {
            let pickable = only.available()
                || (self.panic_threshold > 0 && !only.removed() && only.reachable());
            return pickable.then_some(0);
        }
        let unhealthy = self.health.unhealthy.load(Ordering::Relaxed);
        if unhealthy > 0 && self.in_panic(unhealthy) {
            // Rare and degraded: a small list of views is fine here.
            let all: Vec<IgnoringHealth<'_>> =
                set.hosts.iter().map(|h| IgnoringHealth(h)).collect();
            return set.lb.pick_hashed(&all, hash);
        }
        set.lb.pick_hashed(&set.hosts, hash)
    }

    /// Whether fewer than `panic_threshold` percent of the hosts are healthy.
    fn in_panic(&self, unhealthy: usize) -> bool {
        let n = self.health.hosts.load(Ordering::Relaxed);
        (n - unhealthy.min(n)) * 100 < n * self.panic_threshold as usize
    }

    /// Counts a request to `host` as in flight (for `max_requests`, least-request
    /// balancing and the admin view) until the guard is finished or dropped.
    pub(crate) fn begin_request(&self, host: &Arc<Host>) -> RequestGuard {
        RequestGuard::new(host.clone(), self.in_flight.clone())
    }

    /// Counts one request of this cluster that ended with `outcome`; `host` is its
    /// position in the host set when it reached one. Called once per request, at the
    /// single place requests end.
    pub fn record(&self, host: Option<usize>, outcome: Outcome) {
        self.record_n(host, outcome, 1);
    }

    /// [`Cluster::record`] for `n` requests at once (a framed connection counts a
    /// batch of ends together).
    pub fn record_n(&self, host: Option<usize>, outcome: Outcome, n: u64) {
        self.outcomes[outcome.index()].fetch_add(n, Ordering::Relaxed);
        if let Some(i) = host
            && let Some(host) = self.set.now().hosts.get(i)
        {
            host.record(outcome, n);
        }
    }

    /// Connects to the host at position `first`, then to other hosts the balancer
    /// picks if that fails: nothing was sent yet, so trying elsewhere is safe.
    async fn connect(
        &self,
        first: usize,
        hash: Option<u64>,
    ) -> Result<UpstreamConnection, ProxyFailure> {
        let Some(connector) = &self.connector else {
            return Err(ProxyFailure::NoHealthyUpstream);
        };
        let mut last = ProxyFailure::NoHealthyUpstream;
        let mut index = first;
        let tries = self.host_count();
        for attempt in 0..tries {
            let set = self.set.full();
            if attempt > 0 {
                // A hashing balancer would pick the failed host again: spread the
                // retry instead. Nothing was sent: this is no retry of the request,
                // and no retry admission bounds it.
                match self.pick_host_in(&set, vary(hash, attempt as u64)) {
                    Some(i) => index = i,
                    None => break,
                }
            }
            let Some(host) = set.hosts.get(index) else {
                break;
            };
            match host.connection(connector, &self.in_flight).await {
                Ok(conn) => return Ok(conn),
                Err(ConnectError::BackingOff) => {}
                Err(ConnectError::Failed) => last = ProxyFailure::ConnectFailure,
                Err(ConnectError::Overflow) => return Err(ProxyFailure::Overflow),
            }
        }
        Err(last)
    }

    /// The cluster's state, for the admin API.
    pub fn snapshot(&self) -> ClusterSnapshot {
        let checked = self.health_check.is_some();
        let set = self.set.now();
        ClusterSnapshot {
            heartbeats_sent: self.heartbeats.sent.load(Ordering::Relaxed),
            heartbeats_unanswered: self.heartbeats.unanswered.load(Ordering::Relaxed),
            breakers: self.breakers.snapshot(),
            health_check: self.health_check.as_ref().map(|c| c.kind.as_str()),
            panic: self.in_panic(self.health.unhealthy.load(Ordering::Relaxed)),
            name: self.name.clone(),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            outcomes: Outcome::ALL
                .iter()
                .map(|o| (o.as_str(), self.outcomes[o.index()].load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            hosts: set
                .hosts
                .iter()
                .map(|h| {
                    let (requests, failures, connect_failures, unknown_responses) = h.counters();
                    HostSnapshot {
                        addr: h.addr(),
                        weight: h.weight(),
                        available: h.available(),
                        removed: h.removed(),
                        health: h.health_snapshot(checked),
                        in_flight: h.in_flight(),
                        connections: h.open_connections(),
                        requests,
                        failures,
                        connect_failures,
                        unknown_responses,
                    }
                })
                .collect(),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A different hash for the `round`-th try of the same key, so a hashing balancer can
/// land somewhere else (`round` 0 is the key itself).
pub(crate) fn vary(hash: Option<u64>, round: u64) -> Option<u64> {
    hash.map(|h| h ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The bit of host position `index` in `RequestContext::tried`.
pub fn host_bit(index: usize) -> u64 {
    1 << index.min(63)
}

/// A host as the balancer sees it in panic: its health flags ignored, its connect
/// backoff still honoured.
struct IgnoringHealth<'a>(&'a Host);

impl LbHost for IgnoringHealth<'_> {
    fn weight(&self) -> u32 {
        self.0.weight()
    }
    fn healthy(&self) -> bool {
        self.0.reachable()
    }
    fn in_flight(&self) -> usize {
        self.0.in_flight()
    }
}

/// Every `interval`: ends ejections whose time is up, then ejects the hosts whose
/// success rate in the interval stands out (outlier detection's second check).
async fn sweep_outliers(
    cluster: std::sync::Weak<Cluster>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // Each host's (requests, failures) at the last sweep, by position.
    let counters = |set: &HostSet| -> Vec<(u64, u64)> {
        set.hosts
            .iter()
            .map(|h| {
                let (requests, failures, _, _) = h.counters();
                (requests, failures)
            })
            .collect()
    };
    let mut last = match cluster.upgrade() {
        Some(c) => counters(&c.set.now()),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        let Some(c) = cluster.upgrade() else { return };
        let Some(outlier) = &c.health.outlier else {
            return;
        };
        let set = c.set.full();
        let now = tokio::time::Instant::now();
        for host in &set.hosts {
            host.sweep(now);
        }
        let current = counters(&set);
        // Hosts added since the last sweep count from zero; removed ones are not
        // measured.
        let rates: Vec<(u64, u64)> = current
            .iter()
            .enumerate()
            .map(|(i, now)| {
                let before = last.get(i).copied().unwrap_or((0, 0));
                if set.hosts[i].removed() {
                    (0, 0)
                } else {
                    (now.0 - before.0, now.1 - before.1)
                }
            })
            .collect();
        last = current;
        for i in success_rate_outliers(&rates, outlier) {
            set.hosts[i].eject(EjectReason::SuccessRate);
        }
    }
}

/// Every `refresh`: resolves the cluster's names again and updates its hosts.
async fn refresh_dns(
    cluster: std::sync::Weak<Cluster>,
    refresh: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(refresh) => {}
            _ = stop.changed() => return,
        }
        let Some(c) = cluster.upgrade() else { return };
        let Discovery::StrictDns {
            names, resolver, ..
        } = &c.discovery
        else {
            return;
        };
        let (names, resolver, name) = (names.clone(), resolver.clone(), c.shared.name.clone());
        drop(c);
        let Ok(wanted) =
            tokio::task::spawn_blocking(move || resolve_all(&name, &names, resolver.as_ref()))
                .await
        else {
            continue;
        };
        let Some(c) = cluster.upgrade() else { return };
        if wanted.is_empty() {
            // Nothing resolved (the resolver is down?): keep the hosts we have rather
            // than empty the cluster.
            continue;
        }
        c.update_hosts(&wanted);
    }
}

/// Every address each of `names` resolves to, with its port and weight; a name that
/// does not resolve is logged and skipped.
fn resolve_all(cluster: &str, names: &[DnsEndpoint], resolver: &dyn Resolve) -> Vec<Endpoint> {
    let mut out: Vec<Endpoint> = Vec::new();
    for name in names {
        match resolver.resolve(&name.host, name.port) {
            Ok(addrs) => {
                for addr in addrs {
                    if !out.iter().any(|e| e.addr == addr) {
                        out.push(Endpoint {
                            addr,
                            weight: name.weight,
                        });
                    }
                }
            }
            Err(error) => {
                tracing::warn!(cluster, host = %name.host, %error, "DNS resolution failed");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn cluster(hosts: usize, panic_threshold: u32) -> Cluster {
        Cluster::new(ClusterOptions {
            health_check: Some(HealthCheck::new(crate::CheckKind::Tcp)),
            panic_threshold,
            endpoints: (0..hosts)
                .map(|i| Endpoint {
                    addr: ([127, 0, 0, 1], 40_000 + i as u16).into(),
                    weight: 1,
                })
                .collect(),
            ..options()
        })
    }

    fn set_passing(c: &Cluster, passing: &[bool]) {
        for (host, &pass) in c.host_set().hosts().iter().zip(passing) {
            let failure = (!pass).then(|| "down".to_string());
            host.health().set_check(&c.health, failure, Instant::now());
        }
    }

    fn picked(c: &Cluster, n: usize) -> std::collections::BTreeSet<usize> {
        (0..n)
            .filter_map(|_| c.pick_host_in(&c.host_set(), None))
            .collect()
    }

    /// At or above the panic threshold only healthy hosts are picked; below it every
    /// host is (health ignored, as Envoy does); a threshold of 0 never panics.
    #[tokio::test]
    async fn panic_threshold_decides_between_healthy_hosts_and_all_of_them() {
        let c = cluster(4, 50);
        // Before any check passed, all four are pending: below 50%, so panic.
        assert!(c.snapshot().panic);
        assert_eq!(picked(&c, 40), [0, 1, 2, 3].into());
        set_passing(&c, &[true, true, false, false]);
        assert!(!c.snapshot().panic, "2 of 4 healthy is not below 50%");
        assert_eq!(picked(&c, 40), [0, 1].into());
        set_passing(&c, &[true, false, false, false]);
        assert!(c.snapshot().panic);
        assert_eq!(
            picked(&c, 40),
            [0, 1, 2, 3].into(),
            "1 of 4: panic uses all"
        );

        let strict = cluster(4, 0);
        set_passing(&strict, &[false, false, false, true]);
        assert!(!strict.snapshot().panic);
        assert_eq!(picked(&strict, 40), [3].into());
        set_passing(&strict, &[false; 4]);
        assert!(
            picked(&strict, 10).is_empty(),
            "no host, no panic: no healthy upstream"
        );
        assert_eq!(
            strict.pick_in(&strict.host_set(), None),
            Err(ProxyFailure::NoHealthyUpstream)
        );
    }

    /// The first connection of a cluster with none open yet.
    async fn connect(c: &Arc<Cluster>) -> UpstreamConnection {
        match c.select(None, None).unwrap() {
            Selected::Connecting(connecting) => connecting.await.unwrap(),
            _ => panic!("no connection was open yet"),
        }
    }

    fn connection_of(selected: Selected) -> Option<UpstreamConnection> {
        match selected {
            Selected::Ready(conn) => Some(conn),
            Selected::Recent | Selected::Connecting(_) => None,
        }
    }

    /// A caller that passes the connection it sent its last request over is told to
    /// reuse it while the pool still picks it and it is open; a closed one, or one the
    /// slot no longer holds, is never `Recent`.
    #[tokio::test]
    async fn a_recent_connection_is_reused_only_while_the_pool_holds_it_open() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let c = Arc::new(Cluster::new(ClusterOptions {
            endpoints: vec![Endpoint { addr, weight: 1 }],
            ..options()
        }));
        let first = connect(&c).await;
        assert!(matches!(
            c.select(None, Some(&first)).unwrap(),
            Selected::Recent
        ));
        let other = connection_of(c.select(None, None).unwrap()).expect("an open one");
        assert_eq!(
            other.identity(),
            first.identity(),
            "a handle to the same one"
        );

        first.close();
        let second = match c.select(None, Some(&first)).unwrap() {
            Selected::Connecting(connecting) => connecting.await.unwrap(),
            _ => panic!("the closed connection is not reused"),
        };
        assert_ne!(second.identity(), first.identity());
        assert!(
            !matches!(c.select(None, Some(&first)).unwrap(), Selected::Recent),
            "a handle the slot no longer holds is not its connection"
        );
        assert!(matches!(
            c.select(None, Some(&second)).unwrap(),
            Selected::Recent
        ));
        // Open, but another pool's: not this slot's connection.
        let elsewhere = Arc::new(Cluster::new(ClusterOptions {
            endpoints: vec![Endpoint { addr, weight: 1 }],
            ..options()
        }));
        let foreign = connect(&elsewhere).await;
        assert!(foreign.is_open());
        assert!(connection_of(c.select(None, Some(&foreign)).unwrap()).is_some());
        accepted.abort();
    }

    /// A resolver whose answers the test sets.
    struct Scripted(parking_lot::Mutex<Vec<SocketAddr>>);

    impl Resolve for Scripted {
        fn resolve(&self, _host: &str, _port: u16) -> std::io::Result<Vec<SocketAddr>> {
            Ok(self.0.lock().clone())
        }
    }

    /// A `strict_dns` cluster takes the resolver's answers at start; later answers add
    /// hosts, remove the ones no longer named (no new requests go there) and bring a
    /// renamed one back at its old position; the balancer follows.
    #[tokio::test]
    async fn dns_answers_add_remove_and_bring_back_hosts() {
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let resolver = Arc::new(Scripted(parking_lot::Mutex::new(vec![
            addr(41_001),
            addr(41_002),
        ])));
        let options = ClusterOptions {
            discovery: Discovery::StrictDns {
                names: vec![DnsEndpoint {
                    host: "backends.test".into(),
                    port: 0,
                    weight: 1,
                }],
                refresh: Duration::from_secs(5),
                resolver: resolver.clone(),
            },
            ..options()
        };
        let c = Cluster::new(options);
        let addrs = |c: &Cluster| -> Vec<(SocketAddr, bool)> {
            c.snapshot()
                .hosts
                .iter()
                .map(|h| (h.addr, h.removed))
                .collect()
        };
        assert_eq!(addrs(&c), [(addr(41_001), false), (addr(41_002), false)]);
        assert_eq!(picked(&c, 10), [0, 1].into());

        c.update_hosts(&[
            Endpoint {
                addr: addr(41_002),
                weight: 1,
            },
            Endpoint {
                addr: addr(41_003),
                weight: 1,
            },
        ]);
        assert_eq!(
            addrs(&c),
            [
                (addr(41_001), true),
                (addr(41_002), false),
                (addr(41_003), false)
            ]
        );
        assert_eq!(
            picked(&c, 10),
            [1, 2].into(),
            "the removed host takes nothing"
        );
        assert_eq!(c.health.hosts.load(Ordering::Relaxed), 2);

        c.update_hosts(&[Endpoint {
            addr: addr(41_001),
            weight: 1,
        }]);
        assert_eq!(
            addrs(&c),
            [
                (addr(41_001), false),
                (addr(41_002), true),
                (addr(41_003), true)
            ]
        );
        assert_eq!(picked(&c, 10), [0].into(), "back at its old position");
        assert_eq!(c.health.hosts.load(Ordering::Relaxed), 1);
    }

    fn options() -> ClusterOptions {
        ClusterOptions {
            name: "c".into(),
            transport: Transport::Framed(strait_example_lenproto::protocol()),
            lb_policy: LbPolicy::RoundRobin,
            hash_key: None,
            connect_timeout: Duration::from_secs(1),
            max_connections_per_host: 1,
            preconnect: false,
            circuit_breakers: CircuitBreakers::default(),
            health_check: None,
            outlier_detection: None,
            slow_start: None,
            panic_threshold: 50,
            connection: UpstreamOptions::default(),
            endpoints: Vec::new(),
            discovery: Discovery::Static,
            tls: None,
        }
    }
}
