//! The Strait proxy: configuration, listeners, the forwarding handler, the admin server
//! and the process lifecycle. The `strait` binary is a thin wrapper around [`Server`].

pub mod admin;
pub mod config;
mod forward;
mod http;
mod listener;
mod pipeline;
mod server;

use strait_codec_framework::Registry;

pub use server::{Server, ServerError};

/// The framed protocols built into the `strait` binary, in `auto` detection order
/// (HTTP is detected before all of them). Dubbo's two-byte magic is checked before
/// Bolt's one-byte version.
pub fn builtin_registry() -> Registry {
    let mut registry = Registry::new();
    // Built-in protocol names are distinct, so registration cannot fail.
    let _ = registry.register(strait_codec_dubbo::protocol());
    let _ = registry.register(strait_codec_bolt::protocol());
    registry
}
