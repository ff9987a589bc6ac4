//! The downstream server driver: HTTP/1.1, HTTP/2 prior knowledge and h2c upgrade on
//! one connection type.

mod h1;
mod h2c;
mod park;
pub(crate) mod request_body;
mod rewind;
#[cfg(test)]
mod tests;

pub use self::park::{IdleConnections, Parker};
pub(crate) use self::rewind::Rewind;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response, Version};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::http::{Body, ConnectionInfo, Scheme};
use strait_codec_http::{HttpDetect, detect_version};

use self::h2c::InjectStream1;

/// The future a [`Handler`] returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// What the server driver calls for every request, on every HTTP version.
///
/// The request body is the peer's body streamed ([`Body::H1`] for HTTP/1.1,
/// [`Body::H2`] for HTTP/2); an HTTP/1.1 request asking for an upgrade carries an
/// [`crate::http::OnUpgrade`] in its extensions (take it with [`crate::http::upgrade::on`] before
/// forwarding, answer `101`, then [`crate::http::tunnel`]). The handler never fails: proxy failures are answered with
/// [`strait_codec_http::failure_response`].
pub trait Handler: Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, request: Request<Body>, ctx: ConnectionInfo) -> HandlerFuture;

    /// A malformed HTTP/1 request was answered with `status` (400, 431, 501) by the
    /// driver itself, before any head could be handed to [`Handler::call`]; the
    /// connection closes next. Called once per such request, so it can be counted and
    /// logged like any other request's end.
    fn rejected(&self, status: http::StatusCode, ctx: &ConnectionInfo) {
        let _ = (status, ctx);
    }
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

impl ServerOptions {
    /// How long an idle HTTP/1 connection waits for its next request head: the shorter
    /// of the head read and idle timeouts (`None`: unbounded).
    pub(crate) fn idle_wait(&self) -> Option<Duration> {
        match (self.header_read_timeout, self.idle_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Why a downstream connection ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reading or writing the connection failed.
    #[error("connection I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The first bytes did not arrive within the header read timeout.
    #[error("timed out waiting for the first request")]
    PrefaceTimeout,
    /// A malformed HTTP/1 request head was answered with `status` (400, 431, 501) and
    /// the connection closed; no handler saw it ([`Handler::rejected`] was told).
    #[error("rejected HTTP/1 request ({status}): {reason}")]
    Rejected {
        /// The status sent.
        status: u16,
        /// What was wrong.
        reason: String,
    },
    /// A request body broke its framing (or the client closed inside it): answered with
    /// `status` if no answer had started, and the connection closed. The handler had
    /// the request and saw its body fail.
    #[error("malformed HTTP/1 request body ({status}): {reason}")]
    BadRequestBody {
        /// The status sent (when no answer had started).
        status: u16,
        /// What was wrong.
        reason: String,
    },
    /// A response body produced more or fewer bytes than its `content-length`; the
    /// connection was closed so the client cannot mistake it for a whole answer.
    #[error("response body length differs from its content-length")]
    BodyLength,
    /// A response body failed mid-way (the upstream reset); the connection was closed
    /// with the body cut.
    #[error("response body failed: {0}")]
    ResponseBody(String),
    /// The HTTP/2 connection failed (protocol error, peer reset...).
    #[error("HTTP/2 connection: {0}")]
    Http2(#[source] h2::Error),
    /// The HTTP/2 preface was not followed by a SETTINGS frame (answered with GOAWAY
    /// PROTOCOL_ERROR).
    #[error("HTTP/2 preface not followed by SETTINGS")]
    NoInitialSettings,
}

/// A downstream connection's byte stream, with a way to wait for readability that
/// holds no buffer (an idle keep-alive connection then costs its socket and task only).
pub trait ServerIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Ready when a read would make progress. The default says so at once (the driver
    /// then waits in a read, holding a buffer).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let _ = cx;
        Poll::Ready(Ok(()))
    }

    /// The plain TCP socket under the stream, taken off Tokio's reactor, for an idle
    /// connection to park ([`serve_connection_parking`]); `Err(self)` when the stream
    /// cannot park (not plain TCP), and `Ok(Err(_))` when taking it off failed (the
    /// connection then closes).
    fn into_parkable(self) -> Result<std::io::Result<std::net::TcpStream>, Self>
    where
        Self: Sized,
    {
        Err(self)
    }
}

impl ServerIo for tokio::net::TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        tokio::net::TcpStream::poll_read_ready(self, cx)
    }

    fn into_parkable(self) -> Result<std::io::Result<std::net::TcpStream>, Self> {
        Ok(self.into_std())
    }
}

impl ServerIo for tokio::io::DuplexStream {}

/// A boxed stream (a TLS stream over TCP): served in its task, never parked.
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> ServerIo for Box<T> {}

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
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError>
where
    IO: ServerIo,
{
    serve(io, initial, peer, handler, options, shutdown, None).await
}

/// Like [`serve_connection`], except that an HTTP/1.1 connection idle for a while
/// leaves its task and waits in `idle` (no task, no timer: about its socket's
/// registration and a few hundred bytes), to be served again in a new task when its
/// next request arrives. This call then returns while the connection lives on, with
/// `parker`'s keepsake. HTTP/2 connections are served in this call to their end.
pub async fn serve_connection_parking<IO>(
    io: IO,
    initial: Bytes,
    peer: SocketAddr,
    handler: Arc<dyn Handler>,
    options: Arc<ServerOptions>,
    shutdown: watch::Receiver<bool>,
    parker: Parker,
) -> Result<(), ServeError>
where
    IO: ServerIo,
{
    serve(io, initial, peer, handler, options, shutdown, Some(parker)).await
}

async fn serve<IO: ServerIo>(
    io: IO,
    initial: Bytes,
    peer: SocketAddr,
    handler: Arc<dyn Handler>,
    options: Arc<ServerOptions>,
    mut shutdown: watch::Receiver<bool>,
    parker: Option<park::Parker>,
) -> Result<(), ServeError> {
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
    if version == Version::HTTP_2 {
        let ctx = ConnectionInfo::new(peer, Version::HTTP_2, options.scheme);
        return serve_h2(io, initial, None, ctx, handler, &options, &mut shutdown).await;
    }

    let ctx = ConnectionInfo::new(peer, Version::HTTP_11, options.scheme);
    if let Some(parker) = parker {
        return park::serve_h1_parking(io, initial, ctx, handler, options, shutdown, parker).await;
    }
    let ended = h1::serve(
        io,
        initial,
        ctx.clone(),
        handler.clone(),
        &options,
        &mut shutdown,
        h1::Parking::default(),
    )
    .await?;
    let h1::H1End::H2c { io, rest, stream1 } = ended else {
        return Ok(());
    };
    serve_upgraded_h2(io, rest, stream1, &ctx, handler, &options, &mut shutdown).await
}

/// The rest of an HTTP/1.1 connection that switched by `Upgrade: h2c`: HTTP/2 on `io`,
/// reading `rest` first, with the upgraded request injected as stream 1.
pub(super) async fn serve_upgraded_h2<IO: ServerIo>(
    io: IO,
    rest: Bytes,
    stream1: Bytes,
    h1_ctx: &ConnectionInfo,
    handler: Arc<dyn Handler>,
    options: &ServerOptions,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let ctx = h1_ctx.with_version(Version::HTTP_2);
    serve_h2(io, rest, Some(stream1), ctx, handler, options, shutdown).await
}

/// Serves HTTP/2 on `io`, reading `prefix` first and, after an h2c upgrade, injecting
/// the upgraded request as stream 1. Boxed: an HTTP/1.1 connection's task must not be
/// sized for an HTTP/2 connection's state.
pub(super) async fn serve_h2<IO: ServerIo>(
    io: IO,
    prefix: Bytes,
    stream1: Option<Bytes>,
    ctx: ConnectionInfo,
    handler: Arc<dyn Handler>,
    options: &ServerOptions,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), ServeError> {
    let idle = Idle::from_options(options);
    let io = Rewind::new(prefix, io, idle.as_ref().map(|i| i.activity.clone()));
    let idle = idle.as_ref();
    match stream1 {
        Some(stream1) => {
            let io = InjectStream1::new(io, stream1);
            Box::pin(crate::http::http2::server::serve(
                io, ctx, handler, options, shutdown, idle,
            ))
            .await
        }
        None => {
            Box::pin(crate::http::http2::server::serve(
                io, ctx, handler, options, shutdown, idle,
            ))
            .await
        }
    }
}

/// The idle timeout of one connection: its IO sets `activity` when bytes move.
pub(crate) struct Idle {
    pub(crate) timeout: Duration,
    pub(crate) activity: Arc<AtomicBool>,
}

impl Idle {
    /// The idle timeout of an HTTP/2 connection, if the options set one.
    fn from_options(options: &ServerOptions) -> Option<Idle> {
        options.idle_timeout.map(|timeout| Idle {
            timeout,
            activity: Arc::new(AtomicBool::new(false)),
        })
    }
}
