//! A cluster's circuit breakers: bounds on its connections, on requests waiting for a
//! connection, on requests in flight and on retries in flight. A request past a bound
//! is answered at once with the protocol's overload answer (Bolt 4, Dubbo 100, HTTP
//! 503, gRPC RESOURCE_EXHAUSTED), never queued; each cluster has its own, so one
//! cluster's overflow leaves the others alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The bounds, as configured (`circuit_breakers:`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakers {
    /// Open connections across the cluster's hosts.
    pub max_connections: usize,
    /// Requests waiting for a connection to be made.
    pub max_pending_requests: usize,
    /// Requests in flight (from admission to their end).
    pub max_requests: usize,
    /// Retries in flight: requests tried again on another host.
    pub max_retries: usize,
    /// When set, replaces `max_retries`: retries in flight may be at most this share
    /// of the cluster's active requests (never fewer than its minimum).
    pub retry_budget: Option<RetryBudget>,
}

/// A retry budget (Envoy's `retry_budget`): retries stay a fraction of the traffic, so
/// a failing cluster is not hit with a multiple of its load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// Retries in flight as a percentage of active requests.
    pub budget_percent: f64,
    /// Retries always allowed in flight, however few requests are active.
    pub min_retry_concurrency: usize,
}

impl RetryBudget {
    /// Retries allowed in flight when `active` requests are.
    pub fn allowed(&self, active: usize) -> usize {
        ((active as f64 * self.budget_percent / 100.0) as usize).max(self.min_retry_concurrency)
    }
}

impl Default for CircuitBreakers {
    /// Envoy's defaults for connections, pending requests and retries (1024, 1024, 3);
    /// Strait's for requests (10,000: a multiplexed connection carries thousands).
    fn default() -> Self {
        CircuitBreakers {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 10_000,
            max_retries: 3,
            retry_budget: None,
        }
    }
}

/// Which bound a request or connection ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    /// `max_connections`.
    Connections,
    /// `max_pending_requests`.
    PendingRequests,
    /// `max_requests`.
    Requests,
    /// `max_retries`.
    Retries,
}

impl Breaker {
    /// Every breaker, in the order of [`BreakerSnapshot::overflows`].
    pub const ALL: [Breaker; 4] = [
        Breaker::Connections,
        Breaker::PendingRequests,
        Breaker::Requests,
        Breaker::Retries,
    ];

    /// The configuration key of its bound.
    pub fn as_str(self) -> &'static str {
        match self {
            Breaker::Connections => "max_connections",
            Breaker::PendingRequests => "max_pending_requests",
            Breaker::Requests => "max_requests",
            Breaker::Retries => "max_retries",
        }
    }
}

/// The live counts behind a cluster's breakers, shared by its hosts and pools.
pub(crate) struct Breakers {
    pub(crate) limits: CircuitBreakers,
    /// Open connections (reserved before the connect, released when it closes).
    pub(crate) connections: Arc<AtomicUsize>,
    /// Requests waiting for a connection.
    pending: AtomicUsize,
    /// Retries in flight.
    retries: AtomicUsize,
    /// Retries admitted so far.
    retried: AtomicU64,
    /// Times each bound turned something away, by [`Breaker::ALL`] order.
    overflows: [AtomicU64; 4],
}

/// The breakers' state, for the admin view.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSnapshot {
    /// The bounds.
    pub limits: CircuitBreakers,
    /// Open connections.
    pub connections: usize,
    /// Requests waiting for a connection.
    pub pending: usize,
    /// Retries in flight.
    pub retries: usize,
    /// Retries admitted so far.
    pub retried: u64,
    /// Times each bound turned something away, by [`Breaker::ALL`] order.
    pub overflows: [u64; 4],
}

impl Breakers {
    pub(crate) fn new(limits: CircuitBreakers) -> Self {
        Breakers {
            limits,
            connections: Arc::new(AtomicUsize::new(0)),
            pending: AtomicUsize::new(0),
            retries: AtomicUsize::new(0),
            retried: AtomicU64::new(0),
            overflows: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Counts one overflow of `breaker`.
    pub(crate) fn overflowed(&self, breaker: Breaker) {
        self.overflows[breaker as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Reserves one count of `counter` under `max`, or counts an overflow.
    fn reserve(&self, counter: &AtomicUsize, max: usize, breaker: Breaker) -> bool {
        let reserved = counter
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !reserved {
            self.overflowed(breaker);
        }
        reserved
    }

    /// Reserves a connection; released by [`Breakers::release_connection`] when the
    /// connection closes (or the attempt fails).
    pub(crate) fn reserve_connection(&self) -> bool {
        self.reserve(
            &self.connections,
            self.limits.max_connections,
            Breaker::Connections,
        )
    }

    pub(crate) fn release_connection(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Admits a request that must wait for a connection; it stops counting as pending
    /// when the guard drops.
    pub(crate) fn pending(self: &Arc<Self>) -> Option<PendingGuard> {
        self.reserve(
            &self.pending,
            self.limits.max_pending_requests,
            Breaker::PendingRequests,
        )
        .then(|| PendingGuard(self.clone()))
    }

    /// Admits a retry while `active` requests are in flight: within the retry budget
    /// if there is one, `max_retries` otherwise. Released by [`Breakers::end_retry`].
    pub(crate) fn begin_retry(&self, active: usize) -> bool {
        let allowed = match &self.limits.retry_budget {
            Some(budget) => budget.allowed(active),
            None => self.limits.max_retries,
        };
        let admitted = self.reserve(&self.retries, allowed, Breaker::Retries);
        if admitted {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
        admitted
    }

    /// A retry admitted by [`Breakers::begin_retry`] ended.
    pub(crate) fn end_retry(&self) {
        let _ = self
            .retries
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    pub(crate) fn snapshot(&self) -> BreakerSnapshot {
        BreakerSnapshot {
            limits: self.limits,
            connections: self.connections.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            overflows: std::array::from_fn(|i| self.overflows[i].load(Ordering::Relaxed)),
        }
    }
}

/// A request counted as waiting for a connection.
pub(crate) struct PendingGuard(Arc<Breakers>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bound_admits_up_to_its_limit_and_counts_what_it_turns_away() {
        let breakers = Arc::new(Breakers::new(CircuitBreakers {
            max_connections: 2,
            max_pending_requests: 1,
            max_requests: 5,
            max_retries: 1,
            retry_budget: None,
        }));
        assert!(breakers.reserve_connection());
        assert!(breakers.reserve_connection());
        assert!(!breakers.reserve_connection());
        breakers.release_connection();
        assert!(
            breakers.reserve_connection(),
            "a closed connection frees its place"
        );

        let waiting = breakers.pending().expect("first pending request");
        assert!(breakers.pending().is_none());
        drop(waiting);
        let _waiting = breakers.pending().expect("freed by the guard");

        assert!(breakers.begin_retry(0), "first retry");
        assert!(!breakers.begin_retry(0));
        breakers.end_retry();
        assert!(breakers.begin_retry(0), "an ended retry frees its place");
        breakers.end_retry();

        let view = breakers.snapshot();
        assert_eq!(view.connections, 2);
        assert_eq!(view.pending, 1);
        assert_eq!(view.retries, 0);
        assert_eq!(view.overflows, [1, 1, 0, 1]);
    }

    /// A budget of 20% with a minimum of 3: 3 retries in flight at low traffic, 20 of
    /// 100 active requests, never more; retries ending free their place.
    #[test]
    fn retry_budget_scales_with_active_requests() {
        let budget = RetryBudget {
            budget_percent: 20.0,
            min_retry_concurrency: 3,
        };
        assert_eq!(budget.allowed(0), 3);
        assert_eq!(budget.allowed(10), 3);
        assert_eq!(budget.allowed(100), 20);
        let breakers = Breakers::new(CircuitBreakers {
            max_retries: 0, // replaced by the budget
            retry_budget: Some(budget),
            ..CircuitBreakers::default()
        });
        let admitted = (0..10).filter(|_| breakers.begin_retry(5)).count();
        assert_eq!(admitted, 3);
        let admitted = (0..30).filter(|_| breakers.begin_retry(100)).count();
        assert_eq!(admitted, 17, "20 in flight at most, 3 already are");
        for _ in 0..20 {
            breakers.end_retry();
        }
        assert_eq!(breakers.snapshot().retries, 0);
        breakers.end_retry();
        assert_eq!(breakers.snapshot().retries, 0, "never below zero");
        assert_eq!(breakers.snapshot().overflows[3], 7 + 13);
    }
}
