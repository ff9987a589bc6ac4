//! HTTP/1.1, HTTP/2 and gRPC for Strait: an own HTTP/1.1 server engine, HTTP/2 and the
//! upstream client connections on hyper.
//!
//! What the proxy needs to carry HTTP through the same router, clusters and timeouts as
//! every other protocol:
//!
//! - [`serve_connection`]: the downstream server driver (HTTP/1.1 with keep-alive,
//!   pipelining, 100-continue and upgrades; HTTP/2 by prior knowledge or `Upgrade:
//!   h2c`), calling a [`Handler`] per request;
//! - [`RequestHead`]: a request head as a [`strait_codec_framework::Frame`], the view
//!   the router matches on;
//! - [`Http1Connection`] and [`Http2Connection`]: upstream client connections for the
//!   proxy's pools;
//! - [`prepare_upstream_request`] / [`prepare_downstream_response`]: hop-by-hop
//!   headers, `x-forwarded-*`, version conversion;
//! - [`failure_response`], [`direct_response`], [`redirect`]: local answers (gRPC
//!   failures as trailers-only responses);
//! - [`detect`]: HTTP/1 and HTTP/2 from a connection's first bytes; [`tunnel`] for
//!   upgraded connections;
//! - [`Body`]: the one body type, streamed with flow control, no box on the hot path.

#![deny(missing_docs)]

mod body;
mod classify;
mod client;
mod context;
mod detect;
mod failure;
#[doc(hidden)]
pub mod h1;
mod head;
mod http2;
mod prepare;
mod protocol;
mod server;
mod tunnel;
pub mod upgrade;

pub use body::{Body, BodyEnd, BodyError, BodyObserver, BoxError, TrackedBody};
pub use classify::{classify_grpc_status, classify_http_status, grpc_status, grpc_to_http_status};
pub use client::{
    ClientError, ClientOptions, Http1Connection, Http2Connection, UpstreamBody, UpstreamBodyError,
};
pub use context::ConnectionInfo;
pub use detect::{H2_PREFACE, HttpDetect, detect, detect_version};
pub use failure::{
    GRPC_MESSAGE, GRPC_STATUS, X_STRAIT_ERROR, direct_response, failure_grpc_status,
    failure_response, failure_status, grpc_message_value, redirect,
};
pub use head::{
    RequestHead, Scheme, authority_of, is_grpc_content_type, is_grpc_request, parse_grpc_timeout,
    split_grpc_path, strip_port,
};
pub use http2::H2Body;
pub use prepare::{
    X_FORWARDED_FOR, X_FORWARDED_PROTO, is_upgrade_request, prepare_downstream_response,
    prepare_upstream_request,
};
pub use protocol::{Http, NAME, protocol};
pub use server::request_body::{ReceivedBytes, RequestBody, RequestBodyError};
pub use server::{Handler, HandlerFuture, ServeError, ServerIo, ServerOptions, serve_connection};
pub use tunnel::{TunnelError, tunnel};
pub use upgrade::{OnUpgrade, Upgraded};
