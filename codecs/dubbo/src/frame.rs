//! [`DubboFrame`]: one Dubbo frame that keeps its raw bytes and reads its metadata lazily.

use std::any::Any;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strait_codec_framework::{CodecError, Frame, FrameKind, HeaderIter, RequestId};

use crate::metadata::{Attachments, Meta, MetadataError};
use crate::types::*;

/// What the proxy asked to change in the frame besides its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Edit {
    /// Nothing: encode copies the raw bytes (patching the id).
    None,
    /// The attachments changed: encode writes a new map and body length.
    Attachments,
    /// A change that cannot be made (no readable attachments map): encode fails with
    /// this text rather than forward the frame without it.
    Refused(String),
}

/// One Dubbo frame (request, response or event).
///
/// The frame is kept as received (`Bytes`, zero-copy from the read buffer). A new request
/// id is remembered and patched into the 8 id bytes on encode; nothing else is touched
/// unless an attachment was set or removed. The body's metadata (service, method,
/// attachments...) is parsed at most once, on the first call that needs it.
#[derive(Debug, Clone)]
pub struct DubboFrame {
    raw: Bytes,
    head: Head,
    /// The current id; differs from `head.request_id` after [`Frame::set_request_id`].
    request_id: u64,
    meta: OnceCell<Meta>,
    edit: Edit,
}

/// Why a frame's attachments cannot be edited.
#[derive(Debug)]
enum NoAttachments {
    /// The body was read and has no attachments map.
    Absent(&'static str),
    /// The body could not be read.
    Unreadable(String),
    /// The entry cannot be removed without breaking later references.
    Pinned(&'static str),
}

// === impl DubboFrame ===

impl DubboFrame {
    /// `raw` is one whole frame whose header is `head` (checked by the caller).
    #[inline]
    pub(crate) fn from_parts(raw: Bytes, head: Head) -> Self {
        DubboFrame {
            raw,
            request_id: head.request_id,
            head,
            meta: OnceCell::new(),
            edit: Edit::None,
        }
    }

    pub(crate) fn head(&self) -> &Head {
        &self.head
    }

    pub(crate) fn edit(&self) -> &Edit {
        &self.edit
    }

    pub(crate) fn current_id(&self) -> u64 {
        self.request_id
    }

    /// The body bytes (borrowed).
    pub(crate) fn body_slice(&self) -> &[u8] {
        self.raw.get(HEADER_LEN..).unwrap_or_default()
    }

    pub(crate) fn meta(&self) -> &Meta {
        self.meta
            .get_or_init(|| Meta::parse(&self.head, self.raw.get(HEADER_LEN..).unwrap_or_default()))
    }

    pub(crate) fn attachments_ref(&self) -> Option<&Attachments> {
        self.meta().attachments()
    }

    /// The frame as received or built (without a later id patch or attachment change).
    pub fn raw_bytes(&self) -> &Bytes {
        &self.raw
    }

    /// The flag byte (request, two-way, event bits and serialization id).
    pub fn flag(&self) -> u8 {
        self.head.flag
    }

    /// Whether the frame is a request (flag bit 0x80).
    pub fn is_request(&self) -> bool {
        self.head.is_request()
    }

    /// Whether the frame is a request expecting an answer (flag bit 0x40).
    pub fn is_two_way(&self) -> bool {
        self.head.is_request() && self.head.is_two_way()
    }

    /// Whether the frame is an event (heartbeat, read-only notice; flag bit 0x20).
    pub fn is_event(&self) -> bool {
        self.head.is_event()
    }

    /// The serialization id (flag bits 0-4; 2 = hessian2).
    pub fn serialization_id(&self) -> u8 {
        self.head.serialization()
    }

    /// The status byte (0 in requests).
    pub fn status_byte(&self) -> u8 {
        self.head.status
    }

    /// Whether this is a hessian2 event whose body is the read-only notice "R".
    pub fn is_readonly_event(&self) -> bool {
        self.head.is_event() && self.body_slice() == READONLY_EVENT_BODY
    }

    fn request_meta(&self) -> Option<&crate::metadata::RequestMeta> {
        match self.meta() {
            Meta::Request(m) => Some(m),
            _ => None,
        }
    }

    fn response_meta(&self) -> Option<&crate::metadata::ResponseMeta> {
        match self.meta() {
            Meta::Response(m) => Some(m),
            _ => None,
        }
    }

    /// Why the metadata could not be read, if it could not (for events: `None`).
    pub fn metadata_error(&self) -> Option<&MetadataError> {
        match self.meta() {
            Meta::Unreadable(e) => Some(e),
            _ => None,
        }
    }

    /// Request: the Dubbo protocol version (body field 1), e.g. "2.0.2".
    pub fn dubbo_version(&self) -> Option<&str> {
        let body = self.body_slice();
        self.request_meta().map(|m| m.dubbo_version.as_str(body))
    }

    /// Request: the service path (body field 2), usually the interface name.
    pub fn service_path(&self) -> Option<&str> {
        let body = self.body_slice();
        self.request_meta().map(|m| m.path.as_str(body))
    }

    /// Request: the service version (body field 3); `None` if null.
    pub fn service_version(&self) -> Option<&str> {
        let body = self.body_slice();
        self.request_meta()
            .and_then(|m| m.version.as_ref())
            .map(|v| v.as_str(body))
    }

    /// Request: the method name (body field 4).
    pub fn method(&self) -> Option<&str> {
        let body = self.body_slice();
        self.request_meta().map(|m| m.method.as_str(body))
    }

    /// Request: the parameter-types descriptor (body field 5), e.g. `Ljava/lang/String;`.
    pub fn parameter_types(&self) -> Option<&str> {
        let body = self.body_slice();
        self.request_meta().map(|m| m.types.as_str(body))
    }

    /// Request: the raw hessian2 bytes of the arguments (never decoded by the proxy).
    pub fn arguments(&self) -> Option<Bytes> {
        let range = self.request_meta()?.args.clone();
        Some(
            self.raw
                .slice(HEADER_LEN + range.start..HEADER_LEN + range.end),
        )
    }

    /// The string-to-string attachments, in wire order, as currently set. Empty when the
    /// frame has none or its metadata is unreadable.
    pub fn attachments(&self) -> impl Iterator<Item = (&str, &str)> {
        let body = self.body_slice();
        self.attachments_ref()
            .into_iter()
            .flat_map(move |a| a.strings(body))
    }

    /// Response with status 20: the result flag (0..=5, §2.5).
    pub fn result_flag(&self) -> Option<i32> {
        self.response_meta().and_then(|m| m.result)
    }

    /// Response with status 20: the result value, if it is a string.
    pub fn response_value(&self) -> Option<&str> {
        let body = self.body_slice();
        self.response_meta()
            .and_then(|m| m.value.as_ref())
            .map(|v| v.as_str(body))
    }

    /// Response with another status: the error message.
    pub fn error_message(&self) -> Option<&str> {
        let body = self.body_slice();
        self.response_meta()
            .and_then(|m| m.error.as_ref())
            .map(|v| v.as_str(body))
    }

    /// Whether an attachment was set or removed, so encode re-writes the map.
    pub fn attachments_modified(&self) -> bool {
        self.edit == Edit::Attachments
    }

    /// The attachments to edit, or why there are none to edit.
    fn attachments_mut(&mut self) -> Result<(&[u8], &mut Attachments), NoAttachments> {
        self.meta();
        let DubboFrame { raw, meta, .. } = self;
        let body = raw.get(HEADER_LEN..).unwrap_or_default();
        match meta.get_mut() {
            Some(Meta::Unreadable(e)) => Err(NoAttachments::Unreadable(format!(
                "the metadata is unreadable: {e}"
            ))),
            Some(Meta::Event) => Err(NoAttachments::Absent("an event carries no attachments")),
            Some(m) => match m.attachments_mut() {
                Some(a) => Ok((body, a)),
                None => Err(NoAttachments::Absent(
                    "the response's result flag has no attachments map",
                )),
            },
            // `meta()` above initialised the cell.
            None => Err(NoAttachments::Unreadable(
                "the metadata was not read".into(),
            )),
        }
    }

    fn note_edit(&mut self, result: Result<(), NoAttachments>, what: &str, name: &str) {
        match result {
            Ok(()) => {
                if self.edit == Edit::None {
                    self.edit = Edit::Attachments;
                }
            }
            // A refused change is kept even if later ones succeed: the frame must not go
            // out without it.
            Err(why) => {
                let why = match why {
                    NoAttachments::Absent(s) | NoAttachments::Pinned(s) => s.to_string(),
                    NoAttachments::Unreadable(s) => s,
                };
                if !matches!(self.edit, Edit::Refused(_)) {
                    self.edit = Edit::Refused(format!("cannot {what} attachment {name:?}: {why}"));
                }
            }
        }
    }
}

// === impl Frame for DubboFrame ===

impl Frame for DubboFrame {
    fn kind(&self) -> FrameKind {
        let head = &self.head;
        match (head.is_request(), head.is_event()) {
            (true, true) if self.is_heartbeat_body() => FrameKind::Heartbeat,
            (true, true) => FrameKind::GoAway,
            (true, false) if head.is_two_way() => FrameKind::Request,
            (true, false) => FrameKind::Oneway,
            (false, true) => FrameKind::HeartbeatAck,
            (false, false) => FrameKind::Response,
        }
    }

    fn request_id(&self) -> RequestId {
        self.request_id
    }

    fn set_request_id(&mut self, id: RequestId) {
        self.request_id = id;
    }

    fn timeout(&self) -> Option<Duration> {
        if !self.head.is_request() {
            return None;
        }
        let value = self
            .attachments_ref()?
            .get_bytes(self.body_slice(), "timeout")?;
        // The usual value is plain digits: read them without a UTF-8 check; anything else
        // (spaces, a sign, too many digits to be sure of no overflow) goes the `str` way.
        let ms: u64 = match value {
            [_, ..] if value.len() <= 19 && value.iter().all(u8::is_ascii_digit) => {
                value.iter().fold(0, |ms, d| ms * 10 + u64::from(d - b'0'))
            }
            _ => std::str::from_utf8(value).ok()?.trim().parse().ok()?,
        };
        (ms > 0).then(|| Duration::from_millis(ms))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.attachments_ref()?.get(self.body_slice(), name)
    }

    /// Sets an attachment. On a frame without a readable attachments map (unreadable
    /// metadata, an event, a response whose result flag carries none) the change cannot
    /// be made, and rather than forward the frame without it, [`Frame::encode`] then
    /// fails with [`CodecError::Encode`].
    fn set_header(&mut self, name: &str, value: &str) {
        let result = self
            .attachments_mut()
            .map(|(body, a)| a.set(body, name, value));
        self.note_edit(result, "set", name);
    }

    /// Removes an attachment (every entry with that key, string-valued or not). A frame
    /// whose body was read and has no attachments map has nothing to remove. Where the
    /// metadata cannot be read, or the entry holds a class definition, list, map or
    /// object that later values may refer to, the removal cannot be made safely, so, as
    /// for [`Frame::set_header`], encode then fails.
    fn remove_header(&mut self, name: &str) -> bool {
        match self.attachments_mut() {
            Ok((body, a)) => match a.remove(body, name) {
                Ok(removed) => {
                    if removed {
                        self.note_edit(Ok(()), "remove", name);
                    }
                    removed
                }
                Err(why) => {
                    self.note_edit(Err(NoAttachments::Pinned(why)), "remove", name);
                    false
                }
            },
            Err(NoAttachments::Absent(_)) => false,
            Err(why) => {
                self.note_edit(Err(why), "remove", name);
                false
            }
        }
    }

    fn for_each_header(&self, f: HeaderIter<'_>) {
        for (k, v) in self.attachments() {
            f(k, v);
        }
    }

    fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.attachments_ref()?.get_bytes(self.body_slice(), name)
    }

    /// [`Frame::variable`] without a UTF-8 check: the body's strings were checked (or
    /// decoded) when the metadata was read.
    fn variable_bytes(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        let body = self.body_slice();
        let request = || self.request_meta();
        let value = match name {
            "protocol" => Some(crate::NAME.as_bytes()),
            "service" => self
                .header_bytes("interface")
                .filter(|s| !s.is_empty())
                .or_else(|| request().map(|m| m.path.bytes(body))),
            "path" => request().map(|m| m.path.bytes(body)),
            "method" => request().map(|m| m.method.bytes(body)),
            "version" => request()
                .and_then(|m| m.version.as_ref())
                .map(|v| v.bytes(body))
                .filter(|s| !s.is_empty()),
            "group" => self.header_bytes("group"),
            _ => None,
        };
        value.map(Cow::Borrowed)
    }

    fn variable(&self, name: &str) -> Option<Cow<'_, str>> {
        let value = match name {
            "protocol" => Some(crate::NAME),
            // MOSN's rule (D30): the `interface` attachment wins over the path.
            "service" => self
                .header("interface")
                .filter(|s| !s.is_empty())
                .or_else(|| self.service_path()),
            "path" => self.service_path(),
            "method" => self.method(),
            "version" => self.service_version().filter(|s| !s.is_empty()),
            "group" => self.header("group"),
            _ => None,
        };
        value.map(Cow::Borrowed)
    }

    fn metadata_unreadable(&self) -> bool {
        self.head.is_request()
            && !self.head.is_event()
            && matches!(self.meta(), Meta::Unreadable(_))
    }

    fn body(&self) -> Bytes {
        self.raw.slice(HEADER_LEN.min(self.raw.len())..)
    }

    fn status(&self) -> Option<u32> {
        (!self.head.is_request()).then_some(u32::from(self.head.status))
    }

    fn encode(&self, dst: &mut BytesMut) -> Result<(), CodecError> {
        crate::encode::encode_frame(self, dst)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl DubboFrame {
    /// Whether the body says "heartbeat": exactly hessian2 null for hessian2 frames. For
    /// other serializations the body cannot be read, and every event is taken for a
    /// heartbeat (MOSN's rule): a heartbeat left unanswered costs the client its
    /// connection, a read-only notice missed costs nothing.
    fn is_heartbeat_body(&self) -> bool {
        self.head.serialization() != HESSIAN2 || self.body_slice() == HEARTBEAT_BODY
    }
}
