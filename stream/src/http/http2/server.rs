//! The downstream HTTP/2 connection driver on `h2`: accepts streams, runs the handler
//! for each in a task of its own (streams are concurrent), sends the answer within
//! flow control, and drains on shutdown or a whole idle period with GOAWAY.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderName, Request, Response};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::{H2Body, keepalive, pipe_body};
use crate::http::server::{Handler, Idle, ServeError, ServerOptions};
use crate::http::{Body, ConnectionInfo};

/// Serves one HTTP/2 connection (its preface not yet read) to its end.
pub(crate) async fn serve<IO>(
    io: IO,
    ctx: ConnectionInfo,
    handler: Arc<dyn Handler>,
    options: &ServerOptions,
    shutdown: &mut watch::Receiver<bool>,
    idle: Option<&Idle>,
) -> Result<(), ServeError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(options.h2_max_concurrent_streams)
        .initial_window_size(options.h2_initial_stream_window)
        .initial_connection_window_size(options.h2_initial_connection_window)
        .max_frame_size(options.h2_max_frame_size.clamp(16_384, 16_777_215))
        .max_header_list_size(u32::try_from(options.max_header_bytes).unwrap_or(u32::MAX));
    let mut conn = builder
        .handshake::<_, Bytes>(io)
        .await
        .map_err(ServeError::Http2)?;
    let pings = match (options.h2_keepalive_interval, conn.ping_pong()) {
        (Some(interval), Some(ping)) => {
            Some(keepalive(ping, interval, options.h2_keepalive_timeout))
        }
        _ => None,
    };
    let mut pings = std::pin::pin!(async move {
        match pings {
            Some(pings) => pings.await,
            None => std::future::pending().await,
        }
    });
    let mut watching = true;
    let mut draining = false;
    if *shutdown.borrow_and_update() {
        conn.graceful_shutdown();
        draining = true;
        watching = false;
    }
    let period = idle.map_or(std::time::Duration::from_secs(3600), |i| i.timeout);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut idle_watch = idle.is_some();
    loop {
        tokio::select! {
            accepted = conn.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    let handler = handler.clone();
                    let ctx = ctx.clone();
                    tokio::spawn(answer(request, respond, handler, ctx));
                }
                Some(Err(error)) => {
                    // A stream-level error is the stream's; the connection goes on.
                    if error.is_io() || error.is_go_away() || error.reason().is_none() {
                        return if draining { Ok(()) } else { Err(ServeError::Http2(error)) };
                    }
                }
                None => return Ok(()),
            },
            error = &mut pings => {
                tracing::debug!(%error, "HTTP/2 keep-alive ping unanswered");
                return Err(ServeError::Http2(error));
            }
            _ = ticks.tick(), if idle_watch => {
                // Each period, check that something moved since the last check.
                if let Some(idle) = idle
                    && !idle.activity.swap(false, Ordering::Relaxed)
                {
                    idle_watch = false;
                    if !draining {
                        draining = true;
                        conn.graceful_shutdown();
                    }
                }
            }
            changed = shutdown.changed(), if watching => {
                watching = false;
                match changed {
                    Ok(()) if *shutdown.borrow() => {
                        if !draining {
                            draining = true;
                            conn.graceful_shutdown();
                        }
                    }
                    Ok(()) => watching = true,
                    Err(_) => {}
                }
            }
        }
    }
}

/// One stream: the handler's answer, sent within flow control.
async fn answer(
    request: Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    handler: Arc<dyn Handler>,
    ctx: ConnectionInfo,
) {
    let (parts, recv) = request.into_parts();
    let body = Body::H2(H2Body::new(recv, &parts.headers));
    let future = handler.call(Request::from_parts(parts, body), ctx);
    // A client that resets the stream cancels the handler (and so its upstream).
    let response = tokio::select! {
        response = future => response,
        _ = std::future::poll_fn(|cx| respond.poll_reset(cx)) => return,
    };
    let (mut parts, body) = response.into_parts();
    strip_connection_fields(&mut parts.headers);
    if !parts.headers.contains_key(CONTENT_LENGTH)
        && let Some(n) = body.size_hint().exact()
        && !body.is_end_stream()
    {
        parts
            .headers
            .insert(CONTENT_LENGTH, http::HeaderValue::from(n));
    }
    let end = body.is_end_stream();
    let mut stream = match respond.send_response(Response::from_parts(parts, ()), end) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::debug!(%error, "HTTP/2 response head not sent");
            return;
        }
    };
    if end {
        return;
    }
    if let Err(error) = pipe_body(body, &mut stream).await {
        tracing::debug!(%error, "HTTP/2 response body ended early");
    }
}

/// Connection-specific fields are forbidden in HTTP/2 (RFC 9113 §8.2.2); an answer
/// built for HTTP/1 may still carry them.
fn strip_connection_fields(headers: &mut http::HeaderMap) {
    const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
    for name in [
        CONNECTION,
        TRANSFER_ENCODING,
        UPGRADE,
        KEEP_ALIVE,
        PROXY_CONNECTION,
    ] {
        headers.remove(name);
    }
    if headers
        .get(TE)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(TE);
    }
}
