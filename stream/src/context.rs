//! [`RequestContext`]: what travels with one request from its decoded head to its one
//! outcome.

use std::sync::OnceLock;
use std::time::Duration;

use strait_codec_framework::RequestCount;
use tokio::time::Instant;

/// A time as the drivers read it, once per batch: the [`Instant`] deadlines are worked
/// out from, and the same time as nanoseconds on a process-wide count, which durations
/// are worked out from. A hook times every request it hears: with the count that is
/// one integer subtraction, where two `Instant`s cost a checked `timespec` subtraction
/// and a conversion.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// The time, for deadlines.
    pub instant: Instant,
    /// The same time in nanoseconds since the count's start (the first `Moment` made).
    pub nanos: u64,
}

/// Where [`Moment::nanos`] counts from. Read on tokio's clock, so that tests that pause
/// it count on the same clock as their deadlines.
static EPOCH: OnceLock<Instant> = OnceLock::new();

impl Moment {
    /// Now.
    pub fn now() -> Self {
        // The count starts before the clock is read for the first moment.
        EPOCH.get_or_init(Instant::now);
        Self::of(Instant::now())
    }

    /// `instant` as a moment (an instant before the count's start counts as its start).
    pub fn of(instant: Instant) -> Self {
        let epoch = *EPOCH.get_or_init(Instant::now);
        // 2^64 nanoseconds are 584 years: the count cannot overflow in a process's life.
        let nanos =
            u64::try_from(instant.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX);
        Moment { instant, nanos }
    }

    /// The time from `earlier` to `later` (both [`Moment::nanos`]); zero if `earlier`
    /// is later.
    #[inline]
    pub fn between(earlier: u64, later: u64) -> Duration {
        Duration::from_nanos(later.saturating_sub(earlier))
    }
}

/// Where a request went and when, carried from its decoded head to its outcome (in the
/// upstream connection's in-flight entry while it waits). Plain `Copy` data: carrying it
/// costs no allocation. The numbers are the handler's own (route, cluster and host
/// positions in its configuration); the handler turns them back into names when the
/// request ends ([`crate::RequestHandler::finished`]).
#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    /// When the request head was decoded: the start of its deadline.
    pub start: Instant,
    /// The same time as [`Moment::nanos`]: the start of its duration.
    pub start_nanos: u64,
    /// When the request was written upstream ([`Moment::nanos`]).
    pub sent: Option<u64>,
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
    pub fn new(start: Moment, request_bytes: u64) -> Self {
        RequestContext {
            start: start.instant,
            start_nanos: start.nanos,
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
    /// When it ended ([`Moment::nanos`]).
    pub at: u64,
}

/// The ends of one batch of a connection, grouped by route, cluster, host and outcome
/// ([`RequestCount`]): a batch is usually one group (one route, one cluster, one host,
/// all answered), so this stays a short list. What a framed connection hands its
/// handler once per batch ([`crate::RequestHandler::count`]) instead of bumping shared
/// counters once per request.
#[derive(Debug, Default)]
pub struct Tally {
    counts: Vec<RequestCount>,
    /// Each count's group (route, cluster, host and outcome, packed into one number
    /// compared at once), in the same order.
    keys: Vec<u128>,
    /// The count the last request went to: a batch is usually one group.
    last: usize,
    /// Whether the requests' bytes and times are counted too (some hook reads them).
    timed: bool,
}

impl Tally {
    /// An empty tally; `timed`: whether it counts the requests' bytes and times too.
    pub fn new(timed: bool) -> Self {
        Tally {
            timed,
            ..Tally::default()
        }
    }

    /// Turns counting bytes and times on or off, for the requests counted from now.
    pub fn set_timed(&mut self, timed: bool) {
        self.timed = timed;
    }

    /// Counts one request of `ctx` that ended as `end` says.
    // Inlined into the driver: this runs for every request, and a batch's requests
    // usually fall in the group of the one before.
    #[inline(always)]
    pub fn add(&mut self, ctx: &RequestContext, end: &RequestEnd) {
        let key = Self::key(ctx, end);
        match (self.keys.get(self.last), self.counts.get_mut(self.last)) {
            (Some(last), Some(count)) if *last == key => {
                count.n += 1;
                if self.timed {
                    Self::add_details(count, ctx, end);
                }
            }
            _ => self.add_to_other(key, ctx, end),
        }
    }

    /// The group of a request: route, cluster, host and outcome in one number.
    #[inline(always)]
    fn key(ctx: &RequestContext, end: &RequestEnd) -> u128 {
        u128::from(ctx.route)
            | (u128::from(ctx.cluster) << 32)
            | (u128::from(ctx.host) << 64)
            | ((end.outcome.index() as u128) << 96)
    }

    /// [`Tally::add`] for a request of another group than the last one's.
    #[inline(never)]
    fn add_to_other(&mut self, key: u128, ctx: &RequestContext, end: &RequestEnd) {
        self.last = match self.keys.iter().position(|k| *k == key) {
            Some(at) => at,
            None => {
                self.keys.push(key);
                self.counts.push(RequestCount::new(
                    ctx.route,
                    ctx.cluster,
                    ctx.host,
                    end.outcome,
                ));
                self.counts.len() - 1
            }
        };
        // Found or pushed just above.
        if let Some(count) = self.counts.get_mut(self.last) {
            count.n += 1;
            if self.timed {
                Self::add_details(count, ctx, end);
            }
        }
    }

    /// Counts a request's bytes and times into its group.
    #[inline]
    fn add_details(count: &mut RequestCount, ctx: &RequestContext, end: &RequestEnd) {
        count.request_bytes += ctx.request_bytes;
        count.response_bytes += end.response_bytes;
        count.total.add(end.at.saturating_sub(ctx.start_nanos));
        if let Some(sent) = ctx.sent {
            count.upstream.add(end.at.saturating_sub(sent));
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> &[RequestCount] {
        &self.counts
    }

    /// Empties the tally (its room is kept).
    pub fn clear(&mut self) {
        self.counts.clear();
        self.keys.clear();
        self.last = 0;
    }

    /// One request of `ctx` that ended as `end` says, counted alone (no tally, no
    /// allocation: the HTTP path counts each request this way).
    pub fn one(ctx: &RequestContext, end: &RequestEnd, timed: bool) -> RequestCount {
        let mut count = RequestCount::new(ctx.route, ctx.cluster, ctx.host, end.outcome);
        count.n = 1;
        if timed {
            Self::add_details(&mut count, ctx, end);
        }
        count
    }

    /// Whether nothing was counted since the last [`Tally::clear`].
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tally_tests {
    use std::time::Duration;

    use strait_codec_framework::{Outcome, ProxyFailure, ResponseClass};

    use super::*;

    fn end(outcome: Outcome, at: u64, response_bytes: u64) -> RequestEnd {
        RequestEnd {
            outcome,
            status: None,
            response_bytes,
            at,
        }
    }

    #[test]
    fn ends_are_grouped_by_route_cluster_host_and_outcome() {
        let start = Moment::now();
        let mut ctx = RequestContext::new(start, 10);
        ctx.route = 3;
        ctx.cluster = 0;
        ctx.host = 1;
        let ok = Outcome::Upstream(ResponseClass::Success);
        let timeout = Outcome::Failed(ProxyFailure::Timeout);
        let later = Moment::of(start.instant + Duration::from_millis(3));
        let mut tally = Tally::new(true);
        tally.add(&ctx, &end(ok, later.nanos, 5));
        tally.add(&ctx, &end(ok, later.nanos, 7));
        tally.add(&ctx, &end(timeout, later.nanos, 0));
        ctx.host = 2;
        tally.add(&ctx, &end(ok, later.nanos, 1));
        ctx.route = 4;
        tally.add(&ctx, &end(ok, later.nanos, 1));
        let counts: Vec<_> = tally
            .counts()
            .iter()
            .map(|c| {
                (
                    c.route,
                    c.host,
                    c.outcome,
                    c.n,
                    c.request_bytes,
                    c.response_bytes,
                )
            })
            .collect();
        assert_eq!(
            counts,
            [
                (3, 1, ok, 2, 20, 12),
                (3, 1, timeout, 1, 10, 0),
                (3, 2, ok, 1, 10, 1),
                (4, 2, ok, 1, 10, 1)
            ]
        );
        assert_eq!(tally.counts()[0].total.count(), 2);
        tally.clear();
        assert!(tally.is_empty());
        // Untimed: requests counted, neither bytes nor times.
        let mut tally = Tally::new(false);
        tally.add(&ctx, &end(ok, later.nanos, 5));
        tally.add(&ctx, &end(ok, later.nanos, 5));
        let c = tally.counts()[0];
        assert_eq!((c.n, c.request_bytes, c.total.count()), (2, 0, 0));
    }

    #[test]
    fn a_timed_tally_counts_total_and_upstream_times() {
        let start = Moment::now();
        let mut ctx = RequestContext::new(start, 0);
        let ok = Outcome::Upstream(ResponseClass::Success);
        let at = |ms| Moment::of(start.instant + Duration::from_millis(ms)).nanos;
        let mut tally = Tally::new(true);
        // Ended before it was sent (a failed route): a total time, no upstream time.
        tally.add(&ctx, &end(ok, at(2), 0));
        ctx.sent = Some(at(1));
        tally.add(&ctx, &end(ok, at(30), 0));
        let c = tally.counts()[0];
        assert_eq!((c.n, c.total.count(), c.upstream.count()), (2, 2, 1));
        assert_eq!(c.total.sum_nanos, 32_000_000);
        assert_eq!(c.upstream.sum_nanos, 29_000_000);
        // 2 ms in the 2.5 ms bucket, 30 ms in the 50 ms one; 29 ms upstream likewise.
        assert_eq!((c.total.buckets[2], c.total.buckets[6]), (1, 1));
        assert_eq!(c.upstream.buckets[6], 1);
        let one = Tally::one(&ctx, &end(ok, at(30), 0), true);
        assert_eq!((one.n, one.upstream.sum_nanos), (1, 29_000_000));
    }
}
