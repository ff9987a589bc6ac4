//! The protocol plugin API of Strait.
//!
//! A protocol is one crate that depends on this one alone. It implements [`Protocol`]
//! (what the proxy needs to know about the protocol as a whole), a [`Codec`] (bytes to
//! frames, per connection) and [`Frame`] (one decoded message that keeps its raw bytes).
//! It is then registered by name in a [`Registry`]. The stream, router, upstream and proxy
//! crates only ever talk to these traits: none of them names a concrete protocol.
//!
//! Nothing here does I/O or needs a runtime, so a codec can be driven by a test, a fuzzer
//! or `tokio_util::codec::FramedRead` alike.

mod civil;
mod count;
mod detect;
mod error;
mod failure;
mod frame;
mod id;
mod limits;
mod outcome;
mod protocol;
mod random;
mod registry;

pub use civil::{civil_date, rfc3339};
pub use count::{LATENCY_BOUNDS_NANOS, LATENCY_BUCKETS, Latencies, RequestCount};
pub use detect::Detect;
pub use error::{CodecError, DecodeError};
pub use failure::ProxyFailure;
pub use frame::{Frame, FrameKind, HeaderIter};
pub use id::{IdWidth, RequestId};
pub use limits::Limits;
pub use outcome::{
    AttemptRecord, Outcome, RequestHook, RequestRecord, RequestView, ResponseClass, StartFilter,
    TraceIds, ViewSlot,
};
pub use protocol::{Codec, PoolMode, Protocol};
pub use random::fast_random;
pub use registry::{MessageProtocol, Registered, Registry, RegistryError, UpstreamProtocol};
