//! The connection pools of message clusters (`http1`, `http2`): the one-request-at-a-time
//! and HTTP/2-streams modes of a cluster's pool, beside the multiplexed host slots of
//! framed clusters (`host.rs`).
//!
//! The cluster picks the host, admits the request (it counts in flight from the pick,
//! a connect in progress included), keeps the host's connect backoff and counts its
//! outcome, exactly as for framed protocols; this module only owns the connections:
//!
//! - `http1` ([`PoolMode::PingPong`]): one exchange per connection at a time. Idle
//!   keep-alive connections wait in a per-host stack; a connection goes back on it when
//!   its response body has been read to the end (the body tells us, see
//!   [`strait_stream::http::BodyObserver`]), and is dropped when the body was aborted.
//!   `max_connections_per_host` caps open connections; past it a request fails with
//!   overflow instead of queueing.
//! - `http2` ([`PoolMode::Http2Streams`]): streams over a few shared connections. A
//!   request takes a connection with stream capacity left under the server's
//!   `SETTINGS_MAX_CONCURRENT_STREAMS`, opens another one while under
//!   `max_connections_per_host`, and otherwise queues on the least busy connection (the
//!   HTTP/2 client waits for a stream slot).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::breakers::Breaker;
use crate::cluster::Cluster;
use crate::host::{Host, OpenError, RequestGuard};
use http::{Request, Response, Version};
use parking_lot::Mutex;
use strait_codec_framework::{PoolMode, ProxyFailure};
use strait_stream::RequestContext;
use strait_stream::http::{
    Body, BodyEnd, BodyObserver, ClientError, ClientOptions, Http1Connection, Http2Connection,
};

/// Which HTTP version a cluster speaks to its hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpstreamVersion {
    /// HTTP/1.1 keep-alive.
    Http1,
    /// HTTP/2 with prior knowledge (h2c, or h2 once TLS exists).
    Http2,
}

impl UpstreamVersion {
    /// The version to prepare requests for.
    fn http(self) -> Version {
        match self {
            UpstreamVersion::Http1 => Version::HTTP_11,
            UpstreamVersion::Http2 => Version::HTTP_2,
        }
    }

    /// The pool for a cluster whose protocol shares connections this way (`None`:
    /// the multiplexed host slots).
    fn from_pool_mode(mode: PoolMode) -> Option<Self> {
        match mode {
            PoolMode::PingPong => Some(UpstreamVersion::Http1),
            PoolMode::Http2Streams => Some(UpstreamVersion::Http2),
            PoolMode::Multiplex => None,
        }
    }
}

/// How a message cluster's connections are made and shared; each host keeps its own
/// connections in a [`HostPool`].
pub(crate) struct MessagePool {
    version: UpstreamVersion,
    connect_timeout: Duration,
    max_connections: usize,
    client: ClientOptions,
}

/// A response head from an upstream, with the request still counted in flight.
pub struct Exchange {
    /// The response; its body streams from the upstream connection.
    pub response: Response<Body>,
    /// Counts the request in flight on its host and cluster until dropped.
    pub guard: RequestGuard,
}

/// Why no response came back.
#[derive(Debug)]
pub struct SendFailure {
    /// The failure, to be answered in the request's protocol.
    pub failure: ProxyFailure,
    /// What went wrong, for the answer's text (may be empty).
    pub detail: String,
}

impl MessagePool {
    /// The pool of a cluster whose protocol shares connections by `mode`; `None` for
    /// [`PoolMode::Multiplex`], whose connections are the hosts' own slots.
    pub(crate) fn new(
        mode: PoolMode,
        connect_timeout: Duration,
        max_connections: usize,
        client: ClientOptions,
    ) -> Option<Self> {
        let version = UpstreamVersion::from_pool_mode(mode)?;
        Some(MessagePool {
            version,
            connect_timeout,
            max_connections: max_connections.max(1),
            client,
        })
    }

    /// The HTTP version requests must be prepared for.
    pub(crate) fn version(&self) -> Version {
        self.version.http()
    }

    /// Sends `request` to a host the cluster picks and waits for the response head. A
    /// request that certainly never left (connect failure, a connection that closed
    /// under it) is tried on another connection or host, up to once per host plus one.
    /// `ctx` learns each attempt's host and when the request was handed to it.
    /// `pool` is the cluster's: `None` for a framed cluster, which speaks no HTTP.
    pub(crate) async fn send(
        pool: Option<&MessagePool>,
        cluster: &Cluster,
        request: Box<Request<Body>>,
        ctx: &mut RequestContext,
        hash: Option<u64>,
        deadline: Instant,
    ) -> Result<Exchange, SendFailure> {
        let Some(this) = pool else {
            return Err(SendFailure {
                failure: ProxyFailure::NoHealthyUpstream,
                detail: "the cluster does not speak HTTP".into(),
            });
        };
        let mut request = request;
        let mut last = SendFailure {
            failure: ProxyFailure::NoHealthyUpstream,
            detail: String::new(),
        };
        for attempt in 1..=cluster.host_count() + 1 {
            // After a failed attempt, a hashing balancer would pick the same host:
            // vary the hash so the retry can land elsewhere; and a request tried again
            // prefers a host it has not tried.
            let hash = crate::cluster::vary(hash, attempt as u64 - 1);
            let (index, host) = match cluster.pick(hash, ctx.tried) {
                Ok(picked) => picked,
                // Every host is now backing off after the attempts above: the request
                // failed for the reason those attempts gave (as on the framed path).
                Err(_) if attempt > 1 => return Err(last),
                Err(failure) => {
                    return Err(SendFailure {
                        failure,
                        detail: String::new(),
                    });
                }
            };
            ctx.tried |= crate::cluster::host_bit(index);
            let guard = cluster.begin_request(&host);
            let Some(pool) = host.message_pool() else {
                return Err(SendFailure {
                    failure: ProxyFailure::NoHealthyUpstream,
                    detail: "the cluster does not speak HTTP".into(),
                });
            };
            ctx.attempt += u32::from(attempt > 1);
            let sent = Sent {
                ctx: &mut *ctx,
                host: index as u32,
            };
            let result = match this.version {
                UpstreamVersion::Http1 => pool.send_h1(this, &host, request, sent, deadline).await,
                UpstreamVersion::Http2 => pool.send_h2(this, &host, request, sent, deadline).await,
            };
            match result {
                Ok(response) => return Ok(Exchange { response, guard }),
                Err(Attempt::TimedOut) => {
                    return Err(SendFailure {
                        failure: ProxyFailure::Timeout,
                        detail: String::new(),
                    });
                }
                Err(Attempt::Connect(back, detail)) => {
                    // The host's backoff has heard of it (`Host::open`).
                    request = back;
                    last = SendFailure {
                        failure: ProxyFailure::ConnectFailure,
                        detail,
                    };
                }
                Err(Attempt::Overflow(back)) => {
                    request = back;
                    last = SendFailure {
                        failure: ProxyFailure::Overflow,
                        detail: "too many upstream connections".into(),
                    };
                    // Another host may have room.
                }
                Err(Attempt::Breaker(breaker)) => {
                    return Err(SendFailure {
                        failure: ProxyFailure::Overflow,
                        detail: format!("circuit breaker {}", breaker.as_str()),
                    });
                }
                Err(Attempt::Failed(mut error)) => {
                    if let Some(back) = error.take_request() {
                        request = Box::new(back);
                        last = SendFailure {
                            failure: error.failure(),
                            detail: error.to_string(),
                        };
                        continue;
                    }
                    return Err(SendFailure {
                        failure: error.failure(),
                        detail: error.to_string(),
                    });
                }
            }
        }
        Err(last)
    }
}

/// Marks a request as handed to a host's connection, in its context.
struct Sent<'a> {
    ctx: &'a mut RequestContext,
    host: u32,
}

impl Sent<'_> {
    fn mark(self) {
        self.ctx.host = self.host;
        self.ctx.sent = Some(strait_stream::Moment::now().nanos);
    }
}

/// How one attempt failed.
enum Attempt {
    /// No connection could be made; the request comes back untouched.
    Connect(Box<Request<Body>>, String),
    /// The host is at its connection cap; the request comes back untouched.
    Overflow(Box<Request<Body>>),
    /// A circuit breaker of the cluster turned the request away: fail it at once.
    Breaker(Breaker),
    /// The exchange failed (the request may come back if it was not sent).
    Failed(ClientError),
    /// The deadline passed (connecting, or waiting for the response head).
    TimedOut,
}

/// The connections to one host of a message cluster.
pub(crate) struct HostPool {
    me: Weak<HostPool>,
    /// The cluster's count of open connections (its `max_connections` breaker),
    /// lowered here when a connection this pool kept closes.
    connections: Arc<AtomicUsize>,
    /// Set once the host left (or the cluster shut down): connections are not kept.
    closing: AtomicBool,
    /// Idle HTTP/1.1 connections, most recently used last (reused first: warm).
    idle: Mutex<Vec<Arc<H1Slot>>>,
    /// Open HTTP/1.1 connections, idle or busy.
    open_h1: AtomicUsize,
    h2: Mutex<Vec<Http2Connection>>,
    /// Serialises opening HTTP/2 connections, so a burst opens one, not many.
    h2_connecting: tokio::sync::Mutex<()>,
}

/// One HTTP/1.1 connection and its place in the pool. It is the connection's body
/// observer: when a response body ends, the slot puts itself back on the idle stack.
struct H1Slot {
    me: Weak<H1Slot>,
    pool: Weak<HostPool>,
    conn: Mutex<Option<Http1Connection>>,
}

impl BodyObserver for H1Slot {
    fn body_finished(&self, end: BodyEnd) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let reusable = end == BodyEnd::Complete
            && !pool.closing.load(Ordering::Acquire)
            && self.conn.lock().as_ref().is_some_and(|c| !c.is_closed());
        match (reusable, self.me.upgrade()) {
            (true, Some(me)) => pool.idle.lock().push(me),
            _ => pool.retire(self),
        }
    }
}

impl HostPool {
    /// An empty pool counting its connections in the cluster's `connections`.
    pub(crate) fn new(connections: Arc<AtomicUsize>) -> Arc<HostPool> {
        Arc::new_cyclic(|me| HostPool {
            me: me.clone(),
            connections,
            closing: AtomicBool::new(false),
            idle: Mutex::new(Vec::new()),
            open_h1: AtomicUsize::new(0),
            h2: Mutex::new(Vec::new()),
            h2_connecting: tokio::sync::Mutex::new(()),
        })
    }

    /// Open connections (idle or busy), for the admin view.
    pub(crate) fn open_connections(&self) -> usize {
        let h2 = self.h2.lock().iter().filter(|c| !c.is_closed()).count();
        self.open_h1.load(Ordering::Relaxed) + h2
    }

    /// Drops every idle connection (shutdown, or the host left its cluster); busy ones
    /// finish their exchange and are dropped then.
    pub(crate) fn close_idle(&self) {
        self.closing.store(true, Ordering::Release);
        for slot in self.idle.lock().drain(..) {
            self.retire(&slot);
        }
        let closed = self.h2.lock().drain(..).count();
        self.connections.fetch_sub(closed, Ordering::AcqRel);
    }

    /// Keeps connections again (the host is back in its cluster).
    pub(crate) fn reopen(&self) {
        self.closing.store(false, Ordering::Release);
    }

    /// Forgets a connection that will not be reused.
    fn retire(&self, slot: &H1Slot) {
        if slot.conn.lock().take().is_some() {
            self.closed_h1();
        }
    }

    /// Uncounts an HTTP/1.1 connection that closed.
    fn closed_h1(&self) {
        self.open_h1.fetch_sub(1, Ordering::Relaxed);
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// An idle connection that can take a request now, if any.
    fn checkout_h1(&self) -> Option<(Arc<H1Slot>, Http1Connection)> {
        loop {
            let slot = self.idle.lock().pop()?;
            let conn = slot.conn.lock().take();
            match conn {
                Some(conn) if !conn.is_closed() => return Some((slot, conn)),
                Some(_) => self.closed_h1(),
                None => {}
            }
        }
    }

    async fn send_h1(
        &self,
        pool: &MessagePool,
        host: &Host,
        request: Box<Request<Body>>,
        sent: Sent<'_>,
        deadline: Instant,
    ) -> Result<Response<Body>, Attempt> {
        let (slot, mut conn) = match self.checkout_h1() {
            Some(found) => found,
            None => {
                if self.open_h1.fetch_add(1, Ordering::Relaxed) >= pool.max_connections {
                    self.open_h1.fetch_sub(1, Ordering::Relaxed);
                    return Err(Attempt::Overflow(request));
                }
                let Some(_pending) = host.breakers().pending() else {
                    self.open_h1.fetch_sub(1, Ordering::Relaxed);
                    return Err(Attempt::Breaker(Breaker::PendingRequests));
                };
                // Boxed: connecting is rare, and its state would otherwise size (and be
                // copied with) every request's future.
                let opening = tokio::time::timeout_at(deadline, self.open_h1(pool, host));
                match Box::pin(opening).await {
                    Ok(Ok(found)) => found,
                    Err(_elapsed) => {
                        self.open_h1.fetch_sub(1, Ordering::Relaxed);
                        return Err(Attempt::TimedOut);
                    }
                    Ok(Err(error)) => {
                        // Never opened: `Host::open` gave its breaker place back.
                        self.open_h1.fetch_sub(1, Ordering::Relaxed);
                        return Err(match error {
                            OpenError::Overflow => Attempt::Breaker(Breaker::Connections),
                            OpenError::Failed(detail) => Attempt::Connect(request, detail),
                        });
                    }
                }
            }
        };
        // Counted in open_h1 until the slot retires it (an aborted body), or until
        // `counted` uncounts it: the exchange failed, or was abandoned (a timeout
        // drops this future, and the connection with it).
        let counted = Counted {
            pool: self,
            armed: true,
        };
        sent.mark();
        match conn.send_by(*request, Some(deadline)).await {
            Ok(response) => {
                counted.keep();
                // Back in its slot before anyone can read the body, so the observer
                // finds it there when the body ends.
                *slot.conn.lock() = Some(conn);
                if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                    self.retire(&slot);
                }
                Ok(response)
            }
            Err(ClientError::TimedOut) => Err(Attempt::TimedOut),
            Err(error) => Err(Attempt::Failed(error)),
        }
    }

    async fn open_h1(
        &self,
        pool: &MessagePool,
        host: &Host,
    ) -> Result<(Arc<H1Slot>, Http1Connection), OpenError> {
        let handshake = async |stream| {
            let conn = Http1Connection::handshake(stream, &pool.client).await;
            conn.map_err(|e| e.to_string())
        };
        // This connection is counted in `open_h1` already: others make the host live.
        let live = self.open_h1.load(Ordering::Relaxed) > 1;
        let conn = host.open(pool.connect_timeout, live, handshake).await?;
        let slot = Arc::new_cyclic(|me| H1Slot {
            me: me.clone(),
            pool: self.me.clone(),
            conn: Mutex::new(None),
        });
        conn.set_observer(slot.clone());
        Ok((slot, conn))
    }

    /// A connection with a free stream, or the least busy one when every connection
    /// is full and no more may be opened. `None` when a new connection is needed.
    fn pick_h2(&self, max_connections: usize) -> Option<Http2Connection> {
        let mut conns = self.h2.lock();
        let before = conns.len();
        conns.retain(|c| !c.is_closed());
        if conns.len() < before {
            self.connections
                .fetch_sub(before - conns.len(), Ordering::AcqRel);
        }
        if let Some(c) = conns.iter().find(|c| c.has_capacity()) {
            return Some(c.clone());
        }
        if conns.len() < max_connections {
            return None;
        }
        conns.iter().min_by_key(|c| c.active_streams()).cloned()
    }

    async fn send_h2(
        &self,
        pool: &MessagePool,
        host: &Host,
        request: Box<Request<Body>>,
        sent: Sent<'_>,
        deadline: Instant,
    ) -> Result<Response<Body>, Attempt> {
        let conn = match self.pick_h2(pool.max_connections) {
            Some(conn) => conn,
            // Boxed: connecting is rare (see `send_h1`).
            None => {
                let Some(_pending) = host.breakers().pending() else {
                    return Err(Attempt::Breaker(Breaker::PendingRequests));
                };
                let connecting = tokio::time::timeout_at(deadline, self.connect_h2(pool, host));
                match Box::pin(connecting).await {
                    Ok(Ok(conn)) => conn,
                    Err(_elapsed) => return Err(Attempt::TimedOut),
                    Ok(Err(OpenError::Overflow)) => {
                        return Err(Attempt::Breaker(Breaker::Connections));
                    }
                    Ok(Err(OpenError::Failed(detail))) => {
                        return Err(Attempt::Connect(request, detail));
                    }
                }
            }
        };
        sent.mark();
        // Boxed: an HTTP/2 exchange's state is several KiB, and inline it would size
        // (and be copied with) the future of every request, HTTP/1.1 ones included.
        match tokio::time::timeout_at(deadline, Box::pin(conn.send(*request))).await {
            Ok(result) => result.map_err(Attempt::Failed),
            Err(_elapsed) => Err(Attempt::TimedOut),
        }
    }

    /// Opens a connection unless another request did so while this one waited.
    async fn connect_h2(
        &self,
        pool: &MessagePool,
        host: &Host,
    ) -> Result<Http2Connection, OpenError> {
        let _connecting = self.h2_connecting.lock().await;
        match self.pick_h2(pool.max_connections) {
            Some(conn) => Ok(conn),
            None => self.open_h2(pool, host).await,
        }
    }

    async fn open_h2(&self, pool: &MessagePool, host: &Host) -> Result<Http2Connection, OpenError> {
        let handshake = async |stream| {
            let conn = Http2Connection::handshake(stream, &pool.client).await;
            conn.map_err(|e| e.to_string())
        };
        let live = self.h2.lock().iter().any(|c| !c.is_closed());
        let conn = host.open(pool.connect_timeout, live, handshake).await?;
        self.h2.lock().push(conn.clone());
        Ok(conn)
    }
}

/// Uncounts an open HTTP/1.1 connection when dropped armed: the exchange on it failed
/// or was abandoned, so the connection is gone.
struct Counted<'a> {
    pool: &'a HostPool,
    armed: bool,
}

impl Counted<'_> {
    /// The connection survived the exchange: keep counting it.
    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.pool.closed_h1();
        }
    }
}
