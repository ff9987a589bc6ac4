//! `/metrics` and `/stats`: the request metrics recorded at the one request hook
//! (`strait-telemetry`), plus what the clusters already count (outcomes, pools,
//! breakers, retries, hosts), read from their snapshots at scrape time.

use std::sync::Arc;

use strait_telemetry::access_log::Target;
use strait_telemetry::{Exposition, Family, Kind};
use strait_upstream::{Breaker, Cluster};

use crate::server::{AdminState, Snapshot};

/// Every metric family, as one scrape.
pub(super) fn exposition(admin: &AdminState) -> Exposition {
    let state = &**admin.core.snapshot();
    let mut out = Exposition::default();
    if let Some(metrics) = &state.metrics {
        metrics.collect(&mut out);
    }
    let mut clusters: Vec<&Arc<Cluster>> = state.clusters.iter().collect();
    clusters.sort_by(|a, b| a.name().cmp(b.name()));
    for family in cluster_families(&clusters) {
        out.add(family);
    }
    let mut dropped = Family::new(
        "strait_access_log_dropped_lines",
        "Access-log lines dropped because the writer fell behind.",
        Kind::Counter,
    );
    for sink in &state.access_logs {
        let target = match sink.target() {
            Target::Stdout => "stdout".to_string(),
            Target::File(path) => path.display().to_string(),
        };
        dropped.int(&[("path", &target)], sink.dropped());
    }
    out.add(dropped);
    for family in tls_families(state) {
        out.add(family);
    }
    let mut reloads = Family::new(
        "strait_config_reloads",
        "Configuration reloads (SIGHUP, POST /reload, a watched file): applied (result=success) or refused, the running configuration staying (result=failure).",
        Kind::Counter,
    );
    let counts = &admin.core.reloads;
    reloads.int(
        &[("result", "success")],
        counts.succeeded.load(std::sync::atomic::Ordering::Relaxed),
    );
    reloads.int(
        &[("result", "failure")],
        counts.failed.load(std::sync::atomic::Ordering::Relaxed),
    );
    out.add(reloads);
    let mut version = Family::new(
        "strait_config_version",
        "Version of the configuration in force: 1 at start, one more per applied reload.",
        Kind::Gauge,
    );
    version.int(&[], state.version);
    out.add(version);
    if let Some(tracer) = &state.tracer {
        let stats = tracer.stats();
        for (name, help, value) in [
            (
                "strait_tracing_spans_exported",
                "Spans the collector accepted.",
                &stats.exported,
            ),
            (
                "strait_tracing_spans_dropped",
                "Spans dropped because the export queue was full (collector down or slow).",
                &stats.dropped,
            ),
            (
                "strait_tracing_export_failures",
                "Span export calls that failed or timed out.",
                &stats.failed_exports,
            ),
        ] {
            let mut family = Family::new(name, help, Kind::Counter);
            family.int(&[], value.load(std::sync::atomic::Ordering::Relaxed));
            out.add(family);
        }
    }
    out
}

fn cluster_families(clusters: &[&Arc<Cluster>]) -> Vec<Family> {
    use Kind::{Counter, Gauge};
    let mut requests = Family::new(
        "strait_cluster_requests",
        "Requests ended, by cluster and outcome (the upstream's class or the proxy's failure).",
        Counter,
    );
    let mut active = Family::new(
        "strait_cluster_requests_active",
        "Requests in flight.",
        Gauge,
    );
    let mut connections = Family::new(
        "strait_cluster_pool_connections",
        "Open upstream connections.",
        Gauge,
    );
    let mut pending = Family::new(
        "strait_cluster_pool_pending_requests",
        "Requests waiting for an upstream connection.",
        Gauge,
    );
    let mut open = Family::new(
        "strait_cluster_circuit_breaker_open",
        "1 while a circuit breaker's bound is reached (new work of that kind is refused).",
        Gauge,
    );
    let mut overflows = Family::new(
        "strait_cluster_circuit_breaker_overflows",
        "Work refused by a circuit breaker.",
        Counter,
    );
    let mut retries = Family::new(
        "strait_cluster_retries",
        "Requests admitted for another attempt.",
        Counter,
    );
    let mut heartbeats = Family::new(
        "strait_cluster_heartbeats_sent",
        "Protocol heartbeats sent on idle upstream connections.",
        Counter,
    );
    let mut heartbeats_unanswered = Family::new(
        "strait_cluster_heartbeats_unanswered",
        "Heartbeats whose answer did not come within the interval.",
        Counter,
    );
    let mut panic = Family::new(
        "strait_cluster_panic",
        "1 while too few hosts are healthy and the balancer uses them all.",
        Gauge,
    );
    let mut host_requests = Family::new(
        "strait_host_requests",
        "Requests that reached the host and ended.",
        Counter,
    );
    let mut host_failures = Family::new(
        "strait_host_failures",
        "Requests the host failed (reset, timeout, server error).",
        Counter,
    );
    let mut host_connect_failures = Family::new(
        "strait_host_connect_failures",
        "Consecutive failed connection attempts to the host.",
        Gauge,
    );
    let mut host_healthy = Family::new(
        "strait_host_healthy",
        "1 if the host passes its health checks and is not ejected.",
        Gauge,
    );
    let mut host_ejected = Family::new(
        "strait_host_ejected",
        "1 while outlier detection keeps the host out.",
        Gauge,
    );
    let mut host_ejections = Family::new(
        "strait_host_ejections",
        "Times outlier detection ejected the host.",
        Counter,
    );
    let mut host_connections = Family::new(
        "strait_host_connections",
        "Open pooled connections to the host.",
        Gauge,
    );
    let mut host_active = Family::new(
        "strait_host_requests_active",
        "Requests in flight to the host.",
        Gauge,
    );
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    for cluster in clusters {
        let s = cluster.snapshot();
        let name = s.name.as_str();
        let c = [("cluster", name)];
        for (outcome, n) in &s.outcomes {
            requests.int(&[("cluster", name), ("outcome", outcome)], *n);
        }
        active.int(&c, count(s.in_flight));
        let b = &s.breakers;
        connections.int(&c, count(b.connections));
        pending.int(&c, count(b.pending));
        retries.int(&c, b.retried);
        panic.int(&c, u64::from(s.panic));
        heartbeats.int(&c, s.heartbeats_sent);
        heartbeats_unanswered.int(&c, s.heartbeats_unanswered);
        let limits = &b.limits;
        let in_use = [
            (b.connections, limits.max_connections),
            (b.pending, limits.max_pending_requests),
            (s.in_flight, limits.max_requests),
            (b.retries, limits.max_retries),
        ];
        for ((breaker, (used, limit)), n) in Breaker::ALL.iter().zip(in_use).zip(b.overflows) {
            let labels = [("cluster", name), ("breaker", breaker.as_str())];
            open.int(&labels, u64::from(used >= limit));
            overflows.int(&labels, n);
        }
        for h in &s.hosts {
            let addr = h.addr.to_string();
            let labels = [("cluster", name), ("host", addr.as_str())];
            host_requests.int(&labels, h.requests);
            host_failures.int(&labels, h.failures);
            host_connect_failures.int(&labels, u64::from(h.connect_failures));
            host_healthy.int(&labels, u64::from(h.health.healthy));
            host_ejected.int(&labels, u64::from(h.health.ejected.is_some()));
            host_ejections.int(&labels, h.health.ejections);
            host_connections.int(&labels, count(h.connections));
            host_active.int(&labels, count(h.in_flight));
        }
    }
    vec![
        requests,
        active,
        connections,
        pending,
        open,
        overflows,
        retries,
        panic,
        heartbeats,
        heartbeats_unanswered,
        host_requests,
        host_failures,
        host_connect_failures,
        host_healthy,
        host_ejected,
        host_ejections,
        host_connections,
        host_active,
    ]
}

/// Handshakes, failures by reason, certificate expiry and rotations of every listener's
/// and cluster's TLS context.
fn tls_families(state: &Snapshot) -> Vec<Family> {
    use Kind::{Counter, Gauge};
    let mut handshakes = Family::new(
        "strait_tls_handshakes",
        "TLS handshakes completed, by listener (side=listener) or cluster (side=cluster).",
        Counter,
    );
    let mut failures = Family::new(
        "strait_tls_handshake_failures",
        "TLS handshakes that failed, by reason (not_tls, no_client_certificate, untrusted_certificate, expired_certificate, wrong_name, ...).",
        Counter,
    );
    let mut expiry = Family::new(
        "strait_tls_certificate_expiry_seconds",
        "When each certificate in use stops being valid (notAfter), in seconds since the Unix epoch.",
        Gauge,
    );
    let mut rotations = Family::new(
        "strait_tls_rotations",
        "Times changed certificate, key or CA files were loaded (result=loaded), or failed to load and the previous material was kept (result=failed).",
        Counter,
    );
    let listeners = state.config.listeners.iter().filter_map(|l| {
        let tls = l.tls.as_deref()?;
        Some(("listener", tls.name(), tls.stats(), tls.expiry()))
    });
    let clusters = state.config.clusters.iter().filter_map(|c| {
        let tls = c.options.tls.as_deref()?;
        Some(("cluster", tls.name(), tls.stats(), tls.expiry()))
    });
    for (side, name, stats, expires) in listeners.chain(clusters) {
        let who = [("side", side), ("name", name)];
        handshakes.int(&who, stats.handshakes());
        for (reason, n) in stats.failures() {
            failures.int(
                &[("side", side), ("name", name), ("reason", reason.as_str())],
                n,
            );
        }
        for e in expires {
            let file = e.file.display().to_string();
            let seconds = u64::try_from(e.not_after).unwrap_or(0);
            expiry.int(&[("side", side), ("name", name), ("file", &file)], seconds);
        }
        let (loaded, failed) = stats.rotations();
        rotations.int(
            &[("side", side), ("name", name), ("result", "loaded")],
            loaded,
        );
        rotations.int(
            &[("side", side), ("name", name), ("result", "failed")],
            failed,
        );
    }
    vec![handshakes, failures, expiry, rotations]
}
