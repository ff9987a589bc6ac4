//! Connections taken over after `101 Switching Protocols` (WebSocket...) or a CONNECT.
//!
//! Strait's own HTTP/1.1 server puts an [`OnUpgrade`] in the extensions of a request
//! that asks to upgrade; once the handler's `101` is written, the connection (with any
//! bytes the client sent after its head) is handed to it. An upstream `101` carries one
//! the same way, resolved at once with the upstream connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

use crate::http::server::Rewind;

/// Byte stream of an upgraded connection, type-erased.
pub trait UpgradedIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> UpgradedIo for T {}

/// An upgraded connection: bytes already read past the head first, then the socket.
pub struct Upgraded(Rewind<Box<dyn UpgradedIo>>);

impl Upgraded {
    pub(crate) fn new(prefix: Bytes, io: Box<dyn UpgradedIo>) -> Self {
        Upgraded(Rewind::new(prefix, io, None))
    }
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded").finish_non_exhaustive()
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Why an upgrade did not happen.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The connection ended before the `101` was written (or the answer was not 101).
    #[error("the connection was not upgraded")]
    NotUpgraded,
}

/// Resolves to the upgraded connection once the `101` has gone out (downstream) or come
/// in (upstream).
///
/// Cloneable because request extensions must be; only one clone gets the connection.
#[derive(Clone)]
pub struct OnUpgrade(Inner);

#[derive(Clone)]
enum Inner {
    Own(Arc<Mutex<oneshot::Receiver<Upgraded>>>),
}

impl std::fmt::Debug for OnUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnUpgrade")
    }
}

impl OnUpgrade {
    /// The pair of the server driver: it keeps the sender.
    pub(crate) fn pair() -> (oneshot::Sender<Upgraded>, OnUpgrade) {
        let (tx, rx) = oneshot::channel();
        (tx, OnUpgrade(Inner::Own(Arc::new(Mutex::new(rx)))))
    }
}

impl Future for OnUpgrade {
    type Output = Result<Upgraded, UpgradeError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Inner::Own(rx) => Pin::new(&mut *rx.lock())
                .poll(cx)
                .map(|r| r.map_err(|_| UpgradeError::NotUpgraded)),
        }
    }
}

/// Takes the upgrade of a request (from Strait's server) or a response (from an
/// upstream HTTP/1.1 connection) out of its extensions. `None` when it has none.
pub fn on<T>(message: &mut T) -> Option<OnUpgrade>
where
    T: HasExtensions,
{
    message.extensions_mut().remove::<OnUpgrade>()
}

/// A request or response (or their parts): what [`on`] reads.
pub trait HasExtensions {
    /// The message's extensions.
    fn extensions_mut(&mut self) -> &mut http::Extensions;
}

impl<B> HasExtensions for http::Request<B> {
    fn extensions_mut(&mut self) -> &mut http::Extensions {
        http::Request::extensions_mut(self)
    }
}

impl<B> HasExtensions for http::Response<B> {
    fn extensions_mut(&mut self) -> &mut http::Extensions {
        http::Response::extensions_mut(self)
    }
}

impl HasExtensions for http::request::Parts {
    fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.extensions
    }
}
