//! Trace contexts as callers send them, read from any protocol's headers through the
//! framework's header view: W3C `traceparent`, SkyWalking `sw8`, and SOFATracer's keys
//! in a Bolt header map.

use strait_codec_framework::Frame;

/// The W3C Trace Context header (HTTP, gRPC, Bolt header maps, Dubbo attachments).
pub const TRACEPARENT: &str = "traceparent";
/// SkyWalking's cross-process header.
pub const SW8: &str = "sw8";
/// The trace id SOFARPC writes into a Bolt request's header map.
pub const SOFA_TRACE_ID: &str = "rpc_trace_context.sofaTraceId";

/// A parsed `traceparent`: version 00's trace id, parent span id and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// 16 bytes, never all zero.
    pub trace_id: u128,
    /// 8 bytes, never all zero.
    pub parent_id: u64,
    /// Bit 0: sampled.
    pub flags: u8,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>` (lowercase, as the spec requires; a
    /// future version's extra fields after the flags are ignored).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().splitn(5, '-');
        let version = parts.next()?;
        let (trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?);
        let lower_hex = |s: &str, n| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        if !lower_hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some())
        {
            return None;
        }
        if !lower_hex(trace, 32) || !lower_hex(parent, 16) || !lower_hex(flags, 2) {
            return None;
        }
        let parsed = TraceParent {
            trace_id: u128::from_str_radix(trace, 16).ok()?,
            parent_id: u64::from_str_radix(parent, 16).ok()?,
            flags: u8::from_str_radix(flags, 16).ok()?,
        };
        (parsed.trace_id != 0 && parsed.parent_id != 0).then_some(parsed)
    }

    /// Whether the caller sampled this trace.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The header value (version 00).
    pub fn to_header(&self) -> String {
        // Written by hand: `format!` costs about ten times as much, on every traced
        // request.
        let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
        put_hex(&mut text[3..19], (self.trace_id >> 64) as u64);
        put_hex(&mut text[19..35], self.trace_id as u64);
        put_hex(&mut text[36..52], self.parent_id);
        put_hex(&mut text[53..55], u64::from(self.flags));
        ascii(&text)
    }
}

/// A trace id as 32 lowercase hex digits (what `{:032x}` writes).
pub fn trace_id_hex(trace_id: u128) -> String {
    let mut text = [0u8; 32];
    put_hex(&mut text[..16], (trace_id >> 64) as u64);
    put_hex(&mut text[16..], trace_id as u64);
    ascii(&text)
}

/// Writes the low `out.len()` (even, at most 16) hex digits of `value` into `out`,
/// most significant first, a byte (two digits) at a time.
fn put_hex(out: &mut [u8], value: u64) {
    /// Each byte's two digits.
    const PAIRS: [[u8; 2]; 256] = {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0; 2]; 256];
        let mut b = 0;
        while b < 256 {
            pairs[b] = [DIGITS[b >> 4], DIGITS[b & 0xf]];
            b += 1;
        }
        pairs
    };
    let bytes = value.to_be_bytes();
    let skip = bytes.len().saturating_sub(out.len() / 2);
    for (pair, byte) in out.chunks_exact_mut(2).zip(&bytes[skip..]) {
        pair.copy_from_slice(&PAIRS[usize::from(*byte)]);
    }
}

/// `text`, ASCII by construction, as a `String`.
fn ascii(text: &[u8]) -> String {
    String::from_utf8(text.to_vec()).unwrap_or_default()
}

/// The trace id a caller sent, in the form its tracer writes it: a `traceparent`'s
/// 32 hex digits, a `sw8`'s trace id, or SOFATracer's `sofaTraceId`.
pub fn caller_trace_id(request: &dyn Frame) -> Option<String> {
    if let Some(parent) = request.header(TRACEPARENT).and_then(TraceParent::parse) {
        return Some(trace_id_hex(parent.trace_id));
    }
    if let Some(id) = request.header(SW8).and_then(sw8_trace_id) {
        return Some(id);
    }
    request
        .header(SOFA_TRACE_ID)
        .filter(|id| !id.is_empty() && id.len() <= 64)
        .map(str::to_string)
}

/// The trace id of an `sw8` value (`sample-traceId-segmentId-...`, fields base64).
pub fn sw8_trace_id(value: &str) -> Option<String> {
    let mut fields = value.split('-');
    let _sample = fields.next()?;
    let trace = base64_decode(fields.next()?)?;
    String::from_utf8(trace).ok().filter(|t| !t.is_empty())
}

/// Standard base64 with padding (what `sw8` uses).
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for byte in text.bytes() {
        let v = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_rejects_malformed_values() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(value).unwrap();
        assert_eq!(parsed.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(parsed.parent_id, 0x00f067aa0ba902b7);
        assert!(parsed.sampled());
        assert_eq!(parsed.to_header(), value);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hex_ids_are_written_as_fmt_writes_them() {
        for (trace_id, parent_id, flags) in [
            (1u128, 1u64, 0u8),
            (u128::MAX, u64::MAX, 0xff),
            (
                0x0a00_0000_0000_0000_0000_0000_0000_00f0,
                0x0100_0000_0000_0010,
                1,
            ),
        ] {
            let header = TraceParent {
                trace_id,
                parent_id,
                flags,
            }
            .to_header();
            assert_eq!(
                header,
                format!("00-{trace_id:032x}-{parent_id:016x}-{flags:02x}")
            );
            assert_eq!(trace_id_hex(trace_id), format!("{trace_id:032x}"));
        }
    }

    #[test]
    fn sw8_trace_ids_are_base64() {
        // "1-" + base64("trace.1") + "-" + base64("segment") + ...
        assert_eq!(
            sw8_trace_id(
                "1-dHJhY2UuMQ==-c2VnbWVudA==-0-c2VydmljZQ==-aW5zdGFuY2U=-L2dldA==-MTI3LjAuMC4xOjgwODA="
            ),
            Some("trace.1".to_string())
        );
        assert_eq!(sw8_trace_id("1-***-x"), None);
    }
}
