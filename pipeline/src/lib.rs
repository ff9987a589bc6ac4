//! The proxy core every request of every protocol goes through
//! (`docs/design/one-pipeline.md`): decoded head → route → admission → host →
//! connection from the cluster's pool → send → deadline → one outcome, delivered once
//! to [`Pipeline`]'s end and its [`strait_codec_framework::RequestHook`].
//!
//! The connection drivers of `strait-stream` hand requests in through one of two doors,
//! both built on a listener's [`ListenerPipeline`]:
//!
//! - [`FramedForwarder`]: a [`strait_stream::RequestHandler`] for framed protocols
//!   (Bolt, Dubbo, a protocol added later), routing inline with no future or timer per
//!   request;
//! - [`HttpForwarder`]: a [`strait_stream::http::Handler`] for HTTP/1.1, HTTP/2 and
//!   gRPC, whose bodies stream and whose request ends with its response body.
//!
//! Both take the same route table, the same route-to-cluster step, the same deadline
//! rule and the same end; the protocol's own knowledge (its failure answers, its
//! response classes) comes from its codec.

#![deny(missing_docs)]

mod core;
mod framed;
mod http;
mod slot;

pub use crate::core::{ClusterSet, DEFAULT_ROUTE_TIMEOUT, ListenerPipeline, Pipeline};
pub use crate::framed::FramedForwarder;
pub use crate::http::HttpForwarder;
pub use crate::slot::ListenerSlot;
