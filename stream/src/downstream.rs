//! Serving one downstream (accepted) connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use strait_codec_framework::{
    DecodeError, Frame, FrameKind, Limits, Outcome, Protocol, ProxyFailure, ResponseClass,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::buffers::{self, BufferClass};
use crate::handler::{Connecting, RequestHandler, Route};
use crate::inbox::{Completion, Inbox, RequestToken};
use crate::upstream::{Outgoing, Refused};
use crate::{Moment, RequestContext, RequestEnd, Tally, UpstreamConnection};

/// Bounds of one downstream connection.
#[derive(Debug, Clone)]
pub struct DownstreamOptions {
    /// Codec limits (maximum frame size).
    pub limits: Limits,
    /// Requests in flight on this connection before the proxy stops reading from it.
    pub max_in_flight: usize,
    /// Counts the caller's heartbeats answered on this connection.
    pub heartbeats_answered: Option<Arc<std::sync::atomic::AtomicU64>>,
}

impl Default for DownstreamOptions {
    fn default() -> Self {
        DownstreamOptions {
            limits: Limits::default(),
            max_in_flight: 4096,
            heartbeats_answered: None,
        }
    }
}

/// How a downstream connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reading from or writing to the socket failed.
    #[error("downstream i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes the protocol cannot frame; the connection was closed.
    #[error("downstream decode: {0}")]
    Decode(strait_codec_framework::CodecError),
}

const BUFFERS: BufferClass = BufferClass::Frames;
/// Context slots an idle connection may keep from its last burst.
const IDLE_CONTEXTS: usize = 16;

/// The read half of a downstream connection: bytes, and a way to wait for them without
/// holding a buffer (an idle connection holds none).
pub trait ReadHalf: AsyncRead + Unpin + Send {
    /// Resolves when a read would find bytes (or the end of the stream, or an error).
    fn readable(&self) -> impl Future<Output = std::io::Result<()>> + Send;
}

impl ReadHalf for tokio::net::tcp::OwnedReadHalf {
    fn readable(&self) -> impl Future<Output = std::io::Result<()>> + Send {
        tokio::net::tcp::OwnedReadHalf::readable(self)
    }
}

/// The read half of a stream split with [`tokio::io::split`] (a TLS stream): it cannot
/// wait for bytes without reading, so an idle connection holds its read buffer.
impl<T: AsyncRead + Send> ReadHalf for tokio::io::ReadHalf<T> {
    fn readable(&self) -> impl Future<Output = std::io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}

/// The write half of a downstream connection.
pub trait WriteHalf: AsyncWrite + Unpin + Send {
    /// Whether bytes accepted by a write may wait inside the writer until it is
    /// flushed (TLS records); a plain socket sends them at once.
    const BUFFERED: bool = true;
}

impl WriteHalf for tokio::net::tcp::OwnedWriteHalf {
    const BUFFERED: bool = false;
}

impl<T: AsyncWrite + Send> WriteHalf for tokio::io::WriteHalf<T> {}

/// Writes from `wbuf` (`Some(bytes written)`), or, once it is empty, flushes what a
/// buffered writer still holds (`None`).
async fn write_or_flush<W: WriteHalf>(
    wr: &mut W,
    wbuf: &mut BytesMut,
) -> std::io::Result<Option<usize>> {
    if wbuf.is_empty() {
        wr.flush().await.map(|()| None)
    } else {
        wr.write_buf(wbuf).await.map(Some)
    }
}

/// Reads into `rbuf`, taking a pooled buffer only once bytes are there to read.
async fn read_some<R: ReadHalf>(rd: &mut R, rbuf: &mut BytesMut) -> std::io::Result<usize> {
    if rbuf.capacity() == 0 {
        rd.readable().await?;
        buffers::ensure(BUFFERS, rbuf);
    } else {
        // Room for a full read: the tail of the current allocation when it has it (a
        // busy connection keeps reading into one buffer while its frames are in
        // flight), a new one otherwise.
        rbuf.reserve(BUFFERS.size());
    }
    rd.read_buf(rbuf).await
}

/// One downstream connection's state, owned by its task.
struct Conn<H> {
    protocol: Arc<dyn Protocol>,
    handler: Arc<H>,
    inbox: Arc<Inbox>,
    wbuf: BytesMut,
    /// The contexts of the two-way requests sent upstream and not completed yet, by
    /// the token their upstream connection carries back.
    in_flight: slab::Slab<RequestContext>,
    /// The clock of the batch being handled: one read per read batch or per batch of
    /// completions, shared by every request in it (send times, end times).
    now: Moment,
    /// Ends not yet counted on their cluster and host: handed to the handler once per
    /// batch ([`Conn::count`]).
    tally: Tally,
    /// Where the caller's answered heartbeats are counted, if anywhere.
    heartbeats_answered: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// The handler before the last [`RequestHandler::successor`] took over, while
    /// requests it routed are still to end, and how many.
    previous: Option<(Arc<H>, usize)>,
    /// The generation of `handler` ([`RequestContext::generation`]).
    generation: bool,
    /// The upstream connection the last request went over, kept while the connection
    /// is busy: while the pool picks it again, requests reuse this handle instead of
    /// cloning one each ([`Route::SendRecent`]). Dropped when idle, so an idle
    /// connection keeps no upstream one alive.
    recent: Option<UpstreamConnection>,
    /// Two-way requests routed to `recent` and not handed to it yet: sent together,
    /// under one lock, before the connection waits ([`Conn::flush`]).
    outbox: Vec<Outgoing>,
    /// Scratch for the requests of a batch the upstream connection refused.
    refused: Vec<Refused>,
    /// Requests that must wait for a connect after a refusal, for the driver to poll.
    deferred: Vec<Later>,
}

impl<H: RequestHandler> Conn<H> {
    /// Hands new requests to the handler's successor, if it has one, unless the one
    /// before is still ending requests (then at a later batch).
    #[inline]
    fn take_successor(&mut self, in_flight: usize) {
        if self.previous.is_some() {
            return;
        }
        if let Some(next) = self.handler.successor() {
            self.switch_to(next, in_flight);
        }
    }

    #[cold]
    #[inline(never)]
    fn switch_to(&mut self, next: Arc<H>, in_flight: usize) {
        // The old handler's batch is counted by it.
        self.count();
        let old = std::mem::replace(&mut self.handler, next);
        self.tally.set_timed(self.handler.times_requests());
        if in_flight > 0 {
            self.previous = Some((old, in_flight));
        }
        self.generation = !self.generation;
    }

    /// The handler that routed the request of `ctx`.
    #[inline]
    fn handler_of(&self, ctx: &RequestContext) -> &H {
        match &self.previous {
            Some((previous, _)) if ctx.generation != self.generation => previous,
            _ => &self.handler,
        }
    }

    /// Hands the ends of the batch just handled to the shared counters.
    fn count(&mut self) {
        if !self.tally.is_empty() {
            self.handler.count(self.tally.counts());
            self.tally.clear();
        }
    }
}

/// Serves a connection, given as its read and write halves (for a `TcpStream`, its
/// lock-free `into_split`), until the peer closes it, a fatal decode error happens, or
/// `shutdown` turns true (then the connection stops reading, finishes its in-flight
/// requests and closes). `initial` holds bytes already read during protocol detection.
///
/// Every request routed ends exactly once at [`RequestHandler::finished`]; requests
/// still in flight when the connection breaks end there as [`Outcome::Cancelled`]
/// when their upstream answer or deadline comes.
pub async fn serve<R, W, H>(
    rd: R,
    wr: W,
    initial: BytesMut,
    protocol: Arc<dyn Protocol>,
    handler: Arc<H>,
    options: DownstreamOptions,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError>
where
    R: ReadHalf,
    W: WriteHalf,
    H: RequestHandler,
{
    run(rd, wr, initial, protocol, handler, options, shutdown, None)
        .await
        .map(|_| ())
}

/// Serves the connection until it ends or, with `park_after`, until it has been idle
/// that long (nothing in flight, nothing to write, nothing buffered): then its halves
/// come back, for the caller to park.
#[allow(clippy::too_many_arguments)] // `serve`'s arguments and the parking delay
pub(crate) async fn run<R, W, H>(
    rd: R,
    wr: W,
    initial: BytesMut,
    protocol: Arc<dyn Protocol>,
    handler: Arc<H>,
    options: DownstreamOptions,
    shutdown: watch::Receiver<bool>,
    park_after: Option<Duration>,
) -> Result<Option<(R, W)>, ServeError>
where
    R: ReadHalf,
    W: WriteHalf,
    H: RequestHandler,
{
    let timed = handler.times_requests();
    let mut conn = Conn {
        protocol,
        handler,
        inbox: Arc::new(Inbox::default()),
        wbuf: BytesMut::new(),
        in_flight: slab::Slab::new(),
        now: Moment::now(),
        tally: Tally::new(timed),
        heartbeats_answered: options.heartbeats_answered.clone(),
        previous: None,
        generation: false,
        recent: None,
        outbox: Vec::new(),
        refused: Vec::new(),
        deferred: Vec::new(),
    };
    let mut connecting = FuturesUnordered::new();
    let result = conn
        .drive(
            rd,
            wr,
            initial,
            options,
            shutdown,
            &mut connecting,
            park_after,
        )
        .await;
    // Requests waiting for a connect end now; those sent upstream end when their
    // answer or deadline comes (deadlines bound the wait). (A connection that parks
    // has none.)
    conn.now = Moment::now();
    conn.flush();
    let deferred = std::mem::take(&mut conn.deferred);
    for later in connecting.iter().chain(&deferred) {
        conn.finish(&later.ctx, Outcome::Cancelled, None, 0);
    }
    drop(connecting);
    conn.finish_orphans().await;
    // Every way out (close, park, error) passes here: nothing goes uncounted.
    conn.count();
    result
}

/// A request waiting for a connection, bounded by its deadline. Its context stays
/// readable while it waits, so a connection that breaks can still end it.
struct Later {
    ctx: RequestContext,
    deadline: Instant,
    request: Option<Box<dyn Frame>>,
    connect: Pin<Box<tokio::time::Timeout<Connecting>>>,
}

type Connected = (
    Box<dyn Frame>,
    RequestContext,
    Instant,
    Result<UpstreamConnection, ProxyFailure>,
);

impl Future for Later {
    type Output = Connected;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Connected> {
        let result = match self.connect.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(result)) => result,
            Poll::Ready(Err(_elapsed)) => Err(ProxyFailure::Timeout),
        };
        // Ready once: a FuturesUnordered never polls a finished future again.
        let Some(request) = self.request.take() else {
            return Poll::Pending;
        };
        Poll::Ready((request, self.ctx, self.deadline, result))
    }
}

// === impl Conn ===

impl<H: RequestHandler> Conn<H> {
    #[allow(clippy::too_many_arguments)] // the connection's parts, owned for its life
    async fn drive<R, W>(
        &mut self,
        mut rd: R,
        mut wr: W,
        initial: BytesMut,
        options: DownstreamOptions,
        mut shutdown: watch::Receiver<bool>,
        connecting: &mut FuturesUnordered<Later>,
        park_after: Option<Duration>,
    ) -> Result<Option<(R, W)>, ServeError>
    where
        R: ReadHalf,
        W: WriteHalf,
    {
        let mut codec = self.protocol.new_codec(options.limits);
        // Bytes a buffered writer (TLS) accepted but may not have sent yet.
        let mut unflushed = false;
        let mut rbuf = initial;
        let mut completions = Vec::new();
        let mut reading = !*shutdown.borrow();
        let mut decode_pending = !rbuf.is_empty();
        // Frames left in the read buffer because the connection was at its in-flight
        // limit: decoded again once answers free a place.
        let mut held = false;

        loop {
            self.flush_into(connecting);
            // What the last batch ended is counted before its answers are written.
            self.count();
            if decode_pending {
                decode_pending = false;
                held = false;
                // One clock read per batch: every request of a read shares its start.
                let now = Moment::now();
                self.now = now;
                self.take_successor(self.in_flight.len() + connecting.len());
                loop {
                    // The limit bounds requests in flight, not only reads: frames that
                    // arrived in one read wait in the buffer too.
                    if self.in_flight.len() + connecting.len() >= options.max_in_flight {
                        held = !rbuf.is_empty();
                        break;
                    }
                    let before = rbuf.len();
                    match codec.decode(&mut rbuf) {
                        Ok(Some(frame)) => {
                            let mut ctx = RequestContext::new(now, (before - rbuf.len()) as u64);
                            ctx.generation = self.generation;
                            if let Some(later) = self.on_frame(frame, ctx) {
                                connecting.push(later);
                            }
                        }
                        Ok(None) => break,
                        Err(DecodeError::Rejected { error, reply }) => {
                            tracing::debug!(%error, "rejected downstream frame");
                            if let Some(reply) = reply {
                                // A malformed request answered: it ends like any other.
                                let mut ctx =
                                    RequestContext::new(now, (before - rbuf.len()) as u64);
                                ctx.generation = self.generation;
                                let written = encode_into(&*reply, &mut self.wbuf);
                                let failure = Outcome::Failed(ProxyFailure::CodecError);
                                self.finish(&ctx, failure, reply.status(), written.unwrap_or(0));
                            }
                        }
                        Err(DecodeError::Fatal(error)) => {
                            // Close; requests in flight are answered to nobody (P16).
                            // Those of this batch go upstream first, so their deadlines
                            // run and their counts come down, however long the write.
                            self.flush_into(connecting);
                            let _ = wr.write_all(&self.wbuf).await;
                            let _ = wr.shutdown().await;
                            return Err(ServeError::Decode(error));
                        }
                    }
                }
                // The batch's requests go upstream before the connection waits.
                self.flush_into(connecting);
            }
            let idle = self.in_flight.is_empty() && connecting.is_empty();
            if !reading && idle && self.wbuf.is_empty() {
                let _ = wr.shutdown().await;
                return Ok(None);
            }
            let can_read =
                reading && self.in_flight.len() + connecting.len() < options.max_in_flight;
            // Buffers go back to the pool once the connection is idle: it then holds
            // none. A busy one keeps them, so its reads fill the rest of one
            // allocation instead of taking a fresh one per batch.
            if idle {
                self.recent = None;
                buffers::give_if_empty(BUFFERS, &mut rbuf);
                buffers::give_if_empty(BUFFERS, &mut self.wbuf);
                if self.in_flight.capacity() > IDLE_CONTEXTS {
                    // A burst's worth of slots is not kept by an idle connection.
                    self.in_flight = slab::Slab::new();
                }
            }

            // Quiet and empty: it may leave its task once idle for `park_after`.
            let park_at = match park_after {
                Some(after) if idle && reading && self.wbuf.is_empty() && rbuf.is_empty() => {
                    Some(Instant::now() + after)
                }
                _ => None,
            };
            let mut park = false;
            tokio::select! {
                biased;
                _ = self.inbox.ready(), if !self.in_flight.is_empty() => {
                    self.now = Moment::now();
                    self.inbox.drain_into(&mut completions);
                    for completion in completions.drain(..) {
                        if let Some(retry) = self.on_completion(completion) {
                            connecting.push(retry);
                        }
                    }
                    decode_pending |= held;
                }
                Some((request, ctx, deadline, result)) = connecting.next(), if !connecting.is_empty() => {
                    self.now = Moment::now();
                    // A connect that ate the whole deadline leaves nothing to wait for.
                    let result = result.and_then(|upstream| {
                        if self.now.instant < deadline { Ok(upstream) } else { Err(ProxyFailure::Timeout) }
                    });
                    match result {
                        Ok(upstream) => {
                            self.set_recent(upstream);
                            self.send(request, ctx, deadline);
                        }
                        Err(failure) => self.fail(&*request, request.request_id(), &ctx, failure),
                    }
                    decode_pending |= held;
                }
                res = write_or_flush(&mut wr, &mut self.wbuf), if !self.wbuf.is_empty() || unflushed => {
                    match res? {
                        Some(0) => return Err(ServeError::Io(std::io::ErrorKind::WriteZero.into())),
                        Some(_) => unflushed = W::BUFFERED,
                        None => unflushed = false,
                    }
                }
                res = read_some(&mut rd, &mut rbuf), if can_read => {
                    if res? == 0 {
                        // Half-close from the peer: answer what is in flight, then close.
                        reading = false;
                    } else {
                        decode_pending = true;
                    }
                }
                _ = shutdown.changed(), if reading => {
                    reading = false;
                }
                () = sleep_until(park_at), if park_at.is_some() => park = true,
            }
            if park {
                return Ok(Some((rd, wr)));
            }
        }
    }

    /// Handles one decoded frame; returns the slow-path work if the request must wait
    /// for a connection.
    #[inline(always)] // one call site, on the hot path
    fn on_frame(&mut self, mut frame: Box<dyn Frame>, mut ctx: RequestContext) -> Option<Later> {
        match frame.kind() {
            FrameKind::Heartbeat => {
                // Answered here, never forwarded (design invariant); not a request.
                if let Some(reply) = self.protocol.heartbeat_reply(&*frame) {
                    encode_into(&*reply, &mut self.wbuf);
                    if let Some(answered) = &self.heartbeats_answered {
                        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                None
            }
            FrameKind::Request | FrameKind::Oneway => {
                match self
                    .handler
                    .route(&mut *frame, &mut ctx, self.recent.as_ref())
                {
                    Route::Reply(mut response) => {
                        let mut written = 0;
                        if frame.kind() == FrameKind::Request {
                            response.set_request_id(frame.request_id());
                            match encode_into(&*response, &mut self.wbuf) {
                                Some(n) => written = n,
                                None => {
                                    let failure = ProxyFailure::CodecError;
                                    self.fail(&*frame, frame.request_id(), &ctx, failure);
                                    return None;
                                }
                            }
                        }
                        self.finish(&ctx, Outcome::Local, response.status(), written);
                        None
                    }
                    Route::Fail(failure) => {
                        self.fail(&*frame, frame.request_id(), &ctx, failure);
                        None
                    }
                    route => self.send_where(frame, ctx, route),
                }
            }
            kind => {
                tracing::debug!(?kind, "ignoring non-request frame from downstream");
                None
            }
        }
    }

    /// Makes `upstream` the connection requests go to, first sending what waits for
    /// the one before.
    fn set_recent(&mut self, upstream: UpstreamConnection) {
        if let Some(recent) = &self.recent
            && recent.identity() == upstream.identity()
        {
            return;
        }
        self.flush();
        self.recent = Some(upstream);
    }

    /// Sends `request` to the recent upstream connection (the one just routed to): a
    /// two-way one joins the batch [`Conn::flush`] sends, a oneway one goes at once,
    /// behind that batch.
    fn send(&mut self, request: Box<dyn Frame>, mut ctx: RequestContext, deadline: Instant) {
        if request.kind() != FrameKind::Request {
            return self.send_oneway(request, ctx, deadline);
        }
        let Some(upstream) = &self.recent else {
            return self.no_recent(&*request, &ctx);
        };
        ctx.host = upstream.host_tag();
        ctx.sent = Some(self.now.nanos);
        // Counted in flight now, so admission sees it before the batch goes.
        upstream.admit(1);
        let slot = self.in_flight.vacant_entry();
        // In-flight requests per connection are bounded by max_in_flight (u32 range).
        let token = slot.key() as RequestToken;
        slot.insert(ctx);
        self.outbox.push(Outgoing {
            request,
            deadline,
            token,
        });
    }

    /// Sends a oneway request at once over the connection it was routed to (the recent
    /// one), behind the batch waiting for that connection.
    fn send_oneway(&mut self, request: Box<dyn Frame>, mut ctx: RequestContext, deadline: Instant) {
        // Its own handle: a retry during the flush may route elsewhere and change
        // `recent`. (Oneway requests are the rarer kind.)
        let routed = self.recent.clone();
        self.flush();
        let Some(upstream) = routed else {
            return self.no_recent(&*request, &ctx);
        };
        ctx.host = upstream.host_tag();
        ctx.sent = Some(self.now.nanos);
        match upstream.send(request, &self.inbox, deadline, 0) {
            Ok(()) => self.finish(&ctx, Outcome::Forwarded, None, 0),
            Err((request, error)) => {
                self.fail(&*request, request.request_id(), &ctx, error.failure())
            }
        }
    }

    /// A handler that said "the recent one" when there was none: its bug; the request
    /// still gets an answer.
    #[cold]
    fn no_recent(&mut self, request: &dyn Frame, ctx: &RequestContext) {
        tracing::warn!("routed to a recent upstream connection that is not kept");
        let failure = ProxyFailure::NoHealthyUpstream;
        self.fail(request, request.request_id(), ctx, failure);
    }

    /// Hands the batch waiting in the outbox to the recent connection. A request it
    /// refuses (closed under it, backlogged) was not sent: the handler may try it
    /// elsewhere (an attempt that must first wait joins `deferred`), or it fails; a
    /// retry sent at once joins the outbox, which is flushed again until empty.
    fn flush(&mut self) {
        while !self.outbox.is_empty() {
            self.flush_once();
        }
    }

    fn flush_once(&mut self) {
        let mut batch = std::mem::take(&mut self.outbox);
        let mut refused = std::mem::take(&mut self.refused);
        match &self.recent {
            Some(upstream) => upstream.send_all(&mut batch, &self.inbox, &mut refused),
            // Unreachable: requests join the outbox only with a recent connection,
            // which changes only after a flush. Refused all the same, never lost.
            None => refused.extend(batch.drain(..).map(|o| Refused {
                request: o.request,
                token: o.token,
                error: crate::UpstreamError::Closed,
            })),
        }
        // Empty again, and a retry below may fill it anew.
        self.outbox = batch;
        for Refused {
            mut request,
            token,
            error,
        } in refused.drain(..)
        {
            let Some(mut ctx) = self.in_flight.try_remove(token as usize) else {
                continue;
            };
            let failure = error.failure();
            let outcome = Outcome::Failed(failure);
            if let Some(route) = self
                .handler_of(&ctx)
                .retry(&mut *request, &mut ctx, outcome, None)
            {
                let later = self.send_where(request, ctx, route);
                self.deferred.extend(later);
                continue;
            }
            self.fail(&*request, request.request_id(), &ctx, failure);
        }
        self.refused = refused;
    }

    /// [`Conn::flush`], then hands the attempts that must wait to the driver.
    fn flush_into(&mut self, connecting: &mut FuturesUnordered<Later>) {
        self.flush();
        connecting.extend(self.deferred.drain(..));
    }

    /// The context of the request behind `token`, no longer in flight.
    fn take_context(&mut self, token: RequestToken) -> Option<RequestContext> {
        let ctx = self.in_flight.try_remove(token as usize);
        if ctx.is_none() {
            tracing::warn!(token, "completion for a request not in flight");
        }
        ctx
    }

    /// Answers a request from its upstream completion, unless the handler tries it
    /// again: then the request goes out anew (returned when it must first wait).
    #[inline(always)] // one call site, on the hot path
    fn on_completion(&mut self, completion: Completion) -> Option<Later> {
        match completion {
            Completion::Response {
                down_id,
                response,
                mut request,
                token,
            } => {
                let mut ctx = self.take_context(token)?;
                let class = self.protocol.classify(&*response);
                let outcome = Outcome::Upstream(class);
                if class != ResponseClass::Success {
                    let status = response.status();
                    if let Some(route) =
                        self.handler_of(&ctx)
                            .retry(&mut *request, &mut ctx, outcome, status)
                    {
                        return self.send_where(request, ctx, route);
                    }
                }
                match encode_into(&*response, &mut self.wbuf) {
                    Some(written) => self.finish(&ctx, outcome, response.status(), written),
                    None => self.fail(&*request, down_id, &ctx, ProxyFailure::CodecError),
                }
                None
            }
            Completion::Failed {
                down_id,
                mut request,
                failure,
                token,
            } => {
                let mut ctx = self.take_context(token)?;
                let outcome = Outcome::Failed(failure);
                if let Some(route) =
                    self.handler_of(&ctx)
                        .retry(&mut *request, &mut ctx, outcome, None)
                {
                    return self.send_where(request, ctx, route);
                }
                self.fail(&*request, down_id, &ctx, failure);
                None
            }
        }
    }

    /// Sends a request where its route says (its first attempt's routes other than a
    /// reply or a failure, or a retry's: a retry routed to neither fails).
    fn send_where(
        &mut self,
        request: Box<dyn Frame>,
        ctx: RequestContext,
        route: Route,
    ) -> Option<Later> {
        match route {
            Route::Send(upstream, timeout) => {
                self.set_recent(upstream);
                self.send(request, ctx, ctx.start + timeout);
                None
            }
            Route::SendRecent(timeout) => {
                self.send(request, ctx, ctx.start + timeout);
                None
            }
            Route::Later(connecting, timeout) => {
                Some(later(request, ctx, ctx.start + timeout, connecting))
            }
            Route::Reply(_) | Route::Fail(_) => {
                let failure = match route {
                    Route::Fail(failure) => failure,
                    _ => ProxyFailure::NoRoute,
                };
                self.fail(&*request, request.request_id(), &ctx, failure);
                None
            }
        }
    }

    /// Answers a failure with the protocol's error (nothing at all for oneway
    /// requests), and ends the request.
    fn fail(
        &mut self,
        request: &dyn Frame,
        down_id: u64,
        ctx: &RequestContext,
        failure: ProxyFailure,
    ) {
        let mut status = None;
        let mut written = 0;
        if let Some(mut reply) = self.protocol.error_response(request, failure) {
            reply.set_request_id(down_id);
            status = reply.status();
            written = encode_into(&*reply, &mut self.wbuf).unwrap_or(0);
        }
        self.finish(ctx, Outcome::Failed(failure), status, written);
    }

    // Inlined: the answered request's end is on the hot path, and a call's register
    // saves cost as much as the counting.
    #[inline(always)]
    fn finish(
        &mut self,
        ctx: &RequestContext,
        outcome: Outcome,
        status: Option<u32>,
        written: usize,
    ) {
        let end = RequestEnd {
            outcome,
            status,
            response_bytes: written as u64,
            at: self.now.nanos,
        };
        if self.previous.is_some() && ctx.generation != self.generation {
            self.finish_previous(ctx, end);
        } else {
            self.handler.finished(ctx, end);
            self.tally.add(ctx, &end);
        }
    }

    /// Ends a request the previous handler routed (a reload happened while it was in
    /// flight: rare), counted at once.
    #[cold]
    #[inline(never)]
    fn finish_previous(&mut self, ctx: &RequestContext, end: RequestEnd) {
        let Some((previous, left)) = &mut self.previous else {
            return;
        };
        previous.finished(ctx, end);
        previous.count(&[Tally::one(ctx, &end, previous.times_requests())]);
        *left -= 1;
        if *left == 0 {
            self.previous = None;
        }
    }

    /// After the connection broke: every request still in flight upstream ends as
    /// cancelled when its completion comes (its answer or its deadline).
    async fn finish_orphans(&mut self) {
        let mut completions = Vec::new();
        while !self.in_flight.is_empty() {
            self.inbox.ready().await;
            self.now = Moment::now();
            self.inbox.drain_into(&mut completions);
            for completion in completions.drain(..) {
                let token = match &completion {
                    Completion::Response { token, .. } | Completion::Failed { token, .. } => *token,
                };
                if let Some(ctx) = self.take_context(token) {
                    self.finish(&ctx, Outcome::Cancelled, None, 0);
                }
            }
        }
    }
}

/// Sleeps until `at` (never, for `None`).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn later(
    request: Box<dyn Frame>,
    ctx: RequestContext,
    deadline: Instant,
    connecting: Connecting,
) -> Later {
    Later {
        ctx,
        deadline,
        request: Some(request),
        connect: Box::pin(tokio::time::timeout_at(deadline, connecting)),
    }
}

/// Appends `frame` to `wbuf` and returns how many bytes it took; on failure leaves
/// `wbuf` as it was and returns `None`.
fn encode_into(frame: &dyn Frame, wbuf: &mut BytesMut) -> Option<usize> {
    buffers::ensure(BUFFERS, wbuf);
    let mark = wbuf.len();
    match frame.encode(wbuf) {
        Ok(()) => Some(wbuf.len() - mark),
        Err(error) => {
            // A frame we cannot encode must not leave half of itself on the wire.
            wbuf.truncate(mark);
            tracing::warn!(%error, "failed to encode frame for downstream");
            None
        }
    }
}
