//! [`Body`]: the one body type of both directions.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::http::http2::H2Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;

use crate::http::client::{UpstreamBody, UpstreamBodyError};
use crate::http::server::request_body::{RequestBody, RequestBodyError};

/// A type-erased error, as carried by [`Body::Boxed`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a body could not produce its next frame.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The peer's HTTP/2 connection failed or reset the stream while the body was read.
    #[error("HTTP/2 body stream failed: {0}")]
    H2(#[from] h2::Error),
    /// A request body read by Strait's HTTP/1.1 server broke off (client closed,
    /// malformed chunk).
    #[error("request body: {0}")]
    Request(#[from] RequestBodyError),
    /// An upstream HTTP/1.1 response body broke off (connection closed or failed,
    /// malformed chunk).
    #[error(transparent)]
    Upstream(#[from] UpstreamBodyError),
    /// A boxed body failed.
    #[error("body failed: {0}")]
    Other(BoxError),
}

impl BodyError {
    /// Whether the failure came from the peer (stream or connection reset, truncated
    /// body), as opposed to a local body producer failing.
    pub fn is_peer_failure(&self) -> bool {
        matches!(
            self,
            BodyError::H2(_) | BodyError::Request(_) | BodyError::Upstream(_)
        )
    }
}

/// How a [`TrackedBody`] ended, as reported to its [`BodyObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEnd {
    /// The whole body (and its trailers, if any) was read to the end.
    Complete,
    /// The body failed or was dropped before its end: the connection it came from is
    /// not reusable.
    Aborted,
}

/// Told exactly once when a [`TrackedBody`] is finished with (read to the end, failed or
/// dropped). Upstream pools use it to learn when an HTTP/1.1 connection is free again.
pub trait BodyObserver: Send + Sync + 'static {
    /// The body ended; `end` says whether it was read completely.
    fn body_finished(&self, end: BodyEnd);
}

/// A streamed HTTP/2 body from a peer whose end is reported to a [`BodyObserver`].
pub struct TrackedBody {
    body: H2Body,
    observer: Option<Arc<dyn BodyObserver>>,
}

impl TrackedBody {
    /// Wraps `body`; `observer` hears about its end exactly once.
    pub fn new(body: H2Body, observer: Arc<dyn BodyObserver>) -> Self {
        TrackedBody {
            body,
            observer: Some(observer),
        }
    }

    fn finish(&mut self, end: BodyEnd) {
        if let Some(observer) = self.observer.take() {
            observer.body_finished(end);
        }
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        let end = if self.body.is_end_stream() {
            BodyEnd::Complete
        } else {
            BodyEnd::Aborted
        };
        self.finish(end);
    }
}

impl fmt::Debug for TrackedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedBody")
            .field("body", &self.body)
            .field("finished", &self.observer.is_none())
            .finish()
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let polled = self.body.poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finish(BodyEnd::Complete),
            Poll::Ready(Some(Err(_))) => self.finish(BodyEnd::Aborted),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.finish(BodyEnd::Complete),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The body of every request and response Strait handles, in both directions.
///
/// An enum rather than a box, so the common cases cost no allocation: no body, one
/// buffer, or a peer's body streamed through. A streamed body is pulled only as fast as
/// the side it is sent to consumes it (HTTP/2 flow-control credit is released as data
/// is polled, HTTP/1 reads stop when nobody polls), so a slow reader never makes Strait
/// buffer without bound. Trailers pass through as trailer frames.
#[derive(Default)]
pub enum Body {
    /// No body at all.
    #[default]
    Empty,
    /// One buffer, sent as a single data frame (an empty buffer is no body).
    Full(Bytes),
    /// A downstream HTTP/1.1 request's body, read from the client as it is polled.
    H1(RequestBody),
    /// A downstream HTTP/2 request's body, streamed with flow control.
    H2(H2Body),
    /// An upstream HTTP/1.1 response body, read from the connection as it is polled.
    Upstream(UpstreamBody),
    /// A peer's body whose end is reported to an observer (HTTP/2 upstream responses).
    Tracked(TrackedBody),
    /// Any other body; costs an allocation, for the uncommon cases.
    Boxed(BoxBody<Bytes, BoxError>),
}

impl Body {
    /// No body.
    pub fn empty() -> Self {
        Body::Empty
    }

    /// One buffer.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Body::Full(bytes.into())
    }

    /// Boxes any body with `Bytes` data (a channel, a generated stream...).
    pub fn boxed<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        Body::Boxed(BoxBody::new(body.map_err(Into::into)))
    }
}

impl Body {
    /// What is known of the body's length before it is sent, for its HTTP/1.1 framing.
    pub(crate) fn length(&self) -> crate::http::h1::BodyLength {
        use crate::http::h1::BodyLength;
        if http_body::Body::is_end_stream(self) {
            return BodyLength::Empty;
        }
        match http_body::Body::size_hint(self).exact() {
            Some(n) => BodyLength::Exact(n),
            None => BodyLength::Unknown,
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::Full(bytes)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Body::Full(Bytes::from(s))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::Full(Bytes::from_static(s.as_bytes()))
    }
}

impl From<TrackedBody> for Body {
    fn from(body: TrackedBody) -> Self {
        Body::Tracked(body)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Body::Empty"),
            Body::Full(b) => write!(f, "Body::Full({} bytes)", b.len()),
            Body::H1(b) => f.debug_tuple("Body::H1").field(b).finish(),
            Body::H2(b) => f.debug_tuple("Body::H2").field(b).finish(),
            Body::Upstream(b) => f.debug_tuple("Body::Upstream").field(b).finish(),
            Body::Tracked(b) => f.debug_tuple("Body::Tracked").field(b).finish(),
            Body::Boxed(_) => f.write_str("Body::Boxed"),
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(bytes) => {
                let bytes = std::mem::take(bytes);
                Poll::Ready((!bytes.is_empty()).then(|| Ok(Frame::data(bytes))))
            }
            Body::H1(body) => body.poll_frame(cx).map_err(BodyError::Request),
            Body::H2(body) => body.poll_frame(cx).map_err(BodyError::H2),
            Body::Upstream(body) => body.poll_frame(cx).map_err(BodyError::Upstream),
            Body::Tracked(body) => Pin::new(body).poll_frame(cx).map_err(BodyError::H2),
            Body::Boxed(body) => Pin::new(body).poll_frame(cx).map_err(BodyError::Other),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_empty(),
            Body::H1(body) => body.is_end_stream(),
            Body::H2(body) => body.is_end_stream(),
            Body::Upstream(body) => body.is_end_stream(),
            Body::Tracked(body) => body.is_end_stream(),
            Body::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Body::H1(body) => body.size_hint(),
            Body::H2(body) => body.size_hint(),
            Body::Upstream(body) => body.size_hint(),
            Body::Tracked(body) => body.size_hint(),
            Body::Boxed(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body::Body as _;
    use http_body_util::BodyExt;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn body_is_send_and_sync() {
        assert_send_sync::<Body>();
    }

    #[tokio::test]
    async fn full_yields_its_bytes_once() {
        let body = Body::full("hello");
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"hello");
    }

    #[tokio::test]
    async fn empty_and_empty_full_are_end_of_stream() {
        assert!(Body::empty().is_end_stream());
        assert!(Body::full(Bytes::new()).is_end_stream());
        let mut body = Body::full(Bytes::new());
        assert!(body.frame().await.is_none());
    }

    #[tokio::test]
    async fn boxed_passes_trailers_through() {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let inner = http_body_util::Full::new(Bytes::from_static(b"x")).with_trailers(
            std::future::ready(Some(Ok::<_, std::convert::Infallible>(trailers))),
        );
        let body = Body::boxed(inner);
        let collected = body.collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(&collected.to_bytes()[..], b"x");
    }
}
