use std::any::Any;
use std::borrow::Cow;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::{CodecError, RequestId};

/// What a frame is, as far as the proxy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// A request that expects a response.
    Request,
    /// A request that never gets a response, not even an error.
    Oneway,
    /// A response to a request.
    Response,
    /// A keepalive probe; answered locally, never forwarded.
    Heartbeat,
    /// The answer to a keepalive probe.
    HeartbeatAck,
    /// The peer is going away: send it no new requests.
    GoAway,
}

impl FrameKind {
    /// Whether a frame of this kind travels from caller to callee.
    pub fn is_request(self) -> bool {
        matches!(self, FrameKind::Request | FrameKind::Oneway)
    }
}

/// Iterates over a frame's headers, see [`Frame::for_each_header`].
pub type HeaderIter<'a> = &'a mut dyn FnMut(&str, &str);

/// One decoded message of a protocol.
///
/// A frame keeps the raw bytes it was decoded from: forwarding an unmodified frame costs
/// one request-id patch (and a checksum where the protocol has one), never a
/// re-serialisation. A modified header view is re-encoded on [`Frame::encode`], never
/// silently dropped.
pub trait Frame: Send + Any {
    /// What kind of message this is.
    fn kind(&self) -> FrameKind;

    /// The request id on the wire (a response echoes its request's id).
    fn request_id(&self) -> RequestId;

    /// Rewrites the request id. The id fits the protocol's [`crate::IdWidth`].
    fn set_request_id(&mut self, id: RequestId);

    /// The timeout the frame carries, if the protocol has one and it is set (> 0).
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// A header (Bolt header-map entry, Dubbo attachment, HTTP header) by name.
    fn header(&self, name: &str) -> Option<&str>;

    /// Sets a header, replacing any value it had.
    fn set_header(&mut self, name: &str, value: &str);

    /// Removes a header; returns whether it was present.
    fn remove_header(&mut self, name: &str) -> bool;

    /// Calls `f` with every header name and value, in wire order.
    fn for_each_header(&self, f: HeaderIter<'_>);

    /// A protocol-neutral routing variable: `service`, `method`, `version`, `group`,
    /// `path`, `host`... `None` when the protocol does not define it or the frame lacks it.
    fn variable(&self, name: &str) -> Option<Cow<'_, str>> {
        let _ = name;
        None
    }

    /// [`Frame::variable`] as bytes, for matchers that compare bytes (an exact match): a
    /// codec whose values are bytes on the wire can lend them without a UTF-8 check. It
    /// must give the bytes of what `variable` gives, or `None` where that is `None`.
    fn variable_bytes(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        self.variable(name).map(|v| match v {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        })
    }

    /// [`Frame::header`] as bytes, on the same terms as [`Frame::variable_bytes`].
    fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.header(name).map(str::as_bytes)
    }

    /// Whether the routing metadata this request carries (the fields behind
    /// [`Frame::variable`] and [`Frame::header`]) exists but could not be read, say a
    /// Dubbo body that is not valid hessian2. A request that then matches no route is
    /// answered as [`crate::ProxyFailure::CodecError`] (a bad request), not as unrouted.
    fn metadata_unreadable(&self) -> bool {
        false
    }

    /// The payload, as the protocol defines it (Bolt content, Dubbo body...).
    fn body(&self) -> Bytes;

    /// The status of a response, in the protocol's own numbering.
    fn status(&self) -> Option<u32> {
        None
    }

    /// Appends the frame's wire bytes to `dst`.
    fn encode(&self, dst: &mut BytesMut) -> Result<(), CodecError>;

    /// The frame as `Any`, so its protocol can downcast it to its own type.
    fn as_any(&self) -> &dyn Any;
}

impl std::fmt::Debug for dyn Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("kind", &self.kind())
            .field("request_id", &self.request_id())
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}
