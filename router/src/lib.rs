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
//!             └─ RouteDecision: cluster (weighted pick done) | direct response | redirect
//!                  + path/host rewrites and response headers, as data for the protocol glue
//! ```

#![forbid(unsafe_code)]

mod action;
mod error;
mod matcher;
mod path;
mod query;
mod redirect;
mod retry;
mod route;
mod table;

pub use action::{RouteAction, WeightedClusters};
pub use error::RouteError;
pub use matcher::{AnchoredRegex, MatchKind, RouteMatch, ValueMatcher};
pub use path::{PathKind, PathMatch};
pub use query::{percent_decode, query_param};
pub use redirect::Redirect;
pub use retry::{RetryOn, RetryPolicy, StatusSpace};
pub use route::{HeaderSink, Route, RouteDecision, RouteTarget};
pub use table::{RouteTable, VirtualHost};

/// The routing variables ([`Frame::variable`](strait_codec_framework::Frame::variable))
/// the router itself reads for path conditions, query conditions, rewrites and redirects.
/// A protocol that has no such notion simply does not provide them: its requests match
/// no `path`/`prefix`/`regex` condition and have no query parameters.
pub mod var {
    /// The request path, without the query string (`/users/7`).
    pub const PATH: &str = "path";
    /// The raw query string, without `?` (`id=7&x=%20`).
    pub const QUERY: &str = "query";
    /// The authority the request was sent to (Host / `:authority`), port included.
    pub const AUTHORITY: &str = "authority";
    /// The host of [`AUTHORITY`], without the port; read when a frame has no authority.
    pub const HOST: &str = "host";
    /// The request's scheme (`http`, `https`); a redirect assumes `http` without it.
    pub const SCHEME: &str = "scheme";
}
