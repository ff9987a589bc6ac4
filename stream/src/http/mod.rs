//! HTTP connection drivers on the HTTP codec (`strait_codec_http`): Strait's own
//! HTTP/1.1 engine and HTTP/2 on the `h2` crate, serving downstream connections and
//! driving upstream ones.
//!
//! - [`serve_connection`]: the downstream server driver (HTTP/1.1 with keep-alive,
//!   pipelining, 100-continue and upgrades; HTTP/2 by prior knowledge or `Upgrade:
//!   h2c`), calling a [`Handler`] per request;
//! - [`Http1Connection`] and [`Http2Connection`]: upstream client connections for the
//!   pools;
//! - [`Body`]: the one body type, streamed with flow control, no box on the hot path;
//! - [`tunnel`] and [`upgrade`]: upgraded connections (WebSocket) after a `101`.

mod body;
mod client;
mod http2;
mod server;
mod tunnel;
pub mod upgrade;

// The codec items the drivers use, under the paths they are written against.
use strait_codec_http::{ConnectionInfo, Scheme, h1};

pub use body::{Body, BodyEnd, BodyError, BodyObserver, BoxError, TrackedBody};
pub use client::{
    ClientError, ClientOptions, Http1Connection, Http2Connection, UpstreamBody, UpstreamBodyError,
};
pub use http2::H2Body;
pub use server::request_body::{ReceivedBytes, RequestBody, RequestBodyError};
pub use server::{
    Handler, HandlerFuture, IdleConnections, Parker, ServeError, ServerIo, ServerOptions,
    serve_connection, serve_connection_parking,
};
pub use tunnel::{TunnelError, tunnel};
pub use upgrade::{OnUpgrade, Upgraded};
