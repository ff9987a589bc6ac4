//! Serving one downstream (accepted) connection.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use strait_codec_framework::{DecodeError, Frame, FrameKind, Limits, Protocol, ProxyFailure};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::handler::{Connecting, RequestHandler, Route};
use crate::inbox::{Completion, Inbox};

/// Bounds of one downstream connection.
#[derive(Debug, Clone, Copy)]
pub struct DownstreamOptions {
    /// Codec limits (maximum frame size).
    pub limits: Limits,
    /// Requests in flight on this connection before the proxy stops reading from it.
    pub max_in_flight: usize,
}

impl Default for DownstreamOptions {
    fn default() -> Self {
        DownstreamOptions {
            limits: Limits::default(),
            max_in_flight: 4096,
        }
    }
}

/// How a downstream connection ended.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Reading from or writing to the socket failed.
    #[error("downstream i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent bytes the protocol cannot frame; the connection was closed.
    #[error("downstream decode: {0}")]
    Decode(strait_codec_framework::CodecError),
}

const READ_CHUNK: usize = 32 * 1024;

/// One downstream connection's state, owned by its task.
struct Conn<H> {
    protocol: Arc<dyn Protocol>,
    handler: Arc<H>,
    inbox: Arc<Inbox>,
    wbuf: BytesMut,
    /// Two-way requests sent upstream and not completed yet.
    in_flight: usize,
}

/// Serves a connection, given as its read and write halves (for a `TcpStream`, its
/// lock-free `into_split`), until the peer closes it, a fatal decode error happens, or
/// `shutdown` turns true (then the connection stops reading, finishes its in-flight
/// requests and closes). `initial` holds bytes already read during protocol detection.
pub async fn serve<R, W, H>(
    mut rd: R,
    mut wr: W,
    initial: BytesMut,
    protocol: Arc<dyn Protocol>,
    handler: Arc<H>,
    options: DownstreamOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
    H: RequestHandler,
{
    let mut codec = protocol.new_codec(options.limits);
    let mut conn = Conn {
        protocol,
        handler,
        inbox: Arc::new(Inbox::default()),
        wbuf: BytesMut::with_capacity(READ_CHUNK),
        in_flight: 0,
    };
    let mut rbuf = initial;
    let mut connecting = FuturesUnordered::new();
    let mut completions = Vec::new();
    let mut reading = !*shutdown.borrow();
    let mut decode_pending = !rbuf.is_empty();

    loop {
        if decode_pending {
            decode_pending = false;
            // One clock read per batch: every request of a read shares its start time.
            let now = Instant::now();
            loop {
                match codec.decode(&mut rbuf) {
                    Ok(Some(frame)) => {
                        if let Some(later) = conn.on_frame(frame, now) {
                            connecting.push(later);
                        }
                    }
                    Ok(None) => break,
                    Err(DecodeError::Rejected { error, reply }) => {
                        tracing::debug!(%error, "rejected downstream frame");
                        if let Some(reply) = reply {
                            encode_into(&*reply, &mut conn.wbuf);
                        }
                    }
                    Err(DecodeError::Fatal(error)) => {
                        // Close; requests in flight are answered to nobody (P16).
                        let _ = wr.write_all(&conn.wbuf).await;
                        let _ = wr.shutdown().await;
                        return Err(ServeError::Decode(error));
                    }
                }
            }
        }
        let idle = conn.in_flight == 0 && connecting.is_empty();
        if !reading && idle && conn.wbuf.is_empty() {
            let _ = wr.shutdown().await;
            return Ok(());
        }
        let can_read = reading && conn.in_flight + connecting.len() < options.max_in_flight;
        if can_read {
            rbuf.reserve(READ_CHUNK);
        }

        tokio::select! {
            biased;
            _ = conn.inbox.ready(), if conn.in_flight > 0 => {
                conn.inbox.drain_into(&mut completions);
                for completion in completions.drain(..) {
                    conn.on_completion(completion);
                }
            }
            Some((request, result)) = connecting.next(), if !connecting.is_empty() => {
                match result {
                    Ok((upstream, timeout)) => conn.send(request, upstream, Instant::now(), timeout),
                    Err(failure) => conn.answer_failure(&*request, request.request_id(), failure),
                }
            }
            res = wr.write_buf(&mut conn.wbuf), if !conn.wbuf.is_empty() => {
                if res? == 0 {
                    return Err(ServeError::Io(std::io::ErrorKind::WriteZero.into()));
                }
            }
            res = rd.read_buf(&mut rbuf), if can_read => {
                if res? == 0 {
                    // Half-close from the peer: answer what is in flight, then close.
                    reading = false;
                } else {
                    decode_pending = true;
                }
            }
            _ = shutdown.changed(), if reading => {
                reading = false;
            }
        }
    }
}

type Later = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = (
                    Box<dyn Frame>,
                    Result<(crate::UpstreamConnection, Duration), ProxyFailure>,
                ),
            > + Send,
    >,
>;

// === impl Conn ===

impl<H: RequestHandler> Conn<H> {
    /// Handles one decoded frame; returns the slow-path work if the request must wait
    /// for a connection.
    fn on_frame(&mut self, mut frame: Box<dyn Frame>, now: Instant) -> Option<Later> {
        match frame.kind() {
            FrameKind::Heartbeat => {
                // Answered here, never forwarded (design invariant).
                if let Some(reply) = self.protocol.heartbeat_reply(&*frame) {
                    encode_into(&*reply, &mut self.wbuf);
                }
                None
            }
            FrameKind::Request | FrameKind::Oneway => match self.handler.route(&mut *frame) {
                Route::Send(upstream, timeout) => {
                    self.send(frame, upstream, now, timeout);
                    None
                }
                Route::Later(connecting) => Some(later(frame, connecting)),
                Route::Reply(mut response) => {
                    if frame.kind() == FrameKind::Request {
                        response.set_request_id(frame.request_id());
                        self.encode_or_fail(&*frame, &*response);
                    }
                    None
                }
                Route::Fail(failure) => {
                    self.answer_failure(&*frame, frame.request_id(), failure);
                    None
                }
            },
            kind => {
                tracing::debug!(?kind, "ignoring non-request frame from downstream");
                None
            }
        }
    }

    fn send(
        &mut self,
        request: Box<dyn Frame>,
        upstream: crate::UpstreamConnection,
        now: Instant,
        timeout: Duration,
    ) {
        let two_way = request.kind() == FrameKind::Request;
        match upstream.send(request, &self.inbox, now + timeout) {
            Ok(()) => self.in_flight += usize::from(two_way),
            Err((request, error)) => {
                self.answer_failure(&*request, request.request_id(), error.failure())
            }
        }
    }

    fn on_completion(&mut self, completion: Completion) {
        self.in_flight -= 1;
        match completion {
            Completion::Response {
                down_id,
                response,
                request,
            } => {
                if !encode_into(&*response, &mut self.wbuf) {
                    self.answer_failure(&*request, down_id, ProxyFailure::CodecError);
                }
            }
            Completion::Failed {
                down_id,
                request,
                failure,
            } => self.answer_failure(&*request, down_id, failure),
        }
    }

    fn encode_or_fail(&mut self, request: &dyn Frame, response: &dyn Frame) {
        if !encode_into(response, &mut self.wbuf) {
            self.answer_failure(request, request.request_id(), ProxyFailure::CodecError);
        }
    }

    /// The protocol's error answer; nothing at all for oneway requests.
    fn answer_failure(&mut self, request: &dyn Frame, down_id: u64, failure: ProxyFailure) {
        if let Some(mut reply) = self.protocol.error_response(request, failure) {
            reply.set_request_id(down_id);
            encode_into(&*reply, &mut self.wbuf);
        }
    }
}

fn later(frame: Box<dyn Frame>, connecting: Connecting) -> Later {
    Box::pin(async move { (frame, connecting.await) })
}

/// Appends `frame` to `wbuf`; on failure leaves `wbuf` as it was and returns false.
fn encode_into(frame: &dyn Frame, wbuf: &mut BytesMut) -> bool {
    let mark = wbuf.len();
    match frame.encode(wbuf) {
        Ok(()) => true,
        Err(error) => {
            // A frame we cannot encode must not leave half of itself on the wire.
            wbuf.truncate(mark);
            tracing::warn!(%error, "failed to encode frame for downstream");
            false
        }
    }
}
