//! A host's health as the balancers see it: failed by its active health check, or
//! ejected by outlier detection, or ramping up its weight after coming back. Both
//! sources set flags on the host; balancers skip a flagged host (unless the cluster is
//! in panic, see [`crate::Cluster`]), and the cluster keeps counts of flagged hosts so
//! a pick never scans for them.
//!
//! Outlier detection reads nothing but the outcomes every request of every protocol
//! reaches at the one hook ([`crate::Cluster::record_n`]): a host failure there
//! (connect failure, reset, timeout, the protocol's server-error class) counts towards
//! `consecutive_errors`, and any answered request resets the run.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use strait_codec_framework::{Outcome, ResponseClass};
use tokio::time::Instant;

/// Passive health checking of a cluster's hosts from their requests' outcomes.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetection {
    /// Host failures in a row that eject a host (0 turns this check off).
    pub consecutive_errors: u32,
    /// How often ejections end and success rates are compared.
    pub interval: Duration,
    /// How long a first ejection lasts; the n-th in a row lasts n times as long.
    pub base_ejection_time: Duration,
    /// The longest an ejection lasts, however often the host was ejected.
    pub max_ejection_time: Duration,
    /// At most this percentage of the cluster's hosts is ejected at once (at least one
    /// host may always be ejected).
    pub max_ejection_percent: u32,
    /// Success rates are compared only when at least this many hosts had
    /// `success_rate_request_volume` requests in the interval (0 turns it off).
    pub success_rate_minimum_hosts: usize,
    /// Requests a host needs in an interval for its success rate to count.
    pub success_rate_request_volume: u64,
    /// A host whose success rate is below the mean by more than this many standard
    /// deviations is ejected.
    pub success_rate_stdev_factor: f64,
}

impl Default for OutlierDetection {
    /// Envoy's defaults.
    fn default() -> Self {
        OutlierDetection {
            consecutive_errors: 5,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            success_rate_minimum_hosts: 5,
            success_rate_request_volume: 100,
            success_rate_stdev_factor: 1.9,
        }
    }
}

/// Why outlier detection ejected a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EjectReason {
    /// `consecutive_errors` host failures in a row.
    ConsecutiveErrors,
    /// A success rate far below the cluster's other hosts.
    SuccessRate,
}

impl EjectReason {
    /// The name shown in `/clusters` and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            EjectReason::ConsecutiveErrors => "consecutive_errors",
            EjectReason::SuccessRate => "success_rate",
        }
    }
}

/// Flag: the active health check has not passed (yet, or any more).
const CHECK_FAILED: u8 = 1;
/// Flag: ejected by outlier detection.
const EJECTED: u8 = 2;

/// What a cluster's hosts share about their health: counts of flagged hosts (read on
/// every pick), the outlier settings, the clock slow start measures from.
pub(crate) struct ClusterHealth {
    /// Hosts with any health flag set.
    pub(crate) unhealthy: AtomicUsize,
    /// Hosts ejected by outlier detection.
    pub(crate) ejected: AtomicUsize,
    /// Hosts in the cluster (not counting removed ones).
    pub(crate) hosts: AtomicUsize,
    pub(crate) outlier: Option<OutlierDetection>,
    /// A newly healthy host's weight ramps up over this window.
    pub(crate) slow_start: Option<Duration>,
    /// Zero of the hosts' millisecond clocks.
    epoch: Instant,
}

impl ClusterHealth {
    pub(crate) fn new(
        hosts: usize,
        outlier: Option<OutlierDetection>,
        slow_start: Option<Duration>,
    ) -> Self {
        ClusterHealth {
            unhealthy: AtomicUsize::new(0),
            ejected: AtomicUsize::new(0),
            hosts: AtomicUsize::new(hosts),
            outlier,
            slow_start,
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the cluster was made (never 0, so 0 can mean "unset").
    fn now_ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// How many hosts may be ejected at once.
    fn max_ejected(&self, percent: u32) -> usize {
        (self.hosts.load(Ordering::Relaxed) * percent as usize / 100).max(1)
    }
}

/// One host's health state.
pub(crate) struct HostHealth {
    flags: AtomicU8,
    /// Host failures in a row, as outlier detection counts them.
    consecutive_errors: AtomicU32,
    /// When the host last became healthy, in the cluster's milliseconds, while its
    /// weight is still ramping up (0: not ramping).
    ramp_from_ms: AtomicU64,
    /// Reasons and times, for the admin view and the sweep; touched on changes only.
    detail: Mutex<Detail>,
}

#[derive(Default)]
struct Detail {
    /// Why the active check last failed, and since when the host is failing it.
    check_failure: Option<(String, SystemTime)>,
    /// The ejection in force.
    ejection: Option<Ejection>,
    /// Ejections in a row: the next one lasts this many times the base time, plus one.
    ejections: u32,
    /// Ejections ever, for the admin view.
    ejections_total: u64,
}

#[derive(Clone, Copy)]
struct Ejection {
    reason: EjectReason,
    since: SystemTime,
    until: Instant,
}

/// A host's health, for the admin view.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSnapshot {
    /// Whether the balancers may pick the host (no flag set).
    pub healthy: bool,
    /// The active check's verdict: `passing`, `failing`, `pending` (no verdict yet), or
    /// `None` when the cluster has no active check.
    pub check: Option<&'static str>,
    /// Why the active check fails, if it does.
    pub check_failure: Option<String>,
    /// Since when the active check fails.
    pub check_failing_since: Option<SystemTime>,
    /// Why the host is ejected, if it is.
    pub ejected: Option<EjectReason>,
    /// Since when it is ejected.
    pub ejected_since: Option<SystemTime>,
    /// How long until the ejection ends.
    pub ejected_for: Option<Duration>,
    /// Ejections so far.
    pub ejections: u64,
    /// The weight balancers use now (lower than configured while slow start ramps).
    pub effective_weight: u32,
}

impl HostHealth {
    /// A host that takes traffic at once, or, with `pending_check`, only once its
    /// first active check passes.
    pub(crate) fn new(cluster: &ClusterHealth, pending_check: bool) -> Self {
        if pending_check {
            cluster.unhealthy.fetch_add(1, Ordering::Relaxed);
        }
        HostHealth {
            flags: AtomicU8::new(if pending_check { CHECK_FAILED } else { 0 }),
            consecutive_errors: AtomicU32::new(0),
            ramp_from_ms: AtomicU64::new(0),
            detail: Mutex::new(Detail::default()),
        }
    }

    /// Starts afresh (a host leaving its cluster, or coming back): no ejection, no
    /// check verdict; `pending_check` makes it wait for its first check again.
    pub(crate) fn reset(&self, cluster: &ClusterHealth, pending_check: bool) {
        let mut detail = self.detail.lock();
        let before = self.flags.swap(
            if pending_check { CHECK_FAILED } else { 0 },
            Ordering::AcqRel,
        );
        if before & EJECTED != 0 {
            cluster.ejected.fetch_sub(1, Ordering::AcqRel);
        }
        match (before != 0, pending_check) {
            (true, false) => {
                cluster.unhealthy.fetch_sub(1, Ordering::AcqRel);
            }
            (false, true) => {
                cluster.unhealthy.fetch_add(1, Ordering::AcqRel);
            }
            _ => {}
        }
        detail.ejection = None;
        detail.check_failure = None;
        detail.ejections = 0;
        self.consecutive_errors.store(0, Ordering::Relaxed);
        self.ramp_from_ms.store(0, Ordering::Relaxed);
    }

    /// No flag is set: the balancers may pick the host.
    pub(crate) fn healthy(&self) -> bool {
        self.flags.load(Ordering::Acquire) == 0
    }

    fn set(&self, cluster: &ClusterHealth, flag: u8) -> bool {
        let before = self.flags.fetch_or(flag, Ordering::AcqRel);
        if before & flag != 0 {
            return false;
        }
        if before == 0 {
            cluster.unhealthy.fetch_add(1, Ordering::Relaxed);
            self.ramp_from_ms.store(0, Ordering::Relaxed);
        }
        true
    }

    fn clear(&self, cluster: &ClusterHealth, flag: u8, now: Instant) -> bool {
        let before = self.flags.fetch_and(!flag, Ordering::AcqRel);
        if before & flag == 0 {
            return false;
        }
        if before == flag {
            cluster.unhealthy.fetch_sub(1, Ordering::Relaxed);
            if cluster.slow_start.is_some() {
                self.ramp_from_ms
                    .store(cluster.now_ms(now), Ordering::Relaxed);
            }
        }
        true
    }

    /// The weight a balancer should use: `weight`, scaled down while slow start ramps
    /// the host up (from a tenth of it, linearly over the window; never below 1).
    pub(crate) fn effective_weight(&self, cluster: &ClusterHealth, weight: u32) -> u32 {
        let from = self.ramp_from_ms.load(Ordering::Relaxed);
        if from == 0 {
            return weight;
        }
        let Some(window) = cluster.slow_start else {
            return weight;
        };
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let elapsed = cluster.now_ms(Instant::now()).saturating_sub(from);
        if elapsed >= window_ms {
            self.ramp_from_ms.store(0, Ordering::Relaxed);
            return weight;
        }
        let fraction = (elapsed as f64 / window_ms as f64).max(0.1);
        ((f64::from(weight) * fraction) as u32).max(1)
    }

    /// The active check's verdict changed: `failure` is why it fails, or `None` when it
    /// passes. Returns whether the host's check state changed.
    pub(crate) fn set_check(
        &self,
        cluster: &ClusterHealth,
        failure: Option<String>,
        now: Instant,
    ) -> bool {
        match failure {
            Some(reason) => {
                let mut detail = self.detail.lock();
                let changed = self.set(cluster, CHECK_FAILED);
                if changed || detail.check_failure.is_none() {
                    detail.check_failure = Some((reason, SystemTime::now()));
                }
                changed
            }
            None => {
                self.detail.lock().check_failure = None;
                self.clear(cluster, CHECK_FAILED, now)
            }
        }
    }

    /// Whether the host waits for its first active check (no verdict yet).
    pub(crate) fn pending(&self) -> bool {
        self.check_failed() && self.detail.lock().check_failure.is_none()
    }

    /// Whether the host is failing (or has not yet passed) its active check.
    pub(crate) fn check_failed(&self) -> bool {
        self.flags.load(Ordering::Acquire) & CHECK_FAILED != 0
    }

    /// Counts `n` requests that ended with `outcome`; returns true when they make the
    /// host reach `consecutive_errors` failures in a row (the caller ejects it).
    pub(crate) fn record(&self, cluster: &ClusterHealth, outcome: Outcome, n: u64) -> bool {
        let Some(outlier) = &cluster.outlier else {
            return false;
        };
        if outcome.is_host_failure() {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            let run = self
                .consecutive_errors
                .fetch_add(n, Ordering::Relaxed)
                .saturating_add(n);
            outlier.consecutive_errors > 0 && run >= outlier.consecutive_errors
        } else {
            if matches!(outcome, Outcome::Upstream(ResponseClass::Success | ResponseClass::ClientError))
                // A load before the store: an unbroken run of successes writes nothing.
                && self.consecutive_errors.load(Ordering::Relaxed) != 0
            {
                self.consecutive_errors.store(0, Ordering::Relaxed);
            }
            false
        }
    }

    /// Ejects the host for `reason`, unless it is ejected already or the cluster has
    /// ejected as many hosts as `max_ejection_percent` allows. Returns how long the
    /// ejection lasts when it happened.
    pub(crate) fn eject(
        &self,
        cluster: &ClusterHealth,
        reason: EjectReason,
        now: Instant,
    ) -> Option<Duration> {
        let outlier = cluster.outlier.as_ref()?;
        let mut detail = self.detail.lock();
        if detail.ejection.is_some() {
            return None;
        }
        let max = cluster.max_ejected(outlier.max_ejection_percent);
        // Reserve a place under the cap first, so two hosts ejected at once cannot both
        // take the last one.
        let reserved = cluster
            .ejected
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |e| {
                (e < max).then_some(e + 1)
            });
        if reserved.is_err() {
            return None;
        }
        detail.ejections = detail.ejections.saturating_add(1);
        detail.ejections_total += 1;
        let time = outlier
            .base_ejection_time
            .saturating_mul(detail.ejections)
            .min(outlier.max_ejection_time.max(outlier.base_ejection_time));
        detail.ejection = Some(Ejection {
            reason,
            since: SystemTime::now(),
            until: now + time,
        });
        self.consecutive_errors.store(0, Ordering::Relaxed);
        self.set(cluster, EJECTED);
        Some(time)
    }

    /// At an interval's end: ends an ejection whose time is up (returns true), and lets
    /// a host that stayed in for a whole interval shorten its next ejection.
    pub(crate) fn sweep(&self, cluster: &ClusterHealth, now: Instant) -> bool {
        let mut detail = self.detail.lock();
        match detail.ejection {
            Some(e) if now >= e.until => {
                detail.ejection = None;
                cluster.ejected.fetch_sub(1, Ordering::AcqRel);
                self.clear(cluster, EJECTED, now);
                true
            }
            Some(_) => false,
            None => {
                detail.ejections = detail.ejections.saturating_sub(1);
                false
            }
        }
    }

    /// Whether outlier detection has the host ejected.
    #[cfg(test)]
    pub(crate) fn ejected(&self) -> bool {
        self.flags.load(Ordering::Acquire) & EJECTED != 0
    }

    /// The admin view; `checked` says whether the cluster runs active checks.
    pub(crate) fn snapshot(
        &self,
        cluster: &ClusterHealth,
        checked: bool,
        weight: u32,
    ) -> HealthSnapshot {
        let detail = self.detail.lock();
        let now = Instant::now();
        let check = checked.then(|| match (&detail.check_failure, self.check_failed()) {
            (_, false) => "passing",
            (Some(_), true) => "failing",
            (None, true) => "pending",
        });
        HealthSnapshot {
            healthy: self.healthy(),
            check,
            check_failure: detail.check_failure.as_ref().map(|(r, _)| r.clone()),
            check_failing_since: detail.check_failure.as_ref().map(|(_, s)| *s),
            ejected: detail.ejection.map(|e| e.reason),
            ejected_since: detail.ejection.map(|e| e.since),
            ejected_for: detail
                .ejection
                .map(|e| e.until.saturating_duration_since(now)),
            ejections: detail.ejections_total,
            effective_weight: self.effective_weight(cluster, weight),
        }
    }
}

/// The hosts whose success rate in the last interval is below the mean of the hosts
/// with enough requests by more than `stdev_factor` standard deviations. `rates` holds
/// each host's (requests, failures) in the interval.
pub(crate) fn success_rate_outliers(
    rates: &[(u64, u64)],
    outlier: &OutlierDetection,
) -> Vec<usize> {
    if outlier.success_rate_minimum_hosts == 0 {
        return Vec::new();
    }
    let measured: Vec<(usize, f64)> = rates
        .iter()
        .enumerate()
        .filter(|(_, (requests, _))| *requests >= outlier.success_rate_request_volume.max(1))
        .map(|(i, (requests, failures))| {
            (
                i,
                1.0 - (*failures).min(*requests) as f64 / *requests as f64,
            )
        })
        .collect();
    if measured.len() < outlier.success_rate_minimum_hosts {
        return Vec::new();
    }
    let n = measured.len() as f64;
    let mean = measured.iter().map(|(_, r)| r).sum::<f64>() / n;
    let variance = measured
        .iter()
        .map(|(_, r)| (r - mean).powi(2))
        .sum::<f64>()
        / n;
    let threshold = mean - outlier.success_rate_stdev_factor * variance.sqrt();
    measured
        .into_iter()
        .filter(|(_, rate)| *rate < threshold)
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use strait_codec_framework::ProxyFailure;

    fn outlier(consecutive: u32, max_percent: u32) -> OutlierDetection {
        OutlierDetection {
            consecutive_errors: consecutive,
            max_ejection_percent: max_percent,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(100),
            ..OutlierDetection::default()
        }
    }

    const RESET: Outcome = Outcome::Failed(ProxyFailure::UpstreamReset);
    const OK: Outcome = Outcome::Upstream(ResponseClass::Success);

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_eject_and_a_success_breaks_the_run() {
        let cluster = ClusterHealth::new(3, Some(outlier(3, 100)), None);
        let host = HostHealth::new(&cluster, false);
        assert!(!host.record(&cluster, RESET, 2));
        assert!(!host.record(&cluster, OK, 1), "a success resets the run");
        assert!(!host.record(&cluster, RESET, 2));
        // The caller's fault is not the host's: no reset, no count.
        assert!(!host.record(&cluster, Outcome::Failed(ProxyFailure::NoRoute), 5));
        assert!(host.record(&cluster, Outcome::Upstream(ResponseClass::ServerError), 1));
        assert!(
            host.eject(&cluster, EjectReason::ConsecutiveErrors, Instant::now())
                .is_some()
        );
        assert!(!host.healthy() && host.ejected());
        assert_eq!(cluster.unhealthy.load(Ordering::Relaxed), 1);
        assert!(
            host.eject(&cluster, EjectReason::ConsecutiveErrors, Instant::now())
                .is_none(),
            "ejected once"
        );
    }

    /// Ejection time grows with each ejection in a row, up to the maximum; the host
    /// comes back at the first sweep after its time is up; clean intervals shorten
    /// the next ejection again.
    #[tokio::test(start_paused = true)]
    async fn ejection_schedule_grows_caps_and_decays() {
        let cluster = ClusterHealth::new(1, Some(outlier(1, 100)), None);
        let host = HostHealth::new(&cluster, false);
        let mut times = Vec::new();
        for _ in 0..5 {
            let now = Instant::now();
            let time = host
                .eject(&cluster, EjectReason::ConsecutiveErrors, now)
                .unwrap();
            times.push(time.as_secs());
            tokio::time::advance(time - Duration::from_millis(1)).await;
            assert!(!host.sweep(&cluster, Instant::now()), "not before its time");
            tokio::time::advance(Duration::from_millis(1)).await;
            assert!(
                host.sweep(&cluster, Instant::now()),
                "back when its time is up"
            );
            assert!(host.healthy());
        }
        assert_eq!(times, [30, 60, 90, 100, 100]);
        assert_eq!(cluster.ejected.load(Ordering::Relaxed), 0);
        assert_eq!(cluster.unhealthy.load(Ordering::Relaxed), 0);
        // Three clean sweeps: the multiplier falls from 5 to 2, so the next is 3 × 30 s.
        for _ in 0..3 {
            host.sweep(&cluster, Instant::now());
        }
        let time = host
            .eject(&cluster, EjectReason::SuccessRate, Instant::now())
            .unwrap();
        assert_eq!(time.as_secs(), 90);
        assert_eq!(host.snapshot(&cluster, false, 1).ejections, 6);
    }

    #[tokio::test(start_paused = true)]
    async fn max_ejection_percent_caps_ejections_but_allows_one() {
        let cluster = ClusterHealth::new(10, Some(outlier(1, 25)), None);
        let hosts: Vec<HostHealth> = (0..10).map(|_| HostHealth::new(&cluster, false)).collect();
        let now = Instant::now();
        let ejected = hosts
            .iter()
            .filter(|h| {
                h.eject(&cluster, EjectReason::ConsecutiveErrors, now)
                    .is_some()
            })
            .count();
        assert_eq!(ejected, 2, "25% of 10 hosts");
        let small = ClusterHealth::new(3, Some(outlier(1, 10)), None);
        let hosts: Vec<HostHealth> = (0..3).map(|_| HostHealth::new(&small, false)).collect();
        let ejected = hosts
            .iter()
            .filter(|h| {
                h.eject(&small, EjectReason::ConsecutiveErrors, now)
                    .is_some()
            })
            .count();
        assert_eq!(ejected, 1, "10% of 3 rounds down to 0, yet one host may go");
    }

    #[tokio::test(start_paused = true)]
    async fn active_check_and_ejection_flags_count_once_per_host() {
        let cluster = ClusterHealth::new(2, Some(outlier(1, 100)), None);
        let host = HostHealth::new(&cluster, true);
        assert!(!host.healthy(), "pending its first check");
        assert_eq!(host.snapshot(&cluster, true, 1).check, Some("pending"));
        assert_eq!(cluster.unhealthy.load(Ordering::Relaxed), 1);
        host.eject(&cluster, EjectReason::ConsecutiveErrors, Instant::now());
        assert_eq!(
            cluster.unhealthy.load(Ordering::Relaxed),
            1,
            "one host, two flags"
        );
        assert!(host.set_check(&cluster, None, Instant::now()));
        assert!(!host.healthy(), "still ejected");
        tokio::time::advance(Duration::from_secs(30)).await;
        host.sweep(&cluster, Instant::now());
        assert!(host.healthy());
        assert_eq!(cluster.unhealthy.load(Ordering::Relaxed), 0);
        assert!(host.set_check(&cluster, Some("refused".into()), Instant::now()));
        let view = host.snapshot(&cluster, true, 1);
        assert_eq!(view.check, Some("failing"));
        assert_eq!(view.check_failure.as_deref(), Some("refused"));
        assert!(!host.set_check(&cluster, Some("again".into()), Instant::now()));
        assert_eq!(
            host.snapshot(&cluster, true, 1).check_failure.as_deref(),
            Some("refused"),
            "the first reason and time stay while the host keeps failing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_start_ramps_weight_over_the_window() {
        let cluster = ClusterHealth::new(1, None, Some(Duration::from_secs(10)));
        let host = HostHealth::new(&cluster, true);
        tokio::time::advance(Duration::from_secs(1)).await;
        host.set_check(&cluster, None, Instant::now());
        let mut weights = Vec::new();
        for _ in 0..6 {
            weights.push(host.effective_weight(&cluster, 100));
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        assert_eq!(weights, [10, 20, 40, 60, 80, 100]);
        assert_eq!(host.effective_weight(&cluster, 1), 1, "never below 1");
    }

    #[test]
    fn success_rate_outliers_are_below_mean_by_the_stdev_factor() {
        let settings = OutlierDetection {
            success_rate_minimum_hosts: 5,
            success_rate_request_volume: 100,
            success_rate_stdev_factor: 1.9,
            ..OutlierDetection::default()
        };
        // Five hosts at 99-100%, one at 50%: only the last stands out.
        let mut rates = vec![
            (1000, 0),
            (1000, 10),
            (1000, 5),
            (1000, 0),
            (1000, 2),
            (1000, 500),
        ];
        assert_eq!(success_rate_outliers(&rates, &settings), [5]);
        // Too few requests on a host: it is not measured, and five hosts are needed.
        rates[0] = (99, 99);
        assert_eq!(success_rate_outliers(&rates, &settings), [5]);
        rates[1] = (10, 0);
        assert_eq!(
            success_rate_outliers(&rates, &settings),
            Vec::<usize>::new()
        );
        // All alike: nobody is an outlier.
        let even = vec![(500, 5); 6];
        assert!(success_rate_outliers(&even, &settings).is_empty());
    }
}
