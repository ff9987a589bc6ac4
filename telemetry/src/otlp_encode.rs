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
    /// A string attribute (`value` UTF-8, as protobuf's `string` requires).
    #[inline(always)] // keys are literals: their copies become moves
    pub fn str(&mut self, key: &str, value: &[u8]) {
        // Span.attributes = 9: KeyValue { key = 1; value = 2: AnyValue { string_value = 1 } }.
        // Every length is known first, so the field is written front to back at once.
        let (k, v) = (key.len(), value.len());
        let any = 2 + v;
        let kv = 2 + k + 2 + any;
        if kv < 0x80 {
            // The usual attribute: every length one byte, two four-byte heads.
            let out = &mut *self.0;
            out.reserve(2 + kv);
            out.extend_from_slice(&[9 << 3 | LEN, kv as u8, 1 << 3 | LEN, k as u8]);
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&[2 << 3 | LEN, any as u8, 1 << 3 | LEN, v as u8]);
            out.extend_from_slice(value);
            return;
        }
        let any = field_len(v);
        self.key_value(key, any);
        bytes_field(self.0, 1, value);
    }

    /// An integer attribute.
    #[inline(always)] // keys are literals: their copies become moves
    pub fn int(&mut self, key: &str, value: i64) {
        // AnyValue.int_value = 3 (int64: two's complement as a varint)
        let any = 1 + varint_len(value as u64 as usize);
        let kv = 2 + key.len() + 2 + any;
        if kv < 0x80 {
            let out = &mut *self.0;
            out.reserve(2 + kv);
            out.extend_from_slice(&[9 << 3 | LEN, kv as u8, 1 << 3 | LEN, key.len() as u8]);
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&[2 << 3 | LEN, any as u8, 3 << 3 | VARINT]);
            put_varint(out, value as u64);
            return;
        }
        self.key_value(key, any);
        self.0.push(3 << 3 | VARINT);
        put_varint(self.0, value as u64);
    }

    /// Everything of a `KeyValue` field up to its value's content, `any` bytes long.
    fn key_value(&mut self, key: &str, any: usize) {
        let kv = field_len(key.len()) + field_len(any);
        self.0.reserve(field_len(kv));
        head(self.0, 9, kv);
        bytes_field(self.0, 1, key.as_bytes());
        head(self.0, 2, any);
    }
}

/// Appends one `ScopeSpans.spans` entry (field 2) for `head` and the attributes
/// `attributes` writes to `out`.
pub(crate) fn span(
    out: &mut Vec<u8>,
    head: &SpanHead<'_>,
    attributes: impl FnOnce(&mut Attributes<'_>),
) {
    out.reserve(96 + head.name.len());
    out.push(2 << 3 | LEN);
    // A span's length, known at its end, takes two bytes for 128 to 16,383 bytes:
    // the usual span. Other lengths move the span once.
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    bytes_field(out, 1, &head.trace_id.to_be_bytes());
    bytes_field(out, 2, &head.span_id.to_be_bytes());
    if head.parent_span_id != 0 {
        bytes_field(out, 4, &head.parent_span_id.to_be_bytes());
    }
    bytes_field(out, 5, head.name.as_bytes());
    out.push(6 << 3 | VARINT);
    put_varint(out, head.kind as u64);
    out.push(7 << 3 | FIXED64);
    out.extend_from_slice(&head.start_unix_nanos.to_le_bytes());
    out.push(8 << 3 | FIXED64);
    out.extend_from_slice(&head.end_unix_nanos.to_le_bytes());
    attributes(&mut Attributes(out));
    if let Some(message) = head.error {
        // Status = 15 { message = 2; code = 3 (STATUS_CODE_ERROR = 2) }
        let status = 1 + varint_len(message.len()) + message.len() + 2;
        out.push(15 << 3 | LEN);
        put_varint(out, status as u64);
        bytes_field(out, 2, message.as_bytes());
        out.extend_from_slice(&[3 << 3 | VARINT, 2]);
    }
    // flags = 16 (two tag bytes): the W3C flags (sampled) and whether the parent is
    // remote, as the SDK's exporter sets them (SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK =
    // 0x100, SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK = 0x200).
    let flags: u32 = 0x01 | 0x100 | if head.parent_is_remote { 0x200 } else { 0 };
    out.extend_from_slice(&[16 << 3 | FIXED32, 1]);
    out.extend_from_slice(&flags.to_le_bytes());
    let len = out.len() - at - 2;
    if (0x80..0x4000).contains(&len) {
        out[at] = len as u8 | 0x80;
        out[at + 1] = (len >> 7) as u8;
    } else {
        let mut prefix = Vec::with_capacity(4);
        put_varint(&mut prefix, len as u64);
        out.splice(at..at + 2, prefix);
    }
}

/// What goes before `spans_len` bytes of spans ([`span`]'s entries) to make them a gRPC
/// message (5-byte prefix, then an `ExportTraceServiceRequest`): the spans under one
/// resource named `service_name` and the instrumentation scope `strait`. The exporter
/// writes it in room it left in front of a batch, so the spans are never copied again.
pub(crate) fn export_prefix(service_name: &str, spans_len: usize) -> Vec<u8> {
    let version = env!("CARGO_PKG_VERSION");
    // Inside out: Resource { attributes = 1: service.name }, InstrumentationScope
    // { name = 1; version = 2 }, ScopeSpans { scope = 1; spans = 2 }, ResourceSpans
    // { resource = 1; scope_spans = 2 }, ExportTraceServiceRequest { resource_spans = 1 }.
    let key = b"service.name";
    let any = field_len(service_name.len());
    let key_value = field_len(key.len()) + field_len(any);
    let resource = field_len(key_value);
    let scope = field_len(b"strait".len()) + field_len(version.len());
    let scope_spans = field_len(scope) + spans_len;
    let resource_spans = field_len(resource) + field_len(scope_spans);
    let request = field_len(resource_spans);

    let mut out = Vec::with_capacity(5 + request - spans_len);
    // gRPC message prefix: not compressed, then the length.
    out.push(0);
    out.extend_from_slice(&u32::try_from(request).unwrap_or(u32::MAX).to_be_bytes());
    head(&mut out, 1, resource_spans);
    head(&mut out, 1, resource);
    head(&mut out, 1, key_value);
    bytes_field(&mut out, 1, key);
    head(&mut out, 2, any);
    bytes_field(&mut out, 1, service_name.as_bytes());
    head(&mut out, 2, scope_spans);
    head(&mut out, 1, scope);
    bytes_field(&mut out, 1, b"strait");
    bytes_field(&mut out, 2, version.as_bytes());
    out
}

/// The longest [`export_prefix`] can be for `service_name`: the room to leave.
pub(crate) fn export_prefix_room(service_name: &str) -> usize {
    // The longest lengths take the longest varints.
    export_prefix(service_name, u32::MAX as usize).len()
}

/// The bytes of a length-delimited field (of number below 16) with `len` bytes of
/// content.
fn field_len(len: usize) -> usize {
    1 + varint_len(len) + len
}

/// A length-delimited field's tag (number below 16) and length.
#[inline]
fn head(out: &mut Vec<u8>, field: u8, len: usize) {
    out.push(field << 3 | LEN);
    put_varint(out, len as u64);
}

/// A length-delimited field (number below 16) holding `bytes`.
#[inline]
fn bytes_field(out: &mut Vec<u8>, field: u8, bytes: &[u8]) {
    head(out, field, bytes.len());
    out.extend_from_slice(bytes);
}

#[inline]
fn varint_len(value: usize) -> usize {
    match value {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        // 7 bits a byte.
        _ => (usize::BITS - value.leading_zeros()).div_ceil(7) as usize,
    }
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
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

    /// The whole gRPC message of `spans`.
    fn export_request(service_name: &str, spans: &[u8]) -> Vec<u8> {
        let mut message = export_prefix(service_name, spans.len());
        assert!(message.len() <= export_prefix_room(service_name));
        message.extend_from_slice(spans);
        message
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
            a.str("rpc.system", b"bolt");
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
        span(&mut spans, &client, |a| a.str("strait.outcome", b"timeout"));
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
            span(&mut spans, &root, |a| a.str("url.path", value.as_bytes()));
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

    #[test]
    fn a_span_under_128_bytes_takes_a_one_byte_length() {
        let mut spans = Vec::new();
        let tiny = SpanHead {
            parent_span_id: 0,
            ..head("t")
        };
        span(&mut spans, &tiny, |_| {});
        assert!(spans.len() < 128, "{}", spans.len());
        assert_eq!(spans[1] as usize, spans.len() - 2, "one length byte");
        let request = decode(&export_request("s", &spans));
        assert_eq!(request.resource_spans[0].scope_spans[0].spans[0].name, "t");
    }

    #[test]
    fn long_keys_take_the_general_path() {
        let key = "k".repeat(130);
        let mut spans = Vec::new();
        span(&mut spans, &head("t"), |a| {
            a.int(&key, -7);
            a.str(&key, b"v");
        });
        let request = decode(&export_request("s", &spans));
        let attrs = &request.resource_spans[0].scope_spans[0].spans[0].attributes;
        assert_eq!(attrs[0].key, key);
        assert_eq!(
            attrs[0].value.as_ref().unwrap().value,
            Some(Value::IntValue(-7))
        );
        assert_eq!(
            attrs[1].value.as_ref().unwrap().value,
            Some(Value::StringValue("v".into()))
        );
    }

    #[test]
    fn varint_lengths_match_the_written_varints() {
        for value in [0u64, 1, 127, 128, 16_383, 16_384, 1 << 35, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(varint_len(value as usize), out.len(), "{value}");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
