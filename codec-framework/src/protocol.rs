use bytes::BytesMut;

use crate::{
    DecodeError, Detect, Frame, FrameKind, IdWidth, Limits, ProxyFailure, RequestId, ResponseClass,
};

/// How upstream connections of a protocol are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// Many requests in flight per connection, matched by request id (Bolt, Dubbo).
    Multiplex,
    /// One request per connection at a time, answered in order (HTTP/1.1).
    PingPong,
    /// Streams of one HTTP/2 connection.
    Http2Streams,
}

/// Turns the bytes of one connection into frames. One instance per connection and
/// direction, so a codec may keep per-connection state (a pinned protocol version, say).
pub trait Codec: Send {
    /// Decodes one frame from the front of `src`.
    ///
    /// `Ok(None)` means more bytes are needed, and `src` is then left untouched (the codec
    /// may reserve capacity). On success the frame's bytes are split off `src`. Length
    /// limits are checked before anything is buffered or allocated.
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Box<dyn Frame>>, DecodeError>;
}

/// What a protocol tells the proxy about itself. Implementations are stateless and shared.
pub trait Protocol: Send + Sync + 'static {
    /// The name used in configuration (`protocol: bolt`).
    fn name(&self) -> &'static str;

    /// Whether a connection starting with `prefix` speaks this protocol.
    fn detect(&self, prefix: &[u8]) -> Detect;

    /// A fresh codec for one connection.
    fn new_codec(&self, limits: Limits) -> Box<dyn Codec>;

    /// The width of the request id on the wire.
    fn id_width(&self) -> IdWidth;

    /// How upstream connections are shared.
    fn pool_mode(&self) -> PoolMode;

    /// The local answer to a heartbeat request, or `None` if it must not be answered.
    fn heartbeat_reply(&self, request: &dyn Frame) -> Option<Box<dyn Frame>>;

    /// A keepalive probe the proxy sends on an idle upstream connection, or `None` if
    /// the protocol has no such thing.
    fn heartbeat_request(&self, id: RequestId) -> Option<Box<dyn Frame>> {
        let _ = id;
        None
    }

    /// The request an active health check of `type: protocol` sends to a host, on a
    /// connection of the check's own; `None` when the protocol has no such probe (then
    /// only `tcp` checks apply). By default the keepalive probe
    /// ([`Protocol::heartbeat_request`]): a Bolt heartbeat, a Dubbo heartbeat event.
    fn health_check_request(&self, id: RequestId) -> Option<Box<dyn Frame>> {
        self.heartbeat_request(id)
    }

    /// Whether the host's answer to [`Protocol::health_check_request`] means it is
    /// healthy. By default: a heartbeat ack, or a response classed as success.
    fn health_check_passed(&self, response: &dyn Frame) -> bool {
        match response.kind() {
            FrameKind::HeartbeatAck => true,
            FrameKind::Response => self.classify(response) == ResponseClass::Success,
            _ => false,
        }
    }

    /// A local answer with a status in the protocol's own numbering (a route's
    /// `direct_response`). `None` when the request must get no answer (oneway,
    /// heartbeat) or the protocol cannot express it; the proxy then answers as for
    /// [`ProxyFailure::NoRoute`].
    fn direct_response(
        &self,
        request: &dyn Frame,
        status: u32,
        body: Option<&str>,
    ) -> Option<Box<dyn Frame>> {
        let _ = (request, status, body);
        None
    }

    /// Classes an upstream's response by its status in the protocol's own numbering:
    /// success, the caller's fault, or the upstream's (what outlier detection and
    /// metrics count). Called once per answered request, at the one place every request
    /// ends.
    fn classify(&self, response: &dyn Frame) -> ResponseClass;

    /// The protocol's answer to `request` when the proxy fails it. `None` when the
    /// request must get no answer at all (oneway requests, heartbeats).
    fn error_response(&self, request: &dyn Frame, failure: ProxyFailure) -> Option<Box<dyn Frame>>;
}
