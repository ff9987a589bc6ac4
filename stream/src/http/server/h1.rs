//! Strait's own HTTP/1.1 server driver (RFC 9112), on the pure codec of [`crate::http::h1`].
//!
//! One task per connection, and between requests that task holds the socket and
//! nothing else: it waits for readability with no read or write buffer (they are taken
//! when bytes arrive and dropped once the connection is idle again), no body channel
//! and no handler future. A request's head is parsed in place (header values are
//! slices of the read buffer); a request without a body is handed over as
//! [`Body::Empty`], so a keep-alive GET costs no channel. The handler's future, the
//! request body (read from the socket only while the handler's side asks for it) and
//! the response body (written with its framing decided by [`response_framing`]) are
//! all polled by this one task.
//!
//! Strict by design: a malformed head (smuggling shapes included: `Content-Length`
//! with `Transfer-Encoding`, duplicate lengths, obs-fold, bare CR/LF, whitespace
//! before a colon, bad chunk sizes) gets its status (400, 431 or 501) and the
//! connection closes; no handler sees it.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body::{Body as _, Frame};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::h2c;
use super::request_body::{self, BodySender, RequestBodyError};
use super::{Handler, HandlerFuture, ServeError, ServerIo, ServerOptions};
use crate::buffers::{self, BufferClass};
use crate::http::h1::encode::{
    self, BodyLength, ConnectionField, Framing, RequestFacts, ResponseFraming,
};
use crate::http::h1::{ChunkLimits, Decoded, Decoder, HeadLimits, ParsedRequest, date, parse};
use crate::http::kept_timer::KeptTimer;
use crate::http::upgrade::{OnUpgrade, Upgraded};
use crate::http::{Body, ConnectionInfo};

/// What a read reserves when the buffer is (nearly) full.
const READ_CHUNK: usize = 8 * 1024;
/// Data frames smaller than this are copied next to their framing; larger ones are
/// queued as they are and written with one vectored write.
const COPY_BELOW: usize = 4 * 1024;
/// Response bytes queued before the response body is no longer polled (backpressure:
/// a slow reader stops the producer).
const HIGH_WATER: usize = 64 * 1024;

/// How an HTTP/1.1 connection ended.
pub(super) enum H1End<IO> {
    /// Closed (cleanly, by timeout, by shutdown or after an error answer).
    Closed,
    /// The client asked for `Upgrade: h2c` and got its `101`: serve HTTP/2 on `io`,
    /// reading `rest` first, with `stream1` (the upgraded request) injected.
    H2c { io: IO, rest: Bytes, stream1: Bytes },
    /// Idle past [`Parking::after`]: park `io` (nothing is buffered) until it is
    /// readable, or close it at `deadline`.
    Park { io: IO, deadline: Option<Instant> },
}

/// Whether and when an idle connection leaves its task for an idle set.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Parking {
    /// Park once idle this long (`None`: never; wait in the task).
    pub(super) after: Option<Duration>,
    /// The connection was parked and resumed: its first head is due by this deadline,
    /// set when it went idle.
    pub(super) resumed: Option<Option<Instant>>,
}

/// How a wait for the next request ended.
enum Wait {
    Readable,
    /// Deadline passed, shutdown, end of stream or a failed socket: close quietly.
    Close,
    /// Idle long enough to park.
    Park,
}

/// What follows one exchange.
enum Next {
    KeepAlive,
    Close,
    /// A `101` went out: the connection belongs to the upgrade.
    Upgrade(oneshot::Sender<Upgraded>),
}

pub(super) async fn serve<IO: ServerIo>(
    io: IO,
    initial: Bytes,
    ctx: ConnectionInfo,
    handler: Arc<dyn Handler>,
    options: &ServerOptions,
    shutdown: &mut watch::Receiver<bool>,
    parking: Parking,
) -> Result<H1End<IO>, ServeError> {
    // Bytes read before this driver took the connection (protocol detection, a parked
    // connection's first read) go into a buffer of the pool: a fresh one here would be
    // given to the pool at the first wait, and with one more per connection the pool
    // would fill to its budget and keep it.
    let mut rbuf = BytesMut::new();
    if !initial.is_empty() {
        buffers::ensure(BufferClass::Heads, &mut rbuf);
        rbuf.extend_from_slice(&initial);
    }
    let mut conn = Conn {
        io,
        rbuf,
        wbuf: BytesMut::new(),
        out: VecDeque::new(),
        queued: 0,
        read_eof: false,
        activity: false,
        options,
        limits: HeadLimits {
            max_head_bytes: options.max_header_bytes,
            max_headers: options.max_headers,
        },
        idle_timer: KeptTimer::default(),
        shutdown_wait: None,
        watch_shutdown: true,
    };
    let wait = options.idle_wait();
    let mut resumed = parking.resumed;
    loop {
        // One clock read per idle period.
        let now = Instant::now();
        let deadline = match resumed.take() {
            Some(deadline) => deadline,
            None => wait.map(|w| now + w),
        };
        if conn.rbuf.is_empty() {
            let park_at = parking.after.map(|after| now + after);
            match conn.wait_readable(deadline, park_at, shutdown).await? {
                Wait::Readable => {}
                Wait::Close => {
                    conn.close().await;
                    return Ok(H1End::Closed);
                }
                Wait::Park => {
                    return Ok(H1End::Park {
                        io: conn.io,
                        deadline,
                    });
                }
            }
        }
        // The busy period is boxed: the task of an idle connection holds only the
        // small state of the wait above, not that of a request in flight.
        let busy = Box::pin(busy(
            &mut conn,
            deadline,
            parking.after,
            &ctx,
            &handler,
            shutdown,
        ));
        match busy.await {
            Ok(Busy::Idle) => {}
            Ok(Busy::Park { deadline }) => {
                return Ok(H1End::Park {
                    io: conn.io,
                    deadline,
                });
            }
            Ok(Busy::Close) => {
                conn.close().await;
                return Ok(H1End::Closed);
            }
            Ok(Busy::H2c { stream1 }) => {
                let rest = conn.rbuf.split().freeze();
                return Ok(H1End::H2c {
                    io: conn.io,
                    rest,
                    stream1,
                });
            }
            Ok(Busy::Upgrade(tx)) => {
                let rest = conn.rbuf.split().freeze();
                // The handler may have dropped its side: then nobody wants the socket.
                let _ = tx.send(Upgraded::new(rest, Box::new(conn.io)));
                return Ok(H1End::Closed);
            }
            Err(error) => {
                if let ServeError::Rejected { status, .. } = &error {
                    let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST);
                    handler.rejected(status, &ctx);
                }
                if matches!(
                    error,
                    ServeError::Rejected { .. } | ServeError::BadRequestBody { .. }
                ) {
                    conn.linger().await;
                }
                return Err(error);
            }
        }
    }
}

/// How a busy period ended.
enum Busy {
    /// Every request read was answered and nothing more is buffered: wait again.
    Idle,
    /// Idle past [`Parking::after`]: park, closing at `deadline` unless a request comes.
    Park {
        deadline: Option<Instant>,
    },
    Close,
    /// `101` sent for `Upgrade: h2c`.
    H2c {
        stream1: Bytes,
    },
    /// A `101` went out: the connection belongs to the upgrade.
    Upgrade(oneshot::Sender<Upgraded>),
}

/// Serves requests while there are bytes to serve: the first head (read by `deadline`),
/// then pipelined ones, until the connection is idle, closes or changes hands. A
/// connection that parks (`park_after` set) waits for its next request in here rather
/// than in [`serve`]: the busy period is then boxed once per stretch of keep-alive
/// requests instead of once per request, and parking is what frees it.
async fn busy<IO: ServerIo>(
    conn: &mut Conn<'_, IO>,
    mut deadline: Option<Instant>,
    park_after: Option<Duration>,
    ctx: &ConnectionInfo,
    handler: &Arc<dyn Handler>,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Busy, ServeError> {
    loop {
        let Some((parsed, head_bytes)) = conn.read_head(deadline).await? else {
            return Ok(Busy::Close);
        };
        // The answer is written from a pooled buffer too.
        buffers::ensure(BufferClass::Heads, &mut conn.wbuf);
        let facts = parsed.facts();
        let ParsedRequest {
            mut parts,
            body,
            expect_continue,
            upgrade,
            ..
        } = parsed;
        let has_body = body != parse::BodyKind::None;
        // `upgrade`: the parser saw `Upgrade` listed in `Connection` (RFC 9110 §7.8),
        // without which there is no h2c upgrade and no lookup of its fields.
        if conn.options.h2c_upgrade && upgrade && h2c::wants_h2c(&parts, has_body) {
            let (switch, _) = h2c::switching_protocols().into_parts();
            encode::response_head(
                &switch,
                Framing::AsIs,
                ConnectionField::Keep,
                None,
                &mut conn.wbuf,
            );
            conn.write_all_queued().await?;
            let stream1 = h2c::stream1_frames(parts, ctx.scheme());
            return Ok(Busy::H2c { stream1 });
        }
        let declared = match body {
            parse::BodyKind::Length(n) => Some(n),
            _ => None,
        };
        let (sender, request_body) = if has_body {
            let (tx, rx) = request_body::channel(declared);
            (Some(tx), Body::H1(rx))
        } else {
            (None, Body::Empty)
        };
        let upgrade_tx = upgrade.then(|| {
            let (tx, on) = OnUpgrade::pair();
            parts.extensions.insert(on);
            tx
        });
        let request_ctx = ctx.for_request(parts.version, head_bytes);
        let future = handler.call(Request::from_parts(parts, request_body), request_ctx);
        let mut ex = Exchange {
            future: Some(future),
            request_body: sender,
            decoder: Decoder::new(body, ChunkLimits::default()),
            expect_continue,
            facts,
            upgrade: upgrade_tx,
            draining: *shutdown.borrow(),
            started: None,
            response_body: None,
            written: 0,
            done: false,
            failed: None,
        };
        match conn.exchange(&mut ex, shutdown).await? {
            Next::KeepAlive if conn.rbuf.is_empty() => {
                let Some(after) = park_after else {
                    return Ok(Busy::Idle);
                };
                // One clock read per idle period, as in `serve`.
                let now = Instant::now();
                let idle_deadline = conn.options.idle_wait().map(|w| now + w);
                match conn
                    .wait_readable(idle_deadline, Some(now + after), shutdown)
                    .await?
                {
                    Wait::Readable => deadline = idle_deadline,
                    Wait::Close => return Ok(Busy::Close),
                    Wait::Park => {
                        return Ok(Busy::Park {
                            deadline: idle_deadline,
                        });
                    }
                }
            }
            Next::KeepAlive => {
                // A pipelined request is already here (or its start is).
                deadline = conn.options.header_read_timeout.map(|t| Instant::now() + t);
            }
            Next::Close => return Ok(Busy::Close),
            Next::Upgrade(tx) => return Ok(Busy::Upgrade(tx)),
        }
    }
}

/// One connection's socket and buffers.
struct Conn<'o, IO> {
    io: IO,
    /// Bytes read and not yet parsed (empty and unallocated while idle).
    rbuf: BytesMut,
    /// Heads, framing and small data being assembled; after everything in `out`.
    wbuf: BytesMut,
    /// Output queued ahead of `wbuf`.
    out: VecDeque<Bytes>,
    /// Bytes in `out`.
    queued: usize,
    /// The client shut its write side (or the connection ended).
    read_eof: bool,
    /// Bytes moved since the idle timer last looked.
    activity: bool,
    options: &'o ServerOptions,
    limits: HeadLimits,
    /// The timer of the waits for a next request, kept between them.
    idle_timer: KeptTimer,
    /// Those waits' watch for shutdown (see [`Conn::wait_readable`]).
    shutdown_wait: Option<ShutdownWait>,
    /// Whether shutdown can still come (its sender lives).
    watch_shutdown: bool,
}

/// Resolves `true` once the server drains, `false` if its shutdown sender is dropped.
type ShutdownWait = Pin<Box<dyn Future<Output = bool> + Send>>;

/// One request on its way through the connection.
struct Exchange {
    /// The handler's answer, until it comes.
    future: Option<HandlerFuture>,
    /// The driver's end of the request body, while the body is being read.
    request_body: Option<BodySender>,
    decoder: Decoder,
    /// `100 Continue` is owed once the handler asks for the body.
    expect_continue: bool,
    facts: RequestFacts,
    upgrade: Option<oneshot::Sender<Upgraded>>,
    /// Close after this exchange (shutdown, idle timeout).
    draining: bool,
    /// The framing of the response once its head is queued.
    started: Option<Started>,
    response_body: Option<Body>,
    /// Body bytes of the response queued so far.
    written: u64,
    /// The response is completely queued.
    done: bool,
    /// The exchange broke; the connection closes once what is queued is written.
    failed: Option<ServeError>,
}

struct Started {
    framing: ResponseFraming,
    status: StatusCode,
    declared: Option<u64>,
}

impl<IO: ServerIo> Conn<'_, IO> {
    /// Waits, holding no buffer, until the client sends something, the connection is
    /// to close quietly (deadline passed, shutdown), or `park_at` (before the deadline)
    /// comes.
    async fn wait_readable(
        &mut self,
        deadline: Option<Instant>,
        park_at: Option<Instant>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Wait, ServeError> {
        if self.read_eof {
            return Ok(Wait::Close);
        }
        let park_at = park_at.filter(|p| deadline.is_none_or(|d| *p < d));
        let wake_at = park_at.or(deadline);
        // Both are empty here: back to the thread's pool (or freed, if a head or body
        // split off them is still alive), so the idle connection holds no buffer.
        buffers::give_if_empty(BufferClass::Heads, &mut self.rbuf);
        buffers::give_if_empty(BufferClass::Heads, &mut self.wbuf);
        // The wait for shutdown, registered once per connection and polled by each of
        // its waits: a fresh `changed()` per wait registered with the watch and removed
        // itself again, a lock each, per request.
        let mut draining = match self.shutdown_wait.take() {
            Some(wait) => Some(wait),
            None if self.watch_shutdown => {
                let mut rx = shutdown.clone();
                let wait: ShutdownWait = Box::pin(async move { rx.wait_for(|d| *d).await.is_ok() });
                Some(wait)
            }
            None => None,
        };
        // The connection's one timer, moved to this wait's end.
        let mut timer = wake_at.map(|at| self.idle_timer.arm(at));
        let result = loop {
            if *shutdown.borrow() {
                // Draining: an idle connection closes at once.
                break Ok(Wait::Close);
            }
            let ready = poll_fn(|cx| self.io.poll_read_ready(cx));
            let elapsed = async {
                match timer.as_mut() {
                    Some(timer) => timer.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            let shut = async {
                match draining.as_mut() {
                    Some(wait) => wait.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            // Readiness first: on the wake-up that brings the next request, the other
            // branches are not polled again.
            tokio::select! {
                biased;
                ready = ready => {
                    break match ready {
                        Ok(()) => Ok(Wait::Readable),
                        Err(error) => Err(error.into()),
                    };
                }
                () = elapsed => {
                    break Ok(if park_at.is_some() { Wait::Park } else { Wait::Close });
                }
                shut = shut => {
                    // Done either way: draining, or the sender is gone and no
                    // shutdown will come (stop watching).
                    draining = None;
                    if shut {
                        break Ok(Wait::Close);
                    }
                    self.watch_shutdown = false;
                }
            }
        };
        self.idle_timer.keep(timer);
        self.shutdown_wait = draining;
        result
    }

    /// Reads and parses a request head by `deadline`, with its size in bytes. `None`:
    /// the connection is to close quietly (client closed, deadline passed).
    async fn read_head(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<(ParsedRequest, usize)>, ServeError> {
        loop {
            if !self.rbuf.is_empty() {
                let before = self.rbuf.len();
                match parse::request(&mut self.rbuf, &self.limits) {
                    Ok(Some(parsed)) => return Ok(Some((parsed, before - self.rbuf.len()))),
                    Ok(None) => {}
                    Err(error) => {
                        let status = error.status();
                        self.reject(status).await;
                        return Err(ServeError::Rejected {
                            status: status.as_u16(),
                            reason: error.to_string(),
                        });
                    }
                }
            }
            if self.read_eof {
                // A partial head cut by the client's close is not a request.
                return Ok(None);
            }
            // After an idle wait: a buffer from the thread's pool, not a fresh one.
            buffers::ensure(BufferClass::Heads, &mut self.rbuf);
            if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                self.rbuf.reserve(READ_CHUNK);
            }
            // The bytes are usually there already (the wait said readable): read once
            // without arming the deadline's timer.
            let first = poll_fn(|cx| Poll::Ready(poll_read_buf(&mut self.io, cx, &mut self.rbuf)));
            let n = match first.await {
                Poll::Ready(n) => n?,
                Poll::Pending => {
                    let read = poll_fn(|cx| poll_read_buf(&mut self.io, cx, &mut self.rbuf));
                    tokio::select! {
                        n = read => n?,
                        () = sleep_until(deadline) => return Ok(None),
                    }
                }
            };
            if n == 0 {
                self.read_eof = true;
            }
        }
    }

    /// Answers a request that cannot be served (malformed head) and shuts the write side.
    async fn reject(&mut self, status: StatusCode) {
        self.wbuf.clear();
        self.queue_error_answer(status);
        let _ = self.write_all_queued().await;
    }

    /// After an error answer: shut the write side, then read and discard what the
    /// client still sends for a short while, so closing with unread bytes does not
    /// reset the connection before the client has read the answer.
    async fn linger(&mut self) {
        const LINGER: Duration = Duration::from_secs(2);
        const MAX_DISCARD: usize = 256 * 1024;
        let _ = self.io.shutdown().await;
        let mut discarded = 0;
        let deadline = Instant::now() + LINGER;
        let mut scratch = BytesMut::with_capacity(READ_CHUNK);
        while discarded < MAX_DISCARD && !self.read_eof {
            scratch.clear();
            let read = poll_fn(|cx| poll_read_buf(&mut self.io, cx, &mut scratch));
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => discarded += n,
            }
        }
    }

    /// Queues an empty answer with `status` that closes the connection.
    fn queue_error_answer(&mut self, status: StatusCode) {
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = status;
        encode::response_head(
            &parts,
            Framing::Length(0),
            ConnectionField::Close,
            Some(&date::now()),
            &mut self.wbuf,
        );
    }

    async fn close(&mut self) {
        let _ = self.io.shutdown().await;
    }

    async fn write_all_queued(&mut self) -> Result<(), ServeError> {
        poll_fn(|cx| self.poll_write_out(cx)).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Queues `data` after everything queued so far.
    fn push(&mut self, data: Bytes) {
        if data.len() < COPY_BELOW {
            self.wbuf.extend_from_slice(&data);
        } else {
            if !self.wbuf.is_empty() {
                let head = self.wbuf.split().freeze();
                self.queued += head.len();
                self.out.push_back(head);
            }
            self.queued += data.len();
            self.out.push_back(data);
        }
    }

    fn pending_output(&self) -> usize {
        self.queued + self.wbuf.len()
    }

    /// Writes what is queued; `Ready(Ok)` once all of it is written.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_output() > 0 {
            let mut slices = [IoSlice::new(&[]); 16];
            let mut count = 0;
            for chunk in self.out.iter().take(15) {
                slices[count] = IoSlice::new(chunk);
                count += 1;
            }
            if count < 15 && !self.wbuf.is_empty() {
                slices[count] = IoSlice::new(&self.wbuf);
                count += 1;
            }
            let n = match Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            };
            self.activity = true;
            let mut left = n;
            while left > 0 {
                match self.out.front_mut() {
                    Some(front) if front.len() <= left => {
                        left -= front.len();
                        self.queued -= front.len();
                        self.out.pop_front();
                    }
                    Some(front) => {
                        front.advance(left);
                        self.queued -= left;
                        left = 0;
                    }
                    None => {
                        self.wbuf.advance(left);
                        left = 0;
                    }
                }
            }
        }
        if self.wbuf.capacity() > 0 && self.wbuf.is_empty() {
            // Reuse the allocation from its start for the next response.
            self.wbuf.clear();
        }
        Poll::Ready(Ok(()))
    }

    /// Runs one exchange to its end, watching shutdown and the idle timeout.
    async fn exchange(
        &mut self,
        ex: &mut Exchange,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Next, ServeError> {
        // Until the response head is out, the route's timeout bounds the wait and no
        // timer of the connection's own is needed; a shutdown meanwhile is seen when the
        // head is written (`connection: close`), and an idle connection closes once
        // this exchange is done. Most exchanges end here: no timer, no waiter.
        let idle = self.options.idle_timeout;
        let started = poll_fn(|cx| {
            if !ex.draining && *shutdown.borrow() {
                ex.draining = true;
            }
            match self.poll_exchange(ex, cx) {
                Poll::Ready(next) => Poll::Ready(Some(next)),
                // A streamed answer: watch its idleness from here.
                Poll::Pending if ex.started.is_some() && idle.is_some() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        if let Some(next) = started {
            return next;
        }
        let mut watching = !ex.draining;
        let mut idle_at = idle.map(|d| Instant::now() + d);
        loop {
            tokio::select! {
                biased;
                next = poll_fn(|cx| self.poll_exchange(ex, cx)) => return next,
                changed = shutdown.changed(), if watching => {
                    watching = false;
                    match changed {
                        Ok(()) if *shutdown.borrow() => ex.draining = true,
                        Ok(()) => watching = true,
                        Err(_) => {}
                    }
                }
                () = sleep_until(idle_at), if idle_at.is_some() => {
                    if std::mem::take(&mut self.activity) {
                        idle_at = idle.map(|d| Instant::now() + d);
                    } else {
                        // A whole period without a byte: finish this one and close.
                        ex.draining = true;
                        idle_at = None;
                    }
                }
            }
        }
    }

    fn poll_exchange(
        &mut self,
        ex: &mut Exchange,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Next, ServeError>> {
        loop {
            let mut progress = false;

            if let Some(future) = ex.future.as_mut()
                && let Poll::Ready(response) = future.as_mut().poll(cx)
            {
                ex.future = None;
                self.start_response(ex, response);
                progress = true;
            }

            progress |= self.pump_request_body(ex, cx)?;

            if let Some(body) = ex.response_body.as_mut()
                && self.pending_output() < HIGH_WATER
            {
                match Pin::new(body).poll_frame(cx) {
                    Poll::Ready(frame) => {
                        self.write_frame(ex, frame);
                        // A body that says it has nothing more (its length is reached)
                        // ends with this frame, not with one more poll.
                        if ex
                            .response_body
                            .as_ref()
                            .is_some_and(http_body::Body::is_end_stream)
                        {
                            self.end_body(ex, None);
                        }
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }

            if self.pending_output() > 0 {
                match self.poll_write_out(cx) {
                    Poll::Ready(Ok(())) => progress = true,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Pending => {}
                }
            }

            if let Some(error) = ex.failed.take() {
                if self.pending_output() == 0 || error_is_io(&error) {
                    return Poll::Ready(Err(error));
                }
                // Write the error answer first.
                ex.failed = Some(error);
            } else if ex.done && self.pending_output() == 0 {
                match Pin::new(&mut self.io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Pending => return Poll::Pending,
                }
                return Poll::Ready(Ok(self.after_response(ex)));
            }

            // Watch the client while the handler works: a pipelined request is kept for
            // later, and a close is noticed (the exchange is abandoned unless half-close
            // is allowed).
            if ex.request_body.is_none()
                && !self.read_eof
                && self.rbuf.len() < self.limits.max_head_bytes
            {
                if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                    self.rbuf.reserve(READ_CHUNK);
                }
                match poll_read_buf(&mut self.io, cx, &mut self.rbuf) {
                    Poll::Ready(Ok(0)) => {
                        self.read_eof = true;
                        if !self.options.h1_half_close && !ex.done {
                            return Poll::Ready(Ok(Next::Close));
                        }
                        progress = true;
                    }
                    Poll::Ready(Ok(_)) => {
                        self.activity = true;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                    Poll::Pending => {}
                }
            }

            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Reads the request body for the handler while it asks for more. `Ok(true)` when
    /// something moved.
    fn pump_request_body(
        &mut self,
        ex: &mut Exchange,
        cx: &mut Context<'_>,
    ) -> Result<bool, ServeError> {
        let Some(sender) = ex.request_body.as_ref() else {
            return Ok(false);
        };
        if sender.is_dropped() {
            // The handler does not want the rest (answered early, or failed): whether
            // the connection can be reused is decided once the response is out.
            ex.request_body = None;
            return Ok(true);
        }
        match sender.poll_want(cx) {
            Poll::Ready(true) => {}
            _ => return Ok(false),
        }
        if ex.expect_continue && ex.started.is_none() {
            ex.expect_continue = false;
            self.wbuf
                .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        loop {
            match ex.decoder.decode(&mut self.rbuf) {
                Ok(Some(Decoded::Data(data))) => {
                    let last = ex.decoder.is_done();
                    sender.send(Ok(Frame::data(data)), last);
                    if last {
                        ex.request_body = None;
                    }
                    return Ok(true);
                }
                Ok(Some(Decoded::Trailers(trailers))) => {
                    sender.send(Ok(Frame::trailers(trailers)), true);
                    ex.request_body = None;
                    return Ok(true);
                }
                Ok(None) if ex.decoder.is_done() => {
                    sender.finish();
                    ex.request_body = None;
                    return Ok(true);
                }
                Ok(None) => {}
                Err(error) => {
                    sender.send(Err(RequestBodyError::Malformed), true);
                    ex.request_body = None;
                    self.fail_request_body(ex, error.status(), error.to_string());
                    return Ok(true);
                }
            }
            if self.read_eof {
                // The client closed inside the body: the request is incomplete.
                sender.send(Err(RequestBodyError::Closed), true);
                ex.request_body = None;
                let error = crate::http::h1::DecodeError::Incomplete;
                self.fail_request_body(ex, error.status(), error.to_string());
                return Ok(true);
            }
            if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                self.rbuf.reserve(READ_CHUNK);
            }
            match poll_read_buf(&mut self.io, cx, &mut self.rbuf) {
                Poll::Ready(Ok(0)) => self.read_eof = true,
                Poll::Ready(Ok(_)) => self.activity = true,
                Poll::Ready(Err(e)) => {
                    sender.send(Err(RequestBodyError::Closed), true);
                    ex.request_body = None;
                    ex.failed = Some(e.into());
                    return Ok(true);
                }
                Poll::Pending => return Ok(false),
            }
        }
    }

    /// A request body broke its framing: answer 400 if nothing was answered yet, and
    /// close either way.
    fn fail_request_body(&mut self, ex: &mut Exchange, status: StatusCode, reason: String) {
        ex.future = None;
        ex.response_body = None;
        if ex.started.is_none() {
            self.queue_error_answer(status);
        }
        ex.failed = Some(ServeError::BadRequestBody {
            status: status.as_u16(),
            reason,
        });
    }

    /// Queues the response head (and a one-buffer body) and decides its framing.
    fn start_response(&mut self, ex: &mut Exchange, response: Response<Body>) {
        let (mut parts, body) = response.into_parts();
        let length = body.length();
        let upgrading = parts.status == StatusCode::SWITCHING_PROTOCOLS && ex.upgrade.is_some();
        let close = ex.draining || (parts.status == StatusCode::SWITCHING_PROTOCOLS && !upgrading);
        let framing = encode::response_framing(ex.facts, parts.status, length, close);
        if ex.facts.is_head
            && let BodyLength::Exact(n) = length
            && !parts.status.is_informational()
            && parts.status != StatusCode::NO_CONTENT
            && parts.status != StatusCode::NOT_MODIFIED
            && !parts.headers.contains_key(http::header::CONTENT_LENGTH)
        {
            // A HEAD answer announces the length the GET's body would have.
            parts
                .headers
                .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(n));
        }
        encode::response_head(
            &parts,
            framing.framing,
            framing.connection,
            Some(&date::now()),
            &mut self.wbuf,
        );
        let declared = match length {
            BodyLength::Exact(n) => Some(n),
            BodyLength::Empty => Some(0),
            BodyLength::Unknown => None,
        };
        ex.started = Some(Started {
            framing,
            status: parts.status,
            declared,
        });
        match body {
            _ if framing.framing == Framing::AsIs => ex.done = true,
            Body::Full(bytes) => {
                ex.written = bytes.len() as u64;
                self.push(bytes);
                ex.done = true;
            }
            Body::Empty => ex.done = true,
            body => ex.response_body = Some(body),
        }
    }

    /// Queues one polled frame of the response body with its framing.
    fn write_frame(
        &mut self,
        ex: &mut Exchange,
        frame: Option<Result<Frame<Bytes>, crate::http::BodyError>>,
    ) {
        let Some(started) = ex.started.as_ref() else {
            return;
        };
        let chunked = started.framing.framing == Framing::Chunked;
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    if data.is_empty() {
                        return;
                    }
                    ex.written += data.len() as u64;
                    if let Some(declared) = started.declared
                        && ex.written > declared
                    {
                        // More than the announced length: the framing would lie.
                        ex.response_body = None;
                        ex.failed = Some(ServeError::BodyLength);
                        return;
                    }
                    if chunked {
                        self.wbuf
                            .extend_from_slice(encode::chunk_header(data.len() as u64).as_ref());
                        self.push(data);
                        self.wbuf.extend_from_slice(encode::CHUNK_END);
                    } else {
                        self.push(data);
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        self.end_body(ex, Some(&trailers));
                    }
                }
            },
            None => self.end_body(ex, None),
            Some(Err(error)) => {
                // The producer (an upstream) failed mid-body: the client must see a cut
                // body, so the connection closes without the last chunk.
                ex.response_body = None;
                ex.failed = Some(ServeError::ResponseBody(error.to_string()));
            }
        }
    }

    fn end_body(&mut self, ex: &mut Exchange, trailers: Option<&http::HeaderMap>) {
        ex.response_body = None;
        let Some(started) = ex.started.as_ref() else {
            return;
        };
        match started.framing.framing {
            Framing::Chunked => {
                let trailers = trailers.filter(|_| started.framing.send_trailers);
                encode::last_chunk(trailers, &mut self.wbuf);
            }
            Framing::Length(n) if ex.written != n => {
                ex.failed = Some(ServeError::BodyLength);
                return;
            }
            _ => {}
        }
        ex.done = true;
    }

    /// Whether the connection serves another request after a completed response.
    fn after_response(&mut self, ex: &mut Exchange) -> Next {
        let Some(started) = ex.started.as_ref() else {
            return Next::Close;
        };
        if started.status == StatusCode::SWITCHING_PROTOCOLS
            && let Some(tx) = ex.upgrade.take()
        {
            return Next::Upgrade(tx);
        }
        if !started.framing.keep_alive || ex.draining || self.read_eof {
            return Next::Close;
        }
        if !ex.decoder.is_done() {
            // The handler answered without reading the whole body: skip what is already
            // here; if more is to come, closing is cheaper than reading it.
            ex.request_body = None;
            while let Ok(Some(_)) = ex.decoder.decode(&mut self.rbuf) {}
            if !ex.decoder.is_done() {
                return Next::Close;
            }
        }
        Next::KeepAlive
    }
}

fn error_is_io(error: &ServeError) -> bool {
    matches!(error, ServeError::Io(_))
}

fn poll_read_buf<IO: AsyncRead + Unpin>(
    io: &mut IO,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
