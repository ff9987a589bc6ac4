//! Upstream client connections: HTTP/1.1 (one exchange at a time) and HTTP/2 (many
//! streams). Which connection to use, and how many to open, is the pool's business.

mod http1;
mod http2;
mod watch;

use std::time::Duration;

use http::Request;
use strait_codec_framework::ProxyFailure;

use crate::http::Body;

pub use self::http1::{Http1Connection, UpstreamBody, UpstreamBodyError};
pub use self::http2::Http2Connection;

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
    Handshake(#[source] h2::Error),
    /// The request was certainly not sent: the connection was closed, going away,
    /// upgraded or busy. The request is given back when it was not consumed.
    #[error("request not sent: upstream connection unusable")]
    NotSent {
        /// The request, untouched, to send elsewhere.
        request: Option<Box<Request<Body>>>,
        /// Why, when known.
        #[source]
        source: Option<crate::http::BoxError>,
    },
    /// The upstream refused the stream before processing it (HTTP/2 `REFUSED_STREAM`,
    /// or a graceful GOAWAY that excluded it): safe to retry if the request can be
    /// rebuilt.
    #[error("upstream refused the request unprocessed: {0}")]
    Refused(#[source] h2::Error),
    /// The upstream reset the stream after the request was sent.
    #[error("upstream reset the request: {0}")]
    Reset(#[source] h2::Error),
    /// The connection failed while the request was in flight (closed, I/O error,
    /// malformed response).
    #[error("upstream connection failed: {0}")]
    Connection(#[source] crate::http::BoxError),
    /// No response head came by the deadline the exchange was given; the connection
    /// is closed (its state is unknown).
    #[error("no upstream response head by the request's deadline")]
    TimedOut,
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
            ClientError::TimedOut => ProxyFailure::Timeout,
        }
    }

    /// Classes an HTTP/2 stream or connection error.
    fn from_h2(error: h2::Error) -> Self {
        if error.is_remote() && error.reason() == Some(h2::Reason::REFUSED_STREAM) {
            return ClientError::Refused(error);
        }
        if error.is_go_away() && error.is_remote() && error.reason() == Some(h2::Reason::NO_ERROR) {
            return ClientError::Refused(error);
        }
        if error.is_reset() {
            return ClientError::Reset(error);
        }
        ClientError::Connection(Box::new(error))
    }

    fn not_sent(request: Request<Body>) -> Self {
        ClientError::NotSent {
            request: Some(Box::new(request)),
            source: None,
        }
    }
}
