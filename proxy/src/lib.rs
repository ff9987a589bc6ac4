//! The Strait proxy: configuration, listeners, the admin server, protocol registration
//! and the process lifecycle; every request goes through `strait-pipeline`. The
//! `strait` binary is [`run`] on [`builtin_registry`]; a binary with more protocols is
//! the same call on a registry that also holds them (see `examples/lenproto`).
//!
//! With the default `mimalloc` feature, mimalloc is the global allocator of every binary
//! that links this crate, and [`run`] hands its freed memory back to the OS once a
//! second ([`allocator`]).

pub mod admin;
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)] // one call into mimalloc's C API, with its SAFETY note
pub mod allocator;
pub mod config;
mod listener;
mod run;
mod server;

use strait_codec_framework::Registry;

pub use run::{Args, LogFormat, VERSION, run, run_with_args};
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
