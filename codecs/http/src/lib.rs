//! HTTP/1.1, HTTP/2 and gRPC protocol knowledge for Strait: no sockets, no tasks, no
//! timers. The connection drivers that put it on the wire (server, upstream clients,
//! HTTP/2 on the `h2` crate, upgrades) live in `strait_stream::http`, with the other
//! drivers.
//!
//! - [`h1`]: the HTTP/1.1 codec: zero-copy head parsing with RFC 9112's framing rules,
//!   incremental body decoding, head and chunk encoding;
//! - [`RequestHead`]: a request head as a [`strait_codec_framework::Frame`], the view
//!   the router matches on;
//! - [`prepare_upstream_request`] / [`prepare_downstream_response`]: hop-by-hop
//!   headers, `x-forwarded-*`, version conversion;
//! - [`failure_response`], [`direct_response`], [`redirect`]: local answers (gRPC
//!   failures as trailers-only responses);
//! - [`classify_http_status`], [`classify_grpc_status`]: a response's outcome class;
//! - [`detect`]: HTTP/1 and HTTP/2 from a connection's first bytes;
//! - [`Http`]: HTTP as a registered protocol.

#![deny(missing_docs)]

mod classify;
mod context;
mod detect;
mod failure;
#[doc(hidden)]
pub mod h1;
mod head;
mod prepare;
mod protocol;

pub use classify::{classify_grpc_status, classify_http_status, grpc_status, grpc_to_http_status};
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
pub use prepare::{
    X_FORWARDED_FOR, X_FORWARDED_PROTO, is_upgrade_request, list_contains,
    prepare_downstream_response, prepare_upstream_request, remove_hop_by_hop,
};
pub use protocol::{Http, NAME, protocol};
