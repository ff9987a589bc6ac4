//! The Strait proxy: configuration, listeners, the admin server, protocol registration
//! and the process lifecycle; every request goes through `strait-pipeline`. The
//! `strait` binary is a thin wrapper around [`Server`].

pub mod admin;
pub mod config;
mod listener;
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
