//! The admin HTTP server: `/ready`, `/config_dump`, `/clusters`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::AdminState;

pub(crate) async fn serve(
    socket: TcpListener,
    state: Arc<AdminState>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = socket.accept() => a,
            _ = shutdown.changed() => {
                // Not ready any more: load balancers in front should stop sending.
                state.ready.store(false, Ordering::Release);
                continue;
            }
        };
        let Ok((stream, _)) = accepted else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(respond(&state, &req)) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        "/ready" => {
            if state.ready.load(Ordering::Acquire) {
                text(StatusCode::OK, "LIVE\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "DRAINING\n")
            }
        }
        "/config_dump" => json_response(&state.config.dump),
        "/clusters" => json_response(&clusters_json(state)),
        "/listeners" => json_response(&json!(
            state
                .listeners
                .iter()
                .map(|(name, addr)| json!({ "name": name, "address": addr.to_string() }))
                .collect::<Vec<_>>()
        )),
        _ => text(
            StatusCode::NOT_FOUND,
            "paths: /ready /config_dump /clusters /listeners\n",
        ),
    }
}

fn clusters_json(state: &AdminState) -> serde_json::Value {
    let mut clusters: Vec<(usize, &Arc<strait_upstream::Cluster>)> =
        state.clusters.iter().enumerate().collect();
    clusters.sort_by(|a, b| a.1.name().cmp(b.1.name()));
    json!({
        "clusters": clusters.iter().map(|(index, cluster)| {
            let s = cluster.snapshot();
            // HTTP clusters' connections live in the proxy's HTTP pools.
            let http_open = state
                .http_pools
                .get(*index)
                .and_then(Option::as_ref)
                .map(|p| p.open_connections());
            let outcomes: serde_json::Map<String, serde_json::Value> = s
                .outcomes
                .iter()
                .map(|(name, n)| (name.to_string(), json!(n)))
                .collect();
            json!({
                "name": s.name,
                "in_flight": s.in_flight,
                "outcomes": outcomes,
                "hosts": s.hosts.iter().enumerate().map(|(i, h)| json!({
                    "address": h.addr.to_string(),
                    "weight": h.weight,
                    "available": h.available,
                    "in_flight": h.in_flight,
                    "connections": http_open
                        .as_ref()
                        .and_then(|open| open.get(i).copied())
                        .unwrap_or(h.connections),
                    "requests": h.requests,
                    "failures": h.failures,
                    "connect_failures": h.connect_failures,
                    "unknown_responses": h.unknown_responses,
                })).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>()
    })
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp
}

fn json_response(value: &serde_json::Value) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec_pretty(value).unwrap_or_default();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}
