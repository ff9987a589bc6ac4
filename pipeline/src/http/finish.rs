//! The end of a forwarded HTTP exchange is the end of its response body: the last
//! frame, a failure, or the body dropped unread. Only then does the request reach the
//! pipeline's one end, with its response byte count and, for gRPC, the status its
//! trailers carry.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use strait_codec_framework::{Outcome, ProxyFailure, RequestView};
use strait_codec_http::{classify_grpc_status, grpc_status};
use strait_stream::http::{Body, BodyError, ReceivedBytes};
use strait_stream::{Moment, RequestContext, RequestEnd};

use crate::core::ListenerPipeline;

/// A response body that ends its request when it ends.
pub(super) struct Finishing {
    body: Body,
    end: Option<Pending>,
}

/// What the request's end needs, held until the body ends.
pub(super) struct Pending {
    pub(super) fwd: Arc<ListenerPipeline>,
    pub(super) ctx: RequestContext,
    pub(super) protocol: &'static str,
    pub(super) grpc: bool,
    /// The outcome as the response head classed it.
    pub(super) outcome: Outcome,
    /// The status as the head gave it.
    pub(super) status: Option<u32>,
    /// Body bytes handed to the caller so far.
    pub(super) sent: u64,
    /// The request body's byte count (HTTP/1.1 requests with a body).
    pub(super) body_bytes: Option<ReceivedBytes>,
    /// The request's view, when a hook wants one.
    pub(super) view: Option<Box<RequestView>>,
}

impl Finishing {
    pub(super) fn new(body: Body, end: Pending) -> Self {
        Finishing {
            body,
            end: Some(end),
        }
    }

    /// Ends the request once; `outcome` replaces the head's when given.
    fn finish(&mut self, outcome: Option<Outcome>) {
        let Some(p) = self.end.take() else { return };
        let end = RequestEnd {
            outcome: outcome.unwrap_or(p.outcome),
            status: p.status,
            response_bytes: p.sent,
            at: Moment::now().nanos,
        };
        let mut ctx = p.ctx;
        ctx.request_bytes += p.body_bytes.as_ref().map_or(0, ReceivedBytes::get);
        p.fwd.finish(p.protocol, &ctx, end, p.view.as_deref());
    }
}

impl http_body::Body for Finishing {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(p)) = (frame.data_ref(), this.end.as_mut()) {
                    p.sent += data.len() as u64;
                }
                let mut outcome = None;
                if let (Some(trailers), Some(p)) = (frame.trailers_ref(), this.end.as_mut())
                    && p.grpc
                    && let Some(code) = grpc_status(trailers)
                {
                    outcome = Some(Outcome::Upstream(classify_grpc_status(code)));
                    p.status = Some(code);
                }
                // Recorded before the last frame is handed on, so whoever reads the
                // whole answer finds its record.
                if frame.is_trailers() || this.body.is_end_stream() {
                    this.finish(outcome);
                }
            }
            Poll::Ready(None) => this.finish(None),
            Poll::Ready(Some(Err(_))) => {
                // The upstream failed mid-body: the caller got a head and a cut body.
                this.finish(Some(Outcome::Failed(ProxyFailure::UpstreamReset)));
            }
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

impl Drop for Finishing {
    fn drop(&mut self) {
        // A body with nothing left (HEAD, 204, an empty answer) may be dropped unpolled;
        // otherwise the caller went away before the whole answer was written.
        let outcome = (!self.body.is_end_stream()).then_some(Outcome::Cancelled);
        self.finish(outcome);
    }
}
