//! Drives a protocol's codec over connections, in both directions.
//!
//! - [`downstream`]: serves one accepted connection. Frames become requests handed to a
//!   [`RequestHandler`]; heartbeats are answered locally and never forwarded; oneway
//!   requests never get any response, not even an error; a failure becomes the
//!   protocol's own error answer.
//! - [`upstream`]: a multiplexed client connection with its own request-id space and
//!   in-flight map, so many downstream connections share a few upstream connections.
//!   When it dies, every in-flight request fails at once.

pub mod downstream;
mod handler;
pub mod upstream;

pub use handler::{HandleFuture, RequestHandler};
pub use upstream::{UpstreamConnection, UpstreamError, UpstreamOptions};
