//! OTLP trace protobuf, written straight from a finished request: each span is encoded
//! once, on the request's own thread, into the bytes of a `ScopeSpans.spans` entry, and
//! the exporter only wraps a batch of them in one `ExportTraceServiceRequest`.
//!
//! The generic path (an SDK `SpanData`, converted to `opentelemetry-proto` structs,
//! then encoded by prost) allocated a string per attribute and computed every nested
//! length once per level: about 33,000 instructions per traced request against a
//! 3,100-instruction Bolt request. Only the fields Strait sets are written here, by
//! their numbers in `opentelemetry/proto/trace/v1/trace.proto`.

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// `Span.SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKind {
    /// `SPAN_KIND_SERVER`: Strait's span for a request it received.
    Server = 2,
    /// `SPAN_KIND_CLIENT`: Strait's span for an upstream attempt.
    Client = 3,
}

/// What a span records besides its attributes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpanHead<'a> {
    pub trace_id: u128,
    pub span_id: u64,
    /// 0 for a root span.
    pub parent_span_id: u64,
    /// Whether the parent span is the caller's (remote) rather than Strait's own.
    pub parent_is_remote: bool,
    pub kind: SpanKind,
    pub name: &'a str,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    /// `Some(message)` marks the span `STATUS_CODE_ERROR`; `None` leaves it unset.
    pub error: Option<&'a str>,
}

/// A span's attribute list as it is written.
pub(crate) struct Attributes<'b>(&'b mut Vec<u8>);

impl Attributes<'_> {
    /// A string attribute.
    pub fn str(&mut self, key: &str, value: &str) {
        // Span.attributes = 9; KeyValue { key = 1; value = 2 }; AnyValue.string_value = 1
        nested(self.0, 9, |out| {
            bytes_field(out, 1, key.as_bytes());
            nested(out, 2, |out| bytes_field(out, 1, value.as_bytes()));
        });
    }

    /// An integer attribute.
    pub fn int(&mut self, key: &str, value: i64) {
        nested(self.0, 9, |out| {
            bytes_field(out, 1, key.as_bytes());
            // AnyValue.int_value = 3 (int64: two's complement as a varint)
            nested(out, 2, |out| {
                tag(out, 3, VARINT);
                varint(out, value as u64);
            });
        });
    }
}

/// Appends one `ScopeSpans.spans` entry (field 2) for `head` and the attributes
/// `attributes` writes to `out`.
pub(crate) fn span(
    out: &mut Vec<u8>,
    head: &SpanHead<'_>,
    attributes: impl FnOnce(&mut Attributes<'_>),
) {
    nested(out, 2, |out| {
        bytes_field(out, 1, &head.trace_id.to_be_bytes());
        bytes_field(out, 2, &head.span_id.to_be_bytes());
        if head.parent_span_id != 0 {
            bytes_field(out, 4, &head.parent_span_id.to_be_bytes());
        }
        bytes_field(out, 5, head.name.as_bytes());
        tag(out, 6, VARINT);
        varint(out, head.kind as u64);
        tag(out, 7, FIXED64);
        out.extend_from_slice(&head.start_unix_nanos.to_le_bytes());
        tag(out, 8, FIXED64);
        out.extend_from_slice(&head.end_unix_nanos.to_le_bytes());
        attributes(&mut Attributes(out));
        if let Some(message) = head.error {
            // Status { message = 2; code = 3 (STATUS_CODE_ERROR = 2) }
            nested(out, 15, |out| {
                bytes_field(out, 2, message.as_bytes());
                tag(out, 3, VARINT);
                varint(out, 2);
            });
        }
        // flags = 16: the W3C flags (sampled) and whether the parent is remote, as
        // the SDK's exporter sets them (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK = 0x100,
        // SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK = 0x200).
        let flags: u32 = 0x01 | 0x100 | if head.parent_is_remote { 0x200 } else { 0 };
        tag(out, 16, FIXED32);
        out.extend_from_slice(&flags.to_le_bytes());
    });
}

/// The gRPC message (5-byte prefix, then an `ExportTraceServiceRequest`) carrying
/// `spans`, entries [`span`] wrote, under one resource named `service_name` and the
/// instrumentation scope `strait`.
pub(crate) fn export_request(service_name: &str, spans: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(spans.len() + 96);
    // gRPC message prefix: not compressed, then the length, filled in below.
    out.extend_from_slice(&[0; 5]);
    // ExportTraceServiceRequest.resource_spans = 1
    nested(&mut out, 1, |out| {
        // ResourceSpans.resource = 1; Resource.attributes = 1
        nested(out, 1, |out| {
            nested(out, 1, |out| {
                bytes_field(out, 1, b"service.name");
                nested(out, 2, |out| bytes_field(out, 1, service_name.as_bytes()));
            });
        });
        // ResourceSpans.scope_spans = 2; ScopeSpans.scope = 1 { name = 1; version = 2 }
        nested(out, 2, |out| {
            nested(out, 1, |out| {
                bytes_field(out, 1, b"strait");
                bytes_field(out, 2, env!("CARGO_PKG_VERSION").as_bytes());
            });
            out.extend_from_slice(spans);
        });
    });
    let len = u32::try_from(out.len() - 5).unwrap_or(u32::MAX);
    out[1..5].copy_from_slice(&len.to_be_bytes());
    out
}

fn tag(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire_type)));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A length-delimited field whose content `content` writes: one byte is kept for the
/// length, and the content moves up only when its length needs more.
fn nested(out: &mut Vec<u8>, field: u32, content: impl FnOnce(&mut Vec<u8>)) {
    tag(out, field, LEN);
    let at = out.len();
    out.push(0);
    content(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(4);
        varint(&mut prefix, len as u64);
        out.splice(at..at + 1, prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use prost::Message as _;

    fn head(name: &str) -> SpanHead<'_> {
        SpanHead {
            trace_id: 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c,
            span_id: 0xb7ad_6b71_6920_3331,
            parent_span_id: 0x00f0_67aa_0ba9_02b7,
            parent_is_remote: true,
            kind: SpanKind::Server,
            name,
            start_unix_nanos: 1_700_000_000_123_456_789,
            end_unix_nanos: 1_700_000_000_223_456_789,
            error: None,
        }
    }

    /// What the official `opentelemetry-proto` types (prost) read from our bytes.
    fn decode(message: &[u8]) -> ExportTraceServiceRequest {
        assert_eq!(message[0], 0, "not compressed");
        let len = u32::from_be_bytes(message[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, message.len() - 5, "the gRPC prefix gives the length");
        ExportTraceServiceRequest::decode(&message[5..]).unwrap()
    }

    #[test]
    fn the_official_types_read_every_field_back() {
        let mut spans = Vec::new();
        span(&mut spans, &head("svc/call"), |a| {
            a.str("rpc.system", "bolt");
            a.int("rpc.response.status_code", 0);
            a.int("server.port", 12200);
            a.int("negative", -3);
        });
        let client = SpanHead {
            span_id: 0x1122_3344_5566_7788,
            parent_span_id: 0xb7ad_6b71_6920_3331,
            parent_is_remote: false,
            kind: SpanKind::Client,
            error: Some("timeout"),
            ..head("svc/call")
        };
        span(&mut spans, &client, |a| a.str("strait.outcome", "timeout"));
        let request = decode(&export_request("edge", &spans));

        assert_eq!(request.resource_spans.len(), 1);
        let rs = &request.resource_spans[0];
        let resource = rs.resource.as_ref().unwrap();
        assert_eq!(resource.attributes[0].key, "service.name");
        assert_eq!(
            resource.attributes[0].value.as_ref().unwrap().value,
            Some(Value::StringValue("edge".into()))
        );
        let ss = &rs.scope_spans[0];
        assert_eq!(ss.scope.as_ref().unwrap().name, "strait");
        assert_eq!(ss.spans.len(), 2);

        let server = &ss.spans[0];
        assert_eq!(hex(&server.trace_id), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(hex(&server.span_id), "b7ad6b7169203331");
        assert_eq!(hex(&server.parent_span_id), "00f067aa0ba902b7");
        assert_eq!(server.name, "svc/call");
        assert_eq!(server.kind, 2);
        assert_eq!(server.start_time_unix_nano, 1_700_000_000_123_456_789);
        assert_eq!(server.end_time_unix_nano, 1_700_000_000_223_456_789);
        assert_eq!(server.flags, 0x301);
        assert!(server.status.is_none());
        let attrs: Vec<(String, Option<Value>)> = server
            .attributes
            .iter()
            .map(|kv| (kv.key.clone(), kv.value.as_ref().unwrap().value.clone()))
            .collect();
        assert_eq!(
            attrs,
            vec![
                ("rpc.system".into(), Some(Value::StringValue("bolt".into()))),
                ("rpc.response.status_code".into(), Some(Value::IntValue(0))),
                ("server.port".into(), Some(Value::IntValue(12200))),
                ("negative".into(), Some(Value::IntValue(-3))),
            ]
        );

        let client = &ss.spans[1];
        assert_eq!(client.kind, 3);
        assert_eq!(hex(&client.parent_span_id), "b7ad6b7169203331");
        assert_eq!(client.flags, 0x101);
        let status = client.status.as_ref().unwrap();
        assert_eq!((status.code, status.message.as_str()), (2, "timeout"));
    }

    #[test]
    fn a_root_span_has_no_parent_and_long_fields_keep_their_lengths() {
        // Lengths of 127, 128 and 20,000 bytes: one- two- and three-byte prefixes,
        // at the attribute, span and request levels.
        let long = "x".repeat(20_000);
        for value in ["y".repeat(100), "y".repeat(128), long.clone()] {
            let mut spans = Vec::new();
            let root = SpanHead {
                parent_span_id: 0,
                parent_is_remote: false,
                ..head(&long[..127])
            };
            span(&mut spans, &root, |a| a.str("url.path", &value));
            let request = decode(&export_request("s", &spans));
            let span = &request.resource_spans[0].scope_spans[0].spans[0];
            assert!(span.parent_span_id.is_empty());
            assert_eq!(span.name.len(), 127);
            assert_eq!(
                span.attributes[0].value.as_ref().unwrap().value,
                Some(Value::StringValue(value))
            );
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
