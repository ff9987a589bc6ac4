//! A multiplexed client connection to one upstream host.
//!
//! The connection owns its own request-id space: each request forwarded over it gets a
//! fresh id (wrapping at the protocol's id width and skipping ids still in flight), is
//! encoded straight into the connection's write buffer, and is recorded in the in-flight
//! map with its caller's [`Inbox`] and deadline. The reader task matches responses by
//! id; one timer per connection expires overdue requests; if the connection dies, every
//! request in flight fails at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use strait_codec_framework::{
    CodecError, DecodeError, Frame, FrameKind, Limits, Protocol, ProxyFailure, RequestId,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::RequestContext;
use crate::id_slab::IdSlab;
use crate::inbox::{Completion, Inbox, RequestToken};
use crate::io::UpstreamIo;

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
    /// The pool's number for the host this connection goes to, reported in every
    /// request's [`RequestContext::host`].
    pub host_tag: u32,
    /// Counts responses whose id was not in flight (late after a timeout, or unknown):
    /// they are dropped, never delivered.
    pub unknown_response_counter: Option<Arc<AtomicU64>>,
    /// Lowered by one when the connection ends: the pool's count of open connections
    /// (raised by whoever opened it), which its `max_connections` bounds.
    pub open_connections: Option<Arc<AtomicUsize>>,
    /// Counts the heartbeats this connection sends and those left unanswered.
    pub heartbeats: Option<Arc<HeartbeatCounters>>,
}

/// Heartbeats sent on idle upstream connections, and those left unanswered.
#[derive(Debug, Default)]
pub struct HeartbeatCounters {
    /// Probes sent.
    pub sent: AtomicU64,
    /// Probes whose answer did not come within the interval.
    pub unanswered: AtomicU64,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            limits: Limits::default(),
            heartbeat_interval: None,
            heartbeat_max_failures: 3,
            max_write_buffer: 16 * 1024 * 1024,
            in_flight_gauges: Vec::new(),
            host_tag: RequestContext::NONE,
            unknown_response_counter: None,
            open_connections: None,
            heartbeats: None,
        }
    }
}

/// A two-way request a downstream connection hands over in a batch
/// ([`UpstreamConnection::send_all`]).
pub struct Outgoing {
    /// The request, with the caller's own id.
    pub request: Box<dyn Frame>,
    /// When it fails as timed out if unanswered.
    pub deadline: Instant,
    /// The downstream connection's token for it.
    pub token: RequestToken,
}

/// A request of a batch the connection did not take: handed back unsent, with why.
pub struct Refused {
    /// The request, unchanged.
    pub request: Box<dyn Frame>,
    /// Its token.
    pub token: RequestToken,
    /// Why it was not sent.
    pub error: UpstreamError,
}

/// Who is waiting for an in-flight request.
enum Waiter {
    /// A downstream caller: its entry in [`Callers`].
    Caller {
        caller: usize,
        down_id: RequestId,
        request: Box<dyn Frame>,
        token: RequestToken,
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
    in_flight: IdSlab<Pending>,
    /// When the timer wakes next: no later than the earliest deadline in flight. It may
    /// belong to a request that already completed; the timer then just re-arms.
    armed: Option<Instant>,
    next_id: RequestId,
    wbuf: BytesMut,
    callers: Callers,
}

/// The downstream connections with requests in flight here: one handle to each
/// one's inbox, with how many requests it waits for. A request keeps its caller's
/// number, not a handle of its own, so a request costs no reference count.
#[derive(Default)]
struct Callers {
    entries: slab::Slab<Caller>,
    /// Entry by the inbox's address (stable while the entry's handle keeps it alive).
    by_inbox: HashMap<usize, usize>,
    /// The last inbox entered and its entry: batches come from one caller at a time.
    last: Option<(usize, usize)>,
}

struct Caller {
    inbox: Arc<Inbox>,
    waiting: usize,
}

impl Callers {
    /// The entry of `inbox`, made (waiting for nothing yet) if it has none.
    fn enter(&mut self, inbox: &Arc<Inbox>) -> usize {
        let address = Arc::as_ptr(inbox) as usize;
        if let Some((last, key)) = self.last
            && last == address
        {
            return key;
        }
        let key = match self.by_inbox.get(&address) {
            Some(&key) => key,
            None => {
                let key = self.entries.insert(Caller {
                    inbox: inbox.clone(),
                    waiting: 0,
                });
                self.by_inbox.insert(address, key);
                key
            }
        };
        self.last = Some((address, key));
        key
    }

    /// `key` now waits for `n` more requests; an entry that waits for none goes.
    fn add(&mut self, key: usize, n: usize) {
        let caller = &mut self.entries[key];
        caller.waiting += n;
        if caller.waiting == 0 {
            self.remove(key);
        }
    }

    /// The inbox of `key`.
    fn inbox(&self, key: usize) -> &Arc<Inbox> {
        &self.entries[key].inbox
    }

    /// One request of `key` ended; the entry goes once it waits for none.
    fn release(&mut self, key: usize) {
        let caller = &mut self.entries[key];
        caller.waiting -= 1;
        if caller.waiting == 0 {
            self.remove(key);
        }
    }

    fn remove(&mut self, key: usize) {
        let caller = self.entries.remove(key);
        self.by_inbox.remove(&(Arc::as_ptr(&caller.inbox) as usize));
        if self.last.is_some_and(|(_, last)| last == key) {
            self.last = None;
        }
    }
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
    /// Runs the connection over an already connected stream.
    pub fn start(
        stream: impl Into<UpstreamIo>,
        peer: SocketAddr,
        protocol: Arc<dyn Protocol>,
        options: UpstreamOptions,
    ) -> Self {
        let shared = Arc::new(Shared::new(protocol, peer, options, 64 * 1024));
        match stream.into() {
            UpstreamIo::Tcp(stream) => {
                let (rd, wr) = stream.into_split();
                tokio::spawn(run(shared.clone(), rd, wr));
            }
            UpstreamIo::Wrapped(stream) => {
                let (rd, wr) = tokio::io::split(stream);
                tokio::spawn(run(shared.clone(), rd, wr));
            }
        }
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

    /// A number naming this connection while any handle to it lives (the address of
    /// what its handles share): a pool compares it with the connection it holds
    /// without cloning a handle.
    pub fn identity(&self) -> usize {
        Arc::as_ptr(&self.shared) as usize
    }

    /// The pool's number for this connection's host ([`UpstreamOptions::host_tag`]).
    pub fn host_tag(&self) -> u32 {
        self.shared.options.host_tag
    }

    /// Takes no new requests, and closes once those in flight have ended (answered or
    /// timed out), or after `limit` at the latest: how a pool lets go of a host that
    /// left its cluster without failing what it already sent there.
    pub fn drain(&self, limit: Duration) {
        self.shared.open.store(false, Ordering::Release);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let until = Instant::now() + limit;
            // Rare (a host leaving), so a poll is simpler than a signal on every end.
            while Instant::now() < until && shared.state.lock().in_flight.len() > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            shared.close.notify_one();
        });
    }

    /// Closes the connection; requests in flight fail with an upstream reset.
    pub fn close(&self) {
        self.shared.open.store(false, Ordering::Release);
        self.shared.close.notify_one();
    }

    /// Sends `request` with a fresh upstream id. A two-way request's completion (the
    /// response, or its failure at `deadline`) goes to `inbox` tagged with the request's
    /// own id, which is left unchanged on the frame, and carries `token` back. A oneway
    /// request is only written. On error the request is handed back, unsent.
    pub fn send(
        &self,
        request: Box<dyn Frame>,
        inbox: &Arc<Inbox>,
        deadline: Instant,
        token: RequestToken,
    ) -> Result<(), (Box<dyn Frame>, UpstreamError)> {
        let two_way = request.kind() != FrameKind::Oneway;
        let shared = &*self.shared;
        if two_way {
            // Counted before it can be answered, so the count never dips below zero.
            self.admit(1);
        }
        let mut state = shared.state.lock();
        let was_empty = state.wbuf.is_empty();
        let caller = two_way.then(|| state.callers.enter(inbox));
        let sent = take(shared, &mut state, request, caller, deadline, token);
        if let Some(caller) = caller {
            state.callers.add(caller, usize::from(sent.is_ok()));
        }
        drop(state);
        match &sent {
            Ok(()) if was_empty => shared.writer.notify_one(),
            Ok(()) => {}
            Err(_) if two_way => settle(shared, 1),
            Err(_) => {}
        }
        sent
    }

    /// Counts `n` requests about to be sent here in flight on the host and cluster
    /// gauges (which admission and least-request read): done when a request is
    /// routed, before it waits in its caller's batch for [`UpstreamConnection::send_all`].
    pub fn admit(&self, n: usize) {
        for gauge in &self.shared.options.in_flight_gauges {
            gauge.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Sends a downstream connection's batch of two-way requests, each already
    /// [admitted](UpstreamConnection::admit), under one lock and with one handle to
    /// `inbox` for them all; each gets a fresh upstream id and its completion goes to
    /// `inbox` as with [`UpstreamConnection::send`]. Those it refuses come back in
    /// `refused`, unsent, in order, and no longer counted in flight.
    pub fn send_all(
        &self,
        batch: &mut Vec<Outgoing>,
        inbox: &Arc<Inbox>,
        refused: &mut Vec<Refused>,
    ) {
        let shared = &*self.shared;
        let before = refused.len();
        let mut state = shared.state.lock();
        let was_empty = state.wbuf.is_empty();
        let caller = state.callers.enter(inbox);
        let mut taken = 0;
        for Outgoing {
            request,
            deadline,
            token,
        } in batch.drain(..)
        {
            match take(shared, &mut state, request, Some(caller), deadline, token) {
                Ok(()) => taken += 1,
                Err((request, error)) => refused.push(Refused {
                    request,
                    token,
                    error,
                }),
            }
        }
        state.callers.add(caller, taken);
        let wake = was_empty && !state.wbuf.is_empty();
        drop(state);
        settle(shared, refused.len() - before);
        if wake {
            shared.writer.notify_one();
        }
    }
}

/// Encodes `request` with a fresh id into the write buffer and, for a two-way one
/// (`caller` is its caller's entry), records it in flight; hands it back if the
/// connection cannot take it.
fn take(
    shared: &Shared,
    state: &mut State,
    mut request: Box<dyn Frame>,
    caller: Option<usize>,
    deadline: Instant,
    token: RequestToken,
) -> Result<(), (Box<dyn Frame>, UpstreamError)> {
    if !shared.open.load(Ordering::Acquire) {
        return Err((request, UpstreamError::Closed));
    }
    if state.wbuf.len() > shared.options.max_write_buffer {
        return Err((request, UpstreamError::Backlogged));
    }
    let Some(id) = next_free_id(shared, state) else {
        return Err((request, UpstreamError::IdsExhausted));
    };
    let down_id = request.request_id();
    let mark = state.wbuf.len();
    request.set_request_id(id);
    let encoded = request.encode(&mut state.wbuf);
    request.set_request_id(down_id);
    if let Err(e) = encoded {
        state.wbuf.truncate(mark);
        return Err((request, UpstreamError::Encode(e)));
    }
    if let Some(caller) = caller {
        let waiter = Waiter::Caller {
            caller,
            down_id,
            request,
            token,
        };
        insert(shared, state, id, waiter, deadline);
    }
    Ok(())
}

// === impl Shared ===

impl Shared {
    /// A fresh connection's state: nothing in flight, a write buffer of `wbuf` bytes.
    fn new(
        protocol: Arc<dyn Protocol>,
        peer: SocketAddr,
        options: UpstreamOptions,
        wbuf: usize,
    ) -> Self {
        Shared {
            protocol,
            peer,
            options,
            state: Mutex::new(State {
                in_flight: IdSlab::new(),
                armed: None,
                next_id: 0,
                wbuf: BytesMut::with_capacity(wbuf),
                callers: Callers::default(),
            }),
            open: AtomicBool::new(true),
            writer: Notify::new(),
            timer: Notify::new(),
            close: Notify::new(),
            last_activity: AtomicU64::new(0),
            epoch: Instant::now(),
            probe_acked: AtomicBool::new(false),
        }
    }
}

/// The next id in the protocol's id space that is not in flight. The counter wraps
/// explicitly at the id width (Bolt: `u32::MAX` → 0).
fn next_free_id(shared: &Shared, state: &mut State) -> Option<RequestId> {
    let width = shared.protocol.id_width();
    state.in_flight.reserve_one();
    // Consecutive ids cover every slot, and at most half are taken: this finds a free
    // one within `capacity` steps, almost always the first.
    for _ in 0..state.in_flight.capacity() {
        let id = width.next(state.next_id);
        state.next_id = id;
        if state.in_flight.is_free(id) {
            return Some(id);
        }
    }
    None
}

/// Records a request in flight (its caller counted it on the gauges already).
fn insert(shared: &Shared, state: &mut State, id: RequestId, waiter: Waiter, deadline: Instant) {
    state.in_flight.insert(id, Pending { waiter, deadline });
    // Wake the timer only when this deadline is earlier than the one it sleeps until:
    // with uniform route timeouts that is almost never, so the timer costs nothing per
    // request, and nothing is kept per request beyond its in-flight entry.
    if state.armed.is_none_or(|armed| deadline < armed) {
        state.armed = Some(deadline);
        shared.timer.notify_one();
    }
}

/// Removes `id` from the in-flight map; the caller settles the counters for the whole
/// batch with [`settle`].
fn remove(state: &mut State, id: RequestId) -> Option<Pending> {
    state.in_flight.remove(id)
}

/// Lowers the in-flight gauges by the `callers` requests a batch completed: one atomic
/// operation per gauge per batch, not per request. (Outcomes are counted where each
/// request ends, by the downstream's handler.)
fn settle(shared: &Shared, callers: usize) {
    if callers == 0 {
        return;
    }
    for gauge in &shared.options.in_flight_gauges {
        gauge.fetch_sub(callers, Ordering::Relaxed);
    }
}

/// The failures of requests taken out of flight, each with its caller's inbox
/// (probes have none), releasing their callers' entries; the caller settles the
/// gauges and pushes them outside the lock.
fn failures(
    state: &mut State,
    pending: impl IntoIterator<Item = Pending>,
    failure: ProxyFailure,
) -> Vec<(Arc<Inbox>, Completion)> {
    let mut failed = Vec::new();
    for pending in pending {
        if let Waiter::Caller {
            caller,
            down_id,
            request,
            token,
        } = pending.waiter
        {
            failed.push((
                state.callers.inbox(caller).clone(),
                Completion::Failed {
                    down_id,
                    request,
                    failure,
                    token,
                },
            ));
            state.callers.release(caller);
        }
    }
    failed
}

fn touch(shared: &Shared) {
    let ms = shared.epoch.elapsed().as_millis() as u64;
    shared.last_activity.store(ms, Ordering::Relaxed);
}

async fn run<R, W>(shared: Arc<Shared>, rd: R, wr: W)
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let reason = tokio::select! {
        r = read_loop(&shared, rd) => r,
        r = write_loop(&shared, wr) => r,
        r = timer_loop(&shared) => r,
        r = keepalive_loop(&shared) => r,
        _ = shared.close.notified() => "closed by the proxy".to_string(),
    };
    shared.open.store(false, Ordering::Release);
    if let Some(open) = &shared.options.open_connections {
        open.fetch_sub(1, Ordering::AcqRel);
    }
    let failed = {
        let mut state = shared.state.lock();
        let ids: Vec<RequestId> = state.in_flight.ids().collect();
        state.armed = None;
        let pending: Vec<Pending> = ids
            .into_iter()
            .filter_map(|id| remove(&mut state, id))
            .collect();
        failures(&mut state, pending, ProxyFailure::UpstreamReset)
    };
    settle(&shared, failed.len());
    tracing::debug!(peer = %shared.peer, %reason, failed = failed.len(), "upstream connection ended");
    for (inbox, completion) in failed {
        inbox.push(completion);
    }
}

async fn read_loop<R: AsyncRead + Unpin>(shared: &Shared, mut rd: R) -> String {
    let mut codec = shared.protocol.new_codec(shared.options.limits);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut frames = Vec::new();
    let mut done = Vec::new();
    let mut runs = Vec::new();
    loop {
        buf.reserve(32 * 1024);
        match rd.read_buf(&mut buf).await {
            Ok(0) => return "upstream closed the connection".into(),
            Ok(_) => {}
            Err(e) => return format!("read error: {e}"),
        }
        touch(shared);
        let fatal = loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break None,
                Err(DecodeError::Rejected { error, .. }) => {
                    tracing::warn!(peer = %shared.peer, %error, "dropping malformed upstream frame");
                }
                Err(DecodeError::Fatal(error)) => break Some(format!("decode error: {error}")),
            }
        };
        dispatch(shared, &mut frames, &mut done, &mut runs);
        deliver(&mut done, &mut runs);
        if let Some(reason) = fatal {
            return reason;
        }
    }
}

/// Matches a read's frames with their requests, under one lock: their completions
/// go to `done`, grouped in `runs` of consecutive completions for one inbox (one
/// handle per run, not per request).
fn dispatch(
    shared: &Shared,
    frames: &mut Vec<Box<dyn Frame>>,
    done: &mut Vec<Completion>,
    runs: &mut Vec<(Arc<Inbox>, usize)>,
) {
    let mut state = shared.state.lock();
    let before = done.len();
    // The caller of the last run: entries are never made during a dispatch, so a
    // number released here is not reused before it ends.
    let mut last_caller = None;
    for mut frame in frames.drain(..) {
        match frame.kind() {
            FrameKind::Response | FrameKind::HeartbeatAck => {
                match remove(&mut state, frame.request_id()).map(|p| p.waiter) {
                    Some(Waiter::Caller {
                        caller,
                        down_id,
                        request,
                        token,
                    }) => {
                        frame.set_request_id(down_id);
                        let response = frame;
                        done.push(Completion::Response {
                            down_id,
                            response,
                            request,
                            token,
                        });
                        match runs.last_mut() {
                            Some((_, n)) if last_caller == Some(caller) => *n += 1,
                            _ => {
                                runs.push((state.callers.inbox(caller).clone(), 1));
                                last_caller = Some(caller);
                            }
                        }
                        state.callers.release(caller);
                    }
                    Some(Waiter::Probe) => shared.probe_acked.store(true, Ordering::Release),
                    None => {
                        // Late (timed out) or unknown: dropped and counted (P5).
                        if let Some(counter) = &shared.options.unknown_response_counter {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        tracing::debug!(
                            id = frame.request_id(),
                            "response for an id not in flight"
                        );
                    }
                }
            }
            FrameKind::Heartbeat => {
                // The upstream probes us: answer it like any peer would.
                if let Some(reply) = shared.protocol.heartbeat_reply(&*frame) {
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
    drop(state);
    settle(shared, done.len() - before);
}

/// Hands completions to their inboxes, one lock and one wake-up per run of completions
/// for the same downstream connection.
fn deliver(done: &mut Vec<Completion>, runs: &mut Vec<(Arc<Inbox>, usize)>) {
    let mut completions = done.drain(..);
    for (inbox, n) in runs.drain(..) {
        inbox.push_all(completions.by_ref().take(n));
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(shared: &Shared, mut wr: W) -> String {
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
        // A TLS writer may hold the last record until flushed (a socket's flush is
        // a no-op).
        if let Err(e) = async {
            wr.write_all(&out).await?;
            wr.flush().await
        }
        .await
        {
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

/// Fails every request whose deadline passed and re-arms the timer at the earliest
/// deadline left. One scan of the in-flight map per wake-up: with uniform timeouts the
/// timer wakes about once per timeout period, so the scan is cheap amortised.
fn expire(shared: &Shared, now: Instant) {
    let failed = {
        let mut state = shared.state.lock();
        let mut expired = Vec::new();
        let mut earliest: Option<Instant> = None;
        let mut overdue = Vec::new();
        for (id, pending) in state.in_flight.iter() {
            if pending.deadline <= now {
                overdue.push(id);
            } else if earliest.is_none_or(|e| pending.deadline < e) {
                earliest = Some(pending.deadline);
            }
        }
        for id in overdue {
            expired.extend(remove(&mut state, id));
        }
        state.armed = earliest;
        failures(&mut state, expired, ProxyFailure::Timeout)
    };
    settle(shared, failed.len());
    for (inbox, completion) in failed {
        inbox.push(completion);
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
        let counters = shared.options.heartbeats.as_deref();
        if let Some(c) = counters {
            c.sent.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(interval).await;
        if shared.probe_acked.swap(false, Ordering::AcqRel) {
            failures = 0;
        } else {
            if let Some(c) = counters {
                c.unanswered.fetch_add(1, Ordering::Relaxed);
            }
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
        insert(
            shared,
            &mut state,
            id,
            Waiter::Probe,
            Instant::now() + timeout,
        );
        drop(state);
        if was_empty {
            shared.writer.notify_one();
        }
    }
    true
}
#[cfg(test)]
#[path = "upstream_ids_tests.rs"]
mod ids_tests;
