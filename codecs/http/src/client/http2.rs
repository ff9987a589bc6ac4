//! [`Http2Connection`]: many concurrent streams over one connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use http::{Request, Response};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::watch::GoAwayWatch;
use super::{ClientError, ClientOptions};
use crate::Body;
use crate::body::{BodyEnd, BodyObserver, TrackedBody};

/// What an HTTP/2 connection's handles, response bodies and frame watcher share.
pub(super) struct H2Shared {
    /// Requests in flight.
    pub(super) active: AtomicUsize,
    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS` (`usize::MAX` until known).
    pub(super) max_streams: AtomicUsize,
    /// GOAWAY received.
    pub(super) go_away: AtomicBool,
    /// The connection task ended.
    pub(super) closed: AtomicBool,
}

impl H2Shared {
    pub(super) fn new() -> Self {
        H2Shared {
            active: AtomicUsize::new(0),
            max_streams: AtomicUsize::new(usize::MAX),
            go_away: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }
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
        let shared = Arc::new(H2Shared::new());
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
