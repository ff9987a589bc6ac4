//! [`Http2Connection`]: many concurrent streams over one connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncWrite};

use super::watch::GoAwayWatch;
use super::{ClientError, ClientOptions};
use crate::http::Body;
use crate::http::body::{BodyEnd, BodyObserver, TrackedBody};
use crate::http::http2::{H2Body, keepalive, pipe_body};

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
    sender: h2::client::SendRequest<Bytes>,
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
    /// driving the connection (and its keep-alive pings).
    pub async fn handshake<T>(io: T, options: &ClientOptions) -> Result<Self, ClientError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let shared = Arc::new(H2Shared::new());
        let io = GoAwayWatch::new(io, shared.clone());
        let mut builder = h2::client::Builder::new();
        builder
            .initial_window_size(options.h2_initial_stream_window)
            .initial_connection_window_size(options.h2_initial_connection_window)
            .max_frame_size(options.h2_max_frame_size.clamp(16_384, 16_777_215))
            .max_header_list_size(u32::try_from(options.max_header_bytes).unwrap_or(u32::MAX));
        let (sender, mut conn) = builder
            .handshake::<_, Bytes>(io)
            .await
            .map_err(ClientError::Handshake)?;
        let pings = match (options.h2_keepalive_interval, conn.ping_pong()) {
            (Some(interval), Some(ping)) => {
                Some(keepalive(ping, interval, options.h2_keepalive_timeout))
            }
            _ => None,
        };
        let task_shared = shared.clone();
        // h2 needs its connection polled to make progress: one task per connection.
        tokio::spawn(async move {
            let pings = async move {
                match pings {
                    Some(pings) => pings.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ended = conn => if let Err(error) = ended {
                    tracing::debug!(%error, "upstream HTTP/2 connection failed");
                },
                error = pings => tracing::debug!(%error, "upstream HTTP/2 ping unanswered"),
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
        self.is_going_away() || self.shared.closed.load(Ordering::Acquire)
    }

    /// Sends a request (absolute URI; see [`strait_codec_http::prepare_upstream_request`]) on a new
    /// stream and waits for the response head. Queues inside the connection if the
    /// server's stream limit is reached. A request that could not be sent comes back
    /// in [`ClientError::NotSent`].
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Body>, ClientError> {
        if self.is_closed() {
            return Err(ClientError::not_sent(request));
        }
        self.shared.active.fetch_add(1, Ordering::AcqRel);
        let mut guard = ActiveStream(Some(&self.shared));
        // Waits for a stream slot under the server's limit.
        let mut sender = match self.sender.clone().ready().await {
            Ok(sender) => sender,
            Err(error) => {
                self.shared.closed.store(true, Ordering::Release);
                return Err(ClientError::NotSent {
                    request: Some(Box::new(request)),
                    source: Some(Box::new(error)),
                });
            }
        };
        let (parts, body) = request.into_parts();
        let end = body.is_end_stream();
        let (response, mut stream) = sender
            .send_request(Request::from_parts(parts, ()), end)
            .map_err(ClientError::from_h2)?;
        if !end {
            // The request body streams on while the answer is awaited (and after).
            tokio::spawn(async move {
                if let Err(error) = pipe_body(body, &mut stream).await {
                    tracing::debug!(%error, "request body to the HTTP/2 upstream ended early");
                }
            });
        }
        let response = response.await.map_err(ClientError::from_h2)?;
        guard.0 = None;
        let observer: Arc<dyn BodyObserver> = self.shared.clone();
        let (parts, recv) = response.into_parts();
        let body = H2Body::new(recv, &parts.headers);
        Ok(Response::from_parts(
            parts,
            Body::Tracked(TrackedBody::new(body, observer)),
        ))
    }
}
