//! Tracing for every protocol, from the one request hook: a server span per request
//! and a client span for its upstream call, parented to the caller's context as it came
//! in (W3C `traceparent` in HTTP and gRPC headers, Bolt header maps and Dubbo
//! attachments alike, SOFATracer's `sofaTraceId` in Bolt), with the context injected
//! into the upstream request.
//!
//! Spans leave the request path at once: the hook hands them to a bounded queue
//! (dropped and counted when full) and one task exports them in batches over OTLP/gRPC.
//! A collector that is down or slow only ever fills the queue.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use strait_codec_framework::{
    AttemptRecord, Frame, Outcome, RequestHook, RequestRecord, RequestView, ResponseClass, TraceIds,
};
use tokio::sync::mpsc;

use crate::trace_context::{SOFA_TRACE_ID, TRACEPARENT, TraceParent};

/// Spans waiting for export before new ones are dropped.
const QUEUE: usize = 8192;
/// Most spans in one export call.
const BATCH: usize = 512;
/// Bound on one export call (a blackholed collector).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `tracing:` configures.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// Where spans go.
    pub provider: Provider,
    /// The collector's gRPC endpoint (`http://127.0.0.1:4317`).
    pub endpoint: String,
    /// The `service.name` spans are reported under.
    pub service_name: String,
    /// The share of new traces sampled (a caller's decision is kept).
    pub sampling_ratio: f64,
}

/// The tracing backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// OTLP over gRPC (an OpenTelemetry Collector, Jaeger, Tempo...).
    OpenTelemetry,
    /// A SkyWalking OAP over its v3 gRPC protocol.
    SkyWalking,
}

impl Provider {
    /// The name as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::OpenTelemetry => "opentelemetry",
            Provider::SkyWalking => "skywalking",
        }
    }
}

/// Export counters.
#[derive(Debug, Default)]
pub struct TracerStats {
    /// Spans handed to the collector.
    pub exported: AtomicU64,
    /// Spans dropped because the queue was full.
    pub dropped: AtomicU64,
    /// Export calls that failed or timed out.
    pub failed_exports: AtomicU64,
}

/// The tracer: a [`RequestHook`] that starts spans as requests start and reports
/// them as they end.
#[derive(Debug)]
pub struct Tracer {
    /// Sampled when a random `u64` is below this.
    threshold: u64,
    export: Export,
    stats: Arc<TracerStats>,
}

/// Where finished spans go.
#[derive(Debug)]
enum Export {
    /// To the OTLP exporter task.
    Otlp(mpsc::Sender<SpanData>),
    /// To the SkyWalking reporter.
    #[cfg(feature = "skywalking")]
    SkyWalking(crate::skywalking_report::Reporter),
}

impl Tracer {
    /// Starts the exporter (on the current tokio runtime) and returns the tracer.
    pub async fn start(config: &TracingConfig) -> Result<Arc<Tracer>, String> {
        let stats = Arc::new(TracerStats::default());
        let export = match config.provider {
            Provider::OpenTelemetry => Export::Otlp(start_otlp(config, stats.clone())?),
            #[cfg(feature = "skywalking")]
            Provider::SkyWalking => Export::SkyWalking(
                crate::skywalking_report::Reporter::start(
                    &config.endpoint,
                    &config.service_name,
                    stats.clone(),
                )
                .await?,
            ),
            #[cfg(not(feature = "skywalking"))]
            Provider::SkyWalking => {
                return Err(
                    "this binary was built without SkyWalking (cargo feature `skywalking`)".into(),
                );
            }
        };
        let ratio = config.sampling_ratio.clamp(0.0, 1.0);
        Ok(Arc::new(Tracer {
            threshold: if ratio >= 1.0 {
                u64::MAX
            } else {
                (ratio * u64::MAX as f64) as u64
            },
            export,
            stats,
        }))
    }

    /// Export counters.
    pub fn stats(&self) -> &TracerStats {
        &self.stats
    }

    fn sample(&self) -> bool {
        self.threshold == u64::MAX || fast_random() < self.threshold
    }

    fn push(&self, span: SpanData) {
        if let Export::Otlp(queue) = &self.export
            && queue.try_send(span).is_err()
        {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The OTLP exporter task, fed by the returned queue.
fn start_otlp(
    config: &TracingConfig,
    stats: Arc<TracerStats>,
) -> Result<mpsc::Sender<SpanData>, String> {
    use opentelemetry_otlp::WithExportConfig as _;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(config.endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("tracing exporter for {}: {e}", config.endpoint))?;
    exporter.set_resource(
        &Resource::builder()
            .with_service_name(config.service_name.clone())
            .build(),
    );
    let (queue, spans) = mpsc::channel(QUEUE);
    tokio::spawn(export(spans, exporter, stats));
    Ok(queue)
}

/// Exports what the queue holds, a batch at a time, until every sender is gone.
async fn export(
    mut spans: mpsc::Receiver<SpanData>,
    exporter: opentelemetry_otlp::SpanExporter,
    stats: Arc<TracerStats>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while spans.recv_many(&mut batch, BATCH).await > 0 {
        let n = batch.len() as u64;
        let sent =
            tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(std::mem::take(&mut batch)));
        match sent.await {
            Ok(Ok(())) => {
                stats.exported.fetch_add(n, Ordering::Relaxed);
            }
            Ok(Err(error)) => {
                stats.failed_exports.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, spans = n, "span export failed");
            }
            Err(_) => {
                stats.failed_exports.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(spans = n, "span export timed out");
            }
        }
    }
}

thread_local! {
    /// wyrand state, seeded once per thread from the OS's randomness: a sampling coin
    /// and span ids cost a few instructions, not a ChaCha block refill.
    static RNG: std::cell::Cell<u64> = std::cell::Cell::new(rand::random::<u64>() | 1);
}

/// A fast pseudo-random `u64` (wyrand).
fn fast_random() -> u64 {
    RNG.with(|state| {
        let s = state.get().wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t >> 64) as u64 ^ t as u64
    })
}

fn nonzero_u64() -> u64 {
    loop {
        let id = fast_random();
        if id != 0 {
            return id;
        }
    }
}

fn nonzero_u128() -> u128 {
    loop {
        let id = u128::from(fast_random()) << 64 | u128::from(fast_random());
        if id != 0 {
            return id;
        }
    }
}

/// The caller's context: a `traceparent`, or SOFATracer's trace id (hex, at most 32
/// digits; its span ids are not W3C's, so the trace starts at Strait's span).
fn caller_context(request: &dyn Frame) -> Option<(u128, u64, Option<bool>)> {
    if let Some(parent) = request.header(TRACEPARENT).and_then(TraceParent::parse) {
        return Some((parent.trace_id, parent.parent_id, Some(parent.sampled())));
    }
    let sofa = request.header(SOFA_TRACE_ID)?;
    if sofa.is_empty() || sofa.len() > 32 || !sofa.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = u128::from_str_radix(sofa, 16).ok().filter(|id| *id != 0)?;
    Some((id, 0, None))
}

impl RequestHook for Tracer {
    fn wants_view(&self) -> bool {
        true
    }

    /// Only sampled requests (whose view was kept) have spans to end.
    fn ends_need_view(&self) -> bool {
        true
    }

    fn on_request_start(&self, request: &mut dyn Frame, view: &mut RequestView) -> bool {
        #[cfg(feature = "skywalking")]
        if let Export::SkyWalking(reporter) = &self.export {
            return self.start_skywalking(reporter, request, view);
        }
        let caller = caller_context(request);
        let (trace_id, parent_span_id, sampled) = match caller {
            Some((trace, parent, Some(sampled))) => (trace, parent, sampled),
            Some((trace, parent, None)) => (trace, parent, self.sample()),
            // A new trace: its id is drawn only if it is sampled.
            None if !self.sample() => return false,
            None => (nonzero_u128(), 0, true),
        };
        if caller.is_some() || sampled {
            view.trace_id = Some(format!("{trace_id:032x}"));
        }
        if !sampled {
            // Not recorded: the caller's context goes upstream untouched.
            return false;
        }
        view.take_variables(request);
        let ids = TraceIds {
            trace_id,
            parent_span_id,
            span_id: nonzero_u64(),
            upstream_span_id: nonzero_u64(),
            sampled,
            caller_context: None,
        };
        let header = TraceParent {
            trace_id,
            parent_id: ids.upstream_span_id,
            flags: 1,
        };
        request.set_header(TRACEPARENT, &header.to_header());
        view.trace = Some(ids);
        true
    }

    /// A failed attempt gets its client span (parented to the server span), and the
    /// next attempt a client span id of its own, injected in its `traceparent`.
    fn on_attempt_failed(
        &self,
        attempt: &AttemptRecord,
        view: &mut RequestView,
        set_header: &mut dyn FnMut(&str, &str),
    ) {
        if !matches!(self.export, Export::Otlp(_)) {
            return;
        }
        if !view.trace.as_ref().is_some_and(|t| t.sampled) {
            return;
        }
        let (started, name) = (view.started, operation(view, None));
        let Some(ids) = view.trace.as_mut() else {
            return;
        };
        if let Some(host) = attempt.host {
            let end = started + attempt.ended;
            let start = attempt.sent.map_or(end, |s| started + s);
            let [ip, port] = address("server", host);
            let attributes = vec![
                ip,
                port,
                KeyValue::new("strait.attempt", i64::from(attempt.attempt)),
                KeyValue::new("strait.outcome", attempt.outcome.as_str()),
            ];
            self.push(client_span(
                ids,
                name,
                (start, end),
                attributes,
                Status::error(attempt.outcome.as_str()),
            ));
        }
        ids.upstream_span_id = nonzero_u64();
        let header = TraceParent {
            trace_id: ids.trace_id,
            parent_id: ids.upstream_span_id,
            flags: 1,
        };
        set_header(TRACEPARENT, &header.to_header());
    }

    fn on_request_end(&self, record: &RequestRecord<'_>) {
        let Some(view) = record.view else { return };
        let Some(ids) = view.trace.as_ref().filter(|t| t.sampled) else {
            return;
        };
        #[cfg(feature = "skywalking")]
        if let Export::SkyWalking(reporter) = &self.export {
            return report_segment(reporter, record, view, ids);
        }
        let end = view.started + record.duration;
        let name = span_name(record, view);
        let failed = matches!(
            record.outcome,
            Outcome::Failed(_) | Outcome::Upstream(ResponseClass::ServerError)
        );
        let status = if failed {
            Status::error(record.outcome.as_str())
        } else {
            Status::Unset
        };
        let mut attributes = common_attributes(record, view);
        if let Some(peer) = view.peer {
            attributes.extend(address("client", peer));
        }
        self.push(span(
            ids.trace_id,
            ids.span_id,
            ids.parent_span_id,
            SpanKind::Server,
            name.clone(),
            (view.started, end),
            attributes,
            status.clone(),
        ));
        if let Some(host) = record.host {
            let start = record
                .upstream_duration
                .map_or(end, |d| end.checked_sub(d).unwrap_or(view.started));
            let mut attributes = common_attributes(record, view);
            attributes.push(KeyValue::new("strait.attempt", i64::from(record.attempt)));
            attributes.extend(address("server", host));
            self.push(client_span(
                ids,
                name,
                (start.max(view.started), end),
                attributes,
                status,
            ));
        }
    }
}

/// `service/method` for RPC, the path for HTTP, else the protocol.
fn span_name(record: &RequestRecord<'_>, view: &RequestView) -> String {
    operation(view, Some(record.protocol))
}

/// `{side}.address` and `{side}.port` of `addr` (`side`: `client` or `server`).
fn address(side: &'static str, addr: std::net::SocketAddr) -> [KeyValue; 2] {
    let (ip, port) = match side {
        "client" => ("client.address", "client.port"),
        _ => ("server.address", "server.port"),
    };
    [
        KeyValue::new(ip, addr.ip().to_string()),
        KeyValue::new(port, i64::from(addr.port())),
    ]
}

/// The semantic-convention attributes of both spans: RPC or HTTP, and Strait's own.
fn common_attributes(record: &RequestRecord<'_>, view: &RequestView) -> Vec<KeyValue> {
    let mut a = Vec::with_capacity(14);
    let protocol = record.protocol;
    let http = protocol == "http1" || protocol == "http2";
    if http {
        a.push(KeyValue::new("network.protocol.name", "http"));
        a.push(KeyValue::new(
            "network.protocol.version",
            if protocol == "http2" { "2" } else { "1.1" },
        ));
        if let Some(path) = &view.path {
            a.push(KeyValue::new("url.path", path.clone()));
        }
        if let Some(status) = record.status {
            a.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
    } else {
        a.push(KeyValue::new("rpc.system", protocol.to_string()));
        if let Some(service) = &view.service {
            a.push(KeyValue::new("rpc.service", service.clone()));
        }
        if let Some(method) = &view.method {
            a.push(KeyValue::new("rpc.method", method.clone()));
        }
        if let Some(status) = record.status {
            let key = if protocol == "grpc" {
                "rpc.grpc.status_code"
            } else {
                "rpc.response.status_code"
            };
            a.push(KeyValue::new(key, i64::from(status)));
        }
    }
    a.push(KeyValue::new("strait.protocol", protocol.to_string()));
    a.push(KeyValue::new(
        "strait.listener",
        record.listener.to_string(),
    ));
    if let Some(route) = record.route {
        a.push(KeyValue::new("strait.route", route.to_string()));
    }
    if let Some(cluster) = record.cluster {
        a.push(KeyValue::new("strait.cluster", cluster.to_string()));
    }
    a.push(KeyValue::new("strait.outcome", record.outcome.as_str()));
    a.push(KeyValue::new("strait.attempts", i64::from(record.attempt)));
    a
}

/// The client span of the upstream attempt `ids` names, a child of the server span.
fn client_span(
    ids: &TraceIds,
    name: String,
    times: (SystemTime, SystemTime),
    attributes: Vec<KeyValue>,
    status: Status,
) -> SpanData {
    span(
        ids.trace_id,
        ids.upstream_span_id,
        ids.span_id,
        SpanKind::Client,
        name,
        times,
        attributes,
        status,
    )
}

#[allow(clippy::too_many_arguments)] // a span is all of these
fn span(
    trace_id: u128,
    span_id: u64,
    parent: u64,
    kind: SpanKind,
    name: String,
    (start, end): (SystemTime, SystemTime),
    attributes: Vec<KeyValue>,
    status: Status,
) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from(trace_id),
            SpanId::from(span_id),
            TraceFlags::SAMPLED,
            false,
            TraceState::NONE,
        ),
        parent_span_id: SpanId::from(parent),
        parent_span_is_remote: kind == SpanKind::Server && parent != 0,
        span_kind: kind,
        name: Cow::Owned(name),
        start_time: start,
        end_time: end,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: InstrumentationScope::builder("strait").build(),
    }
}

#[cfg(feature = "skywalking")]
impl Tracer {
    /// The SkyWalking side of a request's start: the caller's `sw8` (or, from a
    /// W3C-traced caller, its trace id) continues; the upstream gets an `sw8` naming
    /// this segment's exit span.
    fn start_skywalking(
        &self,
        reporter: &crate::skywalking_report::Reporter,
        request: &mut dyn Frame,
        view: &mut RequestView,
    ) -> bool {
        use crate::skywalking_report::{SW8, caller, sw8};
        let incoming = request.header(SW8).map(str::to_string);
        let from_sw8 = incoming.as_deref().and_then(caller);
        let has_caller_sw8 = from_sw8.is_some();
        let (trace, sampled, continued) = match from_sw8 {
            Some((sampled, trace)) => (trace, sampled, true),
            None => match request.header(TRACEPARENT).and_then(TraceParent::parse) {
                Some(p) => (format!("{:032x}", p.trace_id), p.sampled(), true),
                None => (format!("{:032x}", nonzero_u128()), self.sample(), false),
            },
        };
        if continued || sampled {
            view.trace_id = Some(trace.clone());
        }
        if !sampled {
            return false;
        }
        view.take_variables(request);
        let ids = TraceIds {
            trace_id: 0,
            parent_span_id: 0,
            span_id: nonzero_u64(),
            upstream_span_id: nonzero_u64(),
            sampled,
            caller_context: incoming.filter(|_| has_caller_sw8),
        };
        let header = sw8(
            &trace,
            &segment_id(&ids),
            &reporter.service,
            &reporter.instance,
            &operation(view, None),
            view.service.as_deref().unwrap_or("-"),
        );
        request.set_header(SW8, &header);
        view.trace = Some(ids);
        true
    }
}

/// A segment id unique to the request, the same at its start and end.
#[cfg(feature = "skywalking")]
fn segment_id(ids: &TraceIds) -> String {
    format!("{:016x}{:016x}", ids.span_id, ids.upstream_span_id)
}

/// The operation (endpoint) name: `service/method` for RPC, the path for HTTP.
fn operation(view: &RequestView, protocol: Option<&str>) -> String {
    match (&view.service, &view.method, &view.path) {
        (Some(s), Some(m), _) => format!("{s}/{m}"),
        (Some(s), None, _) if !protocol.is_some_and(|p| p.starts_with("http")) => s.clone(),
        (_, _, Some(p)) => p.clone(),
        _ => protocol.unwrap_or("request").to_string(),
    }
}

#[cfg(feature = "skywalking")]
fn report_segment(
    reporter: &crate::skywalking_report::Reporter,
    record: &RequestRecord<'_>,
    view: &RequestView,
    ids: &TraceIds,
) {
    let end = view.started + record.duration;
    let upstream_start = record
        .upstream_duration
        .map_or(end, |d| end.checked_sub(d).unwrap_or(view.started));
    let tags = common_attributes(record, view)
        .into_iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect();
    let segment = reporter.segment(crate::skywalking_report::Segment {
        trace_id: view.trace_id.clone().unwrap_or_default(),
        segment_id: segment_id(ids),
        caller_sw8: ids.caller_context.as_deref(),
        operation: operation(view, Some(record.protocol)),
        protocol: record.protocol,
        peer: view.peer.map(|p| p.to_string()),
        upstream: record.host.map(|h| h.to_string()),
        start: view.started,
        upstream_start: upstream_start.max(view.started),
        end,
        error: matches!(
            record.outcome,
            Outcome::Failed(_) | Outcome::Upstream(ResponseClass::ServerError)
        ),
        tags,
    });
    reporter.report(segment);
}
