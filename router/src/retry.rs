//! A route's retry policy: which ends of an attempt are worth another one, how many,
//! each attempt's own timeout, and the back-off between them. Read at the one place
//! requests end, in terms of the one outcome every protocol reaches, so it means the
//! same for Bolt, Dubbo, HTTP and gRPC.

use std::time::Duration;

use strait_codec_framework::{Outcome, ProxyFailure, ResponseClass};

/// The conditions `retry_on` lists, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryOn {
    /// `connect-failure`: no connection could be made.
    pub connect_failure: bool,
    /// `reset`: the connection broke before the answer.
    pub reset: bool,
    /// `timeout`: the attempt's `per_try_timeout` passed (never the request's own
    /// deadline).
    pub timeout: bool,
    /// `gateway-error`: HTTP 502, 503 or 504 (gRPC: UNAVAILABLE), plus connect
    /// failures and resets.
    pub gateway_error: bool,
    /// `5xx`: the protocol's server-error class (HTTP 5xx, Bolt server exception, Dubbo
    /// SERVER_ERROR/SERVICE_ERROR, gRPC UNAVAILABLE/INTERNAL...), plus connect failures
    /// and resets.
    pub server_error: bool,
    /// `retriable-status-codes`: an answer whose status is in `retriable_status_codes`.
    pub retriable_status_codes: bool,
}

impl RetryOn {
    /// Sets the condition named `name` (`connect-failure`...); false if unknown.
    pub fn set(&mut self, name: &str) -> bool {
        let flag = match name {
            "connect-failure" => &mut self.connect_failure,
            "reset" => &mut self.reset,
            "timeout" => &mut self.timeout,
            "gateway-error" => &mut self.gateway_error,
            "5xx" => &mut self.server_error,
            "retriable-status-codes" => &mut self.retriable_status_codes,
            _ => return false,
        };
        *flag = true;
        true
    }

    /// The names of the conditions set, in configuration spelling.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.connect_failure, "connect-failure"),
            (self.reset, "reset"),
            (self.timeout, "timeout"),
            (self.gateway_error, "gateway-error"),
            (self.server_error, "5xx"),
            (self.retriable_status_codes, "retriable-status-codes"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// What numbering an answer's status is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSpace {
    /// HTTP statuses.
    Http,
    /// gRPC status codes.
    Grpc,
    /// A framed protocol's own statuses (Bolt, Dubbo...).
    Protocol,
}

/// A route's `retry_policy`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// When an attempt is worth another.
    pub retry_on: RetryOn,
    /// Statuses (in the protocol's own numbering) retried under
    /// `retriable-status-codes`.
    pub retriable_status_codes: Vec<u32>,
    /// Attempts after the first, at most.
    pub num_retries: u32,
    /// Each attempt's own timeout, within the request's (which no retry extends).
    pub per_try_timeout: Option<Duration>,
    /// The first back-off's upper bound; each retry doubles it.
    pub base_interval: Duration,
    /// The largest back-off bound.
    pub max_interval: Duration,
}

impl Default for RetryPolicy {
    /// One retry, Envoy's back-off (25 ms base, 10 × base at most), no condition set.
    fn default() -> Self {
        RetryPolicy {
            retry_on: RetryOn::default(),
            retriable_status_codes: Vec::new(),
            num_retries: 1,
            per_try_timeout: None,
            base_interval: Duration::from_millis(25),
            max_interval: Duration::from_millis(250),
        }
    }
}

impl RetryPolicy {
    /// Whether an attempt that ended with `outcome` (and `status`, the answer's status
    /// in the protocol's numbering, if it answered) is worth another, by `retry_on`.
    /// `space` says what numbering the status is in (for `gateway-error`).
    pub fn retriable(&self, outcome: Outcome, status: Option<u32>, space: StatusSpace) -> bool {
        let on = &self.retry_on;
        let broad = on.gateway_error || on.server_error;
        match outcome {
            Outcome::Failed(ProxyFailure::ConnectFailure) => on.connect_failure || broad,
            Outcome::Failed(ProxyFailure::UpstreamReset) => on.reset || broad,
            Outcome::Failed(ProxyFailure::Timeout) => on.timeout,
            Outcome::Upstream(class) => {
                let listed = on.retriable_status_codes
                    && status.is_some_and(|s| self.retriable_status_codes.contains(&s));
                let server = class == ResponseClass::ServerError;
                let gateway = match (space, status) {
                    (StatusSpace::Http, Some(s)) => (502..=504).contains(&s),
                    (StatusSpace::Grpc, Some(s)) => s == 14, // UNAVAILABLE
                    // A framed protocol has no gateway statuses: connect failures and
                    // resets are its gateway errors.
                    _ => false,
                };
                listed || (on.server_error && server) || (on.gateway_error && gateway)
            }
            _ => false,
        }
    }

    /// The back-off before retry number `retry` (1 for the first), drawn uniformly
    /// from zero to `base × 2^(retry-1)` capped at `max_interval` ("full jitter");
    /// `random` is a uniform `u64`.
    pub fn back_off(&self, retry: u32, random: u64) -> Duration {
        let shift = retry.saturating_sub(1).min(20);
        let bound = self
            .base_interval
            .saturating_mul(1 << shift)
            .min(self.max_interval.max(self.base_interval));
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(((u128::from(random) * u128::from(nanos)) >> 64) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::StatusSpace::*;
    use super::*;

    fn policy(on: &[&str]) -> RetryPolicy {
        let mut retry_on = RetryOn::default();
        for name in on {
            assert!(retry_on.set(name), "{name}");
        }
        RetryPolicy {
            retry_on,
            retriable_status_codes: vec![409],
            ..RetryPolicy::default()
        }
    }

    const REFUSED: Outcome = Outcome::Failed(ProxyFailure::ConnectFailure);
    const RESET: Outcome = Outcome::Failed(ProxyFailure::UpstreamReset);
    const TIMEOUT: Outcome = Outcome::Failed(ProxyFailure::Timeout);
    const SERVER: Outcome = Outcome::Upstream(ResponseClass::ServerError);
    const CLIENT: Outcome = Outcome::Upstream(ResponseClass::ClientError);

    #[test]
    fn each_condition_retries_what_it_names() {
        let p = policy(&["connect-failure"]);
        assert!(p.retriable(REFUSED, None, Http));
        assert!(!p.retriable(RESET, None, Http));
        let p = policy(&["reset", "timeout"]);
        assert!(p.retriable(RESET, None, Protocol) && p.retriable(TIMEOUT, None, Protocol));
        assert!(!p.retriable(SERVER, Some(500), Http));
        let p = policy(&["5xx"]);
        assert!(p.retriable(SERVER, Some(500), Http), "HTTP 500");
        assert!(
            p.retriable(SERVER, Some(17), Protocol),
            "a Bolt server exception"
        );
        assert!(p.retriable(REFUSED, None, Http) && p.retriable(RESET, None, Http));
        assert!(
            !p.retriable(TIMEOUT, None, Http),
            "timeouts only when named"
        );
        assert!(!p.retriable(CLIENT, Some(404), Http));
        let p = policy(&["gateway-error"]);
        assert!(p.retriable(SERVER, Some(503), Http));
        assert!(!p.retriable(SERVER, Some(500), Http));
        assert!(p.retriable(SERVER, Some(14), Grpc), "gRPC UNAVAILABLE");
        assert!(
            !p.retriable(SERVER, Some(14), Protocol),
            "a framed status 14 is not a gateway"
        );
        let p = policy(&["retriable-status-codes"]);
        assert!(p.retriable(CLIENT, Some(409), Http));
        assert!(!p.retriable(CLIENT, Some(404), Http));
        // Never: local answers, overflow, success, oneway.
        let all = policy(&[
            "connect-failure",
            "reset",
            "timeout",
            "gateway-error",
            "5xx",
        ]);
        for outcome in [
            Outcome::Local,
            Outcome::Forwarded,
            Outcome::Upstream(ResponseClass::Success),
            Outcome::Failed(ProxyFailure::Overflow),
            Outcome::Failed(ProxyFailure::NoRoute),
            Outcome::Cancelled,
        ] {
            assert!(!all.retriable(outcome, Some(200), Http), "{outcome}");
        }
        assert_eq!(
            all.retry_on.names(),
            [
                "connect-failure",
                "reset",
                "timeout",
                "gateway-error",
                "5xx"
            ]
        );
        assert!(!RetryOn::default().set("bogus"));
    }

    #[test]
    fn back_off_is_full_jitter_doubling_to_the_cap() {
        let p = RetryPolicy::default();
        let max = u64::MAX;
        assert_eq!(p.back_off(1, 0), Duration::ZERO);
        let near = |d: Duration, ms: u64| d.as_millis().abs_diff(u128::from(ms)) <= 1;
        assert!(near(p.back_off(1, max), 25));
        assert!(near(p.back_off(2, max), 50));
        assert!(near(p.back_off(3, max), 100));
        assert!(near(p.back_off(4, max), 200));
        assert!(near(p.back_off(5, max), 250), "capped at max_interval");
        assert!(near(p.back_off(40, max), 250));
        assert!(
            near(p.back_off(3, max / 2), 50),
            "half the bound for half the range"
        );
    }
}
