//! The body of a request read by Strait's own HTTP/1.1 server driver.
//!
//! The driver owns the socket; the body handed to the handler is the consumer end of a
//! one-slot hand-off. The driver reads the socket for the body only while the consumer
//! asks for data (so an unread body costs no buffer and a slow upstream slows the
//! client down), and the first ask is what sends `100 Continue`.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use parking_lot::Mutex;

/// Why a request body stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestBodyError {
    /// The body's framing was broken (bad chunk, oversized trailers...).
    #[error("malformed request body")]
    Malformed,
    /// The client closed or reset the connection before the body ended.
    #[error("client connection closed before the request body ended")]
    Closed,
}

#[derive(Default)]
struct State {
    /// The next frame, waiting for the consumer.
    slot: Option<Result<Frame<Bytes>, RequestBodyError>>,
    /// The producer has put its last frame (or an error) in the slot.
    ended: bool,
    /// The consumer is waiting for a frame.
    wanted: bool,
    /// The consumer is gone.
    dropped: bool,
    /// Body bytes handed over so far.
    received: u64,
    consumer: Option<Waker>,
    producer: Option<Waker>,
}

type Shared = Arc<Mutex<State>>;

/// The handler's end: a streamed HTTP/1.1 request body.
pub struct RequestBody {
    shared: Shared,
    /// Bytes still to come when the request said `Content-Length`.
    length: Option<u64>,
    /// The end was handed out.
    done: bool,
}

/// The driver's end.
pub(super) struct BodySender {
    shared: Shared,
}

/// A connected pair for one request; `length` is the declared `Content-Length`.
pub(super) fn channel(length: Option<u64>) -> (BodySender, RequestBody) {
    let shared = Shared::default();
    (
        BodySender {
            shared: shared.clone(),
        },
        RequestBody {
            shared,
            length,
            done: false,
        },
    )
}

impl BodySender {
    /// Whether the consumer waits for a frame and the slot is free; registers the
    /// driver's waker otherwise, so it is woken when that changes.
    pub(super) fn poll_want(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut state = self.shared.lock();
        if state.dropped {
            return Poll::Ready(false);
        }
        if state.wanted && state.slot.is_none() && !state.ended {
            return Poll::Ready(true);
        }
        set_waker(&mut state.producer, cx);
        Poll::Pending
    }

    /// Whether the consumer is gone.
    pub(super) fn is_dropped(&self) -> bool {
        self.shared.lock().dropped
    }

    /// Hands one frame over (the slot is free: [`Self::poll_want`] said so); `last`
    /// ends the body with it.
    pub(super) fn send(&self, frame: Result<Frame<Bytes>, RequestBodyError>, last: bool) {
        let mut state = self.shared.lock();
        if let Some(data) = frame.as_ref().ok().and_then(Frame::data_ref) {
            state.received += data.len() as u64;
        }
        state.ended = last || frame.is_err();
        state.slot = Some(frame);
        state.wanted = false;
        if let Some(waker) = state.consumer.take() {
            drop(state);
            waker.wake();
        }
    }

    /// Ends the body with no further frame.
    pub(super) fn finish(&self) {
        let mut state = self.shared.lock();
        state.ended = true;
        if let Some(waker) = state.consumer.take() {
            drop(state);
            waker.wake();
        }
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if !state.ended {
            // The connection went away with the body unfinished.
            state.ended = true;
            if state.slot.is_none() {
                state.slot = Some(Err(RequestBodyError::Closed));
            }
        }
        if let Some(waker) = state.consumer.take() {
            drop(state);
            waker.wake();
        }
    }
}

fn set_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(waker) if waker.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

impl RequestBody {
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let mut state = self.shared.lock();
        if let Some(frame) = state.slot.take() {
            if state.ended {
                self.done = true;
            }
            if let (Ok(frame), Some(left)) = (&frame, self.length.as_mut())
                && let Some(data) = frame.data_ref()
            {
                *left = left.saturating_sub(data.len() as u64);
            }
            return Poll::Ready(Some(frame));
        }
        if state.ended {
            self.done = true;
            return Poll::Ready(None);
        }
        set_waker(&mut state.consumer, cx);
        if !state.wanted {
            state.wanted = true;
            if let Some(waker) = state.producer.take() {
                drop(state);
                waker.wake();
            }
        }
        Poll::Pending
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.done || self.length == Some(0)
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) if !self.done => SizeHint::with_exact(n),
            _ if self.done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

/// Reads how many body bytes of a request have been received, after the body itself
/// has been handed on (to an upstream).
#[derive(Clone)]
pub struct ReceivedBytes(Counted);

#[derive(Clone)]
enum Counted {
    /// An HTTP/1.1 body's shared state.
    H1(Shared),
    /// An HTTP/2 body's counter.
    H2(Arc<std::sync::atomic::AtomicU64>),
}

impl ReceivedBytes {
    /// Body bytes received from the client so far.
    pub fn get(&self) -> u64 {
        match &self.0 {
            Counted::H1(shared) => shared.lock().received,
            Counted::H2(n) => n.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Counts the bytes added to `counter` (an HTTP/2 body's).
    pub(crate) fn of_counter(counter: Arc<std::sync::atomic::AtomicU64>) -> Self {
        ReceivedBytes(Counted::H2(counter))
    }
}

impl std::fmt::Debug for ReceivedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ReceivedBytes").field(&self.get()).finish()
    }
}

impl RequestBody {
    /// A counter of this body's bytes that outlives the body.
    pub fn received_bytes(&self) -> ReceivedBytes {
        ReceivedBytes(Counted::H1(self.shared.clone()))
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.dropped = true;
        if let Some(waker) = state.producer.take() {
            drop(state);
            waker.wake();
        }
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("length", &self.length)
            .field("done", &self.done)
            .finish()
    }
}
