//! The admin HTTP server: `/ready`, `/metrics` (Prometheus text), `/stats` (the same
//! values as JSON), `/config_dump` (YAML, or JSON with `?format=json`), `/clusters`,
//! `/listeners`; `POST /logging?level=` to change the log filter at run time, and
//! `POST /healthcheck/fail` and `/healthcheck/ok`, which take the instance out of (and
//! back into) a load balancer's rotation through `/ready` before a restart.

mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;
use strait_codec_http::ConnectionInfo;
use strait_stream::http::{Body, Handler, HandlerFuture, ServerOptions, serve_connection};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::AdminState;
use strait_upstream::Breaker;

/// Serves the admin paths on Strait's own HTTP/1.1 engine (the same driver as traffic).
pub(crate) async fn serve(
    socket: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let handler: Arc<dyn Handler> = Arc::new(Admin(state.clone()));
    let options = Arc::new(ServerOptions {
        // Plain HTTP/1.1 is all the admin speaks.
        h2c_upgrade: false,
        ..ServerOptions::default()
    });
    // The admin keeps answering while the proxy drains (`/ready` says DRAINING): its
    // connections do not follow the traffic's shutdown signal.
    let (_never, admin_shutdown) = watch::channel(false);
    loop {
        let accepted = tokio::select! {
            a = socket.accept() => a,
            _ = shutdown.changed() => {
                // Not ready any more: load balancers in front should stop sending.
                state.ready.store(false, Ordering::Release);
                continue;
            }
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let handler = handler.clone();
        let options = options.clone();
        let conn_shutdown = admin_shutdown.clone();
        tokio::spawn(serve_one(stream, peer, handler, options, conn_shutdown));
    }
}

async fn serve_one(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    handler: Arc<dyn Handler>,
    options: Arc<ServerOptions>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = serve_connection(stream, Bytes::new(), peer, handler, options, shutdown).await;
}

struct Admin(Arc<AdminState>);

impl Handler for Admin {
    fn call(&self, request: Request<Body>, _ctx: ConnectionInfo) -> HandlerFuture {
        if request.method() == Method::POST && request.uri().path() == "/reload" {
            let core = self.0.core.clone();
            return Box::pin(async move {
                match core.reload().await {
                    Ok(version) => owned_text(
                        StatusCode::OK,
                        format!("reloaded: configuration version {version} in force\n"),
                    ),
                    Err(error) => owned_text(
                        StatusCode::BAD_REQUEST,
                        format!("reload refused, the running configuration stays: {error}\n"),
                    ),
                }
            });
        }
        let response = respond(&self.0, &request);
        Box::pin(std::future::ready(response))
    }
}

fn respond(state: &AdminState, req: &Request<Body>) -> Response<Body> {
    let path = req.uri().path();
    if req.method() == Method::POST {
        return match path {
            "/healthcheck/fail" => {
                state.health_failed.store(true, Ordering::Release);
                tracing::warn!("/ready now answers 503: POST /healthcheck/ok to undo");
                text(
                    StatusCode::OK,
                    "OK: /ready answers 503 until POST /healthcheck/ok\n",
                )
            }
            "/healthcheck/ok" => {
                state.health_failed.store(false, Ordering::Release);
                tracing::info!("/ready answers again as the proxy's state says");
                text(StatusCode::OK, "OK\n")
            }
            "/logging" => set_log_level(req.uri().query()),
            _ => text(
                StatusCode::NOT_FOUND,
                "POST paths: /reload /logging?level= /healthcheck/fail /healthcheck/ok\n",
            ),
        };
    }
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and POST\n");
    }
    match path {
        "/ready" => {
            if !state.ready.load(Ordering::Acquire) {
                text(StatusCode::SERVICE_UNAVAILABLE, "DRAINING\n")
            } else if state.health_failed.load(Ordering::Acquire) {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "FAILED (POST /healthcheck/fail)\n",
                )
            } else {
                text(StatusCode::OK, "LIVE\n")
            }
        }
        "/config_dump" => {
            let snapshot = state.core.snapshot();
            let loaded = timestamp(snapshot.loaded_at);
            let mut resp = if req.uri().query() == Some("format=json") {
                json_response(&snapshot.config.dump)
            } else {
                // A comment: fed back to `strait --validate`, the dump is the same
                // configuration.
                let head = format!(
                    "# configuration version {}, in force since {loaded}\n",
                    snapshot.version
                );
                yaml_response(&snapshot.config.dump, &head)
            };
            let headers = resp.headers_mut();
            headers.insert(
                "x-strait-config-version",
                HeaderValue::from(snapshot.version),
            );
            if let Ok(value) = HeaderValue::from_str(&loaded) {
                headers.insert("x-strait-config-loaded-at", value);
            }
            resp
        }
        "/clusters" => json_response(&clusters_json(&state.core.snapshot())),
        "/metrics" => {
            let body = metrics::exposition(state).to_prometheus_text();
            let mut resp = Response::new(Body::full(body.into_bytes()));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(strait_telemetry::PROMETHEUS_CONTENT_TYPE),
            );
            resp
        }
        "/stats" => json_response(&metrics::exposition(state).to_json()),
        "/listeners" => json_response(&json!(
            state
                .core
                .snapshot()
                .listeners
                .iter()
                .map(|(name, addr)| json!({ "name": name, "address": addr.to_string() }))
                .collect::<Vec<_>>()
        )),
        _ => text(
            StatusCode::NOT_FOUND,
            "paths: /ready /metrics /stats /config_dump /clusters /listeners; POST /reload /logging?level= /healthcheck/fail /healthcheck/ok\n",
        ),
    }
}

/// `POST /logging?level=FILTER`: replaces the log filter (`debug`, `warn`,
/// `info,strait_upstream=debug`: the syntax of `RUST_LOG`).
fn set_log_level(query: Option<&str>) -> Response<Body> {
    let level = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("level="));
    let Some(level) = level.filter(|l| !l.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "usage: POST /logging?level=LEVEL (trace, debug, info, warn, error, or a RUST_LOG filter)\n",
        );
    };
    let level = percent_decode(level);
    match crate::run::set_log_filter(&level) {
        Ok(()) => {
            tracing::info!(filter = %level, "log filter changed");
            owned_text(StatusCode::OK, format!("log filter is now {level}\n"))
        }
        Err(error) => owned_text(StatusCode::BAD_REQUEST, format!("{error}\n")),
    }
}

/// `%XX` escapes and `+` in a query value (a filter such as `info,strait=debug`
/// arrives as `info%2Cstrait%3Ddebug` from some clients).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A wall-clock time as RFC 3339 UTC (`2026-12-02T09:30:00Z`).
fn timestamp(at: std::time::SystemTime) -> String {
    strait_codec_framework::rfc3339(at, false)
}

fn clusters_json(state: &crate::server::Snapshot) -> serde_json::Value {
    let mut clusters: Vec<&Arc<strait_upstream::Cluster>> = state.clusters.iter().collect();
    clusters.sort_by(|a, b| a.name().cmp(b.name()));
    json!({
        "clusters": clusters.iter().map(|cluster| {
            let s = cluster.snapshot();
            let outcomes: serde_json::Map<String, serde_json::Value> = s
                .outcomes
                .iter()
                .map(|(name, n)| (name.to_string(), json!(n)))
                .collect();
            let b = &s.breakers;
            let overflows: serde_json::Map<String, serde_json::Value> = Breaker::ALL
                .iter()
                .zip(b.overflows)
                .map(|(breaker, n)| (breaker.as_str().to_string(), json!(n)))
                .collect();
            json!({
                "name": s.name,
                "in_flight": s.in_flight,
                "outcomes": outcomes,
                "health_check": s.health_check,
                "panic": s.panic,
                "circuit_breakers": {
                    "max_connections": b.limits.max_connections,
                    "max_pending_requests": b.limits.max_pending_requests,
                    "max_requests": b.limits.max_requests,
                    "max_retries": b.limits.max_retries,
                    "connections": b.connections,
                    "pending": b.pending,
                    "retries": b.retries,
                    "retried": b.retried,
                    "overflows": overflows,
                },
                "hosts": s.hosts.iter().map(|h| json!({
                    "address": h.addr.to_string(),
                    "weight": h.weight,
                    "effective_weight": h.health.effective_weight,
                    "available": h.available,
                    "removed": h.removed,
                    "healthy": h.health.healthy,
                    "health_check": h.health.check.map(|verdict| json!({
                        "status": verdict,
                        "failure": h.health.check_failure,
                        "failing_since": h.health.check_failing_since.map(timestamp),
                    })),
                    "ejection": h.health.ejected.map(|reason| json!({
                        "reason": reason.as_str(),
                        "since": h.health.ejected_since.map(timestamp),
                        "remaining_seconds": h.health.ejected_for.map(|d| d.as_secs_f64()),
                    })),
                    "ejections": h.health.ejections,
                    "in_flight": h.in_flight,
                    "connections": h.connections,
                    "requests": h.requests,
                    "failures": h.failures,
                    "connect_failures": h.connect_failures,
                    "unknown_responses": h.unknown_responses,
                })).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>()
    })
}

fn owned_text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::full(body.into_bytes()));
    *resp.status_mut() = status;
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp
}

/// The value in the configuration file's own syntax.
fn yaml_response(value: &serde_json::Value, head: &str) -> Response<Body> {
    let Ok(body) = serde_saphyr::to_string(value) else {
        // A JSON value always has a YAML form; answer JSON rather than nothing.
        return json_response(value);
    };
    let mut resp = Response::new(Body::full(format!("{head}{body}").into_bytes()));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/yaml"),
    );
    resp
}

fn json_response(value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut resp = Response::new(Body::full(body));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(percent_decode("info%2Cstrait%3Ddebug"), "info,strait=debug");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
