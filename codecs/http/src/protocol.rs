//! HTTP as a registered protocol: `http` on listeners (HTTP/1.1, HTTP/2 by prior
//! knowledge or `Upgrade: h2c`, told apart from the first bytes), `http1` and `http2` as
//! the versions a cluster speaks.

use std::sync::Arc;

use strait_codec_framework::{Detect, MessageProtocol, PoolMode};

/// The listener name of HTTP.
pub const NAME: &str = "http";

/// HTTP, as registered.
#[derive(Debug, Clone, Copy, Default)]
pub struct Http;

impl MessageProtocol for Http {
    fn name(&self) -> &'static str {
        NAME
    }

    fn detect(&self, prefix: &[u8]) -> Detect {
        crate::detect(prefix)
    }

    /// `http1`: keep-alive connections, one request at a time; `http2`: streams over a
    /// few shared connections.
    fn upstreams(&self) -> &'static [(&'static str, PoolMode)] {
        &[
            ("http1", PoolMode::PingPong),
            ("http2", PoolMode::Http2Streams),
        ]
    }
}

/// HTTP, ready for a [`strait_codec_framework::Registry`].
pub fn protocol() -> Arc<dyn MessageProtocol> {
    Arc::new(Http)
}
