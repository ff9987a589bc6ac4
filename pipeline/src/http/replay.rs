//! Keeping what a request sent, so a retry can send it again: the head, and the body
//! as it streamed out (shared `Bytes`, not copies), up to a bound. A request whose
//! body did not end, outgrew the bound, or carried trailers cannot be replayed, and is
//! not retried once it went out.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Request, Uri, Version};
use http_body::{Body as _, Frame, SizeHint};
use parking_lot::Mutex;
use strait_stream::http::{Body, BodyError};

/// The most body a request may have and still be retried (Envoy's default
/// per-connection buffer limit).
pub(crate) const MAX_REPLAY_BODY: usize = 1024 * 1024;

/// What a request needs to be sent again.
pub(crate) struct Replay {
    method: http::Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    /// The body as it went out; `None` when it had none.
    tape: Option<Arc<Mutex<Tape>>>,
}

#[derive(Default)]
struct Tape {
    chunks: Vec<Bytes>,
    len: usize,
    ended: bool,
    /// Too long, or trailers: cannot be sent again.
    spoiled: bool,
}

impl Replay {
    /// Keeps `request`'s head, and records its body as it is sent; returns the request
    /// to send.
    pub(crate) fn record(request: Request<Body>) -> (Request<Body>, Replay) {
        let (parts, body) = request.into_parts();
        let tape = (!body.is_end_stream()).then(|| Arc::new(Mutex::new(Tape::default())));
        let replay = Replay {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            version: parts.version,
            headers: parts.headers.clone(),
            tape: tape.clone(),
        };
        let body = match tape {
            Some(tape) => Body::boxed(Recording { inner: body, tape }),
            None => body,
        };
        (Request::from_parts(parts, body), replay)
    }

    /// The request again, if its body was sent whole and within the bound.
    pub(crate) fn request(&self) -> Option<Request<Body>> {
        let body = match &self.tape {
            None => Body::empty(),
            Some(tape) => {
                let tape = tape.lock();
                if !tape.ended || tape.spoiled {
                    return None;
                }
                let mut whole = BytesMut::with_capacity(tape.len);
                for chunk in &tape.chunks {
                    whole.extend_from_slice(chunk);
                }
                Body::full(whole.freeze())
            }
        };
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        Some(request)
    }
}

/// A request body that records what it yields on its tape.
struct Recording {
    inner: Body,
    tape: Arc<Mutex<Tape>>,
}

impl http_body::Body for Recording {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended_now = self.inner.is_end_stream();
        let mut tape = self.tape.lock();
        match &polled {
            Poll::Ready(Some(Ok(frame))) => match frame.data_ref() {
                Some(data) if !tape.spoiled => {
                    tape.len += data.len();
                    if tape.len > MAX_REPLAY_BODY {
                        tape.spoiled = true;
                        tape.chunks.clear();
                    } else {
                        tape.chunks.push(data.clone());
                    }
                }
                Some(_) => {}
                None => tape.spoiled = true, // trailers
            },
            Poll::Ready(None) => tape.ended = true,
            Poll::Ready(Some(Err(_))) => tape.spoiled = true,
            Poll::Pending => {}
        }
        // The sender may stop polling once the body says it has ended.
        tape.ended |= ended_now;
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_body_sent_whole_is_replayed_and_a_partial_one_is_not() {
        let request = Request::builder()
            .uri("/x")
            .header("a", "1")
            .body(Body::full("hello"))
            .unwrap();
        let (request, replay) = Replay::record(request);
        assert!(replay.request().is_none(), "nothing sent yet");
        let sent = request.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(sent, "hello");
        let again = replay.request().expect("sent whole");
        assert_eq!(again.uri(), "/x");
        assert_eq!(again.headers()["a"], "1");
        let body = again.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "hello");
        // A second retry gets the same bytes.
        let body = replay
            .request()
            .unwrap()
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(body, "hello");

        let (request, replay) = Replay::record(Request::new(Body::empty()));
        drop(request);
        assert!(replay.request().is_some(), "no body: always replayable");

        let big = Body::full(vec![0u8; MAX_REPLAY_BODY + 1]);
        let (request, replay) = Replay::record(Request::new(big));
        let _ = request.into_body().collect().await.unwrap();
        assert!(replay.request().is_none(), "past the bound");
    }
}
