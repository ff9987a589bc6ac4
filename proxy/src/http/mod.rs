//! HTTP/1.1, HTTP/2 and gRPC through the same router, clusters and timeouts as the
//! framed protocols.
//!
//! The HTTP wire work (server connections, client connections, header preparation,
//! error answers) lives in `strait-codec-http`; this module is the glue: a request head
//! is routed by the same [`RouteTable`] as a Bolt frame (through its `Frame` view), the
//! route's cluster picks a host with the same load balancer and health state, and a
//! proxy failure becomes the request's own protocol answer (HTTP status, or a gRPC
//! status in a trailers-only response).

pub(crate) mod pool;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, Version};
use hyper::upgrade::OnUpgrade;
use strait_codec_framework::{Frame, ProxyFailure};
use strait_codec_http::{
    Body, Handler, HandlerFuture, RequestContext, RequestHead, direct_response, failure_response,
    is_upgrade_request, prepare_downstream_response, prepare_upstream_request, redirect,
    strip_port,
};
use strait_router::{HeaderSink, RouteTable, RouteTarget};

use self::pool::{Exchange, HttpPool, SendFailure};
use crate::forward::{NameHasher, effective_timeout};

/// The HTTP pools of one configuration snapshot, by cluster name.
pub(crate) type HttpPools = HashMap<String, Arc<HttpPool>, BuildHasherDefault<NameHasher>>;

/// Answers the HTTP requests of one listener.
pub(crate) struct HttpForwarder {
    pub(crate) routes: Arc<RouteTable>,
    pub(crate) pools: Arc<HttpPools>,
}

impl Handler for HttpForwarder {
    fn call(&self, request: Request<Body>, ctx: RequestContext) -> HandlerFuture {
        Box::pin(forward(
            self.routes.clone(),
            self.pools.clone(),
            request,
            ctx,
        ))
    }
}

async fn forward(
    routes: Arc<RouteTable>,
    pools: Arc<HttpPools>,
    request: Request<Body>,
    ctx: RequestContext,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let mut head = RequestHead::new(parts, ctx.peer(), ctx.scheme());
    // Virtual hosts match the host without its port (Envoy's `strip_any_host_port`).
    let decision = routes.route(head.authority().map(strip_port), &head);
    let Some(decision) = decision else {
        return failure_response(head.parts(), ProxyFailure::NoRoute, "");
    };
    let cluster = match &decision.target {
        RouteTarget::Cluster(name) => *name,
        RouteTarget::Redirect { status, location } => {
            return match (
                StatusCode::from_u16(*status),
                HeaderValue::from_str(location),
            ) {
                (Ok(status), Ok(location)) => redirect(status, location),
                _ => failure_response(head.parts(), ProxyFailure::NoRoute, "invalid redirect"),
            };
        }
        RouteTarget::DirectResponse { status, body } => {
            let status = u16::try_from(*status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok());
            return match status {
                Some(status) => direct_response(status, body.unwrap_or("").to_owned()),
                None => failure_response(
                    head.parts(),
                    ProxyFailure::NoRoute,
                    "direct response status is not an HTTP status",
                ),
            };
        }
    };
    let Some(pool) = pools.get(cluster) else {
        // The config only lets HTTP listeners reach HTTP clusters; an `auto` listener
        // may still route an HTTP request to a cluster of another protocol.
        return failure_response(
            head.parts(),
            ProxyFailure::NoHealthyUpstream,
            "the route's cluster does not speak HTTP",
        );
    };

    if let Some(path_and_query) = decision.path_rewrite(&head) {
        set_path_and_query(&mut head.parts_mut().uri, &path_and_query);
    }
    if let Some(host) = decision.host_rewrite() {
        head.set_header("host", host);
    }
    decision.apply_request_headers(&mut head);
    // Also the bound on waiting for the response head: bodies then stream for as long
    // as both sides keep them going.
    let timeout = effective_timeout(decision.timeout(), head.timeout());
    let grpc = head.is_grpc();

    let mut parts = head.into_parts();
    // An HTTP/1.1 upgrade (WebSocket...) is tunnelled once both sides said 101.
    let downstream_upgrade =
        if ctx.version() != Version::HTTP_2 && is_upgrade_request(&parts.headers) {
            parts.extensions.remove::<OnUpgrade>()
        } else {
            None
        };
    prepare_upstream_request(&mut parts, &ctx, pool.version().http());
    let request = Request::from_parts(parts, body);

    let exchange = match tokio::time::timeout(timeout, pool.send(request)).await {
        Ok(Ok(exchange)) => exchange,
        Ok(Err(SendFailure { failure, detail })) => return failure_answer(grpc, failure, &detail),
        Err(_) => return failure_answer(grpc, ProxyFailure::Timeout, ""),
    };
    let Exchange {
        mut response,
        guard,
    } = exchange;
    // The request stops counting as in flight once its response head is here; the
    // body streams at the pace of the downstream reader.
    drop(guard);
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(downstream) = downstream_upgrade
    {
        let upstream = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let Err(error) = strait_codec_http::tunnel(downstream, upstream).await {
                tracing::debug!(%error, "upgraded connection ended");
            }
        });
    }
    let (mut parts, body) = response.into_parts();
    prepare_downstream_response(&mut parts, ctx.version());
    decision.apply_response_headers(&mut HeaderMapSink(&mut parts.headers));
    Response::from_parts(parts, body)
}

/// A failure answer once the request head has been handed upstream: only whether it
/// was gRPC still matters for the shape of the answer.
fn failure_answer(grpc: bool, failure: ProxyFailure, detail: &str) -> Response<Body> {
    let (mut parts, ()) = Request::new(()).into_parts();
    if grpc {
        parts
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    }
    failure_response(&parts, failure, detail)
}

/// Replaces the path and query of `uri`, keeping its scheme and authority.
fn set_path_and_query(uri: &mut Uri, path_and_query: &str) {
    let Ok(pq) = PathAndQuery::try_from(path_and_query) else {
        tracing::debug!(path_and_query, "rewritten path is not a valid URI path");
        return;
    };
    let mut parts = std::mem::take(uri).into_parts();
    parts.path_and_query = Some(pq);
    // Scheme and authority come from a valid URI, and a path is now set: valid.
    *uri = Uri::from_parts(parts).unwrap_or_default();
}

/// Lets the router apply a route's response header lists to an HTTP response.
struct HeaderMapSink<'a>(&'a mut HeaderMap);

impl HeaderSink for HeaderMapSink<'_> {
    fn set(&mut self, name: &str, value: &str) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            self.0.insert(name, value);
        }
    }

    fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rewrite_keeps_authority() {
        let mut uri: Uri = "http://example.com/a/b?x=1".parse().unwrap();
        set_path_and_query(&mut uri, "/c/b?x=1");
        assert_eq!(uri.to_string(), "http://example.com/c/b?x=1");
        let mut origin: Uri = "/a".parse().unwrap();
        set_path_and_query(&mut origin, "/z?q");
        assert_eq!(origin.to_string(), "/z?q");
    }

    #[test]
    fn grpc_failures_after_forwarding_stay_grpc() {
        let response = failure_answer(true, ProxyFailure::Timeout, "");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "4");
        let response = failure_answer(false, ProxyFailure::Timeout, "");
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    }
}
