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
    /// The hosts tried so far, as bits by position in the cluster (positions past 63
    /// share the last bit): a retry prefers a host not tried yet.
    pub tried: u64,
    /// Whether the request holds one of its cluster's retry admissions (it was tried
    /// again under a route's retry policy), to give back when it ends.
    pub retried: bool,
    /// Bytes of the request as received.
    pub request_bytes: u64,
    /// Where the handler keeps the request's [`strait_codec_framework::RequestView`]
    /// ([`RequestContext::NONE`] if it keeps none).
    pub view: u32,
    /// Which of a connection's handlers routed it: a connection whose listener's
    /// configuration was reloaded ends the requests it routed before with the handler
    /// that routed them ([`crate::RequestHandler::successor`]).
    pub generation: bool,
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
            tried: 0,
            retried: false,
            request_bytes,
            view: Self::NONE,
            generation: false,
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

/// How many requests of one cluster and host ended with one outcome: what a framed
/// connection hands its handler once per batch of ends ([`crate::RequestHandler::count`])
/// instead of bumping shared counters once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutcomeCount {
    /// [`RequestContext::cluster`] of those requests.
    pub cluster: u32,
    /// [`RequestContext::host`] of those requests.
    pub host: u32,
    /// How they ended.
    pub outcome: strait_codec_framework::Outcome,
    /// How many.
    pub n: u64,
}

/// The ends of one batch, grouped by cluster, host and outcome: a batch is usually one
/// group (one cluster, one host, all answered), so this stays a short list.
#[derive(Debug, Default)]
pub struct Tally(Vec<OutcomeCount>);

impl Tally {
    /// Counts one request of `ctx` that ended with `outcome`.
    pub fn add(&mut self, ctx: &RequestContext, outcome: strait_codec_framework::Outcome) {
        let (cluster, host) = (ctx.cluster, ctx.host);
        match self
            .0
            .iter_mut()
            .find(|c| c.cluster == cluster && c.host == host && c.outcome == outcome)
        {
            Some(count) => count.n += 1,
            None => self.0.push(OutcomeCount {
                cluster,
                host,
                outcome,
                n: 1,
            }),
        }
    }

    /// The counts so far, emptying the tally (its room is kept).
    pub fn take(&mut self) -> std::vec::Drain<'_, OutcomeCount> {
        self.0.drain(..)
    }

    /// Whether nothing was counted since the last [`Tally::take`].
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tally_tests {
    use strait_codec_framework::{Outcome, ProxyFailure, ResponseClass};
    use tokio::time::Instant;

    use super::*;

    #[test]
    fn ends_are_grouped_by_cluster_host_and_outcome() {
        let mut ctx = RequestContext::new(Instant::now(), 0);
        ctx.cluster = 0;
        ctx.host = 1;
        let ok = Outcome::Upstream(ResponseClass::Success);
        let mut tally = Tally::default();
        tally.add(&ctx, ok);
        tally.add(&ctx, ok);
        tally.add(&ctx, Outcome::Failed(ProxyFailure::Timeout));
        ctx.host = 2;
        tally.add(&ctx, ok);
        let counts: Vec<_> = tally.take().map(|c| (c.host, c.outcome, c.n)).collect();
        assert_eq!(
            counts,
            [
                (1, ok, 2),
                (1, Outcome::Failed(ProxyFailure::Timeout), 1),
                (2, ok, 1)
            ]
        );
        assert!(tally.is_empty());
    }
}
