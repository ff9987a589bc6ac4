//! A multiplexed client connection to one upstream host.
//!
//! The connection owns its own request-id space: each request forwarded over it gets a
//! fresh id (wrapping at the protocol's id width and skipping ids still in flight), is
//! encoded straight into the connection's write buffer, and is recorded in the in-flight
//! map with its caller's [`Inbox`] and deadline. The reader task matches responses by
//! id; one timer per connection expires overdue requests; if the connection dies, every
//! request in flight fails at once.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use strait_codec_framework::{
    CodecError, DecodeError, Frame, FrameKind, Limits, Protocol, ProxyFailure, RequestId,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::id_hash::IdMap;
use crate::inbox::{Completion, Inbox};

/// Why a request could not be sent upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// The connection is closed or going away.
    #[error("upstream connection closed")]
    Closed,
    /// The write buffer is over its bound: the upstream does not keep up.
    #[error("upstream write buffer full")]
    Backlogged,
    /// The request could not be encoded.
    #[error("encoding request: {0}")]
    Encode(CodecError),
    /// Every id of the connection's id space is in flight.
    #[error("request id space exhausted")]
    IdsExhausted,
}

impl UpstreamError {
    /// The proxy failure a caller is answered with.
    pub fn failure(&self) -> ProxyFailure {
        match self {
            UpstreamError::Closed => ProxyFailure::UpstreamReset,
            UpstreamError::Backlogged | UpstreamError::IdsExhausted => ProxyFailure::Overflow,
            UpstreamError::Encode(_) => ProxyFailure::CodecError,
        }
    }
}

/// Settings of an upstream connection.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Codec limits for responses.
    pub limits: Limits,
    /// Send the protocol's heartbeat after this much idle time (`None`: never).
    pub heartbeat_interval: Option<Duration>,
    /// Close the connection after this many heartbeats in a row went unanswered.
    pub heartbeat_max_failures: u32,
    /// Bytes of encoded requests buffered for the socket before sends fail.
    pub max_write_buffer: usize,
    /// Counters raised while a request is in flight on this connection and lowered when
    /// it completes (per host, per cluster: they drive least-request and overflow).
    pub in_flight_gauges: Vec<Arc<AtomicUsize>>,
    /// Counts requests this connection failed (timeouts, resets).
    pub failure_counter: Option<Arc<AtomicU64>>,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            limits: Limits::default(),
            heartbeat_interval: None,
            heartbeat_max_failures: 3,
            max_write_buffer: 16 * 1024 * 1024,
            in_flight_gauges: Vec::new(),
            failure_counter: None,
        }
    }
}

/// Who is waiting for an in-flight request.
enum Waiter {
    /// A downstream caller.
    Caller {
        inbox: Arc<Inbox>,
        down_id: RequestId,
        request: Box<dyn Frame>,
    },
    /// The connection's own keepalive probe.
    Probe,
}

struct Pending {
    waiter: Waiter,
    deadline: Instant,
}

/// Everything the senders, the reader, the writer and the timer share; one short lock.
struct State {
    in_flight: IdMap<Pending>,
    /// Deadlines in expiry order; entries whose request already completed are skipped.
    deadlines: BinaryHeap<Reverse<(Instant, RequestId)>>,
    /// The deadline the timer sleeps until, if any.
    armed: Option<Instant>,
    next_id: RequestId,
    wbuf: BytesMut,
}

struct Shared {
    protocol: Arc<dyn Protocol>,
    peer: SocketAddr,
    options: UpstreamOptions,
    state: Mutex<State>,
    open: AtomicBool,
    writer: Notify,
    timer: Notify,
    close: Notify,
    /// Milliseconds since `epoch` of the last bytes read or written; drives keepalive.
    last_activity: AtomicU64,
    epoch: Instant,
    probe_acked: AtomicBool,
    unknown_responses: AtomicU64,
}

/// A handle to one multiplexed upstream connection. Cloning is cheap; all clones share
/// the connection. It lives until the peer closes it, an I/O or decode error, failed
/// keepalives, or [`UpstreamConnection::close`].
#[derive(Clone)]
pub struct UpstreamConnection {
    shared: Arc<Shared>,
}

// === impl UpstreamConnection ===

impl UpstreamConnection {
    /// Connects to `peer` and starts the connection's reader, writer, timer and keepalive.
    pub async fn connect(
        peer: SocketAddr,
        protocol: Arc<dyn Protocol>,
        options: UpstreamOptions,
        connect_timeout: Duration,
    ) -> std::io::Result<Self> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(peer))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"))??;
        stream.set_nodelay(true)?;
        Ok(Self::start(stream, peer, protocol, options))
    }

    /// Runs the connection over an already connected stream.
    pub fn start(
        stream: TcpStream,
        peer: SocketAddr,
        protocol: Arc<dyn Protocol>,
        options: UpstreamOptions,
    ) -> Self {
        let shared = Arc::new(Shared {
            protocol,
            peer,
            options,
            state: Mutex::new(State {
                in_flight: IdMap::default(),
                deadlines: BinaryHeap::new(),
                armed: None,
                next_id: 0,
                wbuf: BytesMut::with_capacity(64 * 1024),
            }),
            open: AtomicBool::new(true),
            writer: Notify::new(),
            timer: Notify::new(),
            close: Notify::new(),
            last_activity: AtomicU64::new(0),
            epoch: Instant::now(),
            probe_acked: AtomicBool::new(false),
            unknown_responses: AtomicU64::new(0),
        });
        let (rd, wr) = stream.into_split();
        tokio::spawn(run(shared.clone(), rd, wr));
        UpstreamConnection { shared }
    }

    /// The address of the upstream host.
    pub fn peer(&self) -> SocketAddr {
        self.shared.peer
    }

    /// Whether new requests may be sent on this connection.
    pub fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Requests currently awaiting a response.
    pub fn in_flight(&self) -> usize {
        self.shared.state.lock().in_flight.len()
    }

    /// Responses received for ids that were no longer pending (late or unknown).
    pub fn unknown_responses(&self) -> u64 {
        self.shared.unknown_responses.load(Ordering::Relaxed)
    }

    /// Closes the connection; requests in flight fail with an upstream reset.
    pub fn close(&self) {
        self.shared.open.store(false, Ordering::Release);
        self.shared.close.notify_one();
    }

    /// Sends `request` with a fresh upstream id. A two-way request's completion (the
    /// response, or its failure at `deadline`) goes to `inbox` tagged with the request's
    /// own id, which is left unchanged on the frame. A oneway request is only written.
    /// On error the request is handed back, unsent.
    pub fn send(
        &self,
        mut request: Box<dyn Frame>,
        inbox: &Arc<Inbox>,
        deadline: Instant,
    ) -> Result<(), (Box<dyn Frame>, UpstreamError)> {
        let down_id = request.request_id();
        let two_way = request.kind() != FrameKind::Oneway;
        let shared = &*self.shared;
        let mut state = shared.state.lock();
        if !self.is_open() {
            return Err((request, UpstreamError::Closed));
        }
        if state.wbuf.len() > shared.options.max_write_buffer {
            return Err((request, UpstreamError::Backlogged));
        }
        let id = match next_free_id(shared, &mut state) {
            Some(id) => id,
            None => return Err((request, UpstreamError::IdsExhausted)),
        };
        let was_empty = state.wbuf.is_empty();
        let mark = state.wbuf.len();
        request.set_request_id(id);
        let encoded = request.encode(&mut state.wbuf);
        request.set_request_id(down_id);
        if let Err(e) = encoded {
            state.wbuf.truncate(mark);
            return Err((request, UpstreamError::Encode(e)));
        }
        if two_way {
            let waiter = Waiter::Caller {
                inbox: inbox.clone(),
                down_id,
                request,
            };
            insert(shared, &mut state, id, waiter, deadline);
        }
        drop(state);
        if was_empty {
            shared.writer.notify_one();
        }
        Ok(())
    }
}

/// The next id in the protocol's id space that is not in flight. The counter wraps
/// explicitly at the id width (Bolt: `u32::MAX` → 0).
fn next_free_id(shared: &Shared, state: &mut State) -> Option<RequestId> {
    let width = shared.protocol.id_width();
    for _ in 0..=state.in_flight.len() {
        let id = width.next(state.next_id);
        state.next_id = id;
        if !state.in_flight.contains_key(&id) {
            return Some(id);
        }
    }
    None
}

fn insert(shared: &Shared, state: &mut State, id: RequestId, waiter: Waiter, deadline: Instant) {
    if matches!(waiter, Waiter::Caller { .. }) {
        for gauge in &shared.options.in_flight_gauges {
            gauge.fetch_add(1, Ordering::Relaxed);
        }
    }
    state.in_flight.insert(id, Pending { waiter, deadline });
    state.deadlines.push(Reverse((deadline, id)));
    // Wake the timer only when this deadline is the new earliest one: with uniform
    // route timeouts that is almost never, so the timer costs nothing per request.
    if state.armed.is_none_or(|armed| deadline < armed) {
        state.armed = Some(deadline);
        shared.timer.notify_one();
    }
}

/// Removes `id` from the in-flight map, lowering the gauges for a caller.
fn remove(shared: &Shared, state: &mut State, id: RequestId) -> Option<Pending> {
    let pending = state.in_flight.remove(&id)?;
    if matches!(pending.waiter, Waiter::Caller { .. }) {
        for gauge in &shared.options.in_flight_gauges {
            gauge.fetch_sub(1, Ordering::Relaxed);
        }
    }
    Some(pending)
}

fn fail(shared: &Shared, pending: Pending, failure: ProxyFailure) {
    if let Waiter::Caller {
        inbox,
        down_id,
        request,
    } = pending.waiter
    {
        if let Some(counter) = &shared.options.failure_counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        inbox.push(Completion::Failed {
            down_id,
            request,
            failure,
        });
    }
}

fn touch(shared: &Shared) {
    let ms = shared.epoch.elapsed().as_millis() as u64;
    shared.last_activity.store(ms, Ordering::Relaxed);
}

async fn run(shared: Arc<Shared>, rd: OwnedReadHalf, wr: OwnedWriteHalf) {
    let reason = tokio::select! {
        r = read_loop(&shared, rd) => r,
        r = write_loop(&shared, wr) => r,
        r = timer_loop(&shared) => r,
        r = keepalive_loop(&shared) => r,
        _ = shared.close.notified() => "closed by the proxy".to_string(),
    };
    shared.open.store(false, Ordering::Release);
    let pending: Vec<Pending> = {
        let mut state = shared.state.lock();
        let ids: Vec<RequestId> = state.in_flight.keys().copied().collect();
        state.deadlines.clear();
        ids.into_iter().filter_map(|id| remove(&shared, &mut state, id)).collect()
    };
    tracing::debug!(peer = %shared.peer, %reason, failed = pending.len(), "upstream connection ended");
    for p in pending {
        fail(&shared, p, ProxyFailure::UpstreamReset);
    }
}

async fn read_loop(shared: &Shared, mut rd: OwnedReadHalf) -> String {
    let mut codec = shared.protocol.new_codec(shared.options.limits);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        buf.reserve(32 * 1024);
        match rd.read_buf(&mut buf).await {
            Ok(0) => return "upstream closed the connection".into(),
            Ok(_) => {}
            Err(e) => return format!("read error: {e}"),
        }
        touch(shared);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => dispatch(shared, frame),
                Ok(None) => break,
                Err(DecodeError::Rejected { error, .. }) => {
                    tracing::warn!(peer = %shared.peer, %error, "dropping malformed upstream frame");
                }
                Err(DecodeError::Fatal(error)) => return format!("decode error: {error}"),
            }
        }
    }
}

fn dispatch(shared: &Shared, mut frame: Box<dyn Frame>) {
    match frame.kind() {
        FrameKind::Response | FrameKind::HeartbeatAck => {
            let pending = remove(shared, &mut shared.state.lock(), frame.request_id());
            match pending.map(|p| p.waiter) {
                Some(Waiter::Caller {
                    inbox,
                    down_id,
                    request,
                }) => {
                    frame.set_request_id(down_id);
                    inbox.push(Completion::Response {
                        down_id,
                        response: frame,
                        request,
                    });
                }
                Some(Waiter::Probe) => {
                    shared.probe_acked.store(true, Ordering::Release);
                }
                None => {
                    // Late (timed out) or unknown: dropped and counted (P5).
                    shared.unknown_responses.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(id = frame.request_id(), "response for an id not in flight");
                }
            }
        }
        FrameKind::Heartbeat => {
            // The upstream probes us: answer it like any peer would.
            if let Some(reply) = shared.protocol.heartbeat_reply(&*frame) {
                let mut state = shared.state.lock();
                let was_empty = state.wbuf.is_empty();
                if reply.encode(&mut state.wbuf).is_ok() && was_empty {
                    shared.writer.notify_one();
                }
            }
        }
        FrameKind::GoAway => {
            // No new requests; those in flight may still be answered.
            shared.open.store(false, Ordering::Release);
        }
        FrameKind::Request | FrameKind::Oneway => {
            tracing::debug!("ignoring a request sent by an upstream");
        }
    }
}

async fn write_loop(shared: &Shared, mut wr: OwnedWriteHalf) -> String {
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        {
            let mut state = shared.state.lock();
            if !state.wbuf.is_empty() {
                // Swap buffers: senders keep encoding into the spare one while this
                // batch is written, and neither buffer is reallocated.
                std::mem::swap(&mut state.wbuf, &mut out);
            }
        }
        if out.is_empty() {
            shared.writer.notified().await;
            continue;
        }
        if let Err(e) = wr.write_all(&out).await {
            return format!("write error: {e}");
        }
        out.clear();
        touch(shared);
    }
}

async fn timer_loop(shared: &Shared) -> String {
    loop {
        let armed = shared.state.lock().armed;
        match armed {
            None => shared.timer.notified().await,
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => expire(shared, Instant::now()),
                    _ = shared.timer.notified() => {}
                }
            }
        }
    }
}

/// Fails every request whose deadline passed and re-arms the timer.
fn expire(shared: &Shared, now: Instant) {
    let mut expired = Vec::new();
    {
        let mut state = shared.state.lock();
        while let Some(Reverse((deadline, id))) = state.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            state.deadlines.pop();
            // The id may have completed, or been reused by a later request.
            if state.in_flight.get(&id).is_some_and(|p| p.deadline == deadline) {
                expired.extend(remove(shared, &mut state, id));
            }
        }
        state.armed = state.deadlines.peek().map(|Reverse((d, _))| *d);
    }
    for pending in expired {
        fail(shared, pending, ProxyFailure::Timeout);
    }
}

async fn keepalive_loop(shared: &Shared) -> String {
    let Some(interval) = shared.options.heartbeat_interval else {
        return std::future::pending().await;
    };
    let mut failures = 0u32;
    loop {
        tokio::time::sleep(interval).await;
        let idle_ms = (shared.epoch.elapsed().as_millis() as u64)
            .saturating_sub(shared.last_activity.load(Ordering::Relaxed));
        if idle_ms < interval.as_millis() as u64 {
            continue;
        }
        if !send_probe(shared, interval) {
            return std::future::pending().await; // the protocol has no keepalive
        }
        tokio::time::sleep(interval).await;
        if shared.probe_acked.swap(false, Ordering::AcqRel) {
            failures = 0;
        } else {
            failures += 1;
            if failures >= shared.options.heartbeat_max_failures.max(1) {
                return format!("{failures} heartbeats unanswered");
            }
        }
    }
}

/// Queues the protocol's heartbeat; false if the protocol has none.
fn send_probe(shared: &Shared, timeout: Duration) -> bool {
    let mut state = shared.state.lock();
    let Some(id) = next_free_id(shared, &mut state) else {
        return true; // every id busy: the connection is anything but idle
    };
    let Some(probe) = shared.protocol.heartbeat_request(id) else {
        return false;
    };
    let was_empty = state.wbuf.is_empty();
    if probe.encode(&mut state.wbuf).is_ok() {
        shared.probe_acked.store(false, Ordering::Release);
        // The ack is matched like any response; an unanswered probe expires quietly.
        insert(shared, &mut state, id, Waiter::Probe, Instant::now() + timeout);
        drop(state);
        if was_empty {
            shared.writer.notify_one();
        }
    }
    true
}
