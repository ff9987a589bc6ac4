//! The routing metadata of a Dubbo body, read lazily (`wire-formats.md` §2.4, §2.5, §2.7).
//!
//! A request body is five strings (dubbo version, path, service version, method,
//! parameter-types descriptor), one value per parameter, then the attachments map. The
//! arguments are skipped, never decoded. Strings are kept as ranges into the body when
//! they are one valid UTF-8 chunk (the common case), so reading the metadata of a request
//! allocates only the attachment list.
//!
//! The proxy reads this for every request, so the common request (every string one chunk
//! of ASCII, simple arguments, string attachments) is read by one forward pass over the
//! bytes with no UTF-8 check (`parse_request_fast`); anything else goes to the general
//! reader. A range is checked as UTF-8 only when its text is returned as `&str`.

use std::ops::Range;

use crate::hessian2::{self, Reader, SpanEntry, StrSpan, tag};
use crate::status;
use crate::types::*;

/// Why the metadata of a frame could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The body is not hessian2, the only serialization the proxy reads.
    #[error("serialization id {0} is not hessian2 (2)")]
    Serialization(u8),
    /// A field is not valid hessian2.
    #[error("{field}: {source}")]
    Hessian {
        /// Which field was being read.
        field: &'static str,
        /// What was wrong with it.
        source: hessian2::Error,
    },
    /// A response's result flag is outside 0..=5 (Java: "Unknown result flag").
    #[error("unknown result flag {0}")]
    ResultFlag(i32),
}

/// A string of the body: a range of it, or decoded text (chunked or Java-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Text {
    /// Bytes of the body known to be valid UTF-8.
    Utf8(Range<usize>),
    /// Decoded text (chunked, Java-encoded, or set by the proxy).
    Owned(Box<str>),
}

impl Text {
    fn new(s: StrSpan) -> Text {
        match s {
            StrSpan::Utf8(r) => Text::Utf8(r),
            StrSpan::Decoded(s) => Text::Owned(s.into_boxed_str()),
        }
    }

    pub fn owned(s: &str) -> Text {
        Text::Owned(s.into())
    }

    /// The text; `body` must be the body it was read from.
    pub fn as_str<'b>(&'b self, body: &'b [u8]) -> &'b str {
        match self {
            // Known to be UTF-8 when read (all ASCII, or checked), so this cannot fail
            // for the body it came from. Checked again here rather than at parse time:
            // only the few strings the proxy asks for pay for it.
            Text::Utf8(r) => body
                .get(r.clone())
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Text::Owned(s) => s,
        }
    }

    /// The text's bytes; `body` must be the body it was read from.
    pub fn bytes<'b>(&'b self, body: &'b [u8]) -> &'b [u8] {
        match self {
            Text::Utf8(r) => body.get(r.clone()).unwrap_or_default(),
            Text::Owned(s) => s.as_bytes(),
        }
    }

    /// Whether the text is `name`, comparing bytes (no UTF-8 check needed).
    fn is(&self, body: &[u8], name: &str) -> bool {
        match self {
            Text::Utf8(r) => body.get(r.clone()) == Some(name.as_bytes()),
            Text::Owned(s) => &**s == name,
        }
    }
}

/// One attachment entry in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The key, if it is a string.
    pub key: Option<Text>,
    /// The value, if key and value are strings.
    pub value: Option<Text>,
    /// The entry's bytes in the body; `None` once set by the proxy (written afresh).
    pub raw: Option<Range<usize>>,
    /// The entry defines a class or holds a list, map or object that later values may
    /// refer to: it is kept on the wire whatever the proxy changes.
    pub pinned: bool,
}

impl Entry {
    fn new(e: SpanEntry) -> Entry {
        Entry {
            key: e.key.map(Text::new),
            value: e.value.map(Text::new),
            raw: Some(e.raw),
            pinned: e.adds_to_tables,
        }
    }

    fn key_is(&self, body: &[u8], name: &str) -> bool {
        self.key.as_ref().is_some_and(|k| k.is(body, name))
    }
}

/// The attachments map of a body and where it lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attachments {
    /// The bytes a re-encode replaces: the map, its `N`, or an empty range where a map
    /// would go.
    pub span: Range<usize>,
    /// The bytes opening the map (`H`, or `M` and its type); `None` writes `H`.
    pub open: Option<Range<usize>>,
    /// Every entry, string-to-string or not, in wire order (empty while `in_place`).
    listed: Vec<Entry>,
    /// Where the entries lie instead, when every one is a one-chunk ASCII string key
    /// and value, as the fast reading found them (between the map's opening and its
    /// `Z`): they are read in place there and listed only when edited. Reading the
    /// common request's attachments this way allocates nothing.
    in_place: Option<Range<usize>>,
    /// While `in_place`: where the last value of each of [`KNOWN_KEYS`] lies, noted
    /// in the same pass that checked the map, as the proxy looks these up for every
    /// request (its timeout, and the interface it routes by).
    known: [Option<Range<usize>>; 2],
}

/// The attachments the proxy reads from every request, found as the map is checked.
const KNOWN_KEYS: [&str; 2] = ["timeout", "interface"];

/// The entries of an in-place map ([`Attachments::in_place`]): key, value and whole-entry
/// ranges, in wire order.
fn in_place_entries(
    body: &[u8],
    region: Range<usize>,
) -> impl Iterator<Item = (Range<usize>, Range<usize>, Range<usize>)> + '_ {
    let mut pos = region.start;
    std::iter::from_fn(move || {
        if pos >= region.end {
            return None;
        }
        // Checked as ASCII when the fast reading took the map: not checked again.
        let key = hessian2::one_chunk_string_at(body, pos)?;
        let value = hessian2::one_chunk_string_at(body, key.end)?;
        let whole = pos..value.end;
        pos = value.end;
        Some((key, value, whole))
    })
}

impl Attachments {
    /// No attachments: `span` is where a map would go (or the `N` there).
    fn none(span: Range<usize>) -> Attachments {
        Attachments {
            span,
            open: None,
            listed: Vec::new(),
            in_place: None,
            known: [None, None],
        }
    }

    /// Reads the attachments map at the reader's position: a map, a null, or nothing at
    /// all (the body ends: treated as no attachments, a map is inserted there on edit).
    fn read(r: &mut Reader<'_>) -> Result<Attachments, hessian2::Error> {
        let at = r.position();
        if r.is_at_end() {
            return Ok(Attachments::none(at..at));
        }
        // Requests usually carry 5-16 attachments: one allocation in the common case.
        let mut entries = Vec::with_capacity(8);
        let info = r.read_map_spans(|e| entries.push(Entry::new(e)))?;
        Ok(match info {
            Some(info) => Attachments {
                span: info.span,
                open: Some(info.open),
                listed: entries,
                in_place: None,
                known: [None, None],
            },
            // The `N` is the byte just read.
            None => Attachments::none(r.position() - 1..r.position()),
        })
    }

    /// The value of the last entry named `name`, if it is a string (Java's `HashMap`
    /// keeps the last put).
    pub fn get<'b>(&'b self, body: &'b [u8], name: &str) -> Option<&'b str> {
        if self.in_place.is_some() {
            // ASCII, so UTF-8: the check cannot fail, and costs little on these bytes.
            return std::str::from_utf8(self.get_bytes(body, name)?).ok();
        }
        let entry = self.listed.iter().rev().find(|e| e.key_is(body, name))?;
        entry.value.as_ref().map(|v| v.as_str(body))
    }

    /// [`Attachments::get`] as bytes, for callers that need no `&str`.
    pub fn get_bytes<'b>(&'b self, body: &'b [u8], name: &str) -> Option<&'b [u8]> {
        if let Some(region) = &self.in_place {
            if let Some(known) = KNOWN_KEYS.iter().position(|k| *k == name) {
                let value = self.known.get(known).cloned().flatten()?;
                return body.get(value);
            }
            let mut last = None;
            for (key, value, _) in in_place_entries(body, region.clone()) {
                if body.get(key) == Some(name.as_bytes()) {
                    last = Some(value);
                }
            }
            return body.get(last?);
        }
        let entry = self.listed.iter().rev().find(|e| e.key_is(body, name))?;
        entry.value.as_ref().map(|v| v.bytes(body))
    }

    /// The string entries, in wire order.
    pub fn strings<'b>(&'b self, body: &'b [u8]) -> impl Iterator<Item = (&'b str, &'b str)> {
        let listed = self
            .listed
            .iter()
            .filter_map(move |e| match (&e.key, &e.value) {
                (Some(k), Some(v)) => Some((k.as_str(body), v.as_str(body))),
                _ => None,
            });
        // ASCII, so UTF-8: the checks cannot fail.
        let text = |r: Range<usize>| {
            body.get(r)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default()
        };
        let in_place = self
            .in_place
            .iter()
            .flat_map(move |region| in_place_entries(body, region.clone()))
            .map(move |(k, v, _)| (text(k), text(v)));
        listed.chain(in_place)
    }

    /// Every entry, listed (an in-place map is listed now).
    pub fn entries(&mut self, body: &[u8]) -> &mut Vec<Entry> {
        if let Some(region) = self.in_place.take() {
            self.known = [None, None];
            self.listed = in_place_entries(body, region)
                .map(|(key, value, whole)| Entry {
                    key: Some(Text::Utf8(key)),
                    value: Some(Text::Utf8(value)),
                    raw: Some(whole),
                    pinned: false,
                })
                .collect();
        }
        &mut self.listed
    }

    /// The entries as written: listed ones (`Err`), or the bytes of an in-place map's
    /// entries (`Ok`), unchanged since they were read.
    pub fn written<'b>(&'b self, body: &'b [u8]) -> Result<&'b [u8], &'b [Entry]> {
        match &self.in_place {
            Some(region) => Ok(body.get(region.clone()).unwrap_or_default()),
            None => Err(&self.listed),
        }
    }

    /// Whether an entry keyed `name` is pinned (holds what later values may refer to).
    pub fn pins(&self, body: &[u8], name: &str) -> bool {
        // In-place entries are strings: none is pinned.
        self.listed.iter().any(|e| e.pinned && e.key_is(body, name))
    }

    /// Sets `name` to `value`. The first entry with that key is replaced in place (wire
    /// order kept) and later duplicates are dropped; a new key goes last. A pinned entry
    /// with that key stays (dropping it would break what later values refer to), and
    /// the value then goes last, where it wins as Java's `HashMap` keeps the last put.
    pub fn set(&mut self, body: &[u8], name: &str, value: &str) {
        let pinned = self.pins(body, name);
        let entries = self.entries(body);
        let mut slot = None;
        let mut i = 0;
        entries.retain(|e| {
            let keep = e.pinned || !e.key_is(body, name);
            if !keep && slot.is_none() {
                slot = Some(i);
            }
            i += usize::from(keep);
            keep
        });
        let entry = Entry {
            key: Some(Text::owned(name)),
            value: Some(Text::owned(value)),
            raw: None,
            pinned: false,
        };
        match slot.filter(|_| !pinned) {
            Some(at) => entries.insert(at, entry),
            None => entries.push(entry),
        }
    }

    /// Removes every entry keyed `name` (whatever its value); whether any was there.
    /// Refused when one is pinned.
    pub fn remove(&mut self, body: &[u8], name: &str) -> Result<bool, &'static str> {
        if self.pins(body, name) {
            return Err(
                "it holds a class definition, list, map or object later values may refer to",
            );
        }
        let entries = self.entries(body);
        let before = entries.len();
        entries.retain(|e| !e.key_is(body, name));
        Ok(entries.len() != before)
    }
}

/// What a request body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestMeta {
    pub dubbo_version: Text,
    pub path: Text,
    pub version: Option<Text>,
    pub method: Text,
    pub types: Text,
    /// The arguments' bytes (skipped, never decoded).
    pub args: Range<usize>,
    pub attachments: Attachments,
}

/// What a response body says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseMeta {
    /// Status 20 only: the result flag (0..=5).
    pub result: Option<i32>,
    /// The result value, if it is a string.
    pub value: Option<Text>,
    /// Status other than 20: the error message (`None` if null).
    pub error: Option<Text>,
    /// Result flags 3..=5 only.
    pub attachments: Option<Attachments>,
}

/// The metadata of one frame, parsed at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Meta {
    Request(RequestMeta),
    Response(ResponseMeta),
    /// Events have no metadata.
    Event,
    Unreadable(MetadataError),
}

impl Meta {
    /// Parses the body of a frame with header `head`.
    // Inlined into the frame's lazy init: the `Meta` (a couple of hundred bytes) is then
    // built where the cell's init puts it rather than copied out of a call (measured: a
    // fifth of the parse cost with `examples/parse_bench`).
    #[inline]
    pub fn parse(head: &Head, body: &[u8]) -> Meta {
        if head.is_event() {
            return Meta::Event;
        }
        if head.serialization() != HESSIAN2 {
            return Meta::Unreadable(MetadataError::Serialization(head.serialization()));
        }
        if head.is_request() {
            // Straight into the `Meta`: the metadata is a couple of hundred bytes, and
            // every wrapper it passes through (`Option`, `Result`) would be one more copy.
            if let Some(meta) = parse_request_fast(body) {
                return Meta::Request(meta);
            }
            return match parse_request_general(body) {
                Ok(meta) => Meta::Request(meta),
                Err(e) => Meta::Unreadable(e),
            };
        }
        parse_response(head.status, body).map_or_else(Meta::Unreadable, Meta::Response)
    }

    pub fn attachments(&self) -> Option<&Attachments> {
        match self {
            Meta::Request(m) => Some(&m.attachments),
            Meta::Response(m) => m.attachments.as_ref(),
            Meta::Event | Meta::Unreadable(_) => None,
        }
    }

    pub fn attachments_mut(&mut self) -> Option<&mut Attachments> {
        match self {
            Meta::Request(m) => Some(&mut m.attachments),
            Meta::Response(m) => m.attachments.as_mut(),
            Meta::Event | Meta::Unreadable(_) => None,
        }
    }
}

fn field(name: &'static str) -> impl Fn(hessian2::Error) -> MetadataError {
    move |source| MetadataError::Hessian {
        field: name,
        source,
    }
}

/// The common request read in one forward pass over the bytes: every string one chunk of
/// ASCII (so no UTF-8 check and no decoding), a null or string service version, arguments
/// of the simple forms ([`hessian2::simple_value_end`]), string-to-string attachments in
/// an untyped map (or a null, or none). Anything else, including every malformed body,
/// gives `None`, and [`parse_request_general`] reads the body from the start: for the
/// bodies this accepts, both give the same result (tests and the fuzz target check).
#[inline]
fn parse_request_fast(body: &[u8]) -> Option<RequestMeta> {
    let mut pos = 0;
    let string = |pos: &mut usize| {
        let r = hessian2::ascii_string_at(body, *pos)?;
        *pos = r.end;
        Some(Text::Utf8(r))
    };
    let dubbo_version = string(&mut pos)?;
    let path = string(&mut pos)?;
    let version = if body.get(pos) == Some(&tag::NULL) {
        pos += 1;
        None
    } else {
        Some(string(&mut pos)?)
    };
    let method = string(&mut pos)?;
    let types = string(&mut pos)?;
    let args_start = pos;
    for _ in 0..count_arguments(types.bytes(body)) {
        pos = hessian2::simple_value_end(body, pos)?;
    }
    let args = args_start..pos;
    let attachments = match body.get(pos) {
        None => Attachments::none(pos..pos),
        Some(&tag::NULL) => Attachments::none(pos..pos + 1),
        Some(&tag::MAP_UNTYPED) => {
            let start = pos;
            pos += 1;
            // Checked here, once; read in place afterwards (`Attachments::in_place`).
            let mut known = [None, None];
            while body.get(pos) != Some(&tag::END) {
                let key = hessian2::ascii_string_at(body, pos)?;
                let value = hessian2::ascii_string_at(body, key.end)?;
                pos = value.end;
                let key = body.get(key).unwrap_or_default();
                if let Some(slot) = KNOWN_KEYS
                    .iter()
                    .position(|k| k.as_bytes() == key)
                    .and_then(|at| known.get_mut(at))
                {
                    *slot = Some(value);
                }
            }
            pos += 1; // the `Z`
            Attachments {
                span: start..pos,
                open: Some(start..start + 1),
                listed: Vec::new(),
                in_place: Some(start + 1..pos - 1),
                known,
            }
        }
        Some(_) => return None,
    };
    Some(RequestMeta {
        dubbo_version,
        path,
        version,
        method,
        types,
        args,
        attachments,
    })
}

/// Both readings of a request body, for the fuzz target and tests to compare: the fast
/// one (`None` when it declines; its in-place attachments listed, as the general one
/// lists them) and the general one.
pub(crate) fn parse_request_both(
    body: &[u8],
) -> (Option<RequestMeta>, Result<RequestMeta, MetadataError>) {
    let fast = parse_request_fast(body).map(|mut meta| {
        meta.attachments.entries(body);
        meta
    });
    (fast, parse_request_general(body))
}

/// Reads a request body of any form (see [`parse_request_fast`] for the common one).
fn parse_request_general(body: &[u8]) -> Result<RequestMeta, MetadataError> {
    let mut r = Reader::new(body);
    let dubbo_version = Text::new(r.read_str_span().map_err(field("dubbo version"))?);
    let path = Text::new(r.read_str_span().map_err(field("path"))?);
    let version = r
        .read_str_span_or_null()
        .map_err(field("version"))?
        .map(Text::new);
    let method = Text::new(r.read_str_span().map_err(field("method"))?);
    let types = r.read_str_span().map_err(field("parameter types"))?;
    let count = count_arguments(types.bytes(body));
    let types = Text::new(types);
    let args_start = r.position();
    for _ in 0..count {
        r.skip_value().map_err(field("arguments"))?;
    }
    let args = args_start..r.position();
    let attachments = Attachments::read(&mut r).map_err(field("attachments"))?;
    Ok(RequestMeta {
        dubbo_version,
        path,
        version,
        method,
        types,
        args,
        attachments,
    })
}

fn parse_response(status: u8, body: &[u8]) -> Result<ResponseMeta, MetadataError> {
    let mut r = Reader::new(body);
    if status != status::OK {
        let error = r
            .read_str_span_or_null()
            .map_err(field("error message"))?
            .map(Text::new);
        return Ok(ResponseMeta {
            result: None,
            value: None,
            error,
            attachments: None,
        });
    }
    let flag = r.read_int().map_err(field("result flag"))?;
    let value = match flag {
        RESPONSE_WITH_EXCEPTION | RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS => {
            r.skip_value().map_err(field("exception"))?;
            None
        }
        RESPONSE_VALUE | RESPONSE_VALUE_WITH_ATTACHMENTS => {
            if tag::is_string(r.peek().map_err(field("value"))?) {
                Some(Text::new(r.read_str_span().map_err(field("value"))?))
            } else {
                r.skip_value().map_err(field("value"))?;
                None
            }
        }
        RESPONSE_NULL_VALUE | RESPONSE_NULL_VALUE_WITH_ATTACHMENTS => None,
        other => return Err(MetadataError::ResultFlag(other)),
    };
    let attachments = if flag >= RESPONSE_WITH_EXCEPTION_WITH_ATTACHMENTS {
        Some(Attachments::read(&mut r).map_err(field("attachments"))?)
    } else {
        None
    };
    Ok(ResponseMeta {
        result: Some(flag),
        value,
        error: None,
        attachments,
    })
}

/// How many arguments a parameter-types descriptor names (MOSN's rule, §2.4): each of
/// `Z B C D F I J S V` and each `L…;` is one, `[` adds nothing, anything else is ignored.
/// An `L` without its `;` still counts one.
pub fn argument_count(desc: &str) -> usize {
    count_arguments(desc.as_bytes())
}

/// [`argument_count`] over the descriptor's bytes (only ASCII letters count, so the
/// descriptor need not be checked as UTF-8 first).
fn count_arguments(desc: &[u8]) -> usize {
    let mut count = 0;
    let mut rest = desc;
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'Z' | b'B' | b'C' | b'D' | b'F' | b'I' | b'J' | b'S' | b'V' => count += 1,
            b'L' => {
                count += 1;
                // The class name is skipped whole, in one (vectorised) search for its `;`.
                rest = memchr::memchr(b';', rest)
                    .and_then(|at| rest.get(at + 1..))
                    .unwrap_or_default();
            }
            _ => {}
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::BytesMut;
    use strait_codec_framework::Frame;

    use super::*;
    use crate::DubboFrame;
    use crate::hessian2::writer;

    /// A request body: the five strings (service version null), `args` as given, then
    /// `tail` (the attachments bytes) as given.
    fn body(path: &str, desc: &str, args: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        writer::write_string(&mut b, "2.0.2");
        writer::write_string(&mut b, path);
        writer::write_null(&mut b);
        writer::write_string(&mut b, "echo");
        writer::write_string(&mut b, desc);
        b.extend_from_slice(args);
        b.extend_from_slice(tail);
        b.to_vec()
    }

    fn frame(body: &[u8]) -> DubboFrame {
        crate::builder::frame(FLAG_REQUEST | FLAG_TWO_WAY | HESSIAN2, 0, 1, body).unwrap()
    }

    /// The fast reading's result, after checking the general one agrees.
    fn fast(body: &[u8]) -> Option<RequestMeta> {
        let (fast, general) = parse_request_both(body);
        if let Some(f) = &fast {
            assert_eq!(Ok(f.clone()), general);
        }
        fast
    }

    #[test]
    fn common_request_takes_the_fast_path() {
        let f = DubboFrame::request("com.alipay.test.TestService:1.0", "echo")
            .string_argument(&"x".repeat(128))
            .attachment("timeout", "5000")
            .attachment("interface", "com.example.Api")
            .build()
            .unwrap();
        assert!(fast(f.body_slice()).is_some());
        assert_eq!(f.timeout(), Some(Duration::from_millis(5000)));
        assert_eq!(f.variable("service").as_deref(), Some("com.example.Api"));
        assert_eq!(f.service_path(), Some("com.alipay.test.TestService:1.0"));
        assert_eq!(f.parameter_types(), Some("Ljava/lang/String;"));
        assert_eq!(f.header("group"), None);
    }

    #[test]
    fn every_simple_argument_form_is_skipped_and_the_attachments_found() {
        let args: &[&[u8]] = &[
            b"\x05hello",                            // short string
            b"\x30\x03abc",                          // medium string
            b"S\x00\x02hi",                          // `S` string
            b"\x00",                                 // empty string
            b"\x90",                                 // int, 1 byte
            b"\xc8\x01",                             // int, 2 bytes
            b"\xd4\x01\x02",                         // int, 3 bytes
            b"I\x00\x00\x01\x00",                    // int, 4 bytes
            b"\xe0",                                 // long, 1 byte
            b"\xf8\x01",                             // long, 2 bytes
            b"\x3c\x01\x02",                         // long, 3 bytes
            b"Y\x00\x00\x01\x00",                    // long as int32
            b"L\x00\x00\x00\x00\x00\x00\x01\x00",    // long, 8 bytes
            b"\x5b",                                 // double 0
            b"\x5c",                                 // double 1
            b"\x5d\x07",                             // double, byte
            b"\x5e\x00\x07",                         // double, short
            b"\x5f\x00\x00\x00\x07",                 // double, millis
            b"D\x40\x09\x21\xfb\x54\x44\x2d\x18",    // double, 8 bytes
            b"\x4b\x00\x00\x00\x01",                 // date, minutes
            b"\x4a\x00\x00\x00\x00\x00\x00\x00\x01", // date, ms
            b"N",                                    // null
            b"T",                                    // true
            b"F",                                    // false
        ];
        let joined = args.concat();
        let desc = "I".repeat(args.len());
        let b = body(
            "a.B",
            &desc,
            &joined,
            b"H\x07timeout\x03250\x05group\x02g1Z",
        );
        let meta = fast(&b).expect("simple arguments take the fast path");
        assert_eq!(meta.args.len(), joined.len());
        let f = frame(&b);
        assert_eq!(f.arguments().as_deref(), Some(&joined[..]));
        assert_eq!(f.timeout(), Some(Duration::from_millis(250)));
        assert_eq!(f.variable("group").as_deref(), Some("g1"));

        // A list argument is left to the general skipper; the attachments are found.
        let b = body("a.B", "[I", b"\x7a\x91\x92", b"H\x05group\x02g2Z");
        assert!(fast(&b).is_none());
        assert_eq!(frame(&b).header("group"), Some("g2"));
        // So is a non-ASCII string argument.
        let b = body("a.B", "I", "\x02é€".as_bytes(), b"H\x05group\x02g3Z");
        assert!(fast(&b).is_none());
        assert_eq!(frame(&b).header("group"), Some("g3"));
    }

    #[test]
    fn non_ascii_service_name_goes_the_general_way() {
        let f = DubboFrame::request("com.例子.服务", "echo")
            .attachment("timeout", "10")
            .build()
            .unwrap();
        assert!(fast(f.body_slice()).is_none());
        assert_eq!(f.service_path(), Some("com.例子.服务"));
        assert_eq!(f.variable("service").as_deref(), Some("com.例子.服务"));
        assert_eq!(f.timeout(), Some(Duration::from_millis(10)));
        // A 4-byte character counts 2 units; Java's surrogate halves (3 bytes each)
        // decode to the same text.
        let f = DubboFrame::request("a😀b", "echo").build().unwrap();
        assert_eq!(f.service_path(), Some("a😀b"));
        let b = body("x", "", b"", b"H\x09interface\x02\xed\xa0\xbd\xed\xb8\x80Z");
        assert!(fast(&b).is_none());
        assert_eq!(frame(&b).variable("service").as_deref(), Some("😀"));
    }

    #[test]
    fn chunked_attachment_value_is_joined() {
        let b = body("a.B", "", b"", b"H\x05group\x52\x00\x02ab\x01cZ");
        assert!(fast(&b).is_none());
        assert_eq!(frame(&b).header("group"), Some("abc"));
    }

    #[test]
    fn common_attachments_are_read_in_place_until_edited() {
        let mut f = DubboFrame::request("a.B", "echo")
            .attachment("group", "g1")
            .attachment("timeout", "100")
            .attachment("group", "g2")
            .build()
            .unwrap();
        let body = f.body_slice().to_vec();
        let in_place = |f: &DubboFrame| f.attachments_ref().is_some_and(|a| a.in_place.is_some());
        // The keys noted while checking (timeout, interface) keep the last put too.
        let g = DubboFrame::request("a.B", "echo")
            .attachment("interface", "first.Api")
            .attachment("timeout", "7")
            .attachment("interface", "last.Api")
            .build()
            .unwrap();
        assert!(in_place(&g));
        assert_eq!(g.variable("service").as_deref(), Some("last.Api"));
        assert_eq!(g.timeout(), Some(Duration::from_millis(7)));
        let h = DubboFrame::request("a.B", "echo")
            .attachment("group", "g")
            .build()
            .unwrap();
        assert!(in_place(&h));
        assert_eq!((h.timeout(), h.header("interface")), (None, None));
        assert_eq!(h.variable("service").as_deref(), Some("a.B"));
        // Read without listing (no allocation): lookups and iteration scan the bytes.
        assert!(in_place(&f));
        assert_eq!(f.header("group"), Some("g2"));
        assert_eq!(f.timeout(), Some(Duration::from_millis(100)));
        let scanned: Vec<_> = f.attachments().collect();
        assert_eq!(
            scanned,
            [("group", "g1"), ("timeout", "100"), ("group", "g2")]
        );
        assert!(in_place(&f));
        // What listing makes of them is what the general reader makes.
        let listed = parse_request_general(&body).unwrap().attachments;
        let mut read = f.attachments_ref().unwrap().clone();
        read.entries(&body);
        assert_eq!(read, listed);
        // An edit lists them, and the frame re-encodes with it.
        f.set_header("zone", "z1");
        assert!(!in_place(&f));
        let mut out = BytesMut::new();
        f.encode(&mut out).unwrap();
        let again = DubboFrame::from_bytes(out.freeze()).unwrap();
        let pairs: Vec<_> = again.attachments().collect();
        assert_eq!(
            pairs,
            [
                ("group", "g1"),
                ("timeout", "100"),
                ("group", "g2"),
                ("zone", "z1")
            ]
        );
    }

    #[test]
    fn duplicate_keys_last_put_wins() {
        let f = DubboFrame::request("a.B", "echo")
            .attachment("group", "first")
            .attachment("timeout", "100")
            .attachment("group", "second")
            .attachment("timeout", "200")
            .build()
            .unwrap();
        assert!(fast(f.body_slice()).is_some());
        assert_eq!(f.header("group"), Some("second"));
        assert_eq!(f.timeout(), Some(Duration::from_millis(200)));
        let mut f = f;
        f.set_header("group", "third");
        assert_eq!(f.header("group"), Some("third"));
        assert_eq!(f.attachments().filter(|(k, _)| *k == "group").count(), 1);
    }

    #[test]
    fn null_absent_and_typed_attachment_maps() {
        let b = body("a.B", "", b"", b"N");
        let meta = fast(&b).unwrap();
        assert_eq!(meta.attachments.span, b.len() - 1..b.len());
        let b = body("a.B", "", b"", b"");
        assert_eq!(fast(&b).unwrap().attachments.span, b.len()..b.len());
        // A typed map, and a non-string value, are the general reader's.
        let b = body("a.B", "", b"", b"M\x01tZ");
        assert!(fast(&b).is_none());
        let b = body("a.B", "", b"", b"H\x07timeout\x91\x05group\x01gZ");
        assert!(fast(&b).is_none());
        let f = frame(&b);
        assert_eq!((f.timeout(), f.header("group")), (None, Some("g")));
    }

    #[test]
    fn malformed_bodies_are_errors_not_fast_results() {
        let good = body("a.B", "I", b"\x91", b"H\x05group\x01gZ");
        // Ending right after the arguments is a body without attachments; any other cut
        // is truncated.
        let args_end = good.len() - 10;
        for cut in 0..good.len() {
            let meta = fast(&good[..cut]);
            if cut != args_end {
                assert!(meta.is_none(), "cut at {cut}");
                assert!(parse_request_general(&good[..cut]).is_err(), "cut at {cut}");
            }
        }
        assert!(fast(&good[..args_end]).is_some());
        // An argument count beyond the values given.
        let b = body("a.B", "II", b"\x91", b"");
        assert!(fast(&b).is_none());
        assert!(parse_request_general(&b).is_err());
    }

    #[test]
    fn timeout_values() {
        for (value, want) in [
            ("5000", Some(5000)),
            (" 300 ", Some(300)),
            ("+7", Some(7)),
            ("0", None),
            ("", None),
            ("-5", None),
            ("12ms", None),
            ("9999999999999999999", Some(9_999_999_999_999_999_999)),
            ("99999999999999999999", None),
            ("000000000000000000001234", Some(1234)),
        ] {
            let f = DubboFrame::request("a.B", "echo")
                .attachment("timeout", value)
                .build()
                .unwrap();
            assert_eq!(f.timeout(), want.map(Duration::from_millis), "{value:?}");
        }
    }

    #[test]
    fn descriptor_counting() {
        assert_eq!(argument_count(""), 0);
        assert_eq!(argument_count("Ljava/lang/String;"), 1);
        assert_eq!(argument_count("[I[[Ljava/lang/String;JZLa/B;"), 5);
        assert_eq!(
            argument_count("Ljava/lang/String;[Ljava/lang/String;[Ljava/lang/Object;"),
            3
        );
        // Letters inside a class name do not count.
        assert_eq!(argument_count("LZBCDFIJSV;I"), 2);
        assert_eq!(argument_count("Lunterminated"), 1);
        assert_eq!(argument_count("[[["), 0);
    }
}
