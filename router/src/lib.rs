//! Virtual hosts, ordered routes and route actions over the protocol-neutral frame view.
//!
//! One routing language serves every protocol: a route only reads a request through
//! [`Frame::header`](strait_codec_framework::Frame::header) and
//! [`Frame::variable`](strait_codec_framework::Frame::variable), so Bolt header maps,
//! Dubbo attachments and HTTP headers are matched the same way.
//!
//! The types here are the *runtime* form of the configuration. The proxy crate parses its
//! YAML (or xDS) and builds them through the validating constructors, so an invalid table
//! (a bad regex, a weighted action with no weight, two hosts claiming one domain) is
//! rejected at load time with a typed [`RouteError`] and never reaches the request path.
//!
//! ```text
//! RouteTable::route(authority, frame)
//!   └─ virtual host: exact domain ▶ longest `*.suffix` ▶ `*`
//!        └─ first route whose RouteMatch holds
//!             └─ RouteDecision: cluster (weighted pick done) | direct response
//! ```

#![forbid(unsafe_code)]

mod action;
mod error;
mod matcher;
mod route;
mod table;

pub use action::{RouteAction, WeightedClusters};
pub use error::RouteError;
pub use matcher::{AnchoredRegex, MatchKind, RouteMatch, ValueMatcher};
pub use route::{Route, RouteDecision, RouteTarget};
pub use table::{RouteTable, VirtualHost};
