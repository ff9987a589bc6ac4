//! From the parsed file to a runnable [`Config`], checking every cross-reference.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;
use serde_saphyr::{Location, Spanned};
use strait_codec_framework::{Limits, PoolMode, Registered, Registry, UpstreamProtocol};
use strait_router::{RouteAction, RouteTable};
use strait_stream::UpstreamOptions;
use strait_upstream::lb::LbPolicy;
use strait_upstream::{
    ClusterOptions, Discovery, DnsEndpoint, Endpoint, HashKey, SystemResolver, Transport,
};

use super::file::*;
use super::{
    AccessLogConfig, ClusterConfig, Config, ConfigError, ListenerConfig, ListenerProtocol, duration,
};
use super::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_DETECT_TIMEOUT, DEFAULT_DRAIN_TIMEOUT, DEFAULT_MAX_REQUESTS,
    DEFAULT_MAX_REQUESTS_PER_CONNECTION,
};
use strait_telemetry::tracer::{Provider, TracingConfig};

mod http;
mod resilience;
mod routes;
mod tls;

use routes::{build_route_table, check_listener_routes, route_dump};

/// Builds errors that point into one file.
struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, at: Location, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: at.line(),
            column: at.column(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        v: &Spanned<String>,
        key: String,
    ) -> Result<std::time::Duration, ConfigError> {
        duration::parse(&v.value).map_err(|m| self.err(v.referenced, key, m))
    }

    fn addr(&self, v: &Spanned<String>, key: String) -> Result<SocketAddr, ConfigError> {
        v.value.parse().map_err(|_| {
            self.err(
                v.referenced,
                key,
                format!("{:?} is not an ip:port address", v.value),
            )
        })
    }

    fn size(
        &self,
        v: &Option<Spanned<u64>>,
        key: String,
        default: usize,
    ) -> Result<usize, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) if s.value == 0 => Err(self.err(s.referenced, key, "must be at least 1")),
            Some(s) => {
                usize::try_from(s.value).map_err(|_| self.err(s.referenced, key, "too large"))
            }
        }
    }
}

/// `strict_dns` clusters re-resolve their names this often unless told (Envoy's default).
const DEFAULT_DNS_REFRESH_RATE: std::time::Duration = std::time::Duration::from_secs(5);

/// A `host:port` endpoint of a `strict_dns` cluster.
fn dns_endpoint(
    cx: &Ctx<'_>,
    v: &Spanned<String>,
    key: String,
    weight: u32,
) -> Result<DnsEndpoint, ConfigError> {
    let bad = || {
        cx.err(
            v.referenced,
            key.clone(),
            format!("{:?} is not a host:port address", v.value),
        )
    };
    let (host, port) = v.value.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok(DnsEndpoint {
        host: host.to_string(),
        port,
        weight,
    })
}

/// Checks `parsed` and builds the runtime configuration.
pub fn build(file: &str, parsed: &FileConfig, registry: &Registry) -> Result<Config, ConfigError> {
    let cx = Ctx { file };
    if parsed.listeners.is_empty() {
        return Err(ConfigError {
            file: file.to_string(),
            line: 1,
            column: 1,
            key: "listeners".into(),
            message: "no listeners: a configuration needs at least one to serve traffic".into(),
        });
    }
    let admin = match &parsed.admin {
        Some(a) => Some(cx.addr(&a.address, "admin.address".into())?),
        None => None,
    };
    let drain_timeout = match &parsed.drain_timeout {
        Some(d) => cx.duration(d, "drain_timeout".into())?,
        None => DEFAULT_DRAIN_TIMEOUT,
    };

    let clusters = build_clusters(&cx, parsed, registry)?;
    let cluster_names: HashSet<&str> = clusters.iter().map(|c| c.options.name.as_str()).collect();
    let mut tables = HashMap::new();
    for (i, rc) in parsed.route_configs.iter().enumerate() {
        let key = format!("route_configs[{i}]");
        let table = build_route_table(&cx, rc, &key, &cluster_names)?;
        if tables
            .insert(rc.name.value.as_str(), Arc::new(table))
            .is_some()
        {
            return Err(cx.err(
                rc.name.referenced,
                format!("{key}.name"),
                format!("duplicate route config {:?}", rc.name.value),
            ));
        }
    }

    let mut listeners = Vec::new();
    let mut seen_names = HashSet::new();
    let mut seen_addrs = HashSet::new();
    for (i, l) in parsed.listeners.iter().enumerate() {
        let key = format!("listeners[{i}]");
        if !seen_names.insert(l.name.value.as_str()) {
            return Err(cx.err(
                l.name.referenced,
                format!("{key}.name"),
                format!("duplicate listener {:?}", l.name.value),
            ));
        }
        let address = cx.addr(&l.address, format!("{key}.address"))?;
        // Port 0 asks the system for a free port: two such listeners never collide.
        if address.port() != 0 && !seen_addrs.insert(address) {
            return Err(cx.err(
                l.address.referenced,
                format!("{key}.address"),
                format!("{address} is used by another listener"),
            ));
        }
        let protocol = if l.protocol.value == "auto" {
            let timeout = match &l.detect_timeout {
                Some(t) => cx.duration(t, format!("{key}.detect_timeout"))?,
                None => DEFAULT_DETECT_TIMEOUT,
            };
            ListenerProtocol::Auto { timeout }
        } else {
            let entry = registry.lookup(&l.protocol.value).ok_or_else(|| {
                cx.err(
                    l.protocol.referenced,
                    format!("{key}.protocol"),
                    format!(
                        "unknown protocol {:?} (known: auto, {})",
                        l.protocol.value,
                        known(registry)
                    ),
                )
            })?;
            if let Some(t) = &l.detect_timeout {
                return Err(cx.err(
                    t.referenced,
                    format!("{key}.detect_timeout"),
                    "only valid with protocol: auto",
                ));
            }
            match entry {
                Registered::Framed(p) => ListenerProtocol::Fixed(p.clone()),
                Registered::Messages(p) => ListenerProtocol::Http(p.clone()),
            }
        };
        let routes = tables
            .get(l.route_config.value.as_str())
            .cloned()
            .ok_or_else(|| {
                cx.err(
                    l.route_config.referenced,
                    format!("{key}.route_config"),
                    format!("no route config named {:?}", l.route_config.value),
                )
            })?;
        check_listener_routes(&cx, parsed, l, &protocol)?;
        let served = match &protocol {
            ListenerProtocol::Fixed(p) => Some(p.name()),
            ListenerProtocol::Http(p) => Some(p.name()),
            ListenerProtocol::Auto { .. } => None,
        };
        if let Some(served) = served {
            // The proxy forwards frames as they are: a Bolt listener can only route to
            // Bolt clusters, an HTTP listener to HTTP/1 or HTTP/2 clusters (protocol
            // translation is not a thing the router does).
            for cluster in clusters_of(&routes) {
                let other = clusters
                    .iter()
                    .find(|c| c.options.name == cluster)
                    .map(|c| c.options.transport.name());
                if let Some(other) = other.filter(|o| !listener_reaches(registry, served, o)) {
                    return Err(cx.err(
                        l.route_config.referenced,
                        format!("{key}.route_config"),
                        format!(
                            "route config {:?} sends {} requests to cluster {cluster:?}, which speaks {other}",
                            l.route_config.value,
                            served
                        ),
                    ));
                }
            }
        }
        check_listener_keys(&cx, l, &protocol, &key)?;
        let http = http::server_options(&cx, l.http.as_ref(), &format!("{key}.http"))?;
        let access_log = l
            .access_log
            .as_ref()
            .map(|a| access_log(&cx, &a.value, &format!("{key}.access_log")))
            .transpose()?;
        let tls = l
            .tls
            .as_ref()
            .map(|t| tls::listener_tls(&cx, t, &format!("{key}.tls"), &l.name.value, &protocol))
            .transpose()?;
        listeners.push(ListenerConfig {
            name: l.name.value.clone(),
            address,
            protocol,
            routes,
            route_config: l.route_config.value.clone(),
            max_frame_size: cx.size(
                &l.max_frame_size,
                format!("{key}.max_frame_size"),
                Limits::DEFAULT_MAX_FRAME_SIZE,
            )?,
            max_requests_per_connection: cx.size(
                &l.max_requests_per_connection,
                format!("{key}.max_requests_per_connection"),
                DEFAULT_MAX_REQUESTS_PER_CONNECTION,
            )?,
            http: Arc::new(http),
            access_log,
            tls,
        });
    }

    let tracing = parsed
        .tracing
        .as_ref()
        .map(|t| tracing(&cx, &t.value))
        .transpose()?;
    let mut dump = dump(parsed, admin, drain_timeout, &listeners, &clusters);
    if let (Some(t), Some(map)) = (&tracing, dump.as_object_mut()) {
        map.insert(
            "tracing".into(),
            json!({
                "provider": t.provider.as_str(),
                "endpoint": t.endpoint,
                "service_name": t.service_name,
                "sampling_ratio": t.sampling_ratio,
            }),
        );
    }
    let watch = parsed.watch.as_ref().is_some_and(|w| w.value);
    if let (true, Some(map)) = (watch, dump.as_object_mut()) {
        map.insert("watch".into(), json!(true));
    }
    Ok(Config {
        admin,
        drain_timeout,
        watch,
        source: None,
        dump,
        listeners,
        clusters,
        tracing,
    })
}

/// `tracing:`: a known provider, a collector address, a ratio between 0 and 1.
fn tracing(cx: &Ctx<'_>, file: &TracingFile) -> Result<TracingConfig, ConfigError> {
    let provider = match file.provider.value.as_str() {
        "opentelemetry" => Provider::OpenTelemetry,
        "skywalking" => Provider::SkyWalking,
        other => {
            return Err(cx.err(
                file.provider.referenced,
                "tracing.provider",
                format!("unknown provider {other:?} (known: opentelemetry, skywalking)"),
            ));
        }
    };
    let endpoint = &file.endpoint.value;
    // Plain HTTP/2 only: the exporters speak no TLS to a collector (yet), and an
    // `https://` accepted here would fail every export at run time.
    let authority = endpoint
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'));
    let valid = authority.is_some_and(|a| {
        a.rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
    });
    if !valid {
        return Err(cx.err(
            file.endpoint.referenced,
            "tracing.endpoint",
            format!("{endpoint:?} is not http://host:port"),
        ));
    }
    let sampling_ratio = match &file.sampling_ratio {
        Some(r) if !(0.0..=1.0).contains(&r.value) => {
            return Err(cx.err(
                r.referenced,
                "tracing.sampling_ratio",
                format!("{} is not between 0 and 1", r.value),
            ));
        }
        Some(r) => r.value,
        None => 1.0,
    };
    Ok(TracingConfig {
        provider,
        endpoint: endpoint.clone(),
        service_name: file
            .service_name
            .as_ref()
            .map_or_else(|| "strait".to_string(), |s| s.value.clone()),
        sampling_ratio,
    })
}

/// Every cluster a route table can send to.
fn clusters_of(table: &RouteTable) -> Vec<&str> {
    let mut names = Vec::new();
    for route in table.virtual_hosts().iter().flat_map(|vh| &vh.routes) {
        match &route.action {
            RouteAction::Cluster(name) => names.push(name.as_str()),
            RouteAction::WeightedClusters(w) => {
                names.extend(w.clusters().iter().map(|(n, _)| n.as_str()))
            }
            RouteAction::DirectResponse { .. } | RouteAction::Redirect(_) => {}
        }
    }
    names
}

/// Keys that would be ignored on this kind of listener are errors: the framed limits
/// mean nothing to an `http` listener, and `http:` nothing to a framed one.
fn check_listener_keys(
    cx: &Ctx<'_>,
    l: &ListenerFile,
    protocol: &ListenerProtocol,
    key: &str,
) -> Result<(), ConfigError> {
    match protocol {
        ListenerProtocol::Fixed(p) => {
            if let Some(h) = &l.http {
                return Err(cx.err(
                    h.referenced,
                    format!("{key}.http"),
                    format!("only valid on http and auto listeners, not {}", p.name()),
                ));
            }
        }
        ListenerProtocol::Http(_) => {
            if let Some(v) = &l.max_frame_size {
                return Err(cx.err(
                    v.referenced,
                    format!("{key}.max_frame_size"),
                    "bounds framed RPC frames; an http listener takes http.max_header_size and http.http2.max_frame_size",
                ));
            }
            if let Some(v) = &l.max_requests_per_connection {
                return Err(cx.err(
                    v.referenced,
                    format!("{key}.max_requests_per_connection"),
                    "bounds framed RPC connections; an http listener takes http.http2.max_concurrent_streams (HTTP/1.1 serves one request at a time)",
                ));
            }
        }
        ListenerProtocol::Auto { .. } => {}
    }
    Ok(())
}

fn known(registry: &Registry) -> String {
    registry.names().collect::<Vec<_>>().join(", ")
}

fn build_clusters(
    cx: &Ctx<'_>,
    parsed: &FileConfig,
    registry: &Registry,
) -> Result<Vec<ClusterConfig>, ConfigError> {
    let mut out: Vec<ClusterConfig> = Vec::new();
    for (i, c) in parsed.clusters.iter().enumerate() {
        let key = format!("clusters[{i}]");
        if out.iter().any(|o| o.options.name == c.name.value) {
            return Err(cx.err(
                c.name.referenced,
                format!("{key}.name"),
                format!("duplicate cluster {:?}", c.name.value),
            ));
        }
        let upstream = registry.upstream(&c.protocol.value).ok_or_else(|| {
            cx.err(
                c.protocol.referenced,
                format!("{key}.protocol"),
                format!(
                    "unknown protocol {:?} (known: {})",
                    c.protocol.value,
                    registry.upstream_names().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        let (transport_name, pool_mode) = match &upstream {
            UpstreamProtocol::Framed(p) => (p.name(), p.pool_mode()),
            UpstreamProtocol::Messages {
                name, pool_mode, ..
            } => (*name, *pool_mode),
        };
        if let UpstreamProtocol::Messages { name, .. } = &upstream {
            // HTTP pools connect on demand and have no keepalive probe of their own.
            if c.preconnect {
                return Err(cx.err(
                    c.protocol.referenced,
                    format!("{key}.preconnect"),
                    format!("not supported for protocol {name}"),
                ));
            }
            if let Some(hb) = &c.heartbeat {
                return Err(cx.err(
                    hb.interval.referenced,
                    format!("{key}.heartbeat"),
                    format!("not supported for protocol {name}"),
                ));
            }
            if let Some(v) = &c.max_frame_size {
                return Err(cx.err(
                    v.referenced,
                    format!("{key}.max_frame_size"),
                    format!(
                        "bounds framed RPC frames; an {name} cluster takes http.max_header_size{}",
                        if pool_mode == PoolMode::Http2Streams {
                            " and http.http2.max_frame_size"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        } else if let Some(h) = &c.http {
            return Err(cx.err(
                h.referenced,
                format!("{key}.http"),
                format!("only valid on http1 and http2 clusters, not {transport_name}"),
            ));
        }
        let (transport, http) = match upstream {
            UpstreamProtocol::Messages {
                name, pool_mode, ..
            } => {
                let client = http::client_options(
                    cx,
                    c.http.as_ref(),
                    &format!("{key}.http"),
                    pool_mode == PoolMode::Http2Streams,
                )?;
                let transport = Transport::Messages {
                    name,
                    pool_mode,
                    client: client.clone(),
                };
                (transport, Some(client))
            }
            UpstreamProtocol::Framed(p) => (Transport::Framed(p), None),
        };
        let lb_policy = match &c.lb_policy {
            None => LbPolicy::RoundRobin,
            Some(p) => p.value.parse().map_err(|_| {
                cx.err(
                    p.referenced,
                    format!("{key}.lb_policy"),
                    format!(
                        "unknown policy {:?} (round_robin, random, least_request, ring_hash, maglev)",
                        p.value
                    ),
                )
            })?,
        };
        let hash_key = resilience::hash_key(cx, c, &key, lb_policy)?;
        let connect_timeout = match &c.connect_timeout {
            Some(t) => cx.duration(t, format!("{key}.connect_timeout"))?,
            None => DEFAULT_CONNECT_TIMEOUT,
        };
        if c.endpoints.is_empty() {
            return Err(cx.err(
                c.name.referenced,
                format!("{key}.endpoints"),
                "a cluster needs at least one endpoint",
            ));
        }
        let dns = match c.kind.as_ref().map(|k| k.value.as_str()) {
            None | Some("static") => false,
            Some("strict_dns") => true,
            Some(other) => {
                let at = c.kind.as_ref().map_or(c.name.referenced, |k| k.referenced);
                return Err(cx.err(
                    at,
                    format!("{key}.type"),
                    format!("unknown cluster type {other:?} (static, strict_dns)"),
                ));
            }
        };
        if let (false, Some(r)) = (dns, &c.dns_refresh_rate) {
            return Err(cx.err(
                r.referenced,
                format!("{key}.dns_refresh_rate"),
                "only read by strict_dns clusters",
            ));
        }
        let mut endpoints = Vec::new();
        let mut names = Vec::new();
        for (j, e) in c.endpoints.iter().enumerate() {
            let ekey = format!("{key}.endpoints[{j}]");
            if e.value.weight == 0 {
                return Err(cx.err(
                    e.referenced,
                    format!("{ekey}.weight"),
                    "weight must be at least 1",
                ));
            }
            if dns {
                names.push(dns_endpoint(
                    cx,
                    &e.value.address,
                    format!("{ekey}.address"),
                    e.value.weight,
                )?);
            } else {
                endpoints.push(Endpoint {
                    addr: cx.addr(&e.value.address, format!("{ekey}.address"))?,
                    weight: e.value.weight,
                });
            }
        }
        let discovery = if dns {
            let refresh = match &c.dns_refresh_rate {
                Some(r) => {
                    let d = cx.duration(r, format!("{key}.dns_refresh_rate"))?;
                    if d.is_zero() {
                        return Err(cx.err(
                            r.referenced,
                            format!("{key}.dns_refresh_rate"),
                            "must be longer than 0s",
                        ));
                    }
                    d
                }
                None => DEFAULT_DNS_REFRESH_RATE,
            };
            Discovery::StrictDns {
                names,
                refresh,
                resolver: Arc::new(SystemResolver),
            }
        } else {
            Discovery::Static
        };
        let mut connection = UpstreamOptions {
            limits: Limits {
                max_frame_size: cx.size(
                    &c.max_frame_size,
                    format!("{key}.max_frame_size"),
                    Limits::DEFAULT_MAX_FRAME_SIZE,
                )?,
            },
            ..UpstreamOptions::default()
        };
        if let Some(hb) = &c.heartbeat {
            connection.heartbeat_interval =
                Some(cx.duration(&hb.interval, format!("{key}.heartbeat.interval"))?);
            connection.heartbeat_max_failures = hb.max_failures.unwrap_or(3).max(1);
        }
        let resilience = resilience::resilience(cx, c, &key, &transport, DEFAULT_MAX_REQUESTS)?;
        let options = ClusterOptions {
            name: c.name.value.clone(),
            transport,
            lb_policy,
            hash_key,
            connect_timeout,
            max_connections_per_host: cx.size(
                &c.max_connections_per_host,
                format!("{key}.max_connections_per_host"),
                default_connections_per_host(pool_mode),
            )?,
            preconnect: c.preconnect,
            circuit_breakers: resilience.circuit_breakers,
            health_check: resilience.health_check,
            outlier_detection: resilience.outlier_detection,
            slow_start: resilience.slow_start,
            panic_threshold: resilience.panic_threshold,
            connection,
            endpoints,
            discovery,
            tls: c
                .tls
                .as_ref()
                .map(|t| {
                    tls::cluster_tls(cx, t, &format!("{key}.tls"), &c.name.value, transport_name)
                })
                .transpose()?,
        };
        out.push(ClusterConfig { options, http });
    }
    Ok(out)
}

/// A listener's `access_log` (at `key`): its target and its parsed format.
fn access_log(
    cx: &Ctx<'_>,
    file: &AccessLogFile,
    key: &str,
) -> Result<AccessLogConfig, ConfigError> {
    use strait_telemetry::access_log::{DEFAULT_FORMAT, Format, Target};
    if file.path.value.is_empty() {
        return Err(cx.err(
            file.path.referenced,
            format!("{key}.path"),
            "empty: write stdout or a file path",
        ));
    }
    let format_text = file
        .format
        .as_ref()
        .map_or(DEFAULT_FORMAT, |f| f.value.as_str());
    let format = Format::parse(format_text).map_err(|error| {
        let at = file
            .format
            .as_ref()
            .map_or(file.path.referenced, |f| f.referenced);
        cx.err(at, format!("{key}.format"), error.to_string())
    })?;
    Ok(AccessLogConfig {
        target: Target::parse(&file.path.value),
        format_text: format_text.to_string(),
        format,
    })
}

/// The effective configuration in the file's own keys, units and names (defaults
/// filled in, nothing unset written out), for `/config_dump`: fed back to
/// `strait --validate` it is the same configuration.
fn dump(
    parsed: &FileConfig,
    admin: Option<SocketAddr>,
    drain_timeout: std::time::Duration,
    listeners: &[ListenerConfig],
    clusters: &[ClusterConfig],
) -> serde_json::Value {
    use super::duration::format as duration;
    let mut dump = json!({
        "admin": admin.map(|a| json!({ "address": a.to_string() })),
        "drain_timeout": duration(drain_timeout),
        "listeners": listeners.iter().map(|l| {
            let framed = !matches!(l.protocol, ListenerProtocol::Http(_));
            json!({
                "name": l.name,
                "address": l.address.to_string(),
                "protocol": match &l.protocol {
                    ListenerProtocol::Fixed(p) => p.name(),
                    ListenerProtocol::Http(p) => p.name(),
                    ListenerProtocol::Auto { .. } => "auto",
                },
                "detect_timeout": match &l.protocol {
                    ListenerProtocol::Auto { timeout } => Some(duration(*timeout)),
                    _ => None,
                },
                "route_config": l.route_config,
                "max_frame_size": framed.then_some(l.max_frame_size),
                "max_requests_per_connection": framed.then_some(l.max_requests_per_connection),
                "http": (!matches!(l.protocol, ListenerProtocol::Fixed(_))).then(|| http::server_dump(&l.http)),
                "access_log": l.access_log.as_ref().map(|a| json!({
                    "path": match &a.target {
                        strait_telemetry::access_log::Target::Stdout => "stdout".to_string(),
                        strait_telemetry::access_log::Target::File(p) => p.display().to_string(),
                    },
                    "format": a.format_text,
                })),
                "tls": l.tls.as_deref().map(tls::listener_dump),
            })
        }).collect::<Vec<_>>(),
        "route_configs": parsed.route_configs.iter().map(|rc| json!({
            "name": rc.name.value,
            "virtual_hosts": rc.virtual_hosts.iter().map(|vh| json!({
                "name": vh.name.value,
                "domains": vh.domains.iter().map(|d| d.value.clone()).collect::<Vec<_>>(),
                "routes": vh.routes.iter().map(route_dump).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "clusters": clusters.iter().map(|cc| (&cc.options, cc.http.as_ref())).map(|(c, h)| with_resilience(c, json!({
            "name": c.name,
            "protocol": c.transport.name(),
            "lb_policy": c.lb_policy.as_str(),
            "hash_key": c.hash_key.as_ref().map(|k| match k {
                HashKey::Header(name) => json!({ "header": name }),
                HashKey::Variable(name) => json!({ "variable": name }),
            }),
            "connect_timeout": duration(c.connect_timeout),
            "max_connections_per_host": c.max_connections_per_host,
            "preconnect": c.preconnect,
            "max_frame_size": h.is_none().then_some(c.connection.limits.max_frame_size),
            "http": h.map(|h| http::client_dump(h, c.transport.name() == "http2")),
            "heartbeat": c.connection.heartbeat_interval.map(|i| json!({
                "interval": duration(i),
                "max_failures": c.connection.heartbeat_max_failures,
            })),
            "type": match &c.discovery { Discovery::Static => "static", Discovery::StrictDns { .. } => "strict_dns" },
            "dns_refresh_rate": match &c.discovery {
                Discovery::StrictDns { refresh, .. } => Some(duration(*refresh)),
                Discovery::Static => None,
            },
            "endpoints": match &c.discovery {
                Discovery::StrictDns { names, .. } => names.iter().map(|n| json!({ "address": format!("{}:{}", n.host, n.port), "weight": n.weight })).collect::<Vec<_>>(),
                Discovery::Static => c.endpoints.iter().map(|e| json!({ "address": e.addr.to_string(), "weight": e.weight })).collect::<Vec<_>>(),
            },
            "tls": c.tls.as_deref().map(tls::cluster_dump),
        }))).collect::<Vec<_>>(),
    });
    drop_unset(&mut dump);
    dump
}

/// A cluster's dump with its resilience keys added.
fn with_resilience(c: &ClusterOptions, mut dump: serde_json::Value) -> serde_json::Value {
    if let serde_json::Value::Object(map) = &mut dump {
        for (key, value) in resilience::dump(c) {
            map.insert(key.to_string(), value);
        }
    }
    dump
}

/// Removes every `null` (a key left unset, with no default to show): the config has no
/// way to write one.
fn drop_unset(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_unset);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_unset),
        _ => {}
    }
}

/// Whether a listener serving `served` may route to a cluster speaking `cluster`: the
/// same framed protocol, or a version of the same message protocol (an `http` listener
/// to `http1` and `http2` clusters).
fn listener_reaches(registry: &Registry, served: &str, cluster: &str) -> bool {
    match registry.upstream(cluster) {
        Some(UpstreamProtocol::Framed(p)) => p.name() == served,
        Some(UpstreamProtocol::Messages { protocol, .. }) => protocol.name() == served,
        None => false,
    }
}

/// `max_connections_per_host` when unset, by how connections are shared: one
/// multiplexed connection carries a framed protocol's load; one request at a time needs
/// a connection per concurrent request (the value caps them); HTTP/2 opens more
/// connections only when the server's stream limit is reached.
fn default_connections_per_host(mode: PoolMode) -> usize {
    match mode {
        PoolMode::PingPong => 1024,
        PoolMode::Http2Streams => 4,
        PoolMode::Multiplex => 1,
    }
}
