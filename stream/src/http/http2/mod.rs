//! HTTP/2 on the `h2` crate directly (no hyper): the body of a received stream, the
//! pump that sends a body on a stream within its flow-control window, the downstream
//! connection driver, and keep-alive pings.

pub(crate) mod server;

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::{Ping, PingPong, RecvStream, SendStream};
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body::{Body as _, Frame, SizeHint};
use tokio::runtime::Handle;

use crate::http::Body;

/// The body of an HTTP/2 stream as received (a downstream request, or an upstream
/// response). Flow-control credit goes back to the peer as data is polled, so a slow
/// consumer slows the peer down instead of making Strait buffer.
pub struct H2Body {
    /// `None` only once dropped (handed to the drain of [`Drop`]).
    recv: Option<RecvStream>,
    /// Bytes still announced by `content-length`, if it was sent.
    remaining: Option<u64>,
    data_done: bool,
    done: bool,
    /// Data bytes received, counted once someone asked ([`H2Body::received_bytes`]).
    received: Option<Arc<AtomicU64>>,
}

impl H2Body {
    /// Wraps a received stream; `headers` give its `content-length`, if any.
    pub(crate) fn new(recv: RecvStream, headers: &HeaderMap) -> Self {
        let remaining = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let done = recv.is_end_stream();
        H2Body {
            recv: Some(recv),
            remaining,
            data_done: done,
            done,
            received: None,
        }
    }

    /// A counter of this body's data bytes that outlives the body.
    pub fn received_bytes(&mut self) -> crate::http::ReceivedBytes {
        let counter = self.received.get_or_insert_with(Arc::default).clone();
        crate::http::ReceivedBytes::of_counter(counter)
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let Some(recv) = self.recv.as_mut().filter(|_| !self.done) else {
            return Poll::Ready(None);
        };
        if !self.data_done {
            match recv.poll_data(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    // The consumer has it: the peer may send that much more.
                    let _ = recv.flow_control().release_capacity(data.len());
                    if let Some(left) = self.remaining.as_mut() {
                        *left = left.saturating_sub(data.len() as u64);
                    }
                    if let Some(received) = &self.received {
                        received.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    if recv.is_end_stream() {
                        self.data_done = true;
                        self.done = true;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(Some(Err(error))) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => self.data_done = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        match recv.poll_trailers(cx) {
            Poll::Ready(Ok(trailers)) => {
                self.done = true;
                Poll::Ready(trailers.map(|t| Ok(Frame::trailers(t))))
            }
            Poll::Ready(Err(error)) => {
                self.done = true;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.done || self.recv.as_ref().is_none_or(RecvStream::is_end_stream)
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None if self.is_end_stream() => SizeHint::with_exact(0),
            None => SizeHint::default(),
        }
    }
}

/// How long a body whose announced bytes all arrived waits for its END_STREAM once its
/// consumer is gone.
const END_STREAM_GRACE: Duration = Duration::from_secs(1);

impl Drop for H2Body {
    /// Every byte the peer announced arrived and only its END_STREAM is still on the way
    /// (some clients send it in a frame of its own, after the last data): the answer may
    /// be complete before it comes. Dropping the stream now would reset it under the
    /// peer, which some clients (Python's `h2`, so httpx) report as a failed request
    /// although RFC 9113 §8.1 allows it; so the stream is kept, briefly, until its end.
    fn drop(&mut self) {
        if self.done || self.remaining != Some(0) {
            return;
        }
        let (Some(mut recv), Ok(runtime)) = (self.recv.take(), Handle::try_current()) else {
            return;
        };
        if recv.is_end_stream() {
            return;
        }
        runtime.spawn(async move {
            let drain = async {
                while let Some(Ok(data)) = recv.data().await {
                    let _ = recv.flow_control().release_capacity(data.len());
                }
                let _ = recv.trailers().await;
            };
            let _ = tokio::time::timeout(END_STREAM_GRACE, drain).await;
        });
    }
}

impl std::fmt::Debug for H2Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Body")
            .field("remaining", &self.remaining)
            .field("done", &self.done)
            .finish()
    }
}

/// Why sending a body on a stream stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PipeError {
    /// The peer reset the stream (a downstream client cancelled, an upstream refused).
    #[error("stream reset by the peer: {0:?}")]
    Reset(h2::Reason),
    /// The stream or connection failed.
    #[error("HTTP/2 stream: {0}")]
    Stream(#[from] h2::Error),
    /// The body being sent failed; the stream was reset.
    #[error("body failed: {0}")]
    Body(crate::http::BodyError),
}

/// Sends `body` on `stream` (whose head is sent, without END_STREAM), frame by frame,
/// each data frame only as far as the peer's window allows, then the trailers or an
/// empty final frame. A peer reset stops it (the body is dropped: its producer sees the
/// cancellation); a failing body resets the stream.
pub(crate) async fn pipe_body(
    mut body: Body,
    stream: &mut SendStream<Bytes>,
) -> Result<(), PipeError> {
    loop {
        let next = poll_fn(|cx| {
            if let Poll::Ready(reason) = stream.poll_reset(cx) {
                return Poll::Ready(Err(match reason {
                    Ok(reason) => PipeError::Reset(reason),
                    Err(error) => PipeError::Stream(error),
                }));
            }
            Pin::new(&mut body).poll_frame(cx).map(Ok)
        })
        .await?;
        match next {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let end = body.is_end_stream();
                    send_data(stream, data, end).await?;
                    if end {
                        return Ok(());
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        stream.send_trailers(trailers)?;
                        return Ok(());
                    }
                }
            },
            None => {
                stream.send_data(Bytes::new(), true)?;
                return Ok(());
            }
            Some(Err(error)) => {
                stream.send_reset(h2::Reason::INTERNAL_ERROR);
                return Err(PipeError::Body(error));
            }
        }
    }
}

/// Sends `data` as the peer's window allows (asking for capacity, waiting for it).
async fn send_data(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), PipeError> {
    if data.is_empty() {
        if end {
            stream.send_data(data, true)?;
        }
        return Ok(());
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = poll_fn(|cx| {
            if let Poll::Ready(reason) = stream.poll_reset(cx) {
                return Poll::Ready(Err(match reason {
                    Ok(reason) => PipeError::Reset(reason),
                    Err(error) => PipeError::Stream(error),
                }));
            }
            match stream.poll_capacity(cx) {
                Poll::Ready(Some(Ok(n))) => Poll::Ready(Ok(n)),
                Poll::Ready(Some(Err(error))) => Poll::Ready(Err(PipeError::Stream(error))),
                // The stream can no longer send.
                Poll::Ready(None) => Poll::Ready(Err(PipeError::Reset(h2::Reason::CANCEL))),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;
        if granted == 0 {
            continue;
        }
        let chunk = data.split_to(granted.min(data.len()));
        stream.send_data(chunk, end && data.is_empty())?;
    }
    Ok(())
}

/// Sends a PING every `interval` and fails when one is not answered within `timeout`
/// (runs until then; the caller closes the connection).
pub(crate) async fn keepalive(
    mut ping: PingPong,
    interval: Duration,
    timeout: Duration,
) -> h2::Error {
    loop {
        tokio::time::sleep(interval).await;
        if let Err(error) = ping.send_ping(Ping::opaque()) {
            return error;
        }
        match tokio::time::timeout(timeout, poll_fn(|cx| ping.poll_pong(cx))).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return error,
            Err(_) => return h2::Error::from(h2::Reason::PROTOCOL_ERROR),
        }
    }
}
