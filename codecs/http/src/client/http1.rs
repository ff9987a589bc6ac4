//! [`Http1Connection`]: one exchange at a time, kept alive.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use http::{Request, Response, StatusCode};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{ClientError, ClientOptions};
use crate::Body;
use crate::body::{BodyEnd, BodyObserver, TrackedBody};

struct H1Shared {
    in_flight: AtomicBool,
    upgraded: AtomicBool,
    closed: AtomicBool,
    observer: OnceLock<Arc<dyn BodyObserver>>,
}

impl BodyObserver for H1Shared {
    fn body_finished(&self, end: BodyEnd) {
        if end == BodyEnd::Aborted {
            // hyper closes an HTTP/1 connection whose response was not read through.
            self.closed.store(true, Ordering::Release);
        }
        self.in_flight.store(false, Ordering::Release);
        if let Some(observer) = self.observer.get() {
            observer.body_finished(end);
        }
    }
}

/// An HTTP/1.1 upstream connection: one exchange at a time, reusable once the
/// response body is finished.
///
/// The response body is a [`Body::Tracked`]: when it is read to its end (or dropped,
/// or fails) the observer set with [`Http1Connection::set_observer`] is told, which is
/// when the pool can hand the connection out again (`BodyEnd::Aborted` means it is
/// closing instead). A `101 Switching Protocols` answer consumes the connection: the
/// observer is told `Aborted` at once and it is never reusable.
pub struct Http1Connection {
    sender: http1::SendRequest<Body>,
    shared: Arc<H1Shared>,
}

impl std::fmt::Debug for Http1Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http1Connection")
            .field("ready", &self.is_ready())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Http1Connection {
    /// Runs the HTTP/1.1 handshake on `io` (a connected socket) and spawns the task
    /// driving the connection, which ends when the connection closes.
    pub async fn handshake<T>(io: T, options: &ClientOptions) -> Result<Self, ClientError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http1::Builder::new()
            .max_buf_size(options.max_header_bytes.max(8192))
            .max_headers(options.max_headers)
            .handshake::<_, Body>(TokioIo::new(io))
            .await
            .map_err(ClientError::Handshake)?;
        let shared = Arc::new(H1Shared {
            in_flight: AtomicBool::new(false),
            upgraded: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            observer: OnceLock::new(),
        });
        let task_shared = shared.clone();
        tokio::spawn(async move {
            if let Err(error) = conn.with_upgrades().await {
                tracing::debug!(%error, "upstream HTTP/1 connection failed");
            }
            task_shared.closed.store(true, Ordering::Release);
        });
        Ok(Http1Connection { sender, shared })
    }

    /// Sets who is told when a response body is finished with (once per connection;
    /// later calls are ignored).
    pub fn set_observer(&self, observer: Arc<dyn BodyObserver>) {
        let _ = self.shared.observer.set(observer);
    }

    /// Whether a request can be sent now: no exchange in progress, connection open.
    pub fn is_ready(&self) -> bool {
        !self.shared.in_flight.load(Ordering::Acquire) && !self.is_closed()
    }

    /// Whether the connection is closed (or upgraded, or closing): it will never
    /// carry another request.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
            || self.shared.upgraded.load(Ordering::Acquire)
            || self.sender.is_closed()
    }

    /// Sends a request prepared with [`crate::prepare_upstream_request`] and waits for
    /// the response head. Waits first for the connection to finish the previous
    /// exchange if needed (a response body read to its end leaves the connection a
    /// moment later). A request that could not be sent comes back in
    /// [`ClientError::NotSent`].
    pub async fn send(&mut self, request: Request<Body>) -> Result<Response<Body>, ClientError> {
        if self.is_closed() {
            return Err(ClientError::not_sent(request, None));
        }
        if let Err(error) = self.sender.ready().await {
            self.shared.closed.store(true, Ordering::Release);
            return Err(ClientError::not_sent(request, Some(error)));
        }
        self.shared.in_flight.store(true, Ordering::Release);
        // Dropped before the exchange settles (a timeout abandoned it): the connection
        // is in an unknown state and must not be reused.
        let abandoned = Abandoned(Some(&self.shared));
        let result = self.sender.try_send_request(request).await;
        abandoned.disarm();
        match result {
            Ok(response) => {
                if response.status() == StatusCode::SWITCHING_PROTOCOLS {
                    self.shared.upgraded.store(true, Ordering::Release);
                    self.shared.body_finished(BodyEnd::Aborted);
                    return Ok(response.map(Body::Incoming));
                }
                let observer: Arc<dyn BodyObserver> = self.shared.clone();
                Ok(response.map(|body| Body::Tracked(TrackedBody::new(body, observer))))
            }
            Err(error) => {
                self.shared.in_flight.store(false, Ordering::Release);
                Err(ClientError::from_try_send(error))
            }
        }
    }
}

/// Marks an HTTP/1.1 connection closed when an exchange on it is abandoned midway.
struct Abandoned<'a>(Option<&'a H1Shared>);

impl Abandoned<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            shared.closed.store(true, Ordering::Release);
            shared.in_flight.store(false, Ordering::Release);
        }
    }
}
