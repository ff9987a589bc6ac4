use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use strait_codec_framework::{Outcome, Protocol};
use strait_stream::UpstreamIo;
use strait_stream::{UpstreamConnection, UpstreamOptions};
use strait_tls::ClientTls;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::breakers::Breakers;
use crate::cluster::Selected;
use crate::connect::connect;
use crate::health::{ClusterHealth, EjectReason, HealthSnapshot, HostHealth};
use crate::lb::LbHost;
use crate::message_pool::HostPool;

/// One upstream endpoint and its pool of multiplexed connections.
pub struct Host {
    /// Position in its cluster, reported back in each request's context.
    tag: u32,
    /// Its cluster's name, for log lines.
    cluster: Arc<str>,
    addr: SocketAddr,
    weight: u32,
    slots: Vec<Slot>,
    next_slot: AtomicUsize,
    /// Requests in flight to this host; raised and lowered by its connections.
    in_flight: Arc<AtomicUsize>,
    /// Set while the host waits out a connect backoff: the lock-free fast check the
    /// load balancer makes on every pick.
    backing_off: AtomicBool,
    backoff: Mutex<Backoff>,
    /// Requests that reached this host, counted when they end, whatever the outcome.
    requests: AtomicU64,
    /// Of those, the ones the host failed (reset, timeout, a server-error answer).
    failures: AtomicU64,
    unknown_responses: Arc<AtomicU64>,
    /// Active-check verdict, ejection and slow start.
    health: HostHealth,
    /// What the cluster's hosts share about health (counts, outlier settings).
    cluster_health: Arc<ClusterHealth>,
    /// The cluster's circuit breakers (`max_connections` is reserved here).
    breakers: Arc<Breakers>,
    /// A message cluster's connections to this host (`None`: framed, the slots).
    message_pool: Option<Arc<HostPool>>,
    /// Set while the host is out of its cluster (its DNS name stopped naming it): it
    /// takes no new request; its place is kept in case it comes back.
    removed: AtomicBool,
    /// The cluster's TLS, if its connections use it.
    tls: Option<Arc<ClientTls>>,
}

/// One connection position in a host's pool; reconnected when its connection dies.
struct Slot {
    conn: Mutex<Option<UpstreamConnection>>,
    /// The [`UpstreamConnection::identity`] of `conn` (0: none), read without the
    /// lock to tell a caller its recent connection is still this slot's.
    current: AtomicUsize,
    /// Serialises connection attempts for this slot, so a burst of requests finding it
    /// empty makes one connection, not many.
    connecting: tokio::sync::Mutex<()>,
}

/// Why no connection could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectError {
    /// The host failed recently and is waiting out its backoff.
    BackingOff,
    /// The attempt failed (refused, unreachable, timed out).
    Failed,
    /// The cluster is at its `max_connections`.
    Overflow,
}

/// Why [`Host::open`] gave no connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// The cluster is at its `max_connections`: nothing was attempted.
    Overflow,
    /// The connect or the handshake failed.
    Failed(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Overflow => f.write_str("the cluster is at its max_connections"),
            OpenError::Failed(why) => f.write_str(why),
        }
    }
}

/// What a cluster's hosts share: its name (for logs), its health counts and settings,
/// its circuit breakers.
#[derive(Clone)]
pub(crate) struct ClusterShared {
    pub(crate) name: Arc<str>,
    pub(crate) health: Arc<ClusterHealth>,
    pub(crate) breakers: Arc<Breakers>,
    /// The cluster's TLS, if its connections use it.
    pub(crate) tls: Option<Arc<ClientTls>>,
}

/// What a connection needs, shared by every host of a cluster.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) protocol: Arc<dyn Protocol>,
    pub(crate) options: UpstreamOptions,
    pub(crate) connect_timeout: Duration,
}

// === impl Host ===

impl Host {
    pub(crate) fn new(
        shared: &ClusterShared,
        tag: u32,
        addr: SocketAddr,
        weight: u32,
        connections: usize,
        messages: bool,
        pending_check: bool,
    ) -> Self {
        let cluster = shared.name.clone();
        Host {
            message_pool: messages.then(|| HostPool::new(shared.breakers.connections.clone())),
            removed: AtomicBool::new(false),
            tls: shared.tls.clone(),
            breakers: shared.breakers.clone(),
            health: HostHealth::new(&shared.health, pending_check),
            cluster_health: shared.health.clone(),
            tag,
            cluster,
            addr,
            weight,
            slots: (0..connections.max(1))
                .map(|_| Slot {
                    conn: Mutex::new(None),
                    current: AtomicUsize::new(0),
                    connecting: tokio::sync::Mutex::new(()),
                })
                .collect(),
            next_slot: AtomicUsize::new(0),
            in_flight: Arc::new(AtomicUsize::new(0)),
            backing_off: AtomicBool::new(false),
            backoff: Mutex::new(Backoff::default()),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            unknown_responses: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The host's address.
    pub(crate) fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_deref()
    }

    /// The host's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host's load-balancing weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// Requests sent to this host and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether the host may be picked: healthy (its active check passes, it is not
    /// ejected) and not waiting out a connect backoff.
    pub fn available(&self) -> bool {
        self.health.healthy() && !self.removed() && self.reachable()
    }

    /// Whether the host left its cluster (and takes no new request).
    pub fn removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// A message cluster's connections to this host.
    pub(crate) fn message_pool(&self) -> Option<&Arc<HostPool>> {
        self.message_pool.as_ref()
    }

    /// Takes the host out of its cluster: no new requests; its connections close once
    /// what they carry has ended (at most `drain` later). Its health starts afresh if
    /// it comes back.
    pub(crate) fn remove(&self, drain: Duration) {
        if self.removed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.health.reset(&self.cluster_health, false);
        self.cluster_health.hosts.fetch_sub(1, Ordering::AcqRel);
        for slot in &self.slots {
            if let Some(conn) = slot.replace(None) {
                conn.drain(drain);
            }
        }
        if let Some(pool) = &self.message_pool {
            pool.close_idle();
        }
        tracing::info!(cluster = %self.cluster, host = %self.addr, "upstream host removed: draining its connections");
    }

    /// Puts a removed host back, as new: with an active check it takes traffic once a
    /// check passed.
    pub(crate) fn revive(&self, pending_check: bool) {
        if !self.removed.load(Ordering::Acquire) {
            return;
        }
        self.cluster_health.hosts.fetch_add(1, Ordering::AcqRel);
        self.health.reset(&self.cluster_health, pending_check);
        if let Some(pool) = &self.message_pool {
            pool.reopen();
        }
        self.removed.store(false, Ordering::Release);
        tracing::info!(cluster = %self.cluster, host = %self.addr, "upstream host added back");
    }

    /// Whether a connection may be attempted: the host is not waiting out a connect
    /// backoff (whatever its health; a cluster in panic uses unhealthy hosts too).
    pub fn reachable(&self) -> bool {
        if !self.backing_off.load(Ordering::Acquire) {
            return true;
        }
        let ready = self.backoff.lock().ready(Instant::now());
        if ready {
            self.backing_off.store(false, Ordering::Release);
        }
        ready
    }

    /// Opens a connection to the host: the one connect path of every pool mode
    /// (multiplexed slots, HTTP/1.1 and HTTP/2 pools). A TCP connect bounded by
    /// `timeout`, `TCP_NODELAY`, then the pool's `handshake` on the stream (starting a
    /// framed connection's driver, or an HTTP client handshake). The outcome feeds the
    /// host's backoff: success resets it; a failure makes the host back off unless
    /// `live` (the pool holds open connections to it, so the host is up and only this
    /// extra connection failed, a full accept backlog say). A request that failed for
    /// it is counted once, by its outcome, at [`crate::Cluster::record`].
    ///
    /// The connection counts against the cluster's `max_connections` from here on: the
    /// pool that keeps it lowers `Breakers::connections` when it closes.
    pub(crate) async fn open<T>(
        &self,
        timeout: Duration,
        live: bool,
        handshake: impl AsyncFnOnce(UpstreamIo) -> Result<T, String>,
    ) -> Result<T, OpenError> {
        if !self.breakers.reserve_connection() {
            return Err(OpenError::Overflow);
        }
        let addr = self.addr;
        // The bound covers the TLS handshake too.
        let connected =
            match tokio::time::timeout(timeout, connect(addr, self.tls.as_deref())).await {
                Ok(Ok(stream)) => handshake(stream).await,
                Ok(Err(error)) => Err(error),
                Err(_) => Err(format!("connect to {addr}: timed out")),
            };
        match &connected {
            Ok(_) => {
                let failed_before = self.backoff.lock().succeeded();
                if failed_before > 0 {
                    tracing::info!(
                        cluster = %self.cluster,
                        host = %addr,
                        failed_attempts = failed_before,
                        "upstream host reachable again"
                    );
                }
            }
            Err(error) if live => {
                // The host is up (the pool holds connections to it): not a state change.
                tracing::debug!(cluster = %self.cluster, host = %addr, %error, "extra upstream connection failed");
            }
            Err(error) => {
                let failures = self.backoff.lock().failed(Instant::now());
                self.backing_off.store(true, Ordering::Release);
                // One line when the host goes down, then at 2, 4, 8... failed attempts:
                // the backoff already spaces attempts out (up to 10 s apart), this
                // keeps a host that stays down from filling the log.
                if failures == 1 {
                    tracing::warn!(cluster = %self.cluster, host = %addr, %error, "upstream host unreachable: backing off");
                } else if failures.is_power_of_two() {
                    tracing::warn!(cluster = %self.cluster, host = %addr, %error, failed_attempts = failures, "upstream host still unreachable");
                }
            }
        }
        if connected.is_err() {
            self.breakers.release_connection();
        }
        connected.map_err(OpenError::Failed)
    }

    /// The cluster's circuit breakers.
    pub(crate) fn breakers(&self) -> &Arc<Breakers> {
        &self.breakers
    }

    /// Counts `n` requests that reached this host and ended with `outcome`; outlier
    /// detection ejects the host when they complete a run of `consecutive_errors`.
    pub(crate) fn record(&self, outcome: Outcome, n: u64) {
        self.requests.fetch_add(n, Ordering::Relaxed);
        if outcome.is_host_failure() {
            self.failures.fetch_add(n, Ordering::Relaxed);
        }
        // A host that left its cluster is not judged on what it still answers.
        if self.health.record(&self.cluster_health, outcome, n) && !self.removed() {
            self.eject(EjectReason::ConsecutiveErrors);
        }
    }

    /// Ejects the host (outlier detection), within the cluster's cap.
    pub(crate) fn eject(&self, reason: EjectReason) {
        if let Some(time) = self
            .health
            .eject(&self.cluster_health, reason, Instant::now())
        {
            tracing::warn!(cluster = %self.cluster, host = %self.addr, reason = reason.as_str(), ?time, "upstream host ejected");
        }
    }

    /// Ends an ejection whose time is up (the outlier sweep).
    pub(crate) fn sweep(&self, now: Instant) {
        if self.health.sweep(&self.cluster_health, now) {
            tracing::info!(cluster = %self.cluster, host = %self.addr, "upstream host back from ejection");
        }
    }

    /// The host's health state.
    pub(crate) fn health(&self) -> &HostHealth {
        &self.health
    }

    /// The host's health, for the admin view; `checked` says whether the cluster runs
    /// active checks.
    pub fn health_snapshot(&self, checked: bool) -> HealthSnapshot {
        self.health
            .snapshot(&self.cluster_health, checked, self.weight)
    }

    /// The name of the host's cluster.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Open connections to the host, whatever the pool mode.
    pub fn open_connections(&self) -> usize {
        match &self.message_pool {
            Some(pool) => pool.open_connections(),
            None => self.slots.iter().filter(|s| s.open().is_some()).count(),
        }
    }

    /// Requests completed, requests failed, consecutive connect failures, and responses
    /// dropped for an id not in flight.
    pub(crate) fn counters(&self) -> (u64, u64, u32, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            self.backoff.lock().failures(),
            self.unknown_responses.load(Ordering::Relaxed),
        )
    }

    /// An open pooled connection, without waiting: slots are taken round robin, and an
    /// empty slot lends another slot's connection while it is refilled in the
    /// background. `None` when no connection is open at all.
    pub(crate) fn ready_connection(
        self: &Arc<Self>,
        connector: &Connector,
        cluster_in_flight: &Arc<AtomicUsize>,
        recent: Option<&UpstreamConnection>,
    ) -> Option<Selected> {
        let index = match self.slots.len() {
            1 => 0, // no shared counter to bump for the common single-connection pool
            n => self.next_slot.fetch_add(1, Ordering::Relaxed) % n,
        };
        let slot = &self.slots[index];
        // The caller's handle keeps its connection alive, so no other connection can
        // have its identity while the slot is compared with it: equal means the same.
        if let Some(recent) = recent
            && slot.current.load(Ordering::Relaxed) == recent.identity()
            && recent.is_open()
        {
            return Some(Selected::Recent);
        }
        if let Some(conn) = slot.open() {
            return Some(Selected::Ready(conn));
        }
        let conn = self.slots.iter().find_map(Slot::open)?;
        if self.reachable() && self.slots[index].connecting.try_lock().is_ok() {
            let (host, connector, gauge) =
                (self.clone(), connector.clone(), cluster_in_flight.clone());
            tokio::spawn(async move {
                let _ = host.fill(index, &connector, &gauge).await;
            });
        }
        Some(Selected::Ready(conn))
    }

    /// A connection, connecting a slot if none is open.
    pub(crate) async fn connection(
        &self,
        connector: &Connector,
        cluster_in_flight: &Arc<AtomicUsize>,
    ) -> Result<UpstreamConnection, ConnectError> {
        if let Some(conn) = self.slots.iter().find_map(Slot::open) {
            return Ok(conn);
        }
        let index = self.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        self.fill(index, connector, cluster_in_flight).await
    }

    /// Connects every empty slot (ahead of time, and by the maintenance task).
    pub(crate) async fn fill_all(
        &self,
        connector: &Connector,
        cluster_in_flight: &Arc<AtomicUsize>,
    ) {
        for index in 0..self.slots.len() {
            if self.slots[index].open().is_none() && self.reachable() {
                let _ = self.fill(index, connector, cluster_in_flight).await;
            }
        }
    }

    async fn fill(
        &self,
        index: usize,
        connector: &Connector,
        cluster_in_flight: &Arc<AtomicUsize>,
    ) -> Result<UpstreamConnection, ConnectError> {
        let slot = &self.slots[index];
        let _guard = slot.connecting.lock().await;
        if let Some(conn) = slot.open() {
            return Ok(conn); // someone else connected while we waited
        }
        if !self.reachable() {
            return Err(ConnectError::BackingOff);
        }
        let mut options = connector.options.clone();
        options.in_flight_gauges = vec![self.in_flight.clone(), cluster_in_flight.clone()];
        options.host_tag = self.tag;
        options.unknown_response_counter = Some(self.unknown_responses.clone());
        options.open_connections = Some(self.breakers.connections.clone());
        let live = self.slots.iter().any(|s| s.open().is_some());
        let start = async |stream| {
            let protocol = connector.protocol.clone();
            Ok(UpstreamConnection::start(
                stream, self.addr, protocol, options,
            ))
        };
        match self.open(connector.connect_timeout, live, start).await {
            Ok(conn) => {
                slot.replace(Some(conn.clone()));
                Ok(conn)
            }
            Err(OpenError::Overflow) => Err(ConnectError::Overflow),
            Err(OpenError::Failed(_)) => Err(ConnectError::Failed),
        }
    }

    /// Closes every pooled connection (a message pool's busy ones when their exchange
    /// ends).
    pub(crate) fn close_all(&self) {
        for slot in &self.slots {
            if let Some(conn) = slot.replace(None) {
                conn.close();
            }
        }
        if let Some(pool) = &self.message_pool {
            pool.close_idle();
        }
    }
}

impl LbHost for Host {
    fn weight(&self) -> u32 {
        if self.removed() {
            return 0;
        }
        self.health
            .effective_weight(&self.cluster_health, self.weight)
    }
    fn healthy(&self) -> bool {
        self.available()
    }
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

// === impl Slot ===

impl Slot {
    fn open(&self) -> Option<UpstreamConnection> {
        self.conn.lock().as_ref().filter(|c| c.is_open()).cloned()
    }

    /// Puts `conn` in the slot (`None`: empties it) and returns what it held.
    fn replace(&self, conn: Option<UpstreamConnection>) -> Option<UpstreamConnection> {
        let mut held = self.conn.lock();
        let identity = conn.as_ref().map_or(0, UpstreamConnection::identity);
        self.current.store(identity, Ordering::Relaxed);
        std::mem::replace(&mut *held, conn)
    }
}

/// One request of a message cluster, counted in flight on its host and cluster until
/// dropped. Its outcome is counted separately, once, by [`crate::Cluster::record`].
pub struct RequestGuard {
    host: Arc<Host>,
    cluster_in_flight: Arc<AtomicUsize>,
}

impl RequestGuard {
    pub(crate) fn new(host: Arc<Host>, cluster_in_flight: Arc<AtomicUsize>) -> Self {
        host.in_flight.fetch_add(1, Ordering::Relaxed);
        cluster_in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard {
            host,
            cluster_in_flight,
        }
    }

    /// The host the request went to.
    pub fn host(&self) -> &Arc<Host> {
        &self.host
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.host.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.cluster_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request admitted by its cluster and waiting for a connection: it counts against
/// `max_requests` from admission, not only once it is written upstream.
pub(crate) struct Admission(Arc<AtomicUsize>);

impl Admission {
    pub(crate) fn new(cluster_in_flight: &Arc<AtomicUsize>) -> Self {
        cluster_in_flight.fetch_add(1, Ordering::Relaxed);
        Admission(cluster_in_flight.clone())
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback address nothing listens on (bound, then closed).
    fn refused_addr() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    async fn plain(stream: UpstreamIo) -> Result<UpstreamIo, String> {
        Ok(stream)
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn shared(breakers: Arc<Breakers>) -> ClusterShared {
        ClusterShared {
            name: "c".into(),
            health: Arc::new(ClusterHealth::new(1, None, None)),
            breakers,
            tls: None,
        }
    }

    fn test_host(addr: SocketAddr) -> Host {
        let breakers = Arc::new(Breakers::new(Default::default()));
        Host::new(&shared(breakers), 0, addr, 1, 1, false, false)
    }

    /// The one connect path's backoff rule, for every pool mode: a failure backs the
    /// host off unless the pool holds live connections to it; a success resets it.
    #[tokio::test]
    async fn open_feeds_the_backoff_once_per_failed_host() {
        let host = test_host(refused_addr());
        let error = host
            .open(TIMEOUT, true, plain)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("connect to 127.0.0.1:"), "{error}");
        assert!(host.available(), "a live host must not back off");
        assert_eq!(host.counters().2, 0);

        host.open(TIMEOUT, false, plain).await.unwrap_err();
        assert!(!host.available(), "a host with no connection backs off");
        assert_eq!(host.counters().2, 1);

        // A failed handshake is a failed connect too; a good one resets the backoff.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = test_host(listener.local_addr().unwrap());
        let refuse = async |_: UpstreamIo| Err::<(), _>("handshake refused".to_string());
        let error = up.open(TIMEOUT, false, refuse).await.unwrap_err();
        assert_eq!(error, OpenError::Failed("handshake refused".into()));
        assert_eq!(up.counters().2, 1);
        up.open(TIMEOUT, false, plain).await.unwrap();
        assert_eq!(up.counters().2, 0);
        assert!(up.available());
        assert_eq!(
            up.breakers().snapshot().connections,
            1,
            "failed attempts give their place back; the open one keeps it"
        );
    }

    /// `max_connections` is reserved before the connect: past it nothing is
    /// attempted, and the host does not back off (it is not the host's fault).
    #[tokio::test]
    async fn open_past_max_connections_attempts_nothing() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let breakers = Arc::new(Breakers::new(crate::CircuitBreakers {
            max_connections: 1,
            ..Default::default()
        }));
        let host = Host::new(
            &shared(breakers.clone()),
            0,
            listener.local_addr().unwrap(),
            1,
            1,
            false,
            false,
        );
        let _first = host.open(TIMEOUT, false, plain).await.unwrap();
        assert_eq!(
            host.open(TIMEOUT, false, plain).await.unwrap_err(),
            OpenError::Overflow
        );
        assert!(host.available());
        assert_eq!(breakers.snapshot().overflows[0], 1);
    }
}
