//! Configuration: the YAML file (`file`), checked and turned into the runtime types the
//! proxy runs on (`Config`). A config error names the file, line and key; nothing runs
//! until the whole file is valid.

pub mod duration;
mod file;
mod validate;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use strait_codec_framework::{MessageProtocol, Protocol, Registry};
use strait_router::RouteTable;
use strait_stream::http::{ClientOptions, ServerOptions};
use strait_upstream::ClusterOptions;

pub use validate::build;

/// Default drain timeout after SIGTERM/SIGINT.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
/// Default wait for the first bytes on an `auto` listener.
pub const DEFAULT_DETECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default upstream timeout when neither the route nor the frame sets one.
pub use strait_pipeline::DEFAULT_ROUTE_TIMEOUT;
/// Default connect timeout of a cluster.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default cap on a cluster's requests in flight.
pub const DEFAULT_MAX_REQUESTS: usize = 10_000;
/// Default requests in flight per downstream connection.
pub const DEFAULT_MAX_REQUESTS_PER_CONNECTION: usize = 4096;

/// A configuration error: where it is and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {key}: {message}")]
pub struct ConfigError {
    /// The config file.
    pub file: String,
    /// 1-based line (0 if unknown).
    pub line: u64,
    /// 1-based column (0 if unknown).
    pub column: u64,
    /// The offending key, as a path (`clusters[0].endpoints[1].address`).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// A checked configuration, ready to run.
#[derive(Clone)]
pub struct Config {
    /// Admin server address.
    pub admin: Option<SocketAddr>,
    /// Bound on draining at shutdown.
    pub drain_timeout: Duration,
    /// Listeners.
    pub listeners: Vec<ListenerConfig>,
    /// Clusters, in configuration order.
    pub clusters: Vec<ClusterConfig>,
    /// The effective configuration as JSON, for `/config_dump`.
    pub dump: serde_json::Value,
}

/// A checked listener.
#[derive(Clone)]
pub struct ListenerConfig {
    /// Listener name.
    pub name: String,
    /// Bind address.
    pub address: SocketAddr,
    /// The protocol served, or the candidates tried in order when `auto`.
    pub protocol: ListenerProtocol,
    /// Route table.
    pub routes: Arc<RouteTable>,
    /// Name of the route table.
    pub route_config: String,
    /// Largest downstream frame.
    pub max_frame_size: usize,
    /// Requests in flight per downstream connection (framed protocols).
    pub max_requests_per_connection: usize,
    /// Limits of downstream HTTP connections (`http` and `auto` listeners).
    pub http: Arc<ServerOptions>,
}

/// A checked cluster.
#[derive(Clone)]
pub struct ClusterConfig {
    /// What the upstream machinery needs.
    pub options: ClusterOptions,
    /// Limits of upstream HTTP connections (`http1` and `http2` clusters).
    pub http: Option<ClientOptions>,
}

/// What a listener speaks.
#[derive(Clone)]
pub enum ListenerProtocol {
    /// One framed protocol.
    Fixed(Arc<dyn Protocol>),
    /// HTTP/1.1 and h2c (prior knowledge and `Upgrade: h2c`) on one port: the
    /// registered message protocol, served by the HTTP driver.
    Http(Arc<dyn MessageProtocol>),
    /// Detected from the first bytes, among the registry's protocols in order.
    Auto {
        /// Bound on waiting for enough bytes to decide.
        timeout: Duration,
    },
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path, registry: &Registry) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        column: 0,
        key: "(file)".into(),
        message: format!("cannot read: {e}"),
    })?;
    parse(&file, &text, registry)
}

/// Checks configuration text; `file` names it in errors.
pub fn parse(file: &str, text: &str, registry: &Registry) -> Result<Config, ConfigError> {
    let parsed: file::FileConfig = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        ConfigError {
            file: file.to_string(),
            line,
            column,
            key: key_of_serde_error(&e.to_string()),
            message: first_line(&e.to_string()),
        }
    })?;
    build(file, &parsed, registry)
}

/// The first line of a serde-saphyr message, without its own "error: line N column M: "
/// prefix (the location is already in our `file:line:column`).
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s);
    let stripped = line
        .strip_prefix("error: line ")
        .and_then(|rest| rest.split_once(": "))
        .map(|(_, msg)| msg)
        .unwrap_or(line);
    stripped.to_string()
}

/// The key a serde message is about (`unknown field `foo``, `missing field `bar``).
fn key_of_serde_error(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "(syntax)".into())
}

#[cfg(test)]
mod tests;
