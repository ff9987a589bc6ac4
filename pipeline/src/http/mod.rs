//! HTTP/1.1, HTTP/2 and gRPC through the same router, clusters and timeouts as the
//! framed protocols.
//!
//! The HTTP wire work (server connections, client connections, header preparation,
//! error answers) lives in `strait-codec-http`; this module is the glue: a request head
//! is routed by the same [`RouteTable`] as a Bolt frame (through its `Frame` view), the
//! route's cluster picks a host with the same load balancer and health state, and a
//! proxy failure becomes the request's own protocol answer (HTTP status, or a gRPC
//! status in a trailers-only response).

mod finish;
mod replay;

use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, Version};
use strait_codec_framework::{Frame, Outcome, ProxyFailure, RequestView, ResponseClass};
use strait_codec_http::{
    ConnectionInfo, RequestHead, classify_grpc_status, classify_http_status, direct_response,
    failure_response, grpc_status, is_upgrade_request, prepare_downstream_response,
    prepare_upstream_request, redirect, strip_port,
};
use strait_router::{HeaderSink, RouteTarget, StatusSpace};
use strait_stream::http::{Body, Handler, HandlerFuture, OnUpgrade, ReceivedBytes};
use strait_stream::{Moment, RequestContext, RequestEnd};
use strait_upstream::{Exchange, SendFailure};
use tokio::time::Instant;

use self::finish::{Finishing, Pending};
use self::replay::Replay;
use crate::core::{ListenerPipeline, effective_timeout};
use crate::slot::ListenerSlot;

/// Answers the HTTP requests of one listener (one shared value: a request clones one
/// reference to its listener's current entry, and ends on it whatever reloads happen
/// meanwhile).
pub struct HttpForwarder(Arc<ListenerSlot>);

impl HttpForwarder {
    /// The handler of the HTTP connections of the listener in `slot`.
    pub fn new(slot: Arc<ListenerSlot>) -> Self {
        HttpForwarder(slot)
    }
}

impl Handler for HttpForwarder {
    fn call(&self, request: Request<Body>, conn: ConnectionInfo) -> HandlerFuture {
        let fwd = self.0.current();
        // Everything up to the send runs here, outside the future: its state (the
        // request as received, the route's edits) would otherwise size the future, and
        // the future is allocated and copied once per request.
        match start(&fwd, request, &conn) {
            Start::Answered(response) => Box::pin(std::future::ready(response)),
            Start::Send(plan) => Box::pin(forward(fwd, plan)),
        }
    }

    fn rejected(&self, status: StatusCode, _conn: &ConnectionInfo) {
        // The engine answered a malformed request itself: it is a request that failed
        // like any other, and ends at the same place.
        let now = Moment::now();
        let ctx = RequestContext::new(now, 0);
        let end = RequestEnd {
            outcome: Outcome::Failed(ProxyFailure::CodecError),
            status: Some(u32::from(status.as_u16())),
            response_bytes: 0,
            at: now.nanos,
        };
        self.0.current().finish("http1", &ctx, end, None);
    }
}

/// One HTTP request on its way: where it ends.
struct Exchanging<'a> {
    fwd: &'a ListenerPipeline,
    protocol: &'static str,
    grpc: bool,
    /// The request's view, when a hook wants one.
    view: Option<Box<RequestView>>,
}

impl Exchanging<'_> {
    /// Ends the request with `outcome`, answered by `response`, and returns it.
    fn end(
        &mut self,
        ctx: &RequestContext,
        outcome: Outcome,
        response: Response<Body>,
    ) -> Response<Body> {
        let status = if self.grpc {
            grpc_status(response.headers())
        } else {
            Some(u32::from(response.status().as_u16()))
        };
        let end = RequestEnd {
            outcome,
            status,
            // A local answer's body is one buffer of known length.
            response_bytes: http_body::Body::size_hint(response.body())
                .exact()
                .unwrap_or(0),
            at: Moment::now().nanos,
        };
        self.fwd
            .finish(self.protocol, ctx, end, self.view.take().as_deref());
        response
    }

    fn fail(
        &mut self,
        ctx: &RequestContext,
        failure: ProxyFailure,
        detail: &str,
    ) -> Response<Body> {
        self.end(
            ctx,
            Outcome::Failed(failure),
            failure_answer(self.grpc, failure, detail),
        )
    }
}

/// Where [`start`] left a request.
enum Start {
    /// Answered here (no route, a redirect, a direct response, no HTTP cluster); the
    /// request has ended.
    Answered(Response<Body>),
    /// Routed to a cluster, its upstream request ready.
    Send(Plan),
}

/// A request routed to a cluster: what waiting for its answer needs, owned, so the
/// future that waits holds nothing else.
struct Plan {
    ctx: RequestContext,
    body_bytes: Option<ReceivedBytes>,
    protocol: &'static str,
    grpc: bool,
    view: Option<Box<RequestView>>,
    request: Box<Request<Body>>,
    hash: Option<u64>,
    /// The request's deadline: from the decoded head, connect included, as for
    /// framed RPC; no retry extends it.
    deadline: Instant,
    /// The route's retry policy and the recording of the request to send again.
    retry: Option<Box<Retrying>>,
    downstream_upgrade: Option<OnUpgrade>,
    /// The downstream connection's HTTP version.
    version: Version,
}

/// A request that may be tried again: its route's policy, and its recording.
struct Retrying {
    policy: Arc<strait_router::RetryPolicy>,
    replay: Replay,
}

/// Routes a request and prepares what goes upstream, or answers it here.
fn start(fwd: &ListenerPipeline, request: Request<Body>, conn: &ConnectionInfo) -> Start {
    let (parts, mut body) = request.into_parts();
    // An HTTP/2 head arrives compressed: its size is the decoded fields' bytes, summed
    // only when a hook will read it.
    let head_bytes = match conn.version() {
        Version::HTTP_2 if fwd.records() => decoded_head_bytes(&parts),
        Version::HTTP_2 => 0,
        _ => conn.request_head_bytes(),
    };
    let mut ctx = RequestContext::new(Moment::now(), head_bytes);
    // Body bytes are read as the upstream consumes them: counted at the request's end,
    // for the hooks (an HTTP/2 body's counter is an allocation: none without hooks).
    let body_bytes = match &mut body {
        Body::H1(body) => Some(body.received_bytes()),
        Body::H2(body) if fwd.records() => Some(body.received_bytes()),
        _ => None,
    };
    let mut head = RequestHead::new(parts, conn.peer(), conn.scheme());
    let grpc = head.is_grpc();
    let protocol = match (grpc, conn.version()) {
        (true, _) => "grpc",
        (false, Version::HTTP_2) => "http2",
        (false, _) => "http1",
    };
    let view = fwd.start(&mut head, Some(conn.peer()));
    let mut at = Exchanging {
        fwd,
        protocol,
        grpc,
        view,
    };
    // Virtual hosts match the host without its port (Envoy's `strip_any_host_port`).
    let decision = fwd.routes.route(head.authority().map(strip_port), &head);
    let Some(decision) = decision else {
        let answer = failure_response(head.parts(), ProxyFailure::NoRoute, "");
        return Start::Answered(at.end(&ctx, Outcome::Failed(ProxyFailure::NoRoute), answer));
    };
    ctx.route = decision.route_index();
    let cluster = match &decision.target {
        RouteTarget::Cluster(name) => *name,
        RouteTarget::Redirect { status, location } => {
            let answer = match (
                StatusCode::from_u16(*status),
                HeaderValue::from_str(location),
            ) {
                (Ok(status), Ok(location)) => redirect(status, location),
                _ => failure_response(head.parts(), ProxyFailure::NoRoute, "invalid redirect"),
            };
            return Start::Answered(at.end(&ctx, Outcome::Local, answer));
        }
        RouteTarget::DirectResponse { status, body } => {
            let status = u16::try_from(*status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok());
            return Start::Answered(match status {
                Some(status) => {
                    let answer = direct_response(status, body.unwrap_or("").to_owned());
                    at.end(&ctx, Outcome::Local, answer)
                }
                None => {
                    let detail = "direct response status is not an HTTP status";
                    let answer = failure_response(head.parts(), ProxyFailure::NoRoute, detail);
                    at.end(&ctx, Outcome::Failed(ProxyFailure::NoRoute), answer)
                }
            });
        }
    };
    let found = fwd.cluster(&mut ctx, cluster);
    let found = found.and_then(|c| Some((c, c.message_version()?)));
    let Some((cluster, upstream_version)) = found else {
        // The config only lets HTTP listeners reach HTTP clusters; an `auto` listener
        // may still route an HTTP request to a cluster of another protocol.
        let failure = ProxyFailure::NoHealthyUpstream;
        let detail = "the route's cluster does not speak HTTP";
        let answer = failure_response(head.parts(), failure, detail);
        return Start::Answered(at.end(&ctx, Outcome::Failed(failure), answer));
    };

    if let Some(path_and_query) = decision.path_rewrite(&head) {
        set_path_and_query(&mut head.parts_mut().uri, &path_and_query);
    }
    if let Some(host) = decision.host_rewrite() {
        head.set_header("host", host);
    }
    // The caller's own deadline as it sent it (`grpc-timeout`: gRPC's alone), before the
    // route edits what goes upstream (a removed `grpc-timeout` still bounds this
    // request). Also the bound on waiting for the response head: bodies then stream for
    // as long as both sides keep them going.
    let caller_timeout = if grpc { head.timeout() } else { None };
    let timeout = effective_timeout(decision.timeout(), caller_timeout);
    let hash = cluster.request_hash(&head);
    decision.apply_request_headers(&mut head);

    let mut parts = head.into_parts();
    // An HTTP/1.1 upgrade (WebSocket...) is tunnelled once both sides said 101. The
    // server marks a request that asks for one (an `OnUpgrade` in its extensions): the
    // fields are read only then.
    let downstream_upgrade = if conn.version() != Version::HTTP_2
        && parts.extensions.get::<OnUpgrade>().is_some()
        && is_upgrade_request(&parts.headers)
    {
        strait_stream::http::upgrade::on(&mut parts)
    } else {
        None
    };
    prepare_upstream_request(&mut parts, conn, upstream_version);
    let request = Request::from_parts(parts, body);
    // A request is tried again after it went out only if it can be sent whole again:
    // its body (if any) is recorded as it streams, within a bound, and an upgrade is
    // never retried. Before it went out, the pool retries it on another host whatever
    // the policy.
    let (request, retry) = match decision.retry_policy() {
        Some(policy) if downstream_upgrade.is_none() => {
            let (request, replay) = Replay::record(request);
            let policy = policy.clone();
            (request, Some(Box::new(Retrying { policy, replay })))
        }
        _ => (request, None),
    };
    Start::Send(Plan {
        deadline: ctx.start + timeout,
        ctx,
        body_bytes,
        protocol,
        grpc,
        view: at.view.take(),
        request: Box::new(request),
        hash,
        retry,
        downstream_upgrade,
        version: conn.version(),
    })
}

/// Sends a routed request through its cluster's pool and answers with the upstream's
/// response (or the failure's, in the request's own protocol).
async fn forward(fwd: Arc<ListenerPipeline>, plan: Plan) -> Response<Body> {
    let Plan {
        mut ctx,
        body_bytes,
        protocol,
        grpc,
        view,
        request,
        hash,
        deadline,
        retry,
        downstream_upgrade,
        version,
    } = plan;
    let mut at = Exchanging {
        fwd: &fwd,
        protocol,
        grpc,
        view,
    };
    // `start` found it by this number.
    let Some(cluster) = fwd.routed_cluster(&ctx) else {
        let failure = ProxyFailure::NoHealthyUpstream;
        return at.fail(&ctx, failure, "the route's cluster is gone");
    };
    let attempts = Attempts {
        fwd: &fwd,
        cluster,
        hash,
        deadline,
        retry: retry.as_deref(),
        grpc,
    };
    let exchange = match attempts
        .run(request, &mut ctx, at.view.as_deref_mut())
        .await
    {
        Ok(exchange) => exchange,
        Err((failure, detail)) => return at.fail(&ctx, failure, &detail),
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
        && let Some(upstream) = strait_stream::http::upgrade::on(&mut response)
    {
        tokio::spawn(async move {
            if let Err(error) = strait_stream::http::tunnel(downstream, upstream).await {
                tracing::debug!(%error, "upgraded connection ended");
            }
        });
    }
    // A gRPC status in the head is a trailers-only answer; otherwise the HTTP status
    // classes it until trailers (read as the body ends) say otherwise.
    // Looked up only for gRPC: a lookup by name hashes it.
    let head_grpc_status = if grpc {
        grpc_status(response.headers())
    } else {
        None
    };
    let (class, status) = match head_grpc_status {
        Some(code) => (classify_grpc_status(code), Some(code)),
        None => {
            let status = response.status().as_u16();
            (
                classify_http_status(status),
                (!grpc).then_some(u32::from(status)),
            )
        }
    };
    let (mut parts, body) = response.into_parts();
    prepare_downstream_response(&mut parts, version);
    if let Some((_, route)) = fwd.routes.route_at(ctx.route) {
        route.apply_response_headers(&mut HeaderMapSink(&mut parts.headers));
    }
    // The request ends with its body (bytes counted, gRPC trailers read); the body
    // takes this request's reference to its listener's entry.
    let view = at.view.take();
    let pending = Pending {
        fwd,
        ctx,
        protocol,
        grpc,
        outcome: Outcome::Upstream(class),
        status,
        sent: 0,
        body_bytes,
        view,
    };
    Response::from_parts(parts, Body::boxed(Finishing::new(body, pending)))
}

/// The attempts of one HTTP request: each through the cluster's pool, each bounded by
/// the policy's `per_try_timeout` within the request's deadline, retried while the
/// route's policy, the deadline and the cluster's retry admission allow.
struct Attempts<'a> {
    fwd: &'a ListenerPipeline,
    cluster: &'a Arc<strait_upstream::Cluster>,
    hash: Option<u64>,
    deadline: Instant,
    retry: Option<&'a Retrying>,
    grpc: bool,
}

impl Attempts<'_> {
    async fn run(
        &self,
        mut request: Box<Request<Body>>,
        ctx: &mut RequestContext,
        mut view: Option<&mut RequestView>,
    ) -> Result<Exchange, (ProxyFailure, String)> {
        loop {
            let per_try = self.retry.and_then(|r| r.policy.per_try_timeout);
            let attempt_deadline =
                per_try.map_or(self.deadline, |t| (Instant::now() + t).min(self.deadline));
            // The pool bounds the attempt by its deadline (a timeout is a `SendFailure`):
            // an HTTP/1.1 connection keeps one timer for all its exchanges.
            let sending = self.cluster.send(request, ctx, self.hash, attempt_deadline);
            let (outcome, status, result) = match sending.await {
                Ok(exchange) => {
                    let (class, status) = self.classify(&exchange.response);
                    if class == ResponseClass::Success {
                        return Ok(exchange);
                    }
                    (Outcome::Upstream(class), status, Ok(exchange))
                }
                Err(SendFailure { failure, detail }) => {
                    (Outcome::Failed(failure), None, Err((failure, detail)))
                }
            };
            let Some(retrying) = self.retry else {
                return result;
            };
            let space = if self.grpc {
                StatusSpace::Grpc
            } else {
                StatusSpace::Http
            };
            let Some((policy, cluster)) = self.fwd.retry_plan(ctx, outcome, status, space) else {
                return result;
            };
            // Only a request whose body went out whole can go again.
            let Some(again) = retrying.replay.request() else {
                return result;
            };
            let failed = *ctx;
            let Some(back_off) =
                ListenerPipeline::next_attempt(policy, cluster, ctx, outcome, self.deadline)
            else {
                return result;
            };
            let mut again = again;
            self.fwd
                .attempt_failed(&failed, outcome, view.as_deref_mut(), &mut |name, value| {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(name.as_bytes()),
                        HeaderValue::from_str(value),
                    ) {
                        again.headers_mut().insert(name, value);
                    }
                });
            // A response not taken: its connection is given up with its unread body.
            drop(result);
            tokio::time::sleep(back_off).await;
            request = Box::new(again);
        }
    }

    /// An answer's class, and its status (gRPC: only a trailers-only answer has one
    /// before its body).
    fn classify(&self, response: &Response<Body>) -> (ResponseClass, Option<u32>) {
        let head_status = if self.grpc {
            grpc_status(response.headers())
        } else {
            None
        };
        match head_status {
            Some(code) => (classify_grpc_status(code), Some(code)),
            None if self.grpc => (classify_http_status(response.status().as_u16()), None),
            None => {
                let status = response.status().as_u16();
                (classify_http_status(status), Some(u32::from(status)))
            }
        }
    }
}

/// The bytes of a decoded HTTP/2 request head: method, path, authority and every
/// field's name and value.
fn decoded_head_bytes(parts: &http::request::Parts) -> u64 {
    let fields: usize = parts
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    let pseudo = parts.method.as_str().len()
        + parts.uri.path_and_query().map_or(0, |p| p.as_str().len())
        + parts.uri.authority().map_or(0, |a| a.as_str().len());
    (fields + pseudo) as u64
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
