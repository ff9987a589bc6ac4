//! Upstream client connections: HTTP/1.1 (one exchange at a time) and HTTP/2 (many
//! streams). Which connection to use, and how many to open, is the pool's business.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use strait_codec_framework::ProxyFailure;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Body;
use crate::body::{BodyEnd, BodyObserver, TrackedBody};

/// Settings of upstream connections.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Largest response head accepted from an HTTP/1 upstream, in bytes (at least 8 KiB).
    pub max_header_bytes: usize,
    /// Most header fields in an HTTP/1 response.
    pub max_headers: usize,
    /// HTTP/2 initial stream window: how much of one response the upstream may send
    /// before the downstream has consumed it.
    pub h2_initial_stream_window: u32,
    /// HTTP/2 initial connection window.
    pub h2_initial_connection_window: u32,
    /// HTTP/2 `SETTINGS_MAX_FRAME_SIZE` we accept.
    pub h2_max_frame_size: u32,
    /// Send an HTTP/2 PING after this much silence (none: never).
    pub h2_keepalive_interval: Option<Duration>,
    /// Close the HTTP/2 connection when a PING is not answered within this.
    pub h2_keepalive_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            h2_initial_stream_window: 256 * 1024,
            h2_initial_connection_window: 1024 * 1024,
            h2_max_frame_size: 16 * 1024,
            h2_keepalive_interval: None,
            h2_keepalive_timeout: Duration::from_secs(20),
        }
    }
}

/// Why an upstream exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP handshake on a fresh connection failed.
    #[error("upstream handshake failed: {0}")]
    Handshake(#[source] hyper::Error),
    /// The request was certainly not sent: the connection was closed, going away,
    /// upgraded or busy. The request is given back when it was not consumed.
    #[error("request not sent: upstream connection unusable")]
    NotSent {
        /// The request, untouched, to send elsewhere.
        request: Option<Box<Request<Body>>>,
        /// hyper's reason, when it had one.
        #[source]
        source: Option<hyper::Error>,
    },
    /// The upstream refused the stream before processing it (HTTP/2 `REFUSED_STREAM`,
    /// or a graceful GOAWAY that excluded it): safe to retry if the request can be
    /// rebuilt.
    #[error("upstream refused the request unprocessed: {0}")]
    Refused(#[source] hyper::Error),
    /// The upstream reset the stream after the request was sent.
    #[error("upstream reset the request: {0}")]
    Reset(#[source] hyper::Error),
    /// The connection failed while the request was in flight (closed, I/O error,
    /// malformed response).
    #[error("upstream connection failed: {0}")]
    Connection(#[source] hyper::Error),
}

impl ClientError {
    /// Whether the request was certainly not sent (nothing reached the upstream), so
    /// it may go to another connection or host; see [`ClientError::take_request`].
    pub fn was_not_sent(&self) -> bool {
        matches!(
            self,
            ClientError::NotSent { .. } | ClientError::Handshake(_)
        )
    }

    /// Whether the upstream certainly did not process the request: not sent, or
    /// refused unprocessed. Retrying is safe if the request can be rebuilt.
    pub fn is_retry_safe(&self) -> bool {
        self.was_not_sent() || matches!(self, ClientError::Refused(_))
    }

    /// The request, when it was not sent and not consumed.
    pub fn take_request(&mut self) -> Option<Request<Body>> {
        match self {
            ClientError::NotSent { request, .. } => request.take().map(|r| *r),
            _ => None,
        }
    }

    /// The proxy failure this amounts to: handshake and not-sent are connect
    /// failures, the rest upstream resets.
    pub fn failure(&self) -> ProxyFailure {
        match self {
            ClientError::Handshake(_) | ClientError::NotSent { .. } => ProxyFailure::ConnectFailure,
            ClientError::Refused(_) | ClientError::Reset(_) | ClientError::Connection(_) => {
                ProxyFailure::UpstreamReset
            }
        }
    }

    fn from_try_send(mut error: hyper::client::conn::TrySendError<Request<Body>>) -> Self {
        if let Some(request) = error.take_message() {
            return ClientError::NotSent {
                request: Some(Box::new(request)),
                source: Some(error.into_error()),
            };
        }
        let error = error.into_error();
        match h2_error(&error) {
            Some(h2) if h2.reason() == Some(h2::Reason::REFUSED_STREAM) && h2.is_remote() => {
                ClientError::Refused(error)
            }
            Some(h2)
                if h2.is_go_away()
                    && h2.is_remote()
                    && h2.reason() == Some(h2::Reason::NO_ERROR) =>
            {
                ClientError::Refused(error)
            }
            Some(h2) if h2.is_reset() => ClientError::Reset(error),
            _ => ClientError::Connection(error),
        }
    }

    fn not_sent(request: Request<Body>, source: Option<hyper::Error>) -> Self {
        ClientError::NotSent {
            request: Some(Box::new(request)),
            source,
        }
    }
}

fn h2_error(error: &hyper::Error) -> Option<&h2::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return Some(h2);
        }
        source = e.source();
    }
    None
}

// === impl Http1Connection ===

struct H1Shared {
    in_flight: AtomicBool,
    upgraded: AtomicBool,
    closed: AtomicBool,
    observer: OnceLock<Arc<dyn BodyObserver>>,
}

impl BodyObserver for H1Shared {
    fn body_finished(&self, end: BodyEnd) {
        if end == BodyEnd::Aborted {
            // hyper closes an HTTP/1 connection whose response was not read through.
            self.closed.store(true, Ordering::Release);
        }
        self.in_flight.store(false, Ordering::Release);
        if let Some(observer) = self.observer.get() {
            observer.body_finished(end);
        }
    }
}

/// An HTTP/1.1 upstream connection: one exchange at a time, reusable once the
/// response body is finished.
///
/// The response body is a [`Body::Tracked`]: when it is read to its end (or dropped,
/// or fails) the observer set with [`Http1Connection::set_observer`] is told, which is
/// when the pool can hand the connection out again (`BodyEnd::Aborted` means it is
/// closing instead). A `101 Switching Protocols` answer consumes the connection: the
/// observer is told `Aborted` at once and it is never reusable.
pub struct Http1Connection {
    sender: http1::SendRequest<Body>,
    shared: Arc<H1Shared>,
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
    /// Runs the HTTP/1.1 handshake on `io` (a connected socket) and spawns the task
    /// driving the connection, which ends when the connection closes.
    pub async fn handshake<T>(io: T, options: &ClientOptions) -> Result<Self, ClientError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http1::Builder::new()
            .max_buf_size(options.max_header_bytes.max(8192))
            .max_headers(options.max_headers)
            .handshake::<_, Body>(TokioIo::new(io))
            .await
            .map_err(ClientError::Handshake)?;
        let shared = Arc::new(H1Shared {
            in_flight: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            observer: OnceLock::new(),
        });
        let task_shared = shared.clone();
        tokio::spawn(async move {
            if let Err(error) = conn.with_upgrades().await {
                tracing::debug!(%error, "upstream HTTP/1 connection failed");
            }
            task_shared.closed.store(true, Ordering::Release);
        });
        Ok(Http1Connection { sender, shared })
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
            || self.shared.upgraded.load(Ordering::Acquire)
            || self.sender.is_closed()
    }

    /// Sends a request prepared with [`crate::prepare_upstream_request`] and waits for
    /// the response head. Waits first for the connection to finish the previous
    /// exchange if needed (a response body read to its end leaves the connection a
    /// moment later). A request that could not be sent comes back in
    /// [`ClientError::NotSent`].
    pub async fn send(&mut self, request: Request<Body>) -> Result<Response<Body>, ClientError> {
        if self.is_closed() {
            return Err(ClientError::not_sent(request, None));
        }
        if let Err(error) = self.sender.ready().await {
            self.shared.closed.store(true, Ordering::Release);
            return Err(ClientError::not_sent(request, Some(error)));
        }
        self.shared.in_flight.store(true, Ordering::Release);
        // Dropped before the exchange settles (a timeout abandoned it): the connection
        // is in an unknown state and must not be reused.
        let abandoned = Abandoned(Some(&self.shared));
        let result = self.sender.try_send_request(request).await;
        abandoned.disarm();
        match result {
            Ok(response) => {
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    self.shared.upgraded.store(true, Ordering::Release);
                    self.shared.body_finished(BodyEnd::Aborted);
                    return Ok(response.map(Body::Incoming));
                }
                let observer: Arc<dyn BodyObserver> = self.shared.clone();
                Ok(response.map(|body| Body::Tracked(TrackedBody::new(body, observer))))
            }
            Err(error) => {
                self.shared.in_flight.store(false, Ordering::Release);
                Err(ClientError::from_try_send(error))
            }
        }
    }
}

/// Marks an HTTP/1.1 connection closed when an exchange on it is abandoned midway.
struct Abandoned<'a>(Option<&'a H1Shared>);

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

// === impl Http2Connection ===

struct H2Shared {
    active: AtomicUsize,
    max_streams: AtomicUsize,
    go_away: AtomicBool,
    closed: AtomicBool,
}

impl BodyObserver for H2Shared {
    fn body_finished(&self, _end: BodyEnd) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a stream as active until disarmed (its response body then counts it).
struct ActiveStream<'a>(Option<&'a H2Shared>);

impl Drop for ActiveStream<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            shared.active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// An HTTP/2 upstream connection carrying many concurrent requests as streams.
/// Cloning gives another handle on the same connection.
///
/// The pool can read [`Http2Connection::max_concurrent_streams`] (the server's
/// `SETTINGS_MAX_CONCURRENT_STREAMS`) and [`Http2Connection::active_streams`] to open
/// another connection rather than queue. A GOAWAY from the server makes the connection
/// unusable for new requests ([`Http2Connection::is_closed`]); streams in flight finish.
#[derive(Clone)]
pub struct Http2Connection {
    sender: http2::SendRequest<Body>,
    shared: Arc<H2Shared>,
}

impl std::fmt::Debug for Http2Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http2Connection")
            .field("active_streams", &self.active_streams())
            .field("max_concurrent_streams", &self.max_concurrent_streams())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Http2Connection {
    /// Runs the HTTP/2 handshake (prior knowledge) on `io` and spawns the task
    /// driving the connection.
    pub async fn handshake<T>(io: T, options: &ClientOptions) -> Result<Self, ClientError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(H2Shared {
            active: AtomicUsize::new(0),
            max_streams: AtomicUsize::new(usize::MAX),
            go_away: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let io = GoAwayWatch::new(io, shared.clone());
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .initial_stream_window_size(options.h2_initial_stream_window)
            .initial_connection_window_size(options.h2_initial_connection_window)
            .max_frame_size(options.h2_max_frame_size.clamp(16_384, 16_777_215))
            .max_header_list_size(u32::try_from(options.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(options.h2_keepalive_interval)
            .keep_alive_timeout(options.h2_keepalive_timeout);
        let (sender, conn) = builder
            .handshake::<_, Body>(TokioIo::new(io))
            .await
            .map_err(ClientError::Handshake)?;
        let task_shared = shared.clone();
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%error, "upstream HTTP/2 connection failed");
            }
            task_shared.closed.store(true, Ordering::Release);
        });
        Ok(Http2Connection { sender, shared })
    }

    /// The server's current `SETTINGS_MAX_CONCURRENT_STREAMS` (`usize::MAX` while it
    /// has announced none).
    pub fn max_concurrent_streams(&self) -> usize {
        self.shared.max_streams.load(Ordering::Acquire)
    }

    /// Requests in flight on this connection: counted from `send` until the response
    /// body is finished with (or the send fails).
    pub fn active_streams(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Whether one more request would open a stream at once rather than queue.
    pub fn has_capacity(&self) -> bool {
        !self.is_closed() && self.active_streams() < self.max_concurrent_streams()
    }

    /// Whether the server sent GOAWAY (no new requests; streams in flight finish).
    pub fn is_going_away(&self) -> bool {
        self.shared.go_away.load(Ordering::Acquire)
    }

    /// Whether the connection takes no new requests: closed, failed, or going away.
    pub fn is_closed(&self) -> bool {
        self.is_going_away()
            || self.shared.closed.load(Ordering::Acquire)
            || self.sender.is_closed()
    }

    /// Sends a request (absolute URI; see [`crate::prepare_upstream_request`]) on a new
    /// stream and waits for the response head. Queues inside the connection if the
    /// server's stream limit is reached. A request that could not be sent comes back
    /// in [`ClientError::NotSent`].
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Body>, ClientError> {
        if self.is_closed() {
            return Err(ClientError::not_sent(request, None));
        }
        let mut sender = self.sender.clone();
        self.shared.active.fetch_add(1, Ordering::AcqRel);
        let mut guard = ActiveStream(Some(&self.shared));
        match sender.try_send_request(request).await {
            Ok(response) => {
                guard.0 = None;
                let observer: Arc<dyn BodyObserver> = self.shared.clone();
                Ok(response.map(|body| Body::Tracked(TrackedBody::new(body, observer))))
            }
            Err(error) => Err(ClientError::from_try_send(error)),
        }
    }
}

/// Watches the frames an HTTP/2 server sends, by walking frame headers (9 bytes each)
/// as the bytes go by: GOAWAY marks the connection as going away, and the
/// `SETTINGS_MAX_CONCURRENT_STREAMS` entries of SETTINGS frames are recorded. Other
/// payloads are skipped; nothing is copied or buffered.
///
/// (hyper applies the server's settings inside the connection task and exposes the
/// stream limit only on the connection future, which that task owns.)
struct GoAwayWatch<T> {
    inner: T,
    shared: Arc<H2Shared>,
    header: [u8; 9],
    header_len: usize,
    /// Payload bytes of the current frame still to go by.
    skip: usize,
    /// Whether the current payload is SETTINGS entries.
    in_settings: bool,
    entry: [u8; 6],
    entry_len: usize,
}

const FRAME_SETTINGS: u8 = 0x4;
const FRAME_GOAWAY: u8 = 0x7;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

impl<T> GoAwayWatch<T> {
    fn new(inner: T, shared: Arc<H2Shared>) -> Self {
        GoAwayWatch {
            inner,
            shared,
            header: [0; 9],
            header_len: 0,
            skip: 0,
            in_settings: false,
            entry: [0; 6],
            entry_len: 0,
        }
    }

    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                if self.in_settings {
                    self.settings_entries(&bytes[..n]);
                }
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len == 9 {
                let h = &self.header;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                let stream_zero = h[5..9].iter().all(|&b| b & 0x7f == 0);
                // A SETTINGS frame that is not an ACK.
                self.in_settings = h[3] == FRAME_SETTINGS && h[4] & 0x1 == 0 && stream_zero;
                self.entry_len = 0;
                if h[3] == FRAME_GOAWAY {
                    self.shared.go_away.store(true, Ordering::Release);
                }
                self.header_len = 0;
            }
        }
    }

    fn settings_entries(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = (6 - self.entry_len).min(bytes.len());
            self.entry[self.entry_len..self.entry_len + n].copy_from_slice(&bytes[..n]);
            self.entry_len += n;
            bytes = &bytes[n..];
            if self.entry_len == 6 {
                let e = &self.entry;
                let id = u16::from_be_bytes([e[0], e[1]]);
                let value = u32::from_be_bytes([e[2], e[3], e[4], e[5]]);
                if id == SETTINGS_MAX_CONCURRENT_STREAMS {
                    let value = usize::try_from(value).unwrap_or(usize::MAX);
                    self.shared.max_streams.store(value, Ordering::Release);
                }
                self.entry_len = 0;
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for GoAwayWatch<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let this = &mut *self;
            let filled = buf.filled();
            if filled.len() > before {
                this.scan(&filled[before..]);
            }
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GoAwayWatch<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<H2Shared> {
        Arc::new(H2Shared {
            active: AtomicUsize::new(0),
            max_streams: AtomicUsize::new(usize::MAX),
            go_away: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        })
    }

    #[test]
    fn go_away_seen_across_split_reads() {
        let s = shared();
        let mut watch = GoAwayWatch::new((), s.clone());
        // SETTINGS (6-byte payload), DATA (3 bytes), then GOAWAY split mid-header.
        let mut bytes = vec![0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100];
        bytes.extend_from_slice(&[0, 0, 3, 0, 1, 0, 0, 0, 1, 7, 7, 7]);
        bytes.extend_from_slice(&[0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
        for chunk in bytes[..30].chunks(4) {
            watch.scan(chunk);
        }
        assert!(!s.go_away.load(Ordering::Acquire));
        watch.scan(&bytes[30..]);
        assert!(s.go_away.load(Ordering::Acquire));
    }

    #[test]
    fn max_concurrent_streams_read_from_settings_split_anywhere() {
        // SETTINGS: INITIAL_WINDOW_SIZE 65535, MAX_CONCURRENT_STREAMS 7; then an ACK.
        let mut bytes = vec![0, 0, 12, 4, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0, 4, 0, 0, 0xff, 0xff, 0, 3, 0, 0, 0, 7]);
        bytes.extend_from_slice(&[0, 0, 0, 4, 1, 0, 0, 0, 0]);
        for split in 1..bytes.len() {
            let s = shared();
            let mut watch = GoAwayWatch::new((), s.clone());
            watch.scan(&bytes[..split]);
            watch.scan(&bytes[split..]);
            assert_eq!(s.max_streams.load(Ordering::Acquire), 7, "split at {split}");
        }
        // A later SETTINGS lowers it.
        let s = shared();
        let mut watch = GoAwayWatch::new((), s.clone());
        watch.scan(&bytes);
        watch.scan(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1]);
        assert_eq!(s.max_streams.load(Ordering::Acquire), 1);
        assert!(!s.go_away.load(Ordering::Acquire));
    }

    /// Arbitrary bytes in arbitrary splits never panic the frame walker.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let s = shared();
            let mut watch = GoAwayWatch::new((), s.clone());
            let len = (next() % 4096) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let n = 1 + (next() as usize % rest.len());
                watch.scan(&rest[..n]);
                rest = &rest[n..];
            }
        }
    }

    #[test]
    fn data_bytes_looking_like_go_away_are_skipped() {
        let s = shared();
        let mut watch = GoAwayWatch::new((), s.clone());
        // A DATA frame whose payload contains a GOAWAY-like header.
        watch.scan(&[0, 0, 9, 0, 0, 0, 0, 0, 1, 0, 0, 8, 7, 0, 0, 0, 0, 0]);
        assert!(!s.go_away.load(Ordering::Acquire));
    }
}
