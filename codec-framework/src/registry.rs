use std::collections::HashMap;
use std::sync::Arc;

use crate::{Detect, Protocol};

/// A protocol name that is not registered, or registered twice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// `register` was called twice with the same name.
    #[error("protocol {0:?} is already registered")]
    Duplicate(String),
}

/// Maps protocol names to implementations. Registration order is detection order for
/// `protocol: auto` listeners, so detection is deterministic (MOSN iterates a Go map).
#[derive(Clone, Default)]
pub struct Registry {
    by_name: HashMap<&'static str, Arc<dyn Protocol>>,
    order: Vec<Arc<dyn Protocol>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a protocol under its [`Protocol::name`].
    pub fn register(&mut self, protocol: Arc<dyn Protocol>) -> Result<(), RegistryError> {
        let name = protocol.name();
        if self.by_name.contains_key(name) {
            return Err(RegistryError::Duplicate(name.to_string()));
        }
        self.by_name.insert(name, protocol.clone());
        self.order.push(protocol);
        Ok(())
    }

    /// The protocol registered under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Protocol>> {
        self.by_name.get(name)
    }

    /// Registered names, in detection order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.order.iter().map(|p| p.name())
    }

    /// Asks every protocol in registration order whether `prefix` is theirs. The first
    /// match wins; if none matches but one needs more bytes, the answer is `NeedMore`.
    pub fn detect(&self, prefix: &[u8]) -> Result<&Arc<dyn Protocol>, Detect> {
        let mut need_more = false;
        for protocol in &self.order {
            match protocol.detect(prefix) {
                Detect::Match => return Ok(protocol),
                Detect::NeedMore => need_more = true,
                Detect::NoMatch => {}
            }
        }
        Err(if need_more {
            Detect::NeedMore
        } else {
            Detect::NoMatch
        })
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
