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

/// A configuration error: where it is and what is wrong. Shown as
/// `file:line:column: key: message`, or `file: message` for the file as a whole.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
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

impl ConfigError {
    fn render(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.file, self.message)
        } else {
            format!(
                "{}:{}:{}: {}: {}",
                self.file, self.line, self.column, self.key, self.message
            )
        }
    }

    /// An error about the whole file (it cannot be read, it is empty...).
    fn whole_file(file: &str, message: String) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            line: 0,
            column: 0,
            key: String::new(),
            message,
        }
    }
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
    /// Tracing, if configured.
    pub tracing: Option<strait_telemetry::tracer::TracingConfig>,
    /// Reload when the file changes (`watch: true`).
    pub watch: bool,
    /// The file it was read from (`None` when given as text): what a reload reads.
    pub source: Option<std::path::PathBuf>,
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
    /// Where and how requests are logged, if they are.
    pub access_log: Option<AccessLogConfig>,
    /// TLS termination, if the listener has it.
    pub tls: Option<Arc<strait_tls::ServerTls>>,
}

/// A checked `access_log`.
#[derive(Clone, Debug)]
pub struct AccessLogConfig {
    /// Where lines go.
    pub target: strait_telemetry::access_log::Target,
    /// The format as written (`json`, or a format string).
    pub format_text: String,
    /// The parsed format.
    pub format: strait_telemetry::access_log::Format,
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
    let text = std::fs::read_to_string(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            std::io::ErrorKind::IsADirectory => "is a directory, not a file".to_string(),
            _ => format!("cannot read it: {e}"),
        };
        ConfigError::whole_file(&file, why)
    })?;
    let mut config = parse(&file, &text, registry)?;
    config.source = Some(path.to_path_buf());
    Ok(config)
}

/// Checks configuration text; `file` names it in errors.
pub fn parse(file: &str, text: &str, registry: &Registry) -> Result<Config, ConfigError> {
    if text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    }) {
        return Err(ConfigError::whole_file(
            file,
            "the file is empty: a configuration needs at least one listener".into(),
        ));
    }
    // The path serde was at when it failed: `clusters[0].lb_polcy`.
    let mut path = String::new();
    let parsed: Result<file::FileConfig, _> =
        serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize(de).map_err(|e| {
                path = e.path().to_string();
                e.into_inner()
            })
        });
    let parsed = parsed.map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = first_line(&e.to_string());
        let error = ConfigError {
            file: file.to_string(),
            line,
            column,
            key: match key_path(&path).as_str() {
                "" => "(syntax)".into(),
                known => known.to_string(),
            },
            message,
        };
        explain(error, text)
    })?;
    build(file, &parsed, registry)
}

/// The key path as the file writes it, from serde's path: without the `value` segments
/// of the location-keeping wrapper (`Spanned`), and without the segments serde could
/// not name (`?`: a key not read yet).
fn key_path(serde_path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in serde_path.split('.') {
        // `value` is a key of its own in one place only: `{ name, value }` header entries.
        let header_value = out.last().is_some_and(|p: &&str| {
            p.split('[')
                .next()
                .is_some_and(|k| k.ends_with("headers_to_add"))
        });
        if segment.is_empty() || segment == "?" || (segment == "value" && !header_value) {
            continue;
        }
        out.push(segment);
    }
    out.join(".")
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

/// Rewords what the YAML library says into what to fix: an unknown key with the keys
/// valid there, a duplicate key with the line of its first use (not the library's
/// option to allow it), a misplaced line with its indentation.
fn explain(mut e: ConfigError, text: &str) -> ConfigError {
    let lines: Vec<&str> = text.lines().collect();
    // Where a line's key starts (after its indentation and any `- `).
    let indent = |n: u64| -> Option<usize> {
        let line = lines.get(usize::try_from(n).ok()?.checked_sub(1)?)?;
        let mut body = line.trim_start();
        while let Some(rest) = body.strip_prefix('-') {
            body = rest.trim_start();
        }
        Some(line.len() - body.len())
    };
    let message = e.message.clone();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (key, rest) = rest.split_once('`').unwrap_or((rest, ""));
        let valid = rest
            .split_once("expected one of ")
            .map(|(_, list)| list.replace('`', ""))
            .or_else(|| {
                rest.split_once("expected ")
                    .map(|(_, k)| k.replace('`', ""))
            });
        e.message = match valid {
            Some(list) => format!("unknown key {key:?}; the keys valid here are: {list}"),
            None => format!("unknown key {key:?}; no keys are valid here"),
        };
        if e.key == "(syntax)" {
            e.key = key.to_string();
        }
    } else if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest).trim().to_string();
        e.key = if e.key == "(syntax)" {
            key.clone()
        } else {
            format!("{}.{key}", e.key)
        };
        let first = duplicate_first_line(&lines, e.line, e.column, &key);
        e.message = match first {
            Some(first) if first == e.line => {
                format!("key {key:?} is written twice in this mapping on this line")
            }
            Some(first) => format!("key {key:?} is already set on line {first}"),
            None => format!("key {key:?} is written twice in this mapping"),
        };
    } else if message.contains("mapping values are not allowed")
        || message.contains("did not find expected key")
        || message.contains("block mapping")
        || message.contains("block sequence")
    {
        // Most of these come from a line indented unlike its neighbours: say so, and
        // point at where the line's text starts.
        let here = indent(e.line);
        let before = (1..e.line)
            .rev()
            .find(|n| {
                lines
                    .get(*n as usize - 1)
                    .is_some_and(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            })
            .and_then(|n| indent(n).map(|i| (n, i)));
        if let (Some(here), Some((prev, there))) = (here, before) {
            e.message = format!(
                "{}: check the indentation of line {}: its key starts at column {}, line \
                 {prev}'s at column {}",
                e.message,
                e.line,
                here + 1,
                there + 1
            );
            e.column = here as u64 + 1;
        }
        if e.key == "(syntax)" {
            e.key = "(indentation)".into();
        }
    }
    e
}

/// The line where `key` was first set in the mapping whose duplicate is at
/// `line`:`column`: the nearest earlier line at the same indentation that sets it, with
/// no line of the enclosing block (less indented) in between.
fn duplicate_first_line(lines: &[&str], line: u64, column: u64, key: &str) -> Option<u64> {
    let this = lines.get(usize::try_from(line).ok()?.checked_sub(1)?)?;
    // A flow mapping (`{ a: 1, a: 2 }`): both on one line.
    if this.matches(&format!("{key}:")).count() > 1 {
        return Some(line);
    }
    let col = usize::try_from(column).ok()?.checked_sub(1)?;
    for n in (1..line).rev() {
        let text = lines.get(usize::try_from(n).ok()? - 1)?;
        if text.trim().is_empty() || text.trim_start().starts_with('#') {
            continue;
        }
        let indent = text.len() - text.trim_start().len();
        let body = text.trim_start().trim_start_matches("- ");
        let body_col = text.len() - body.len();
        if body_col == col && body.starts_with(&format!("{key}:")) {
            return Some(n);
        }
        // Past the start of the mapping (a list item's first key, at `col` after its
        // `- `, was checked just above).
        if indent < col {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests;
