use std::time::Duration;

use strait_codec_framework::Frame;

use crate::path::{PathKind, push_query, rewrite_prefix};
use crate::redirect::check_prefix_rewrite;
use crate::{RouteAction, RouteError, RouteMatch, VirtualHost, var};

/// One entry of a virtual host's ordered route list.
#[derive(Debug, Clone)]
pub struct Route {
    /// Optional name, used in logs and metric labels.
    pub name: Option<String>,
    /// The conditions a request must meet.
    pub matcher: RouteMatch,
    /// What to do with a matching request.
    pub action: RouteAction,
    /// Upstream deadline for the request; `None` leaves the frame's or the cluster's own.
    pub timeout: Option<Duration>,
    /// When and how a failed attempt is tried again.
    pub retry_policy: Option<std::sync::Arc<crate::RetryPolicy>>,
    /// Headers set on the request before it is forwarded (replacing existing values).
    pub request_headers_to_add: Vec<(String, String)>,
    /// Headers removed from the request before it is forwarded.
    pub request_headers_to_remove: Vec<String>,
    /// Replacement for the part of the path the `path`/`prefix` condition matched, applied
    /// to a forwarded request (see [`RouteDecision::path_rewrite`]).
    pub prefix_rewrite: Option<String>,
    /// Replacement authority (Host / `:authority`) of a forwarded request.
    pub host_rewrite: Option<String>,
    /// Headers set on the response (replacing existing values), see
    /// [`RouteDecision::apply_response_headers`].
    pub response_headers_to_add: Vec<(String, String)>,
    /// Headers removed from the response (before the additions).
    pub response_headers_to_remove: Vec<String>,
    /// Position in its table, counting every virtual host's routes in order; set by
    /// [`crate::RouteTable::new`]. Lets a request carry its route as a number.
    pub(crate) index: u32,
}

impl Route {
    /// A route with no name, no timeout, no rewrites and no header mutations.
    pub fn new(matcher: RouteMatch, action: RouteAction) -> Self {
        Route {
            name: None,
            matcher,
            action,
            timeout: None,
            retry_policy: None,
            request_headers_to_add: Vec::new(),
            request_headers_to_remove: Vec::new(),
            prefix_rewrite: None,
            host_rewrite: None,
            response_headers_to_add: Vec::new(),
            response_headers_to_remove: Vec::new(),
            index: 0,
        }
    }

    /// Sets the route's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the route's upstream timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds a header to set on matching requests.
    pub fn with_header_to_add(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request_headers_to_add
            .push((name.into(), value.into()));
        self
    }

    /// Adds a header to remove from matching requests.
    pub fn with_header_to_remove(mut self, name: impl Into<String>) -> Self {
        self.request_headers_to_remove.push(name.into());
        self
    }

    /// Replaces the matched path prefix of forwarded requests with `rewrite`. Rejects a
    /// value that cannot go into a path; whether the route has a prefix to replace is
    /// checked by [`Route::check`].
    pub fn with_prefix_rewrite(mut self, rewrite: &str) -> Result<Self, RouteError> {
        check_prefix_rewrite(rewrite)?;
        self.prefix_rewrite = Some(rewrite.to_string());
        Ok(self)
    }

    /// Replaces the authority of forwarded requests. Rejects an empty value and one with
    /// `/`, `?`, `#`, `@`, whitespace or control characters.
    pub fn with_host_rewrite(mut self, host: &str) -> Result<Self, RouteError> {
        if host.is_empty()
            || host
                .bytes()
                .any(|b| b"/?#@".contains(&b) || !b.is_ascii_graphic())
        {
            return Err(RouteError::BadHostRewrite(host.to_string()));
        }
        self.host_rewrite = Some(host.to_string());
        Ok(self)
    }

    /// Adds a header to set on the response.
    pub fn with_response_header_to_add(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.response_headers_to_add
            .push((name.into(), value.into()));
        self
    }

    /// Adds a header to remove from the response.
    pub fn with_response_header_to_remove(mut self, name: impl Into<String>) -> Self {
        self.response_headers_to_remove.push(name.into());
        self
    }

    /// Checks what depends on more than one part of the route: a prefix rewrite (of the
    /// route or of its redirect) needs a `path` or `prefix` condition to replace, and path
    /// and host rewrites need an action that forwards. [`crate::RouteTable::new`] runs it
    /// on every route.
    pub fn check(&self) -> Result<(), RouteError> {
        let redirect_rewrite = match &self.action {
            RouteAction::Redirect(r) => r.prefix_rewrite().is_some(),
            _ => false,
        };
        if self.prefix_rewrite.is_some() || redirect_rewrite {
            match self.matcher.path.as_ref().map(|p| p.kind()) {
                Some(PathKind::Exact(_) | PathKind::Prefix(_)) => {}
                Some(PathKind::Regex(_)) => return Err(RouteError::PrefixRewriteWithRegex),
                None => return Err(RouteError::PrefixRewriteWithoutPathMatch),
            }
        }
        let forwards = matches!(
            self.action,
            RouteAction::Cluster(_) | RouteAction::WeightedClusters(_)
        );
        if !forwards && (self.prefix_rewrite.is_some() || self.host_rewrite.is_some()) {
            return Err(RouteError::RewriteWithoutForward);
        }
        Ok(())
    }

    /// Whether `frame` satisfies this route's conditions.
    pub fn matches(&self, frame: &dyn Frame) -> bool {
        self.matcher.matches(frame)
    }

    /// Applies the route's header mutations to `frame`: removals first, then additions,
    /// so a route that both removes and adds a name ends up with its own value (the
    /// order Envoy uses too).
    pub fn apply_request_headers(&self, frame: &mut dyn Frame) {
        apply(
            frame,
            &self.request_headers_to_remove,
            &self.request_headers_to_add,
        );
    }

    /// Applies the route's response header mutations to `response`: removals first,
    /// then additions (each replacing the values the header had).
    pub fn apply_response_headers<S: HeaderSink + ?Sized>(&self, response: &mut S) {
        apply(
            response,
            &self.response_headers_to_remove,
            &self.response_headers_to_add,
        );
    }

    /// Where this route sends `frame`, `rng_value` choosing among weighted clusters (see
    /// [`crate::WeightedClusters::pick_cluster`]). Deterministic, for tests.
    pub fn target_with(&self, frame: &dyn Frame, rng_value: u64) -> RouteTarget<'_> {
        match &self.action {
            RouteAction::Cluster(name) => RouteTarget::Cluster(name),
            RouteAction::WeightedClusters(split) => {
                RouteTarget::Cluster(split.pick_cluster(rng_value))
            }
            RouteAction::DirectResponse { status, body } => RouteTarget::DirectResponse {
                status: *status,
                body: body.as_deref(),
            },
            RouteAction::Redirect(redirect) => RouteTarget::Redirect {
                status: redirect.response_code(),
                location: redirect.location(self.matcher.path.as_ref(), frame),
            },
        }
    }

    /// Where this route sends `frame`. A random number is only drawn when the action is a
    /// weighted split, and a location only built for a redirect, so plain routes pay
    /// nothing for either.
    pub fn target(&self, frame: &dyn Frame) -> RouteTarget<'_> {
        match &self.action {
            RouteAction::WeightedClusters(split) => {
                RouteTarget::Cluster(split.pick_cluster_random())
            }
            _ => self.target_with(frame, 0),
        }
    }
}

/// Something headers can be set on and removed from: every [`Frame`], or a wrapper a
/// protocol's glue puts around its own header map. It lets
/// [`RouteDecision::apply_response_headers`] work on a response the router never sees.
///
/// ```ignore
/// // The HTTP glue (orphan rule: a local newtype around the foreign map).
/// struct Headers<'a>(&'a mut http::HeaderMap);
/// impl strait_router::HeaderSink for Headers<'_> {
///     fn set(&mut self, name: &str, value: &str) {
///         if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name), http::HeaderValue::try_from(value)) {
///             self.0.insert(n, v);
///         }
///     }
///     fn remove(&mut self, name: &str) {
///         self.0.remove(name);
///     }
/// }
/// decision.apply_response_headers(&mut Headers(&mut response.headers));
/// ```
pub trait HeaderSink {
    /// Sets `name` to `value`, replacing every value it had.
    fn set(&mut self, name: &str, value: &str);
    /// Removes every value of `name`.
    fn remove(&mut self, name: &str);
}

impl<F: Frame + ?Sized> HeaderSink for F {
    fn set(&mut self, name: &str, value: &str) {
        self.set_header(name, value);
    }

    fn remove(&mut self, name: &str) {
        self.remove_header(name);
    }
}

/// Removals first, then additions.
fn apply<S: HeaderSink + ?Sized>(sink: &mut S, remove: &[String], add: &[(String, String)]) {
    for name in remove {
        sink.remove(name);
    }
    for (name, value) in add {
        sink.set(name, value);
    }
}

/// The resolved action of a routing decision: the weighted choice, if any, is made, and
/// a redirect's location is computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTarget<'a> {
    /// Forward to this cluster.
    Cluster(&'a str),
    /// Answer locally.
    DirectResponse {
        /// Status in the request protocol's numbering.
        status: u32,
        /// Optional body.
        body: Option<&'a str>,
    },
    /// Answer with an HTTP redirect.
    Redirect {
        /// 301, 302, 303, 307 or 308.
        status: u16,
        /// The `Location` header value (absolute, or a relative `/path?query` when the
        /// request had no authority and the redirect sets no host).
        location: String,
    },
}

/// The outcome of [`crate::RouteTable::route`]. It borrows the table, so a request that
/// holds it keeps using the configuration snapshot it started with.
///
/// For HTTP, the glue applies it to the request head as follows (the router itself never
/// names a protocol):
///
/// ```ignore
/// match &decision.target {
///     RouteTarget::Redirect { status, location } => { /* answer `status` with `Location: location` */ }
///     RouteTarget::DirectResponse { status, body } => { /* answer `status` with `body` */ }
///     RouteTarget::Cluster(name) => {
///         if let Some(path_and_query) = decision.path_rewrite(&head) {
///             parts.uri = /* the same URI with `path_and_query` */;
///         }
///         if let Some(host) = decision.host_rewrite() {
///             /* set `Host` (HTTP/1) or the URI authority (HTTP/2) to `host` */
///         }
///         decision.apply_request_headers(&mut head);
///         // ... later, on the response:
///         decision.apply_response_headers(&mut Headers(&mut response.headers));
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct RouteDecision<'a> {
    /// The selected virtual host (for metric labels and logs).
    pub virtual_host: &'a VirtualHost,
    /// The matched route.
    pub route: &'a Route,
    /// Where the request goes.
    pub target: RouteTarget<'a>,
}

impl<'a> RouteDecision<'a> {
    /// The chosen cluster, or `None` for a direct response or a redirect.
    pub fn cluster(&self) -> Option<&'a str> {
        match self.target {
            RouteTarget::Cluster(name) => Some(name),
            RouteTarget::DirectResponse { .. } | RouteTarget::Redirect { .. } => None,
        }
    }

    /// The route's name, if it has one.
    pub fn route_name(&self) -> Option<&'a str> {
        self.route.name.as_deref()
    }

    /// The route's position in its table ([`crate::RouteTable::route_at`]): a request
    /// carries this number to its end instead of a borrowed name.
    pub fn route_index(&self) -> u32 {
        self.route.index
    }

    /// The route's upstream timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.route.timeout
    }

    /// The route's retry policy.
    pub fn retry_policy(&self) -> Option<&'a std::sync::Arc<crate::RetryPolicy>> {
        self.route.retry_policy.as_ref()
    }

    /// Headers to set on the request.
    pub fn request_headers_to_add(&self) -> &'a [(String, String)] {
        &self.route.request_headers_to_add
    }

    /// Headers to remove from the request.
    pub fn request_headers_to_remove(&self) -> &'a [String] {
        &self.route.request_headers_to_remove
    }

    /// Applies the route's header mutations, see [`Route::apply_request_headers`].
    pub fn apply_request_headers(&self, frame: &mut dyn Frame) {
        self.route.apply_request_headers(frame);
    }

    /// The new path and query (`/v2/users?id=1`) of a request forwarded by a route with a
    /// prefix rewrite: the part of [`var::PATH`] that the route's `path` or `prefix`
    /// matched is replaced, and [`var::QUERY`] is kept. `None` when the route has no prefix
    /// rewrite (leave the request as it is) or the request has no path. Allocates only for
    /// routes that rewrite.
    pub fn path_rewrite(&self, frame: &dyn Frame) -> Option<String> {
        let rewrite = self.route.prefix_rewrite.as_deref()?;
        let path = frame.variable(var::PATH)?;
        let mut out = rewrite_prefix(self.route.matcher.path.as_ref(), rewrite, &path);
        push_query(&mut out, frame.variable(var::QUERY).as_deref());
        Some(out)
    }

    /// The authority (Host / `:authority`) a forwarded request must carry instead of its
    /// own, if the route rewrites it.
    pub fn host_rewrite(&self) -> Option<&'a str> {
        self.route.host_rewrite.as_deref()
    }

    /// Headers to set on the response.
    pub fn response_headers_to_add(&self) -> &'a [(String, String)] {
        &self.route.response_headers_to_add
    }

    /// Headers to remove from the response.
    pub fn response_headers_to_remove(&self) -> &'a [String] {
        &self.route.response_headers_to_remove
    }

    /// Applies the route's response header mutations to `response`: removals first, then
    /// additions (each replacing the values the header had).
    pub fn apply_response_headers<S: HeaderSink + ?Sized>(&self, response: &mut S) {
        self.route.apply_response_headers(response);
    }
}
