//! Strait's own HTTP/1.1 engine (docs/design/http1-fast-path.md), step 1: the pure codec.
//!
//! No I/O and no tasks: [`parse`] takes request and response heads off a read buffer
//! (zero-copy `Parts`) and decides their framing and persistence, [`decode`] turns the
//! bytes after a head into body data and trailers incrementally, [`encode`] writes heads
//! and chunked bodies, [`date`] caches the `Date` field. Buffers are not the codec's:
//! the driver, in `stream/`, lends them from `strait_stream::buffers` as every driver
//! does. Nothing here is wired into the server or the client yet; the items are public
//! only for the driver steps and tests, not a stable API.

pub mod date;
pub mod decode;
pub mod encode;
pub mod error;
mod framing;
// Test and fuzz support only: the fuzz crate (`codecs/http/fuzz`) enables `fuzzing`.
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_logic;
pub mod parse;
// Test support only: the server driver's tests in `stream/` replay this table.
#[cfg(any(test, feature = "test-support"))]
pub mod smuggling;

pub use decode::{ChunkLimits, Decoded, Decoder};
pub use encode::{BodyLength, ConnectionField, Framing, RequestFacts, ResponseFraming};
pub use error::{DecodeError, ParseError};
pub use parse::{BodyKind, HeadLimits, ParsedRequest, ParsedResponse};

#[cfg(test)]
pub(crate) mod tests;
