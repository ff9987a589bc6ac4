use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use strait_codec_framework::{Frame, ProxyFailure};

use crate::UpstreamConnection;

/// Work that must finish before a request can be sent (connecting to a host).
pub type Connecting =
    Pin<Box<dyn Future<Output = Result<(UpstreamConnection, Duration), ProxyFailure>> + Send>>;

/// Where a request goes, decided without waiting.
pub enum Route {
    /// Send it over this connection now, with this timeout.
    Send(UpstreamConnection, Duration),
    /// Send it once this resolves (slow path: no connection is open yet).
    Later(Connecting),
    /// Answer locally with this frame (a route's direct response).
    Reply(Box<dyn Frame>),
    /// Fail it with the protocol's error for this failure.
    Fail(ProxyFailure),
}

/// Decides, per request, what a downstream connection does with it.
pub trait RequestHandler: Send + Sync + 'static {
    /// Routes `request`; may change it (headers added or removed by the route). Must not
    /// block: slow work goes in [`Route::Later`].
    fn route(&self, request: &mut dyn Frame) -> Route;
}
