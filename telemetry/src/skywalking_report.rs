//! Reporting to a SkyWalking OAP over its v3 gRPC protocol, through the `skywalking`
//! crate's reporter: a request becomes one trace segment (an entry span and, when it
//! reached a host, an exit span), referencing the caller's segment when an `sw8` came
//! in; the upstream request carries an `sw8` naming the exit span.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use skywalking::proto::v3::{
    KeyStringValuePair, RefType, SegmentObject, SegmentReference, SpanLayer, SpanObject, SpanType,
};
use skywalking::reporter::grpc::GrpcReporter;
use skywalking::reporter::{CollectItem, CollectItemProduce, Report as _};
use skywalking::trace::propagation::decoder::decode_propagation;
use tokio::sync::mpsc;

use crate::tracer::TracerStats;

/// The header SkyWalking propagates its context in.
pub const SW8: &str = "sw8";

/// Segments waiting to be sent before new ones are dropped.
const QUEUE: usize = 8192;

/// A queue in front of the crate's reporter that never blocks and never grows past
/// [`QUEUE`]: a full queue drops the segment and counts it.
struct Bounded {
    queue: mpsc::Sender<CollectItem>,
    stats: Arc<TracerStats>,
}

impl CollectItemProduce for Bounded {
    fn produce(&self, item: CollectItem) -> Result<(), Box<dyn std::error::Error>> {
        match self.queue.try_send(item) {
            Ok(()) => {
                self.stats.exported.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

/// The reporter and what spans need to name this proxy.
pub(crate) struct Reporter {
    reporter: GrpcReporter<Bounded, mpsc::Receiver<CollectItem>>,
    pub(crate) service: String,
    pub(crate) instance: String,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// Connects (lazily: an OAP that is down is retried as segments come) to
    /// `endpoint` and starts the reporting task.
    pub(crate) async fn start(
        endpoint: &str,
        service: &str,
        stats: Arc<TracerStats>,
    ) -> Result<Reporter, String> {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| format!("skywalking endpoint {endpoint}: {e}"))?
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(10))
            .connect_lazy();
        let (queue, items) = mpsc::channel(QUEUE);
        let failures = stats.clone();
        let reporter = GrpcReporter::new_with_pc(
            channel,
            Bounded {
                queue,
                stats: stats.clone(),
            },
            items,
        )
        .with_err_handle(move |message, error| {
            failures.failed_exports.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(message, %error, "skywalking report failed");
        });
        let _running = reporter.reporting().await.spawn();
        Ok(Reporter {
            reporter,
            service: service.to_string(),
            instance: format!("strait-{}", std::process::id()),
        })
    }

    pub(crate) fn report(&self, segment: SegmentObject) {
        self.reporter.report(CollectItem::Trace(Box::new(segment)));
    }
}

/// The caller's context from its `sw8`: (sampled, trace id).
pub(crate) fn caller(sw8: &str) -> Option<(bool, String)> {
    let parent = decode_propagation(sw8).ok()?;
    Some((parent.do_sample, parent.parent_trace_id))
}

fn b64(text: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `sw8` an upstream request carries: this segment's exit span (id 1) as its
/// parent.
pub(crate) fn sw8(
    trace_id: &str,
    segment_id: &str,
    service: &str,
    instance: &str,
    endpoint: &str,
    target: &str,
) -> String {
    format!(
        "1-{}-{}-1-{}-{}-{}-{}",
        b64(trace_id),
        b64(segment_id),
        b64(service),
        b64(instance),
        b64(endpoint),
        b64(target)
    )
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// What one request's segment says.
pub(crate) struct Segment<'a> {
    pub(crate) trace_id: String,
    pub(crate) segment_id: String,
    pub(crate) caller_sw8: Option<&'a str>,
    pub(crate) operation: String,
    pub(crate) protocol: &'a str,
    pub(crate) peer: Option<String>,
    pub(crate) upstream: Option<String>,
    pub(crate) start: SystemTime,
    pub(crate) upstream_start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) error: bool,
    pub(crate) tags: Vec<(String, String)>,
}

/// SkyWalking's component ids for the protocols it knows (its
/// `component-libraries.yml`): Dubbo, SOFARPC, gRPC, and an HTTP client otherwise.
fn component(protocol: &str) -> i32 {
    match protocol {
        "dubbo" => 3,
        "bolt" => 43,
        "grpc" => 23,
        _ => 2,
    }
}

impl Reporter {
    pub(crate) fn segment(&self, s: Segment<'_>) -> SegmentObject {
        let layer = if s.protocol.starts_with("http") {
            SpanLayer::Http
        } else {
            SpanLayer::RpcFramework
        };
        let tags: Vec<KeyStringValuePair> = s
            .tags
            .into_iter()
            .map(|(key, value)| KeyStringValuePair { key, value })
            .collect();
        let refs = s
            .caller_sw8
            .and_then(|h| decode_propagation(h).ok())
            .map(|p| SegmentReference {
                ref_type: RefType::CrossProcess as i32,
                trace_id: p.parent_trace_id,
                parent_trace_segment_id: p.parent_trace_segment_id,
                parent_span_id: p.parent_span_id,
                parent_service: p.parent_service,
                parent_service_instance: p.parent_service_instance,
                parent_endpoint: p.destination_endpoint,
                network_address_used_at_peer: p.destination_address,
            })
            .into_iter()
            .collect();
        let mut spans = vec![SpanObject {
            span_id: 0,
            parent_span_id: -1,
            start_time: millis(s.start),
            end_time: millis(s.end),
            refs,
            operation_name: s.operation.clone(),
            peer: s.peer.unwrap_or_default(),
            span_type: SpanType::Entry as i32,
            span_layer: layer as i32,
            component_id: component(s.protocol),
            is_error: s.error,
            tags: tags.clone(),
            logs: Vec::new(),
            skip_analysis: false,
        }];
        if let Some(upstream) = s.upstream {
            spans.push(SpanObject {
                span_id: 1,
                parent_span_id: 0,
                start_time: millis(s.upstream_start),
                end_time: millis(s.end),
                refs: Vec::new(),
                operation_name: s.operation,
                peer: upstream,
                span_type: SpanType::Exit as i32,
                span_layer: layer as i32,
                component_id: component(s.protocol),
                is_error: s.error,
                tags,
                logs: Vec::new(),
                skip_analysis: false,
            });
        }
        SegmentObject {
            trace_id: s.trace_id,
            trace_segment_id: s.segment_id,
            spans,
            service: self.service.clone(),
            service_instance: self.instance.clone(),
            is_size_limited: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sw8_round_trips_through_the_crates_decoder() {
        let header = sw8(
            "trace.1",
            "seg.2",
            "strait",
            "strait-1",
            "svc/call",
            "127.0.0.1:9",
        );
        let parsed = decode_propagation(&header).unwrap();
        assert!(parsed.do_sample);
        assert_eq!(parsed.parent_trace_id, "trace.1");
        assert_eq!(parsed.parent_trace_segment_id, "seg.2");
        assert_eq!(parsed.parent_span_id, 1);
        assert_eq!(parsed.parent_service, "strait");
        assert_eq!(parsed.parent_service_instance, "strait-1");
        assert_eq!(parsed.destination_endpoint, "svc/call");
        assert_eq!(parsed.destination_address, "127.0.0.1:9");
        assert_eq!(b64("a"), "YQ==");
        assert_eq!(b64("ab"), "YWI=");
        assert_eq!(b64("abc"), "YWJj");
    }
}
