//! [`Http1Connection`]: Strait's own HTTP/1.1 client side, one exchange at a time, kept
//! alive, with no task of its own.
//!
//! The exchange runs in the task that sends it: the request head (and body) is written,
//! the response head read and parsed by [`crate::http::h1::parse::response`]; the response
//! body ([`Body::Upstream`]) then *is* the connection's reader, polled by whoever
//! forwards it (same task, no channel), and puts the socket back when it ends. An idle
//! connection is a socket and its buffers in the pool's slot; whether the upstream
//! closed it meanwhile is checked when it is taken again.

use std::any::Any;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{ClientError, ClientOptions};
use crate::http::Body;
use crate::http::body::{BodyEnd, BodyObserver};
use crate::http::h1::encode::{self, ConnectionField, Framing};
use crate::http::h1::{ChunkLimits, Decoded, Decoder, HeadLimits, parse};
use crate::http::kept_timer::KeptTimer;
use crate::http::upgrade::{OnUpgrade, Upgraded, UpgradedIo};
use crate::io::UpstreamIo;

/// What a read reserves when the buffer is (nearly) full.
const READ_CHUNK: usize = 8 * 1024;

/// An upstream socket; `Sync` because the response body (which holds it) must be.
trait ClientIo: UpgradedIo + Sync + Any {}
impl<T: UpgradedIo + Sync> ClientIo for T {}

/// The socket and buffers of one connection: in the connection while idle, in the
/// sending future during an exchange, in the response body while it is read.
struct Wire {
    io: Box<dyn ClientIo>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// The deadline timer of the exchanges, kept between them.
    timer: KeptTimer,
}

struct Shared {
    /// The wire while no exchange holds it. Boxed once per connection: it moves from
    /// here to the exchange to the response body and back on every request, and the
    /// response body is moved through every layer of the proxy.
    wire: Mutex<Option<Box<Wire>>>,
    in_flight: AtomicBool,
    closed: AtomicBool,
    limits: HeadLimits,
    observer: OnceLock<Arc<dyn BodyObserver>>,
}

impl Shared {
    /// An exchange ended: the wire comes back (reusable) or not, and the observer hears
    /// how it went.
    fn finish(&self, wire: Option<Box<Wire>>) {
        let end = match wire {
            Some(wire) => {
                *self.wire.lock() = Some(wire);
                BodyEnd::Complete
            }
            None => {
                self.closed.store(true, Ordering::Release);
                BodyEnd::Aborted
            }
        };
        self.in_flight.store(false, Ordering::Release);
        if let Some(observer) = self.observer.get() {
            observer.body_finished(end);
        }
    }
}

/// An HTTP/1.1 upstream connection: one exchange at a time, reusable once the
/// response body is finished.
///
/// The response body is a [`Body::Upstream`]: when it is read to its end (or dropped,
/// or fails) the observer set with [`Http1Connection::set_observer`] is told, which is
/// when the pool can hand the connection out again (`BodyEnd::Aborted` means it is
/// closing instead). A `101 Switching Protocols` answer consumes the connection: its
/// socket goes to the response's [`OnUpgrade`] and it is never reusable.
pub struct Http1Connection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Http1Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Connection")
            .field("ready", &self.is_ready())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Http1Connection {
    /// Wraps `io` (a connected socket). Nothing is exchanged before the first request,
    /// and no task is spawned.
    pub async fn handshake<T>(io: T, options: &ClientOptions) -> Result<Self, ClientError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
    {
        let wire = Wire {
            io: Box::new(io),
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            timer: KeptTimer::default(),
        };
        Ok(Http1Connection {
            shared: Arc::new(Shared {
                wire: Mutex::new(Some(Box::new(wire))),
                in_flight: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                limits: HeadLimits {
                    max_head_bytes: options.max_header_bytes.max(8192),
                    max_headers: options.max_headers,
                },
                observer: OnceLock::new(),
            }),
        })
    }

    /// Sets who is told when a response body is finished with (once per connection;
    /// later calls are ignored).
    pub fn set_observer(&self, observer: Arc<dyn BodyObserver>) {
        let _ = self.shared.observer.set(observer);
    }

    /// Whether a request can be sent now: no exchange in progress, connection open.
    pub fn is_ready(&self) -> bool {
        !self.shared.in_flight.load(Ordering::Acquire) && !self.is_closed()
    }

    /// Whether the connection is closed (or upgraded, or closing): it will never
    /// carry another request.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Sends a request prepared with [`strait_codec_http::prepare_upstream_request`] and waits for
    /// the response head. A request that could not be sent (the connection is busy,
    /// closed, or the upstream closed it while idle) comes back in
    /// [`ClientError::NotSent`].
    ///
    /// The head is encoded when this is called, before the future is first polled: the
    /// future then holds the connection's wire and the request's body, not the request
    /// (every layer above it holds this future, so its size is paid per request).
    pub fn send(
        &mut self,
        request: Request<Body>,
    ) -> impl Future<Output = Result<Response<Body>, ClientError>> + Send + '_ {
        self.send_by(request, None)
    }

    /// [`Http1Connection::send`], failing with [`ClientError::TimedOut`] (and closing
    /// the connection) when no response head has come by `deadline`. The connection
    /// keeps one timer for all its exchanges: moving it to a later deadline is one
    /// atomic update, where a timer per request was an insertion into the runtime's
    /// timer wheel and a removal.
    pub fn send_by(
        &mut self,
        request: Request<Body>,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<Response<Body>, ClientError>> + Send + '_ {
        let started = self.start(request);
        let this: &Http1Connection = self;
        // Dropped before the exchange settles (a timeout abandoned it, or it was never
        // polled): the connection is in an unknown state; the wire is dropped with
        // this future.
        let abandoned = Abandoned(started.is_ok().then_some(&*this.shared));
        async move {
            let (mut wire, mut body, mut st) = started?;
            let limits = &this.shared.limits;
            let result = exchange(&mut wire, &mut body, &mut st, limits, deadline).await;
            abandoned.disarm();
            match result {
                Ok(head) if head.upgraded => {
                    let rest = wire.rbuf.split().freeze();
                    let (tx, on) = OnUpgrade::pair();
                    let io: Box<dyn UpgradedIo> = wire.io;
                    let _ = tx.send(Upgraded::new(rest, io));
                    let mut response = Response::from_parts(head.parts, Body::Empty);
                    response.extensions_mut().insert(on);
                    this.shared.finish(None);
                    Ok(response)
                }
                Ok(head) => {
                    let body = UpstreamBody {
                        wire: Some(wire),
                        decoder: Decoder::new(head.body, ChunkLimits::default()),
                        keep_alive: head.keep_alive,
                        shared: this.shared.clone(),
                        ended: false,
                    };
                    Ok(Response::from_parts(head.parts, Body::Upstream(body)))
                }
                Err(error) => {
                    this.shared.closed.store(true, Ordering::Release);
                    this.shared.in_flight.store(false, Ordering::Release);
                    Err(error)
                }
            }
        }
    }

    /// Takes the wire for one exchange and encodes the request's head (and a body
    /// known whole) into it; the request comes back if the connection cannot take it.
    fn start(&mut self, request: Request<Body>) -> Result<(Box<Wire>, Body, Sending), ClientError> {
        if self.shared.in_flight.load(Ordering::Acquire) || self.is_closed() {
            return Err(ClientError::not_sent(request));
        }
        let taken = self.shared.wire.lock().take();
        let Some(mut wire) = taken else {
            return Err(ClientError::not_sent(request));
        };
        if !wire.still_open() {
            self.shared.closed.store(true, Ordering::Release);
            return Err(ClientError::not_sent(request));
        }
        self.shared.in_flight.store(true, Ordering::Release);
        let (parts, body) = request.into_parts();
        let framing = encode::request_framing(body.length());
        encode::request_head(&parts, framing, ConnectionField::Keep, &mut wire.wbuf);
        let mut st = Sending {
            framing,
            method: parts.method,
            body_done: framing == Framing::AsIs,
            write_failed: None,
            read_eof: false,
        };
        if let Body::Full(bytes) = &body {
            // The common case: head and body in one write.
            wire.wbuf.extend_from_slice(bytes);
            st.body_done = true;
        }
        Ok((wire, body, st))
    }
}

impl Wire {
    /// Whether an idle connection is still usable: nothing to read (a close, or bytes
    /// nobody asked for, make it unusable).
    fn still_open(&mut self) -> bool {
        if !self.rbuf.is_empty() {
            return false;
        }
        self.rbuf.reserve(READ_CHUNK);
        // A plain socket is asked without a waker: tokio answers from the readiness it
        // last saw (no syscall unless the socket was marked readable), and the waker
        // slot stays free for the exchange's own read.
        let any: &dyn Any = &*self.io;
        let tcp = match any.downcast_ref::<UpstreamIo>() {
            Some(UpstreamIo::Tcp(socket)) => Some(socket),
            Some(UpstreamIo::Wrapped(_)) => None,
            None => any.downcast_ref::<TcpStream>(),
        };
        if let Some(socket) = tcp {
            return matches!(
                socket.try_read_buf(&mut self.rbuf),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock
            );
        }
        let mut cx = Context::from_waker(Waker::noop());
        let probe = tokio_util::io::poll_read_buf(Pin::new(&mut self.io), &mut cx, &mut self.rbuf);
        matches!(probe, Poll::Pending)
    }
}

/// A response head as the exchange read it.
struct Head {
    parts: http::response::Parts,
    body: parse::BodyKind,
    keep_alive: bool,
    upgraded: bool,
}

/// Writes the request (its head already encoded) and reads the response head (skipping
/// 1xx interim answers), both at once: an upstream may answer before it has read the
/// whole body (a 413, a 100 Continue), and that answer is what the client gets, not a
/// failed write. The connection is reused only if the whole request went out.
async fn exchange(
    wire: &mut Wire,
    body: &mut Body,
    st: &mut Sending,
    limits: &HeadLimits,
    deadline: Option<Instant>,
) -> Result<Head, ClientError> {
    let mut timer = deadline.map(|at| wire.timer.arm(at));
    let head = poll_fn(|cx| match poll_exchange(wire, cx, body, limits, st) {
        Poll::Ready(head) => Poll::Ready(head),
        Poll::Pending => match timer.as_mut().map(|t| t.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Err(ClientError::TimedOut)),
            _ => Poll::Pending,
        },
    })
    .await;
    wire.timer.keep(timer);
    let mut head = head?;
    let sent_whole = st.body_done && wire.wbuf.is_empty() && st.write_failed.is_none();
    if !sent_whole {
        // What is left of the request must not be taken for the next one.
        wire.wbuf.clear();
    }
    head.keep_alive &= sent_whole;
    Ok(head)
}

/// Where the sending side of an exchange stands.
struct Sending {
    framing: Framing,
    method: Method,
    /// The whole body is encoded into the write buffer.
    body_done: bool,
    /// Writing failed; the answer may still be readable.
    write_failed: Option<io::Error>,
    read_eof: bool,
}

fn poll_exchange(
    wire: &mut Wire,
    cx: &mut Context<'_>,
    body: &mut Body,
    limits: &HeadLimits,
    st: &mut Sending,
) -> Poll<Result<Head, ClientError>> {
    let failed = |e: io::Error| ClientError::Connection(Box::new(e));
    let framing = st.framing;
    // Parse only when bytes came since the last parse. Read until the socket says not
    // yet, and not again in this poll: its waker is registered then, and a write's
    // progress (which loops back here) brings no bytes to read.
    let mut fresh = !wire.rbuf.is_empty();
    let mut read_blocked = false;
    loop {
        if fresh {
            match parse::response(&mut wire.rbuf, limits, &st.method) {
                Ok(Some(head)) => {
                    if head.parts.status.is_informational()
                        && head.parts.status != StatusCode::SWITCHING_PROTOCOLS
                    {
                        continue;
                    }
                    return Poll::Ready(Ok(Head {
                        parts: head.parts,
                        body: head.body,
                        keep_alive: head.keep_alive,
                        upgraded: head.upgraded,
                    }));
                }
                Ok(None) => fresh = false,
                Err(error) => return Poll::Ready(Err(ClientError::Connection(Box::new(error)))),
            }
        }
        if st.read_eof {
            // The answer never came: the write's failure says more, if there was one.
            let error = st.write_failed.take().unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "upstream closed the connection before a response head",
                )
            });
            return Poll::Ready(Err(failed(error)));
        }
        let mut progress = false;
        if !wire.wbuf.is_empty() && st.write_failed.is_none() {
            match Pin::new(&mut wire.io).poll_write(cx, &wire.wbuf) {
                Poll::Ready(Ok(0)) => {
                    st.write_failed = Some(io::ErrorKind::WriteZero.into());
                    progress = true;
                }
                Poll::Ready(Ok(n)) => {
                    bytes::Buf::advance(&mut wire.wbuf, n);
                    progress = true;
                }
                // Keep reading: the upstream may have answered before it stopped reading.
                Poll::Ready(Err(error)) => {
                    st.write_failed = Some(error);
                    progress = true;
                }
                Poll::Pending => {}
            }
        }
        if wire.wbuf.is_empty() && !st.body_done && st.write_failed.is_none() {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    match frame.into_data() {
                        Ok(data) if framing == Framing::Chunked => {
                            encode::chunk(&data, &mut wire.wbuf)
                        }
                        Ok(data) => wire.wbuf.extend_from_slice(&data),
                        Err(frame) => {
                            if let (Ok(trailers), Framing::Chunked) =
                                (frame.into_trailers(), framing)
                            {
                                encode::last_chunk(Some(&trailers), &mut wire.wbuf);
                                st.body_done = true;
                            }
                        }
                    }
                    progress = true;
                }
                Poll::Ready(None) => {
                    if framing == Framing::Chunked {
                        encode::last_chunk(None, &mut wire.wbuf);
                    }
                    st.body_done = true;
                    progress = true;
                }
                Poll::Ready(Some(Err(error))) => {
                    // The client's body broke off: the upstream must not take a cut body
                    // for a whole one, so the connection is dropped.
                    return Poll::Ready(Err(ClientError::Connection(Box::new(error))));
                }
                Poll::Pending => {}
            }
        }
        if !read_blocked {
            if wire.rbuf.capacity() - wire.rbuf.len() < 1024 {
                wire.rbuf.reserve(READ_CHUNK);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut wire.io), cx, &mut wire.rbuf) {
                Poll::Ready(Ok(0)) => {
                    st.read_eof = true;
                    progress = true;
                }
                Poll::Ready(Ok(_)) => {
                    fresh = true;
                    progress = true;
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(failed(error))),
                Poll::Pending => read_blocked = true,
            }
        }
        if !progress {
            return Poll::Pending;
        }
    }
}

/// Why an upstream HTTP/1.1 response body failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamBodyError {
    /// Reading the connection failed, or it closed inside the body.
    #[error("upstream connection: {0}")]
    Io(#[from] io::Error),
    /// The body broke its framing.
    #[error("upstream body: {0}")]
    Framing(#[from] crate::http::h1::DecodeError),
}

/// An upstream HTTP/1.1 response body, read from the connection as it is polled; the
/// connection goes back to its pool when the body ends.
pub struct UpstreamBody {
    wire: Option<Box<Wire>>,
    decoder: Decoder,
    keep_alive: bool,
    shared: Arc<Shared>,
    ended: bool,
}

impl UpstreamBody {
    fn end(&mut self, complete: bool) {
        if self.ended {
            return;
        }
        self.ended = true;
        let wire = self.wire.take().filter(|_| complete && self.keep_alive);
        self.shared.finish(wire);
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, UpstreamBodyError>>> {
        loop {
            let Some(wire) = self.wire.as_mut() else {
                return Poll::Ready(None);
            };
            match self.decoder.decode(&mut wire.rbuf) {
                Ok(Some(Decoded::Data(data))) => {
                    if self.decoder.is_done() {
                        self.end(true);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Some(Decoded::Trailers(trailers))) => {
                    self.end(true);
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Ok(None) if self.decoder.is_done() => {
                    self.end(true);
                    return Poll::Ready(None);
                }
                Ok(None) => {}
                Err(error) => {
                    self.end(false);
                    return Poll::Ready(Some(Err(error.into())));
                }
            }
            if wire.rbuf.capacity() - wire.rbuf.len() < 1024 {
                wire.rbuf.reserve(READ_CHUNK);
            }
            match tokio_util::io::poll_read_buf(Pin::new(&mut wire.io), cx, &mut wire.rbuf) {
                Poll::Ready(Ok(0)) => {
                    if let Err(error) = self.decoder.on_eof() {
                        self.end(false);
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    // A close-delimited body ended; the connection with it.
                    self.keep_alive = false;
                    self.end(true);
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(error)) => {
                    self.end(false);
                    return Poll::Ready(Some(Err(error.into())));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.decoder.is_done()
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        // Dropped unread: the connection cannot be reused (unless nothing was left).
        let complete = self.decoder.is_done();
        self.end(complete);
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("decoder", &self.decoder)
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

/// Marks an HTTP/1.1 connection closed when an exchange on it is abandoned midway.
struct Abandoned<'a>(Option<&'a Shared>);

impl Abandoned<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            shared.closed.store(true, Ordering::Release);
            shared.in_flight.store(false, Ordering::Release);
        }
    }
}
