//! Tracing for every protocol, from the one request hook: a server span per request
//! and a client span for its upstream call, parented to the caller's context as it came
//! in (W3C `traceparent` in HTTP and gRPC headers, Bolt header maps and Dubbo
//! attachments alike, SOFATracer's `sofaTraceId` in Bolt), with the context injected
//! into the upstream request.
//!
//! Spans leave the request path at once: the hook encodes a request's spans as OTLP
//! protobuf ([`crate::otlp_encode`]) and hands them to a bounded queue (dropped and
//! counted when full); one task exports them in batches over OTLP/gRPC
//! ([`crate::otlp_export`]). A collector that is down or slow only ever fills the queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use strait_codec_framework::{
    AttemptRecord, Frame, Outcome, RequestHook, RequestRecord, RequestView, ResponseClass,
    StartFilter, TraceIds, ViewSlot, fast_random,
};

use crate::otlp_encode::{self, Attributes, SpanHead, SpanKind};
use crate::otlp_export::SpanBuffer;
use crate::trace_context::{SOFA_TRACE_ID, TRACEPARENT, TraceParent, trace_id_hex};

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
    /// To the OTLP exporter task, encoded.
    Otlp(Arc<SpanBuffer>),
    /// To the SkyWalking reporter.
    #[cfg(feature = "skywalking")]
    SkyWalking(crate::skywalking_report::Reporter),
}

impl Tracer {
    /// Starts the exporter (on the current tokio runtime) and returns the tracer.
    pub async fn start(config: &TracingConfig) -> Result<Arc<Tracer>, String> {
        let stats = Arc::new(TracerStats::default());
        let export = match config.provider {
            Provider::OpenTelemetry => Export::Otlp(crate::otlp_export::start(
                &config.endpoint,
                &config.service_name,
                stats.clone(),
            )?),
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

    /// Writes `spans` spans (`write` encodes them) for export, or counts them
    /// dropped when too many wait.
    fn push(&self, spans: u32, write: impl FnOnce(&mut Vec<u8>)) {
        #[allow(irrefutable_let_patterns)] // SkyWalking, when built, is the other arm
        if let Export::Otlp(buffer) = &self.export {
            buffer.push(spans, write);
        }
    }
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

    /// Requests with a trace context, and new ones at the sampling ratio: the pipeline
    /// tosses the coin, so an unsampled request never calls the tracer.
    fn start_filter(&self) -> Option<StartFilter> {
        #[cfg(feature = "skywalking")]
        if let Export::SkyWalking(_) = &self.export {
            return Some(StartFilter {
                context_headers: &[crate::trace_context::SW8, TRACEPARENT],
                threshold: self.threshold,
            });
        }
        Some(StartFilter {
            context_headers: &[TRACEPARENT, SOFA_TRACE_ID],
            threshold: self.threshold,
        })
    }

    /// Only sampled requests (whose view was kept) have spans to end.
    fn ends_need_view(&self) -> bool {
        true
    }

    fn on_request_start(&self, request: &mut dyn Frame, view: &mut ViewSlot<'_>) -> bool {
        #[cfg(feature = "skywalking")]
        if let Export::SkyWalking(reporter) = &self.export {
            return self.start_skywalking(reporter, request, view);
        }
        // The pipeline's filter let through a request whose caller sent a context, or
        // that its coin picked (`start_filter`): most requests never get here.
        let picked = view.picked();
        let (trace_id, parent_span_id) = match caller_context(request) {
            // A new trace: its id is drawn only if it is sampled.
            None if picked => (nonzero_u128(), 0),
            Some((trace, parent, Some(true))) => (trace, parent),
            Some((trace, parent, None)) if picked => (trace, parent),
            // Not sampled: the caller's context goes upstream untouched and no view
            // is made (an access log reads the caller's trace id itself).
            _ => return false,
        };
        start_span(request, view.view(), trace_id, parent_span_id);
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
            let started = unix_nanos(started);
            let end = started.saturating_add(nanos(attempt.ended));
            let start = attempt
                .sent
                .map_or(end, |s| started.saturating_add(nanos(s)));
            let head = client_head(ids, &name, (start, end), Some(attempt.outcome.as_str()));
            self.push(1, |out| {
                otlp_encode::span(out, &head, |a| {
                    address(a, "server", host);
                    a.int("strait.attempt", i64::from(attempt.attempt));
                    a.str("strait.outcome", attempt.outcome.as_str().as_bytes());
                });
            });
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
        let start = unix_nanos(view.started);
        let end = start.saturating_add(nanos(record.duration));
        let name = operation(view, Some(record.protocol));
        let failed = matches!(
            record.outcome,
            Outcome::Failed(_) | Outcome::Upstream(ResponseClass::ServerError)
        );
        let error = failed.then(|| record.outcome.as_str());
        let server = SpanHead {
            trace_id: ids.trace_id,
            span_id: ids.span_id,
            parent_span_id: ids.parent_span_id,
            parent_is_remote: ids.parent_span_id != 0,
            kind: SpanKind::Server,
            name: &name,
            start_unix_nanos: start,
            end_unix_nanos: end,
            error,
        };
        let client = record.host.map(|host| {
            let sent = record
                .upstream_duration
                .map_or(end, |d| end.saturating_sub(nanos(d)));
            (host, client_head(ids, &name, (sent.max(start), end), error))
        });
        self.push(1 + u32::from(client.is_some()), |out| {
            otlp_encode::span(out, &server, |a| {
                common_attributes(a, record, view, true);
                if let Some(peer) = view.peer {
                    address(a, "client", peer);
                }
            });
            if let Some((host, head)) = &client {
                otlp_encode::span(out, head, |a| {
                    common_attributes(a, record, view, false);
                    a.int("strait.attempt", i64::from(record.attempt));
                    address(a, "server", *host);
                });
            }
        });
    }
}

/// A sampled request's start: its ids, and the `traceparent` that names its client
/// span upstream. Kept out of line: the unsampled path, most requests', stays short.
#[inline(never)]
fn start_span(
    request: &mut dyn Frame,
    view: &mut RequestView,
    trace_id: u128,
    parent_span_id: u64,
) {
    view.trace_id = Some(trace_id_hex(trace_id));
    view.take_variables(request);
    let ids = TraceIds {
        trace_id,
        parent_span_id,
        span_id: nonzero_u64(),
        upstream_span_id: nonzero_u64(),
        sampled: true,
        caller_context: None,
    };
    let header = TraceParent {
        trace_id,
        parent_id: ids.upstream_span_id,
        flags: 1,
    };
    request.set_header(TRACEPARENT, &header.to_header());
    view.trace = Some(ids);
}

/// Where a span's attributes go: an OTLP span, or a SkyWalking span's tags.
trait AttributeSink {
    fn str(&mut self, key: &'static str, value: &str);
    /// Text known to be ASCII (an address written by hand).
    fn ascii(&mut self, key: &'static str, value: &[u8]) {
        self.str(key, &String::from_utf8_lossy(value));
    }
    fn int(&mut self, key: &'static str, value: i64);
}

// Inlined into `common_attributes`, where each key is a literal.
impl AttributeSink for Attributes<'_> {
    #[inline(always)]
    fn str(&mut self, key: &'static str, value: &str) {
        Attributes::str(self, key, value.as_bytes());
    }
    #[inline(always)]
    fn ascii(&mut self, key: &'static str, value: &[u8]) {
        Attributes::str(self, key, value);
    }
    #[inline(always)]
    fn int(&mut self, key: &'static str, value: i64) {
        Attributes::int(self, key, value);
    }
}

#[cfg(feature = "skywalking")]
impl AttributeSink for Vec<(String, String)> {
    fn str(&mut self, key: &'static str, value: &str) {
        self.push((key.to_string(), value.to_string()));
    }
    fn int(&mut self, key: &'static str, value: i64) {
        self.push((key.to_string(), value.to_string()));
    }
}

/// Nanoseconds since the Unix epoch (OTLP's timestamps).
fn unix_nanos(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, nanos)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `{side}.address` and `{side}.port` of `addr` (`side`: `client` or `server`).
fn address(a: &mut impl AttributeSink, side: &'static str, addr: SocketAddr) {
    let (ip, port) = match side {
        "client" => ("client.address", "client.port"),
        _ => ("server.address", "server.port"),
    };
    // An address is at most 45 bytes of text: written on the stack, an IPv4 one by
    // hand (`fmt` costs several times more on every traced request).
    let mut text = [0u8; 48];
    let len = match addr.ip() {
        std::net::IpAddr::V4(v4) => {
            let mut len = 0;
            for octet in v4.octets() {
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                text[len + 1] = b'.';
                len += 2;
            }
            // The last octet's dot is not the address's.
            len - 1
        }
        ip => {
            let mut cursor = std::io::Cursor::new(&mut text[..]);
            let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{ip}"));
            cursor.position() as usize
        }
    };
    a.ascii(ip, &text[..len]);
    a.int(port, i64::from(addr.port()));
}

/// The semantic-convention attributes of both spans (RPC or HTTP), the outcome, and
/// on the server span (`whole`) Strait's own names for the request.
fn common_attributes(
    a: &mut impl AttributeSink,
    record: &RequestRecord<'_>,
    view: &RequestView,
    whole: bool,
) {
    let protocol = record.protocol;
    let http = protocol == "http1" || protocol == "http2";
    if http {
        a.str("network.protocol.name", "http");
        a.str(
            "network.protocol.version",
            if protocol == "http2" { "2" } else { "1.1" },
        );
        if let Some(path) = &view.path {
            a.str("url.path", path);
        }
        if let Some(status) = record.status {
            a.int("http.response.status_code", i64::from(status));
        }
    } else {
        a.str("rpc.system", protocol);
        if let Some(service) = &view.service {
            a.str("rpc.service", service);
        }
        if let Some(method) = &view.method {
            a.str("rpc.method", method);
        }
        if let Some(status) = record.status {
            let key = if protocol == "grpc" {
                "rpc.grpc.status_code"
            } else {
                "rpc.response.status_code"
            };
            a.int(key, i64::from(status));
        }
    }
    a.str("strait.outcome", record.outcome.as_str());
    if !whole {
        return;
    }
    a.str("strait.protocol", protocol);
    a.str("strait.listener", record.listener);
    if let Some(route) = record.route {
        a.str("strait.route", route);
    }
    if let Some(cluster) = record.cluster {
        a.str("strait.cluster", cluster);
    }
    a.int("strait.attempts", i64::from(record.attempt));
}

/// The head of the client span of the upstream attempt `ids` names, a child of the
/// server span.
fn client_head<'a>(
    ids: &TraceIds,
    name: &'a str,
    (start_unix_nanos, end_unix_nanos): (u64, u64),
    error: Option<&'a str>,
) -> SpanHead<'a> {
    SpanHead {
        trace_id: ids.trace_id,
        span_id: ids.upstream_span_id,
        parent_span_id: ids.span_id,
        parent_is_remote: false,
        kind: SpanKind::Client,
        name,
        start_unix_nanos,
        end_unix_nanos,
        error,
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
        view: &mut ViewSlot<'_>,
    ) -> bool {
        use crate::skywalking_report::{SW8, caller, sw8};
        let incoming = request.header(SW8).map(str::to_string);
        let from_sw8 = incoming.as_deref().and_then(caller);
        let has_caller_sw8 = from_sw8.is_some();
        let (trace, sampled) = match from_sw8 {
            Some((sampled, trace)) => (trace, sampled),
            None => match request.header(TRACEPARENT).and_then(TraceParent::parse) {
                Some(p) => (trace_id_hex(p.trace_id), p.sampled()),
                None => (trace_id_hex(nonzero_u128()), view.picked()),
            },
        };
        if !sampled {
            // As for OTLP: nothing recorded, no view made.
            return false;
        }
        let view = view.view();
        view.trace_id = Some(trace.clone());
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
        (Some(s), Some(m), _) => {
            let mut name = String::with_capacity(s.len() + 1 + m.len());
            name.push_str(s);
            name.push('/');
            name.push_str(m);
            name
        }
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
    let mut tags = Vec::new();
    common_attributes(&mut tags, record, view, true);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Attributes as text, to compare.
    #[derive(Default)]
    struct Seen(Vec<(&'static str, String)>);

    impl AttributeSink for Seen {
        fn str(&mut self, key: &'static str, value: &str) {
            self.0.push((key, value.to_string()));
        }
        fn int(&mut self, key: &'static str, value: i64) {
            self.0.push((key, value.to_string()));
        }
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for addr in [
            "127.0.0.1:12200",
            "10.20.30.40:1",
            "0.105.99.255:65535",
            "[::1]:8080",
            "[2001:db8::ff00:42:8329]:443",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            let mut seen = Seen::default();
            address(&mut seen, "server", addr);
            assert_eq!(
                seen.0,
                vec![
                    ("server.address", addr.ip().to_string()),
                    ("server.port", addr.port().to_string())
                ]
            );
        }
    }
}
