//! The downstream server driver: HTTP/1.1, HTTP/2 prior knowledge and h2c upgrade on
//! one connection type.

mod h2c;
mod rewind;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response, Version};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::detect::{HttpDetect, detect_version};
use crate::{Body, ConnectionInfo, Scheme};

use self::h2c::InjectStream1;
use self::rewind::Rewind;

/// The future a [`Handler`] returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// What the server driver calls for every request, on every HTTP version.
///
/// The request body is the peer's body streamed ([`Body::Incoming`]); an HTTP/1.1
/// request asking for an upgrade carries hyper's `OnUpgrade` in its extensions (take it
/// with `hyper::upgrade::on(&mut request)` before forwarding, answer `101`, then
/// [`crate::tunnel`]). The handler never fails: proxy failures are answered with
/// [`crate::failure_response`].
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, request: Request<Body>, ctx: ConnectionInfo) -> HandlerFuture;
}

/// Limits and timeouts of downstream connections.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The scheme of the listener (`https` behind TLS).
    pub scheme: Scheme,
    /// Largest request head, in bytes (HTTP/1 request line and headers, HTTP/2
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`). Larger HTTP/1 heads get 431. Also the HTTP/1
    /// read buffer size (at least 8 KiB).
    pub max_header_bytes: usize,
    /// Most header fields in an HTTP/1 request; more get 431.
    pub max_headers: usize,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 initial stream flow-control window: what a client may send on one stream
    /// before Strait's upstream has consumed it.
    pub h2_initial_stream_window: u32,
    /// HTTP/2 initial connection flow-control window.
    pub h2_initial_connection_window: u32,
    /// HTTP/2 `SETTINGS_MAX_FRAME_SIZE` (16 KiB to 16 MiB - 1).
    pub h2_max_frame_size: u32,
    /// Send an HTTP/2 PING after this much silence (none: never).
    pub h2_keepalive_interval: Option<Duration>,
    /// Close the HTTP/2 connection when a PING is not answered within this.
    pub h2_keepalive_timeout: Duration,
    /// Bound on reading an HTTP/1 request head, counted from when the connection
    /// starts waiting for it, so it is also the keep-alive idle timeout; and on reading
    /// the first bytes of the connection. `None`: unbounded.
    pub header_read_timeout: Option<Duration>,
    /// Close a connection (gracefully: HTTP/1 once idle, HTTP/2 by GOAWAY) once a whole
    /// period of this length passed without a byte read or written (so after one to
    /// two periods of silence). One timer per connection, nothing per request.
    /// `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Whether `Upgrade: h2c` requests switch the connection to HTTP/2.
    pub h2c_upgrade: bool,
    /// Whether an HTTP/1 client that shuts down its write side after a request still
    /// gets its answer (otherwise the connection closes at once on read EOF).
    pub h1_half_close: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            scheme: Scheme::Http,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            h2_max_concurrent_streams: 256,
            h2_initial_stream_window: 256 * 1024,
            h2_initial_connection_window: 1024 * 1024,
            h2_max_frame_size: 16 * 1024,
            h2_keepalive_interval: None,
            h2_keepalive_timeout: Duration::from_secs(20),
            header_read_timeout: Some(Duration::from_secs(30)),
            idle_timeout: Some(Duration::from_secs(300)),
            h2c_upgrade: true,
            h1_half_close: false,
        }
    }
}

/// Why a downstream connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reading the first bytes failed.
    #[error("reading the connection preface: {0}")]
    Io(#[from] std::io::Error),
    /// The first bytes did not arrive within the header read timeout.
    #[error("timed out waiting for the first request")]
    PrefaceTimeout,
    /// The HTTP/1 connection failed (peer reset, malformed request after the 400 was
    /// sent, header timeout...).
    #[error("HTTP/1 connection: {0}")]
    Http1(#[source] hyper::Error),
    /// The HTTP/2 connection failed (protocol error, peer reset...).
    #[error("HTTP/2 connection: {0}")]
    Http2(#[source] hyper::Error),
    /// The connection upgraded by `Upgrade: h2c` could not be taken over.
    #[error("h2c upgrade: {0}")]
    H2cUpgrade(#[source] hyper::Error),
    /// The HTTP/2 preface was not followed by a SETTINGS frame (answered with GOAWAY
    /// PROTOCOL_ERROR).
    #[error("HTTP/2 preface not followed by SETTINGS")]
    NoInitialSettings,
}

impl ServeError {
    /// The status hyper answered a malformed HTTP/1 request with before any handler saw
    /// it (400 for a request it could not parse, 431 for a head over the limits), so the
    /// caller can end that request like any other. `None` for every other ending.
    pub fn rejected_request(&self) -> Option<u16> {
        match self {
            ServeError::Http1(e) if e.is_parse_too_large() => Some(431),
            ServeError::Http1(e) if e.is_parse() => Some(400),
            _ => None,
        }
    }
}

/// Offset of the type byte of the first frame after the 24-byte HTTP/2 preface.
const FIRST_FRAME_TYPE: usize = 24 + 3;
/// HTTP/2 frame type SETTINGS.
const FRAME_TYPE_SETTINGS: u8 = 0x4;
/// GOAWAY on stream 0: last stream 0, error PROTOCOL_ERROR (1).
const GOAWAY_PROTOCOL_ERROR: [u8; 17] = [
    0, 0, 8, 0x7, 0, 0, 0, 0, 0, // header: length 8, type GOAWAY, no flags, stream 0
    0, 0, 0, 0, // last stream id
    0, 0, 0, 1, // PROTOCOL_ERROR
];

/// Serves one downstream connection until it closes or, once `shutdown` turns true,
/// drains it: HTTP/1.1 finishes the request in progress and closes (idle connections
/// close at once), HTTP/2 sends GOAWAY and finishes the open streams.
///
/// `initial` holds bytes protocol detection already read from `io`; they are read
/// again first. The connection speaks HTTP/2 when it starts with the HTTP/2 preface,
/// else HTTP/1.1, which may switch to HTTP/2 by `Upgrade: h2c`. Malformed HTTP/1
/// requests get `400` and the connection closes. Returns `Ok` on a clean close.
pub async fn serve_connection<IO>(
    io: IO,
    initial: Bytes,
    peer: SocketAddr,
    handler: Arc<dyn Handler>,
    options: Arc<ServerOptions>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut io = io;
    let mut initial = initial;
    let version = loop {
        match detect_version(&initial) {
            HttpDetect::Http2 if initial.len() > FIRST_FRAME_TYPE => {
                if initial[FIRST_FRAME_TYPE] == FRAME_TYPE_SETTINGS {
                    break Version::HTTP_2;
                }
                // RFC 9113 §3.4: the preface must be followed by SETTINGS; anything
                // else is a connection error (the h2 library does not check it).
                let _ = io.write_all(&GOAWAY_PROTOCOL_ERROR).await;
                let _ = io.shutdown().await;
                return Err(ServeError::NoInitialSettings);
            }
            HttpDetect::Http1 | HttpDetect::NoMatch => break Version::HTTP_11,
            HttpDetect::Http2 | HttpDetect::NeedMore => {
                let mut buf = BytesMut::with_capacity(initial.len() + 1024);
                buf.extend_from_slice(&initial);
                let read = io.read_buf(&mut buf);
                let n = match options.header_read_timeout {
                    Some(limit) => tokio::time::timeout(limit, read)
                        .await
                        .map_err(|_| ServeError::PrefaceTimeout)??,
                    None => read.await?,
                };
                if n == 0 {
                    return Ok(());
                }
                initial = buf.freeze();
            }
        }
    };
    let idle = options.idle_timeout.map(|timeout| Idle {
        timeout,
        activity: Arc::new(AtomicBool::new(false)),
    });
    let io = Rewind::new(initial, io, idle.as_ref().map(|i| i.activity.clone()));
    if version == Version::HTTP_2 {
        let ctx = ConnectionInfo::new(peer, Version::HTTP_2, options.scheme);
        return serve_h2(io, ctx, handler, &options, &mut shutdown, idle.as_ref()).await;
    }

    let ctx = ConnectionInfo::new(peer, Version::HTTP_11, options.scheme);
    let h2c_slot = Arc::new(Mutex::new(None));
    let service = H1Service {
        handler: handler.clone(),
        ctx: ctx.clone(),
        h2c: options.h2c_upgrade.then(|| h2c_slot.clone()),
    };
    let mut builder = http1::Builder::new();
    builder
        .max_buf_size(options.max_header_bytes.max(8192))
        .max_header_size(options.max_header_bytes)
        .max_headers(options.max_headers)
        .half_close(options.h1_half_close);
    // Not `pipeline_flush`: hyper then skips flushing while unparsed bytes are
    // buffered, so the automatic 400 for a malformed request is never sent.
    if let Some(limit) = options.header_read_timeout {
        builder.timer(TokioTimer::new()).header_read_timeout(limit);
    }
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    drive(conn, &mut shutdown, idle.as_ref())
        .await
        .map_err(ServeError::Http1)?;

    let pending = h2c_slot.lock().take();
    let Some(pending) = pending else {
        return Ok(());
    };
    let upgraded = pending.on_upgrade.await.map_err(ServeError::H2cUpgrade)?;
    let io = InjectStream1::new(TokioIo::new(upgraded), pending.stream1);
    let ctx = ctx.with_version(Version::HTTP_2);
    serve_h2(io, ctx, handler, &options, &mut shutdown, idle.as_ref()).await
}

async fn serve_h2<IO>(
    io: IO,
    ctx: ConnectionInfo,
    handler: Arc<dyn Handler>,
    options: &ServerOptions,
    shutdown: &mut watch::Receiver<bool>,
    idle: Option<&Idle>,
) -> Result<(), ServeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.h2_max_concurrent_streams)
        .initial_stream_window_size(options.h2_initial_stream_window)
        .initial_connection_window_size(options.h2_initial_connection_window)
        .max_frame_size(options.h2_max_frame_size.clamp(16_384, 16_777_215))
        .max_header_list_size(u32::try_from(options.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(options.h2_keepalive_interval)
        .keep_alive_timeout(options.h2_keepalive_timeout);
    let service = H2Service { handler, ctx };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    drive(conn, shutdown, idle).await.map_err(ServeError::Http2)
}

/// A hyper connection future that can be asked to shut down gracefully.
trait Graceful: Future<Output = hyper::Result<()>> {
    fn graceful(self: Pin<&mut Self>);
}

impl<I, S> Graceful for http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, E> Graceful for http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, Body>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// The idle timeout of one connection: its IO sets `activity` when bytes move.
struct Idle {
    timeout: Duration,
    activity: Arc<AtomicBool>,
}

/// Runs a connection to its end; on shutdown, or after a whole idle period without
/// activity, asks it to finish gracefully.
async fn drive<C: Graceful>(
    conn: C,
    shutdown: &mut watch::Receiver<bool>,
    idle: Option<&Idle>,
) -> hyper::Result<()> {
    let mut conn = std::pin::pin!(conn);
    let mut watching = true;
    if *shutdown.borrow_and_update() {
        conn.as_mut().graceful();
        watching = false;
    }
    let period = idle.map_or(Duration::from_secs(3600), |i| i.timeout);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut idle_watch = idle.is_some();
    loop {
        tokio::select! {
            result = conn.as_mut() => return result,
            _ = ticks.tick(), if idle_watch => {
                // Each period, check that something moved since the last check.
                if let Some(idle) = idle
                    && !idle.activity.swap(false, Ordering::Relaxed)
                {
                    idle_watch = false;
                    conn.as_mut().graceful();
                }
            }
            changed = shutdown.changed(), if watching => {
                watching = false;
                if changed.is_ok() && *shutdown.borrow() {
                    conn.as_mut().graceful();
                } else if changed.is_ok() {
                    watching = true;
                }
            }
        }
    }
}

/// An h2c upgrade accepted on an HTTP/1.1 connection, waiting for the 101 to be sent.
struct H2cPending {
    on_upgrade: OnUpgrade,
    stream1: Bytes,
}

struct H1Service {
    handler: Arc<dyn Handler>,
    ctx: ConnectionInfo,
    h2c: Option<Arc<Mutex<Option<H2cPending>>>>,
}

impl hyper::service::Service<Request<Incoming>> for H1Service {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, mut request: Request<Incoming>) -> ServiceFuture {
        if let Some(slot) = &self.h2c
            && h2c::wants_h2c(&request)
        {
            let on_upgrade = hyper::upgrade::on(&mut request);
            let (parts, _) = request.into_parts();
            let stream1 = h2c::stream1_frames(parts, self.ctx.scheme());
            *slot.lock() = Some(H2cPending {
                on_upgrade,
                stream1,
            });
            return ServiceFuture::Ready(Some(h2c::switching_protocols()));
        }
        let ctx = if request.version() == self.ctx.version() {
            self.ctx.clone()
        } else {
            self.ctx.with_version(request.version())
        };
        ServiceFuture::Handler(self.handler.call(request.map(Body::Incoming), ctx))
    }
}

struct H2Service {
    handler: Arc<dyn Handler>,
    ctx: ConnectionInfo,
}

impl hyper::service::Service<Request<Incoming>> for H2Service {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, request: Request<Incoming>) -> ServiceFuture {
        ServiceFuture::Handler(
            self.handler
                .call(request.map(Body::Incoming), self.ctx.clone()),
        )
    }
}

/// The service future: the handler's, or an immediate answer.
enum ServiceFuture {
    Handler(HandlerFuture),
    Ready(Option<Response<Body>>),
}

impl Future for ServiceFuture {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            ServiceFuture::Handler(fut) => fut.as_mut().poll(cx).map(Ok),
            ServiceFuture::Ready(response) => {
                Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                    // Polled again after completion: hyper never does this.
                    Response::new(Body::Empty)
                })))
            }
        }
    }
}
