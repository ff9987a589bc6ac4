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

/// Implements `AsyncWrite` for a read-side wrapper `$ty<T>` by passing every write
/// straight to its `$field: T`.
macro_rules! write_through {
    ($ty:ident, $field:ident) => {
        impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $ty<T> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.$field).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.$field).poll_shutdown(cx)
            }
        }
    };
}
pub(crate) use write_through;

mod body;
mod client;
mod http2;
mod kept_timer;
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
