use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use strait_codec_framework::{Frame, ProxyFailure};

use strait_codec_framework::RequestCount;

use crate::{RequestContext, RequestEnd, UpstreamConnection};

/// Work that must finish before a request can be sent (connecting to a host). It
/// resolves to the connection; the driver bounds it by the request's deadline.
pub type Connecting =
    Pin<Box<dyn Future<Output = Result<UpstreamConnection, ProxyFailure>> + Send>>;

/// Where a request goes, decided without waiting.
pub enum Route {
    /// Send it over this connection now; its deadline is this long after its start.
    Send(UpstreamConnection, Duration),
    /// Send it now over the connection [`RequestHandler::route`] was given as `recent`:
    /// the pool still picks that one, so no handle to it was cloned.
    SendRecent(Duration),
    /// Send it once this resolves (slow path: no connection is open yet). The deadline
    /// runs from the request's start, connect time included.
    Later(Connecting, Duration),
    /// Answer locally with this frame (a route's direct response).
    Reply(Box<dyn Frame>),
    /// Fail it with the protocol's error for this failure.
    Fail(ProxyFailure),
}

/// Decides, per request, what a downstream connection does with it, and hears how each
/// request ended.
pub trait RequestHandler: Send + Sync + 'static {
    /// Routes `request`; may change it (headers added or removed by the route) and
    /// records in `ctx` where it goes (route, cluster). Must not block: slow work goes
    /// in [`Route::Later`]. `recent` is the upstream connection this downstream
    /// connection sent its last request over, while it keeps one: when the pool picks it
    /// again, [`Route::SendRecent`] says so without cloning a handle per request.
    fn route(
        &self,
        request: &mut dyn Frame,
        ctx: &mut RequestContext,
        recent: Option<&UpstreamConnection>,
    ) -> Route;

    /// An attempt of a two-way request ended with `outcome` (and `status`, when the
    /// upstream answered) that is not a success: where to try it again, or `None` to
    /// end the request with that outcome. `ctx` says which host it was (`host`,
    /// `attempt`); the handler updates it for the next attempt. The returned route's
    /// timeout counts, as always, from the request's start. Default: never retry.
    fn retry(
        &self,
        request: &mut dyn Frame,
        ctx: &mut RequestContext,
        outcome: strait_codec_framework::Outcome,
        status: Option<u32>,
    ) -> Option<Route> {
        let _ = (request, ctx, outcome, status);
        None
    }

    /// Called exactly once per request routed (and per malformed request answered),
    /// when it ends: the one place its outcome is reported. Its cluster and host
    /// counters come separately, in [`RequestHandler::count`].
    fn finished(&self, ctx: &RequestContext, end: RequestEnd);

    /// The ends reported to [`RequestHandler::finished`] since the last call, grouped by
    /// route, cluster, host and outcome, for the shared counters and the hooks that
    /// count: once per batch of ends (before the connection writes their answers or
    /// waits), not once per request.
    fn count(&self, counts: &[RequestCount]);

    /// Whether [`RequestHandler::count`] reads the requests' times (a hook counts
    /// them): when not, the connection does not work them out. Default: no.
    fn times_requests(&self) -> bool {
        false
    }

    /// The handler that replaces this one for the connection's next requests, when
    /// there is one (the listener's configuration was reloaded). Asked once per batch
    /// of reads, so it must be cheap when there is none. The requests this handler
    /// routed keep ending at it (their contexts are its numbers). Default: never.
    fn successor(&self) -> Option<std::sync::Arc<Self>>
    where
        Self: Sized,
    {
        None
    }
}
