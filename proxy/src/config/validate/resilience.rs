//! A cluster's resilience keys: `health_check`, `outlier_detection`,
//! `circuit_breakers` (with the older top-level `max_requests`), `slow_start` and
//! `panic_threshold`; checked against what the cluster's protocol can do, and dumped
//! back in the same keys.

use std::time::Duration;

use serde_json::{Value, json};
use serde_saphyr::Spanned;
use strait_codec_framework::PoolMode;
use strait_upstream::lb::LbPolicy;
use strait_upstream::{
    CheckKind, CircuitBreakers, ClusterOptions, HashKey, HealthCheck, OutlierDetection,
    RetryBudget, Transport,
};

use super::super::duration::format as duration;
use super::super::file::{ClusterFile, HealthCheckFile, OutlierDetectionFile, StatusesFile};
use super::{ConfigError, Ctx};

/// Default `panic_threshold`, Envoy's: below half the hosts healthy, use them all.
pub(crate) const DEFAULT_PANIC_THRESHOLD: u32 = 50;

/// The checked resilience settings of one cluster.
pub(super) struct Resilience {
    pub(super) health_check: Option<HealthCheck>,
    pub(super) outlier_detection: Option<OutlierDetection>,
    pub(super) circuit_breakers: CircuitBreakers,
    pub(super) slow_start: Option<Duration>,
    pub(super) panic_threshold: u32,
}

/// The `hash_key` of cluster `c`: required by the hashing policies, an error with
/// the others (it would be ignored).
pub(super) fn hash_key(
    cx: &Ctx<'_>,
    c: &ClusterFile,
    key: &str,
    policy: LbPolicy,
) -> Result<Option<HashKey>, ConfigError> {
    let k = format!("{key}.hash_key");
    match (&c.hash_key, policy.is_hashing()) {
        (None, false) => Ok(None),
        (None, true) => Err(cx.err(
            c.lb_policy
                .as_ref()
                .map_or(c.name.referenced, |p| p.referenced),
            k,
            format!("{policy} needs a hash_key: {{ header: NAME }} or {{ variable: NAME }}"),
        )),
        (Some(h), false) => Err(cx.err(
            h.referenced,
            k,
            format!("only ring_hash and maglev hash requests, not {policy}"),
        )),
        (Some(h), true) => match (&h.value.header, &h.value.variable) {
            (Some(name), None) => Ok(Some(HashKey::Header(name.value.clone()))),
            (None, Some(name)) => Ok(Some(HashKey::Variable(name.value.clone()))),
            _ => Err(cx.err(h.referenced, k, "set one of header or variable")),
        },
    }
}

/// Checks the resilience keys of cluster `c` (at `key`), which speaks `transport`.
pub(super) fn resilience(
    cx: &Ctx<'_>,
    c: &ClusterFile,
    key: &str,
    transport: &Transport,
    default_max_requests: usize,
) -> Result<Resilience, ConfigError> {
    let health_check = match &c.health_check {
        Some(h) => Some(health_check(
            cx,
            &h.value,
            &format!("{key}.health_check"),
            transport,
        )?),
        None => None,
    };
    let outlier_detection = match &c.outlier_detection {
        Some(o) => Some(outlier(cx, &o.value, &format!("{key}.outlier_detection"))?),
        None => None,
    };
    let mut breakers = CircuitBreakers {
        max_requests: cx.size(
            &c.max_requests,
            format!("{key}.max_requests"),
            default_max_requests,
        )?,
        ..CircuitBreakers::default()
    };
    if let Some(b) = &c.circuit_breakers {
        let k = format!("{key}.circuit_breakers");
        let b = &b.value;
        if let (Some(old), Some(_)) = (&c.max_requests, &b.max_requests) {
            return Err(cx.err(
                old.referenced,
                format!("{key}.max_requests"),
                "set once: circuit_breakers.max_requests is the same bound",
            ));
        }
        breakers.max_connections = cx.size(
            &b.max_connections,
            format!("{k}.max_connections"),
            breakers.max_connections,
        )?;
        breakers.max_pending_requests = cx.size(
            &b.max_pending_requests,
            format!("{k}.max_pending_requests"),
            breakers.max_pending_requests,
        )?;
        breakers.max_requests = cx.size(
            &b.max_requests,
            format!("{k}.max_requests"),
            breakers.max_requests,
        )?;
        if let Some(r) = &b.max_retries {
            // 0 is meaningful: no retries at all.
            breakers.max_retries = usize::try_from(r.value)
                .map_err(|_| cx.err(r.referenced, format!("{k}.max_retries"), "too large"))?;
        }
        if let Some(budget) = &b.retry_budget {
            let bk = format!("{k}.retry_budget");
            if let Some(r) = &b.max_retries {
                return Err(cx.err(
                    r.referenced,
                    format!("{k}.max_retries"),
                    "a retry_budget replaces max_retries: set one",
                ));
            }
            let percent = match &budget.value.budget_percent {
                Some(p) if !(p.value.is_finite() && (0.0..=100.0).contains(&p.value)) => {
                    return Err(cx.err(
                        p.referenced,
                        format!("{bk}.budget_percent"),
                        "must be between 0 and 100",
                    ));
                }
                Some(p) => p.value,
                None => 20.0,
            };
            let min = match &budget.value.min_retry_concurrency {
                Some(m) => usize::try_from(m.value).map_err(|_| {
                    cx.err(
                        m.referenced,
                        format!("{bk}.min_retry_concurrency"),
                        "too large",
                    )
                })?,
                None => 3,
            };
            breakers.retry_budget = Some(RetryBudget {
                budget_percent: percent,
                min_retry_concurrency: min,
            });
        }
    }
    let slow_start = match &c.slow_start {
        Some(s) => {
            let window = cx.duration(&s.value.window, format!("{key}.slow_start.window"))?;
            if window.is_zero() {
                return Err(cx.err(
                    s.value.window.referenced,
                    format!("{key}.slow_start.window"),
                    "must be longer than 0s",
                ));
            }
            Some(window)
        }
        None => None,
    };
    let panic_threshold = match &c.panic_threshold {
        Some(p) => cx.within(p, format!("{key}.panic_threshold"), (0, 100))? as u32,
        None => DEFAULT_PANIC_THRESHOLD,
    };
    Ok(Resilience {
        health_check,
        outlier_detection,
        circuit_breakers: breakers,
        slow_start,
        panic_threshold,
    })
}

fn positive(
    cx: &Ctx<'_>,
    v: &Option<Spanned<String>>,
    key: String,
    default: Duration,
) -> Result<Duration, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    let d = cx.duration(v, key.clone())?;
    if d.is_zero() {
        return Err(cx.err(v.referenced, key, "must be longer than 0s"));
    }
    Ok(d)
}

fn health_check(
    cx: &Ctx<'_>,
    h: &HealthCheckFile,
    key: &str,
    transport: &Transport,
) -> Result<HealthCheck, ConfigError> {
    let protocol = transport.name();
    let mode = transport.pool_mode();
    let kind_key = format!("{key}.type");
    let kind = match h.kind.value.as_str() {
        "tcp" => CheckKind::Tcp,
        "http" => {
            if mode == PoolMode::Multiplex {
                return Err(cx.err(
                    h.kind.referenced,
                    kind_key,
                    format!("an http check needs an http1 or http2 cluster, not {protocol}; use tcp or protocol"),
                ));
            }
            let path = h.path.as_ref().ok_or_else(|| {
                cx.err(
                    h.kind.referenced,
                    format!("{key}.path"),
                    "an http check needs a path (path: /healthz)",
                )
            })?;
            if !path.value.starts_with('/') {
                return Err(cx.err(path.referenced, format!("{key}.path"), "must start with /"));
            }
            CheckKind::Http {
                path: path.value.clone(),
                expected_statuses: statuses(cx, h, key)?,
            }
        }
        "grpc" => {
            if mode != PoolMode::Http2Streams {
                return Err(cx.err(
                    h.kind.referenced,
                    kind_key,
                    format!("a grpc check needs an http2 cluster, not {protocol}"),
                ));
            }
            CheckKind::Grpc {
                service_name: h
                    .service_name
                    .as_ref()
                    .map(|s| s.value.clone())
                    .unwrap_or_default(),
            }
        }
        named if named == "protocol" || named == protocol => {
            let Transport::Framed(p) = transport else {
                return Err(cx.err(
                    h.kind.referenced,
                    kind_key,
                    format!("{protocol} clusters take an http or grpc check"),
                ));
            };
            if p.health_check_request(1).is_none() {
                return Err(cx.err(
                    h.kind.referenced,
                    kind_key,
                    format!("protocol {protocol} has no health-check probe; use tcp"),
                ));
            }
            CheckKind::Protocol
        }
        other => {
            let own = if mode == PoolMode::Multiplex {
                format!("protocol (or {protocol})")
            } else {
                "http, grpc".into()
            };
            return Err(cx.err(
                h.kind.referenced,
                kind_key,
                format!("unknown check {other:?} (tcp, {own})"),
            ));
        }
    };
    // Keys that belong to another kind are mistakes, not silently ignored.
    let stray = [
        (
            "path",
            h.path.as_ref().map(|v| v.referenced),
            matches!(kind, CheckKind::Http { .. }),
        ),
        (
            "expected_statuses",
            h.expected_statuses
                .as_ref()
                .and_then(|v| v.first())
                .map(|v| v.referenced),
            matches!(kind, CheckKind::Http { .. }),
        ),
        (
            "service_name",
            h.service_name.as_ref().map(|v| v.referenced),
            matches!(kind, CheckKind::Grpc { .. }),
        ),
    ];
    for (name, at, allowed) in stray {
        if let (Some(at), false) = (at, allowed) {
            return Err(cx.err(
                at,
                format!("{key}.{name}"),
                format!("not used by a {} check", kind.as_str()),
            ));
        }
    }
    let mut check = HealthCheck::new(kind);
    check.interval = positive(cx, &h.interval, format!("{key}.interval"), check.interval)?;
    if let Some(j) = &h.interval_jitter {
        check.interval_jitter = cx.duration(j, format!("{key}.interval_jitter"))?;
    }
    check.timeout = positive(cx, &h.timeout, format!("{key}.timeout"), check.timeout)?;
    if let Some(t) = &h.unhealthy_threshold {
        check.unhealthy_threshold =
            cx.within(t, format!("{key}.unhealthy_threshold"), (1, 1000))? as u32;
    }
    if let Some(t) = &h.healthy_threshold {
        check.healthy_threshold =
            cx.within(t, format!("{key}.healthy_threshold"), (1, 1000))? as u32;
    }
    Ok(check)
}

fn statuses(
    cx: &Ctx<'_>,
    h: &HealthCheckFile,
    key: &str,
) -> Result<Vec<std::ops::RangeInclusive<u16>>, ConfigError> {
    let Some(list) = &h.expected_statuses else {
        return Ok(vec![200..=200]); // Envoy's default: 200 only
    };
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let k = format!("{key}.expected_statuses[{i}]");
        let bad = || {
            cx.err(
                entry.referenced,
                k.clone(),
                "expected a status (200) or a range (\"200-299\") within 100-599",
            )
        };
        let code = |n: &str| {
            n.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
        };
        let range = match &entry.value {
            StatusesFile::Code(c) => {
                let c = u16::try_from(*c)
                    .ok()
                    .filter(|c| (100..=599).contains(c))
                    .ok_or_else(bad)?;
                c..=c
            }
            StatusesFile::Range(text) => match text.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (code(lo).ok_or_else(bad)?, code(hi).ok_or_else(bad)?);
                    if lo > hi {
                        return Err(bad());
                    }
                    lo..=hi
                }
                None => {
                    let c = code(text).ok_or_else(bad)?;
                    c..=c
                }
            },
        };
        out.push(range);
    }
    if out.is_empty() {
        return Err(cx.err(
            h.kind.referenced,
            format!("{key}.expected_statuses"),
            "needs at least one status",
        ));
    }
    Ok(out)
}

fn outlier(
    cx: &Ctx<'_>,
    o: &OutlierDetectionFile,
    key: &str,
) -> Result<OutlierDetection, ConfigError> {
    let mut out = OutlierDetection::default();
    if let Some(n) = &o.consecutive_errors {
        out.consecutive_errors =
            cx.within(n, format!("{key}.consecutive_errors"), (0, 1_000_000))? as u32;
    }
    out.interval = positive(cx, &o.interval, format!("{key}.interval"), out.interval)?;
    out.base_ejection_time = positive(
        cx,
        &o.base_ejection_time,
        format!("{key}.base_ejection_time"),
        out.base_ejection_time,
    )?;
    out.max_ejection_time = positive(
        cx,
        &o.max_ejection_time,
        format!("{key}.max_ejection_time"),
        out.max_ejection_time.max(out.base_ejection_time),
    )?;
    if out.max_ejection_time < out.base_ejection_time {
        let at = o.max_ejection_time.as_ref().map(|v| v.referenced);
        if let Some(at) = at {
            return Err(cx.err(
                at,
                format!("{key}.max_ejection_time"),
                "shorter than base_ejection_time",
            ));
        }
    }
    if let Some(p) = &o.max_ejection_percent {
        out.max_ejection_percent =
            cx.within(p, format!("{key}.max_ejection_percent"), (0, 100))? as u32;
    }
    if let Some(n) = &o.success_rate_minimum_hosts {
        out.success_rate_minimum_hosts =
            cx.within(n, format!("{key}.success_rate_minimum_hosts"), (0, 100_000))? as usize;
    }
    if let Some(n) = &o.success_rate_request_volume {
        out.success_rate_request_volume = cx.within(
            n,
            format!("{key}.success_rate_request_volume"),
            (1, u64::MAX),
        )?;
    }
    if let Some(f) = &o.success_rate_stdev_factor {
        if !(f.value.is_finite() && f.value > 0.0) {
            return Err(cx.err(
                f.referenced,
                format!("{key}.success_rate_stdev_factor"),
                "must be a positive number",
            ));
        }
        out.success_rate_stdev_factor = f.value;
    }
    Ok(out)
}

/// The resilience keys of a cluster, for `/config_dump`.
pub(super) fn dump(c: &ClusterOptions) -> [(&'static str, Value); 5] {
    let b = &c.circuit_breakers;
    [
        (
            "circuit_breakers",
            json!({
                "max_connections": b.max_connections,
                "max_pending_requests": b.max_pending_requests,
                "max_requests": b.max_requests,
                "max_retries": b.retry_budget.is_none().then_some(b.max_retries),
                "retry_budget": b.retry_budget.map(|r| json!({
                    "budget_percent": r.budget_percent,
                    "min_retry_concurrency": r.min_retry_concurrency,
                })),
            }),
        ),
        (
            "health_check",
            c.health_check.as_ref().map_or(Value::Null, |h| {
                let (path, statuses, service) = match &h.kind {
                    CheckKind::Http {
                        path,
                        expected_statuses,
                    } => (
                        Some(path.clone()),
                        Some(
                            expected_statuses
                                .iter()
                                .map(|r| {
                                    if r.start() == r.end() {
                                        json!(r.start())
                                    } else {
                                        json!(format!("{}-{}", r.start(), r.end()))
                                    }
                                })
                                .collect::<Vec<_>>(),
                        ),
                        None,
                    ),
                    CheckKind::Grpc { service_name } => (None, None, Some(service_name.clone())),
                    _ => (None, None, None),
                };
                json!({
                    "type": h.kind.as_str(),
                    "interval": duration(h.interval),
                    "interval_jitter": duration(h.interval_jitter),
                    "timeout": duration(h.timeout),
                    "unhealthy_threshold": h.unhealthy_threshold,
                    "healthy_threshold": h.healthy_threshold,
                    "path": path,
                    "expected_statuses": statuses,
                    "service_name": service,
                })
            }),
        ),
        (
            "outlier_detection",
            c.outlier_detection.as_ref().map_or(Value::Null, |o| {
                json!({
                    "consecutive_errors": o.consecutive_errors,
                    "interval": duration(o.interval),
                    "base_ejection_time": duration(o.base_ejection_time),
                    "max_ejection_time": duration(o.max_ejection_time),
                    "max_ejection_percent": o.max_ejection_percent,
                    "success_rate_minimum_hosts": o.success_rate_minimum_hosts,
                    "success_rate_request_volume": o.success_rate_request_volume,
                    "success_rate_stdev_factor": o.success_rate_stdev_factor,
                })
            }),
        ),
        (
            "slow_start",
            c.slow_start
                .map_or(Value::Null, |w| json!({ "window": duration(w) })),
        ),
        ("panic_threshold", json!(c.panic_threshold)),
    ]
}
