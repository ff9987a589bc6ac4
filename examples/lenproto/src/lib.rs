//! A tiny length-prefixed protocol, added to Strait without touching any other crate.
