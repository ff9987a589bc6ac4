//! Drives a protocol's codec over connections, in both directions.
//!
//! - [`downstream`]: serves one accepted connection. Frames become requests that a
//!   [`RequestHandler`] routes synchronously; heartbeats are answered locally and never
//!   forwarded; oneway requests never get any response, not even an error; a failure
//!   becomes the protocol's own error answer.
//! - [`http`]: HTTP/1.1 and HTTP/2 server and client connections, on Strait's own
//!   HTTP/1.1 engine and the `h2` crate.
//! - [`upstream`]: a multiplexed client connection with its own request-id space and
//!   in-flight map, so many downstream connections share a few upstream connections.
//!   When it dies, every in-flight request fails at once.
//!
//! Every request carries a [`RequestContext`] from its decoded head to exactly one
//! outcome, reported once to [`RequestHandler::finished`].
//!
//! The hot path allocates no future, channel or timer per request: a request is routed
//! inline, encoded straight into the upstream connection's write buffer and recorded in
//! its in-flight map together with the [`Inbox`] of the downstream connection, where the
//! upstream reader drops the response (or the failure) when it comes.

pub mod buffers;
mod context;
pub mod downstream;
pub mod downstream_idle;
mod handler;
pub mod http;
mod id_slab;
pub mod idle_set;
mod inbox;
mod io;
pub mod upstream;

pub use context::{Moment, RequestContext, RequestEnd, Tally};
pub use handler::{Connecting, RequestHandler, Route};
pub use inbox::{Completion, Inbox, RequestToken};
pub use io::{UpstreamIo, WrappedIo};
pub use upstream::{HeartbeatCounters, UpstreamConnection, UpstreamError, UpstreamOptions};
