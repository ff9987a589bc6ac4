//! [`RequestContext`]: what travels with one request from its decoded head to its one
//! outcome.

use tokio::time::Instant;

/// Where a request went and when, carried from its decoded head to its outcome (in the
/// upstream connection's in-flight entry while it waits). Plain `Copy` data: carrying it
/// costs no allocation. The numbers are the handler's own (route, cluster and host
/// positions in its configuration); the handler turns them back into names when the
/// request ends ([`crate::RequestHandler::finished`]).
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    /// When the request head was decoded: the start of its duration and its deadline.
    pub start: Instant,
    /// When the request was written upstream.
    pub sent: Option<Instant>,
    /// The matched route ([`RequestContext::NONE`] if none matched yet).
    pub route: u32,
    /// The cluster the route chose ([`RequestContext::NONE`] if none).
    pub cluster: u32,
    /// The host within the cluster ([`RequestContext::NONE`] if none was tried).
    pub host: u32,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// Bytes of the request as received.
    pub request_bytes: u64,
}

impl RequestContext {
    /// "Not known (yet)" for `route`, `cluster` and `host`.
    pub const NONE: u32 = u32::MAX;

    /// The context of a request decoded at `start` from `request_bytes` bytes.
    pub fn new(start: Instant, request_bytes: u64) -> Self {
        RequestContext {
            start,
            sent: None,
            route: Self::NONE,
            cluster: Self::NONE,
            host: Self::NONE,
            attempt: 1,
            request_bytes,
        }
    }

    /// The position behind `field`, or `None` for [`RequestContext::NONE`].
    pub fn known(field: u32) -> Option<usize> {
        (field != Self::NONE).then_some(field as usize)
    }
}

/// How a request ended, as the driver that answered it saw it.
#[derive(Debug, Clone, Copy)]
pub struct RequestEnd {
    /// The one outcome.
    pub outcome: strait_codec_framework::Outcome,
    /// The status of the answer written to the caller, in the protocol's numbering.
    pub status: Option<u32>,
    /// Bytes written to the caller for this request.
    pub response_bytes: u64,
    /// When it ended.
    pub at: Instant,
}
