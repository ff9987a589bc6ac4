use std::future::Future;
use std::pin::Pin;

use strait_codec_framework::{Frame, ProxyFailure};

/// The future a [`RequestHandler`] returns.
pub type HandleFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Box<dyn Frame>>, ProxyFailure>> + Send + 'a>>;

/// What the proxy does with each request a downstream connection decodes.
///
/// The handler borrows the request for the whole exchange, so that on failure the
/// downstream side can still build the protocol's error answer from it.
pub trait RequestHandler: Send + Sync + 'static {
    /// Forwards `request` and resolves to the response (`None` for a oneway request,
    /// which must never be answered). The response's request id is restored to the
    /// downstream id by the caller.
    fn handle<'a>(&'a self, request: &'a mut dyn Frame) -> HandleFuture<'a>;
}
