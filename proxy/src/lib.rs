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

/// The protocols built into the `strait` binary, in `auto` detection order: HTTP first
/// (its methods and preface are text no binary magic starts with), then Dubbo's
/// two-byte magic before Bolt's one-byte version.
pub fn builtin_registry() -> Registry {
    let mut registry = Registry::new();
    // Built-in protocol names are distinct, so registration cannot fail.
    let _ = registry.register_messages(strait_codec_http::protocol());
    let _ = registry.register(strait_codec_dubbo::protocol());
    let _ = registry.register(strait_codec_bolt::protocol());
    registry
}
