//! Serving one downstream (accepted) connection.

use std::sync::Arc;

use bytes::BytesMut;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use strait_codec_framework::{DecodeError, Frame, FrameKind, Limits, Protocol, ProxyFailure};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::RequestHandler;

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

const READ_CHUNK: usize = 16 * 1024;

/// Serves `io` until the peer closes it, a fatal decode error happens, or `shutdown`
/// turns true (then the connection stops reading, finishes its in-flight requests and
/// closes). `initial` holds bytes already read during protocol detection.
pub async fn serve<IO, H>(
    io: IO,
    initial: BytesMut,
    protocol: Arc<dyn Protocol>,
    handler: Arc<H>,
    options: DownstreamOptions,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServeError>
where
    IO: AsyncRead + AsyncWrite + Send,
    H: RequestHandler,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut codec = protocol.new_codec(options.limits);
    let mut rbuf = initial;
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut in_flight = FuturesUnordered::new();
    let mut reading = !*shutdown.borrow();
    let mut decode_pending = !rbuf.is_empty();
    let mut fatal = None;

    loop {
        if decode_pending && fatal.is_none() {
            decode_pending = false;
            loop {
                match codec.decode(&mut rbuf) {
                    Ok(Some(frame)) => match frame.kind() {
                        FrameKind::Heartbeat => {
                            // Answered here, never forwarded (design invariant).
                            if let Some(reply) = protocol.heartbeat_reply(&*frame) {
                                encode_into(&*reply, &mut wbuf);
                            }
                        }
                        FrameKind::Request | FrameKind::Oneway => {
                            in_flight.push(exchange(handler.clone(), frame));
                        }
                        kind => {
                            tracing::debug!(?kind, "ignoring non-request frame from downstream");
                        }
                    },
                    Ok(None) => break,
                    Err(DecodeError::Rejected { error, reply }) => {
                        tracing::debug!(%error, "rejected downstream frame");
                        if let Some(reply) = reply {
                            encode_into(&*reply, &mut wbuf);
                        }
                    }
                    Err(DecodeError::Fatal(error)) => {
                        // Stop reading; what is already in flight is cancelled when the
                        // connection closes below (P16).
                        fatal = Some(error);
                        break;
                    }
                }
            }
        }
        if let Some(error) = fatal {
            let _ = wr.write_all(&wbuf).await;
            let _ = wr.shutdown().await;
            return Err(ServeError::Decode(error));
        }
        if !reading && in_flight.is_empty() && wbuf.is_empty() {
            let _ = wr.shutdown().await;
            return Ok(());
        }
        let can_read = reading && in_flight.len() < options.max_in_flight;
        if can_read {
            rbuf.reserve(READ_CHUNK);
        }

        tokio::select! {
            biased;
            Some((request, down_id, result)) = in_flight.next(), if !in_flight.is_empty() => {
                respond(&*protocol, request, down_id, result, &mut wbuf);
            }
            res = wr.write_buf(&mut wbuf), if !wbuf.is_empty() => {
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

/// A finished exchange: the request (kept for error answers), its downstream id, and
/// the handler's result.
type Exchanged = (
    Box<dyn Frame>,
    u64,
    Result<Option<Box<dyn Frame>>, ProxyFailure>,
);

/// One request's trip through the handler. The request stays owned here so that a
/// failure can still be answered in the request's own protocol version.
async fn exchange<H: RequestHandler>(handler: Arc<H>, mut request: Box<dyn Frame>) -> Exchanged {
    let down_id = request.request_id();
    let result = handler.handle(&mut *request).await;
    (request, down_id, result)
}

fn respond(
    protocol: &dyn Protocol,
    request: Box<dyn Frame>,
    down_id: u64,
    result: Result<Option<Box<dyn Frame>>, ProxyFailure>,
    wbuf: &mut BytesMut,
) {
    if request.kind() == FrameKind::Oneway {
        return; // never answered, not even with an error
    }
    match result {
        Ok(Some(mut response)) => {
            response.set_request_id(down_id);
            if !encode_into(&*response, wbuf) {
                answer_failure(protocol, &*request, down_id, ProxyFailure::CodecError, wbuf);
            }
        }
        Ok(None) => {
            tracing::warn!(down_id, "handler gave no response to a two-way request");
            answer_failure(
                protocol,
                &*request,
                down_id,
                ProxyFailure::UpstreamReset,
                wbuf,
            );
        }
        Err(failure) => answer_failure(protocol, &*request, down_id, failure, wbuf),
    }
}

fn answer_failure(
    protocol: &dyn Protocol,
    request: &dyn Frame,
    down_id: u64,
    failure: ProxyFailure,
    wbuf: &mut BytesMut,
) {
    if let Some(mut reply) = protocol.error_response(request, failure) {
        reply.set_request_id(down_id);
        encode_into(&*reply, wbuf);
    }
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
