use std::collections::HashMap;
use std::sync::Arc;

use crate::{Detect, PoolMode, Protocol};

/// A protocol name that is not registered, or registered twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// `register` was called twice with the same name.
    #[error("protocol {0:?} is already registered")]
    Duplicate(String),
}

/// A protocol whose messages are a head and a body that streams (HTTP/1.1, HTTP/2): the
/// proxy's message drivers carry it, not a frame codec. Registered beside the framed
/// protocols, so `auto` detection follows one registration order.
pub trait MessageProtocol: Send + Sync + 'static {
    /// The name used in listener configuration (`protocol: http`).
    fn name(&self) -> &'static str;

    /// Whether a connection starting with `prefix` speaks this protocol.
    fn detect(&self, prefix: &[u8]) -> Detect;

    /// The versions a cluster may speak to its hosts, by the name clusters use
    /// (`http1`, `http2`), each with how its upstream connections are shared.
    fn upstreams(&self) -> &'static [(&'static str, PoolMode)];
}

/// What a registry holds under a name.
#[derive(Clone)]
pub enum Registered {
    /// A framed protocol (Bolt, Dubbo, one a team adds).
    Framed(Arc<dyn Protocol>),
    /// A protocol whose bodies stream (HTTP).
    Messages(Arc<dyn MessageProtocol>),
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Registered {
    /// The registered name.
    pub fn name(&self) -> &'static str {
        match self {
            Registered::Framed(p) => p.name(),
            Registered::Messages(p) => p.name(),
        }
    }

    /// Whether a connection starting with `prefix` speaks this protocol.
    pub fn detect(&self, prefix: &[u8]) -> Detect {
        match self {
            Registered::Framed(p) => p.detect(prefix),
            Registered::Messages(p) => p.detect(prefix),
        }
    }
}

/// What a cluster speaks to its hosts, resolved from its `protocol:` name.
#[derive(Clone)]
pub enum UpstreamProtocol {
    /// A framed protocol: multiplexed connections, frames matched by request id.
    Framed(Arc<dyn Protocol>),
    /// One version of a message protocol.
    Messages {
        /// The message protocol (`http`).
        protocol: Arc<dyn MessageProtocol>,
        /// The version's name, as clusters write it (`http1`).
        name: &'static str,
        /// How its connections are shared.
        pool_mode: PoolMode,
    },
}

impl UpstreamProtocol {
    /// The name, as clusters write it.
    pub fn name(&self) -> &'static str {
        match self {
            UpstreamProtocol::Framed(p) => p.name(),
            UpstreamProtocol::Messages { name, .. } => name,
        }
    }

    /// How its upstream connections are shared.
    pub fn pool_mode(&self) -> PoolMode {
        match self {
            UpstreamProtocol::Framed(p) => p.pool_mode(),
            UpstreamProtocol::Messages { pool_mode, .. } => *pool_mode,
        }
    }
}

/// Maps protocol names to implementations. Registration order is detection order for
/// `protocol: auto` listeners, so detection is deterministic (MOSN iterates a Go map).
#[derive(Clone, Default)]
pub struct Registry {
    by_name: HashMap<&'static str, Registered>,
    order: Vec<Registered>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a framed protocol under its [`Protocol::name`].
    pub fn register(&mut self, protocol: Arc<dyn Protocol>) -> Result<(), RegistryError> {
        self.add(Registered::Framed(protocol))
    }

    /// Adds a message protocol under its [`MessageProtocol::name`]; its upstream
    /// versions' names must be free too.
    pub fn register_messages(
        &mut self,
        protocol: Arc<dyn MessageProtocol>,
    ) -> Result<(), RegistryError> {
        if let Some((taken, _)) = protocol
            .upstreams()
            .iter()
            .find(|(name, _)| self.upstream(name).is_some() || self.by_name.contains_key(name))
        {
            return Err(RegistryError::Duplicate(taken.to_string()));
        }
        self.add(Registered::Messages(protocol))
    }

    fn add(&mut self, entry: Registered) -> Result<(), RegistryError> {
        let name = entry.name();
        if self.by_name.contains_key(name) || self.upstream(name).is_some() {
            return Err(RegistryError::Duplicate(name.to_string()));
        }
        self.by_name.insert(name, entry.clone());
        self.order.push(entry);
        Ok(())
    }

    /// The framed protocol registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Protocol>> {
        match self.by_name.get(name)? {
            Registered::Framed(p) => Some(p),
            Registered::Messages(_) => None,
        }
    }

    /// Whatever is registered under `name` (what a listener's `protocol:` names).
    pub fn lookup(&self, name: &str) -> Option<&Registered> {
        self.by_name.get(name)
    }

    /// What a cluster whose `protocol:` is `name` speaks: a framed protocol, or a
    /// message protocol's version.
    pub fn upstream(&self, name: &str) -> Option<UpstreamProtocol> {
        self.order.iter().find_map(|entry| match entry {
            Registered::Framed(p) if p.name() == name => Some(UpstreamProtocol::Framed(p.clone())),
            Registered::Framed(_) => None,
            Registered::Messages(p) => {
                p.upstreams()
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(name, pool_mode)| UpstreamProtocol::Messages {
                        protocol: p.clone(),
                        name,
                        pool_mode: *pool_mode,
                    })
            }
        })
    }

    /// Registered names (what listeners may name), in detection order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.order.iter().map(Registered::name)
    }

    /// The names clusters may use, in registration order.
    pub fn upstream_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.order.iter().flat_map(|entry| match entry {
            Registered::Framed(p) => vec![p.name()],
            Registered::Messages(p) => p.upstreams().iter().map(|(n, _)| *n).collect(),
        })
    }

    /// Asks the protocols in registration order whether `prefix` is theirs: the first
    /// that matches wins, and one that needs more bytes stops the search (`NeedMore`):
    /// a later protocol never takes a connection an earlier one may still claim, so the
    /// order alone decides (an `LP` prefix waits for HTTP to rule out a method before
    /// lenproto gets it).
    pub fn detect(&self, prefix: &[u8]) -> Result<&Registered, Detect> {
        for entry in &self.order {
            match entry.detect(prefix) {
                Detect::Match => return Ok(entry),
                Detect::NeedMore => return Err(Detect::NeedMore),
                Detect::NoMatch => {}
            }
        }
        Err(Detect::NoMatch)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A message protocol that, like HTTP, needs its first word and a space.
    struct Texty;

    impl MessageProtocol for Texty {
        fn name(&self) -> &'static str {
            "texty"
        }
        fn detect(&self, prefix: &[u8]) -> Detect {
            for (i, &b) in prefix.iter().enumerate() {
                match b {
                    b' ' if i > 0 => return Detect::Match,
                    b'A'..=b'Z' => {}
                    _ => return Detect::NoMatch,
                }
            }
            Detect::NeedMore
        }
        fn upstreams(&self) -> &'static [(&'static str, PoolMode)] {
            &[
                ("texty1", PoolMode::PingPong),
                ("texty2", PoolMode::Http2Streams),
            ]
        }
    }

    #[test]
    fn message_protocols_detect_and_name_their_upstreams() {
        let mut registry = Registry::new();
        registry.register_messages(Arc::new(Texty)).unwrap();
        assert!(matches!(
            registry.detect(b"GET "),
            Ok(Registered::Messages(_))
        ));
        assert_eq!(registry.detect(b"GET").err(), Some(Detect::NeedMore));
        assert_eq!(registry.detect(b"\x01").err(), Some(Detect::NoMatch));
        assert!(registry.get("texty").is_none(), "not a framed protocol");
        assert!(registry.lookup("texty").is_some());
        let up = registry.upstream("texty2").unwrap();
        assert_eq!(
            (up.name(), up.pool_mode()),
            ("texty2", PoolMode::Http2Streams)
        );
        assert!(
            registry.upstream("texty").is_none(),
            "the listener name is no cluster name"
        );
        assert_eq!(
            registry.upstream_names().collect::<Vec<_>>(),
            ["texty1", "texty2"]
        );
        assert_eq!(
            registry.register_messages(Arc::new(Texty)),
            Err(RegistryError::Duplicate("texty1".into()))
        );
    }

    /// A framed protocol whose magic, `LP`, is text: a message protocol registered
    /// before it may still claim the connection.
    struct Lp;

    impl Protocol for Lp {
        fn name(&self) -> &'static str {
            "lp"
        }
        fn detect(&self, prefix: &[u8]) -> Detect {
            match prefix {
                [] | [b'L'] => Detect::NeedMore,
                [b'L', b'P', ..] => Detect::Match,
                _ => Detect::NoMatch,
            }
        }
        fn new_codec(&self, _: crate::Limits) -> Box<dyn crate::Codec> {
            unreachable!("the test only detects")
        }
        fn id_width(&self) -> crate::IdWidth {
            crate::IdWidth::U32
        }
        fn pool_mode(&self) -> PoolMode {
            PoolMode::Multiplex
        }
        fn heartbeat_reply(&self, _: &dyn crate::Frame) -> Option<Box<dyn crate::Frame>> {
            None
        }
        fn classify(&self, _: &dyn crate::Frame) -> crate::ResponseClass {
            crate::ResponseClass::Success
        }
        fn error_response(
            &self,
            _: &dyn crate::Frame,
            _: crate::ProxyFailure,
        ) -> Option<Box<dyn crate::Frame>> {
            None
        }
    }

    #[test]
    fn registration_order_alone_decides() {
        let mut registry = Registry::new();
        registry.register_messages(Arc::new(Texty)).unwrap();
        registry.register(Arc::new(Lp)).unwrap();
        // `LP` may still be the first word of a Texty line: wait until it is ruled out.
        assert_eq!(registry.detect(b"LP").err(), Some(Detect::NeedMore));
        assert_eq!(registry.detect(b"LP\x00").map(Registered::name), Ok("lp"));
        // Registered first, the framed protocol takes it at once.
        let mut first = Registry::new();
        first.register(Arc::new(Lp)).unwrap();
        first.register_messages(Arc::new(Texty)).unwrap();
        assert_eq!(first.detect(b"LP").map(Registered::name), Ok("lp"));
    }
}
