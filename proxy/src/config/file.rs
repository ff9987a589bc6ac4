//! The YAML file, as written by people. Every struct refuses unknown keys, and every
//! value a later check may complain about keeps its location (`Spanned`).

use serde::Deserialize;
use serde_saphyr::Spanned;

/// Text with the place it was written.
pub type S<T> = Spanned<T>;

/// The whole configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The admin HTTP server.
    #[serde(default)]
    pub admin: Option<AdminFile>,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    #[serde(default)]
    pub drain_timeout: Option<S<String>>,
    /// Listening sockets.
    #[serde(default)]
    pub listeners: Vec<ListenerFile>,
    /// Named route tables.
    #[serde(default)]
    pub route_configs: Vec<RouteConfigFile>,
    /// Upstream clusters.
    #[serde(default)]
    pub clusters: Vec<ClusterFile>,
    /// Where spans go.
    #[serde(default)]
    pub tracing: Option<S<TracingFile>>,
    /// Reload the configuration when this file changes.
    #[serde(default)]
    pub watch: Option<S<bool>>,
}

/// `tracing:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingFile {
    /// `opentelemetry` or `skywalking`.
    pub provider: S<String>,
    /// The collector's gRPC endpoint, `http://host:port`.
    pub endpoint: S<String>,
    /// `service.name` of the spans (default `strait`).
    #[serde(default)]
    pub service_name: Option<S<String>>,
    /// Share of new traces sampled, 0 to 1 (default 1).
    #[serde(default)]
    pub sampling_ratio: Option<S<f64>>,
}

/// `admin:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// `host:port` of the admin server.
    pub address: S<String>,
}

/// One entry of `listeners:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    pub name: S<String>,
    pub address: S<String>,
    /// A registered protocol name, or `auto`.
    pub protocol: S<String>,
    pub route_config: S<String>,
    /// `auto` only: how long to wait for the first bytes.
    #[serde(default)]
    pub detect_timeout: Option<S<String>>,
    #[serde(default)]
    pub max_frame_size: Option<S<u64>>,
    #[serde(default)]
    pub max_requests_per_connection: Option<S<u64>>,
    /// `http` and `auto` listeners: limits of downstream HTTP connections.
    #[serde(default)]
    pub http: Option<S<HttpServerFile>>,
    /// One line per request.
    #[serde(default)]
    pub access_log: Option<S<AccessLogFile>>,
    /// TLS termination.
    #[serde(default)]
    pub tls: Option<S<ListenerTlsFile>>,
}

/// `tls:` of a listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTlsFile {
    /// At least one certificate; the first without `server_names` is the default.
    pub certificates: Vec<S<CertificateFile>>,
    /// ALPN protocols offered, in preference order.
    #[serde(default)]
    pub alpn: Option<Vec<S<String>>>,
    /// `1.2` or `1.3`.
    #[serde(default)]
    pub min_version: Option<S<String>>,
    /// CA bundle client certificates are verified against.
    #[serde(default)]
    pub client_ca_file: Option<S<String>>,
    /// Refuse clients that send no certificate.
    #[serde(default)]
    pub require_client_certificate: Option<S<bool>>,
    /// SANs one of which a client certificate must carry.
    #[serde(default)]
    pub allowed_sans: Vec<S<String>>,
    /// Bound on a handshake.
    #[serde(default)]
    pub handshake_timeout: Option<S<String>>,
}

/// One entry of a listener's `tls.certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFile {
    pub cert_file: S<String>,
    pub key_file: S<String>,
    /// SNI names this certificate answers for.
    #[serde(default)]
    pub server_names: Vec<S<String>>,
}

/// `tls:` of a cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTlsFile {
    #[serde(default)]
    pub server_name: Option<S<String>>,
    #[serde(default)]
    pub ca_file: Option<S<String>>,
    #[serde(default)]
    pub cert_file: Option<S<String>>,
    #[serde(default)]
    pub key_file: Option<S<String>>,
    #[serde(default)]
    pub alpn: Option<Vec<S<String>>>,
    #[serde(default)]
    pub insecure_skip_verify: Option<S<bool>>,
}

/// `access_log:` of a listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogFile {
    /// `stdout`, or a file appended to.
    pub path: S<String>,
    /// A format string of `%FIELD%`s, or `json`.
    #[serde(default)]
    pub format: Option<S<String>>,
}

/// `http:` of a listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerFile {
    /// Bound on reading a request head (and the keep-alive wait); `0s`: none.
    #[serde(default)]
    pub header_read_timeout: Option<S<String>>,
    /// Close a connection silent this long; `0s`: never.
    #[serde(default)]
    pub idle_timeout: Option<S<String>>,
    /// Largest request head, in bytes.
    #[serde(default)]
    pub max_header_size: Option<S<u64>>,
    /// Most header fields in a request.
    #[serde(default)]
    pub max_headers: Option<S<u64>>,
    /// Whether `Upgrade: h2c` switches a connection to HTTP/2.
    #[serde(default)]
    pub h2c_upgrade: Option<bool>,
    /// Whether an HTTP/1 client that half-closes still gets its answer.
    #[serde(default)]
    pub half_close: Option<bool>,
    #[serde(default)]
    pub http2: Option<S<Http2File>>,
}

/// `http2:` of a listener's or cluster's `http:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http2File {
    /// Listeners only: `SETTINGS_MAX_CONCURRENT_STREAMS`.
    #[serde(default)]
    pub max_concurrent_streams: Option<S<u64>>,
    #[serde(default)]
    pub initial_stream_window_size: Option<S<u64>>,
    #[serde(default)]
    pub initial_connection_window_size: Option<S<u64>>,
    #[serde(default)]
    pub max_frame_size: Option<S<u64>>,
    /// PING after this much silence; `0s`: never.
    #[serde(default)]
    pub keepalive_interval: Option<S<String>>,
    #[serde(default)]
    pub keepalive_timeout: Option<S<String>>,
}

/// `http:` of an `http1` or `http2` cluster: limits of upstream connections.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpClientFile {
    /// Largest response head, in bytes.
    #[serde(default)]
    pub max_header_size: Option<S<u64>>,
    /// Most header fields in a response.
    #[serde(default)]
    pub max_headers: Option<S<u64>>,
    /// `http2` clusters only.
    #[serde(default)]
    pub http2: Option<S<Http2File>>,
}

/// One entry of `route_configs:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfigFile {
    pub name: S<String>,
    pub virtual_hosts: Vec<VirtualHostFile>,
}

/// One entry of `virtual_hosts:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualHostFile {
    pub name: S<String>,
    #[serde(default = "star")]
    pub domains: Vec<S<String>>,
    #[serde(default)]
    pub routes: Vec<S<RouteFile>>,
}

fn star() -> Vec<S<String>> {
    vec![Spanned::new(
        "*".to_string(),
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )]
}

/// One entry of `routes:`. Exactly one of `route`, `redirect`, `direct_response`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    #[serde(default)]
    pub name: Option<S<String>>,
    #[serde(rename = "match", default)]
    pub matcher: MatchFile,
    #[serde(default)]
    pub route: Option<S<RouteActionFile>>,
    #[serde(default)]
    pub redirect: Option<S<RedirectFile>>,
    #[serde(default)]
    pub direct_response: Option<S<DirectResponseFile>>,
    #[serde(default)]
    pub request_headers_to_add: Vec<HeaderValueFile>,
    #[serde(default)]
    pub request_headers_to_remove: Vec<S<String>>,
    #[serde(default)]
    pub response_headers_to_add: Vec<HeaderValueFile>,
    #[serde(default)]
    pub response_headers_to_remove: Vec<S<String>>,
}

/// `match:`. At most one of `path`, `prefix`, `regex`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchFile {
    /// The path (no query) equals this.
    #[serde(default)]
    pub path: Option<S<String>>,
    /// The path starts with this.
    #[serde(default)]
    pub prefix: Option<S<String>>,
    /// The whole path matches this regex.
    #[serde(default)]
    pub regex: Option<S<String>>,
    /// `path`/`prefix` compare case-sensitively (default true).
    #[serde(default)]
    pub case_sensitive: Option<S<bool>>,
    #[serde(default)]
    pub variables: Vec<S<MatcherFile>>,
    #[serde(default)]
    pub headers: Vec<S<MatcherFile>>,
    #[serde(default)]
    pub query_parameters: Vec<S<MatcherFile>>,
}

/// One variable or header condition; exactly one of the match kinds is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherFile {
    pub name: S<String>,
    #[serde(default)]
    pub exact: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub present: Option<bool>,
    #[serde(default)]
    pub invert: bool,
}

/// `route:` (the action).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteActionFile {
    #[serde(default)]
    pub cluster: Option<S<String>>,
    #[serde(default)]
    pub weighted_clusters: Option<Vec<S<WeightedClusterFile>>>,
    #[serde(default)]
    pub timeout: Option<S<String>>,
    /// Replaces the matched `path`/`prefix` of the forwarded request's path.
    #[serde(default)]
    pub prefix_rewrite: Option<S<String>>,
    /// Replaces the forwarded request's authority (Host / `:authority`).
    #[serde(default)]
    pub host_rewrite: Option<S<String>>,
    /// When and how failed attempts are tried again.
    #[serde(default)]
    pub retry_policy: Option<S<RetryPolicyFile>>,
}

/// `retry_policy:` of a route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicyFile {
    pub retry_on: Vec<S<String>>,
    #[serde(default)]
    pub retriable_status_codes: Vec<S<u32>>,
    #[serde(default)]
    pub num_retries: Option<S<u32>>,
    #[serde(default)]
    pub per_try_timeout: Option<S<String>>,
    #[serde(default)]
    pub retry_back_off: Option<S<RetryBackOffFile>>,
}

/// `retry_back_off:` of a retry policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryBackOffFile {
    pub base_interval: S<String>,
    #[serde(default)]
    pub max_interval: Option<S<String>>,
}

/// `redirect:` (Envoy's `RedirectAction`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectFile {
    #[serde(default)]
    pub scheme_redirect: Option<S<String>>,
    #[serde(default)]
    pub host_redirect: Option<S<String>>,
    #[serde(default)]
    pub port_redirect: Option<S<u32>>,
    #[serde(default)]
    pub path_redirect: Option<S<String>>,
    #[serde(default)]
    pub prefix_rewrite: Option<S<String>>,
    #[serde(default)]
    pub response_code: Option<S<u32>>,
    #[serde(default)]
    pub strip_query: bool,
}

/// One entry of `weighted_clusters:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedClusterFile {
    pub name: S<String>,
    pub weight: u32,
}

/// `direct_response:`: answer locally with this status (in the protocol's numbering).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectResponseFile {
    pub status: u32,
    #[serde(default)]
    pub body: Option<String>,
}

/// `{ name: k, value: v }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderValueFile {
    pub name: S<String>,
    pub value: S<String>,
}

/// One entry of `clusters:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub name: S<String>,
    pub protocol: S<String>,
    #[serde(default)]
    pub lb_policy: Option<S<String>>,
    /// What `ring_hash` and `maglev` hash.
    #[serde(default)]
    pub hash_key: Option<S<HashKeyFile>>,
    #[serde(default)]
    pub connect_timeout: Option<S<String>>,
    #[serde(default)]
    pub max_connections_per_host: Option<S<u64>>,
    #[serde(default)]
    pub preconnect: bool,
    #[serde(default)]
    pub max_requests: Option<S<u64>>,
    #[serde(default)]
    pub max_frame_size: Option<S<u64>>,
    #[serde(default)]
    pub heartbeat: Option<HeartbeatFile>,
    /// `http1` and `http2` clusters: limits of upstream HTTP connections.
    #[serde(default)]
    pub http: Option<S<HttpClientFile>>,
    /// Active health checking.
    #[serde(default)]
    pub health_check: Option<S<HealthCheckFile>>,
    /// Passive health checking from request outcomes.
    #[serde(default)]
    pub outlier_detection: Option<S<OutlierDetectionFile>>,
    /// Bounds on connections, pending requests, requests and retries.
    #[serde(default)]
    pub circuit_breakers: Option<S<CircuitBreakersFile>>,
    /// Weight ramp of a host that becomes healthy.
    #[serde(default)]
    pub slow_start: Option<S<SlowStartFile>>,
    /// Percentage of healthy hosts below which health is ignored.
    #[serde(default)]
    pub panic_threshold: Option<S<u64>>,
    /// `static` (addresses) or `strict_dns` (names, re-resolved).
    #[serde(rename = "type", default)]
    pub kind: Option<S<String>>,
    /// `strict_dns`: time between resolutions.
    #[serde(default)]
    pub dns_refresh_rate: Option<S<String>>,
    pub endpoints: Vec<S<EndpointFile>>,
    /// TLS to the hosts.
    #[serde(default)]
    pub tls: Option<S<ClusterTlsFile>>,
}

/// `hash_key:` of a cluster: one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashKeyFile {
    #[serde(default)]
    pub header: Option<S<String>>,
    #[serde(default)]
    pub variable: Option<S<String>>,
}

/// `health_check:` of a cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckFile {
    #[serde(rename = "type")]
    pub kind: S<String>,
    #[serde(default)]
    pub interval: Option<S<String>>,
    #[serde(default)]
    pub interval_jitter: Option<S<String>>,
    #[serde(default)]
    pub timeout: Option<S<String>>,
    #[serde(default)]
    pub unhealthy_threshold: Option<S<u64>>,
    #[serde(default)]
    pub healthy_threshold: Option<S<u64>>,
    #[serde(default)]
    pub path: Option<S<String>>,
    #[serde(default)]
    pub expected_statuses: Option<Vec<S<StatusesFile>>>,
    #[serde(default)]
    pub service_name: Option<S<String>>,
}

/// One entry of `expected_statuses`: `200`, or a range `"200-299"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StatusesFile {
    Code(u64),
    Range(String),
}

/// `outlier_detection:` of a cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierDetectionFile {
    #[serde(default)]
    pub consecutive_errors: Option<S<u64>>,
    #[serde(default)]
    pub interval: Option<S<String>>,
    #[serde(default)]
    pub base_ejection_time: Option<S<String>>,
    #[serde(default)]
    pub max_ejection_time: Option<S<String>>,
    #[serde(default)]
    pub max_ejection_percent: Option<S<u64>>,
    #[serde(default)]
    pub success_rate_minimum_hosts: Option<S<u64>>,
    #[serde(default)]
    pub success_rate_request_volume: Option<S<u64>>,
    #[serde(default)]
    pub success_rate_stdev_factor: Option<S<f64>>,
}

/// `circuit_breakers:` of a cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakersFile {
    #[serde(default)]
    pub max_connections: Option<S<u64>>,
    #[serde(default)]
    pub max_pending_requests: Option<S<u64>>,
    #[serde(default)]
    pub max_requests: Option<S<u64>>,
    #[serde(default)]
    pub max_retries: Option<S<u64>>,
    #[serde(default)]
    pub retry_budget: Option<S<RetryBudgetFile>>,
}

/// `circuit_breakers.retry_budget:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryBudgetFile {
    #[serde(default)]
    pub budget_percent: Option<S<f64>>,
    #[serde(default)]
    pub min_retry_concurrency: Option<S<u64>>,
}

/// `slow_start:` of a cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowStartFile {
    pub window: S<String>,
}

/// `heartbeat:` of a cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatFile {
    pub interval: S<String>,
    #[serde(default)]
    pub max_failures: Option<u32>,
}

/// One entry of `endpoints:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointFile {
    pub address: S<String>,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}
