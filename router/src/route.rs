use std::time::Duration;

use strait_codec_framework::Frame;

use crate::{RouteAction, RouteMatch, VirtualHost};

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
    /// Headers set on the request before it is forwarded (replacing existing values).
    pub request_headers_to_add: Vec<(String, String)>,
    /// Headers removed from the request before it is forwarded.
    pub request_headers_to_remove: Vec<String>,
}

impl Route {
    /// A route with no name, no timeout and no header mutations.
    pub fn new(matcher: RouteMatch, action: RouteAction) -> Self {
        Route {
            name: None,
            matcher,
            action,
            timeout: None,
            request_headers_to_add: Vec::new(),
            request_headers_to_remove: Vec::new(),
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

    /// Whether `frame` satisfies this route's conditions.
    pub fn matches(&self, frame: &dyn Frame) -> bool {
        self.matcher.matches(frame)
    }

    /// Applies the route's header mutations to `frame`: removals first, then additions,
    /// so a route that both removes and adds a name ends up with its own value (the
    /// order Envoy uses too).
    pub fn apply_request_headers(&self, frame: &mut dyn Frame) {
        for name in &self.request_headers_to_remove {
            frame.remove_header(name);
        }
        for (name, value) in &self.request_headers_to_add {
            frame.set_header(name, value);
        }
    }

    /// Where this route sends a request, `rng_value` choosing among weighted clusters
    /// (see [`crate::WeightedClusters::pick_cluster`]). Deterministic, for tests.
    pub fn target_with(&self, rng_value: u64) -> RouteTarget<'_> {
        match &self.action {
            RouteAction::Cluster(name) => RouteTarget::Cluster(name),
            RouteAction::WeightedClusters(split) => {
                RouteTarget::Cluster(split.pick_cluster(rng_value))
            }
            RouteAction::DirectResponse { status, body } => RouteTarget::DirectResponse {
                status: *status,
                body: body.as_deref(),
            },
        }
    }

    /// Where this route sends a request. A random number is only drawn when the action
    /// is a weighted split, so plain routes pay nothing for it.
    pub fn target(&self) -> RouteTarget<'_> {
        match &self.action {
            RouteAction::WeightedClusters(split) => {
                RouteTarget::Cluster(split.pick_cluster_random())
            }
            _ => self.target_with(0),
        }
    }
}

/// The resolved action of a routing decision: the weighted choice, if any, is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// The outcome of [`crate::RouteTable::route`]. It borrows the table, so a request that
/// holds it keeps using the configuration snapshot it started with.
#[derive(Debug, Clone, Copy)]
pub struct RouteDecision<'a> {
    /// The selected virtual host (for metric labels and logs).
    pub virtual_host: &'a VirtualHost,
    /// The matched route.
    pub route: &'a Route,
    /// Where the request goes.
    pub target: RouteTarget<'a>,
}

impl<'a> RouteDecision<'a> {
    /// The chosen cluster, or `None` for a direct response.
    pub fn cluster(&self) -> Option<&'a str> {
        match self.target {
            RouteTarget::Cluster(name) => Some(name),
            RouteTarget::DirectResponse { .. } => None,
        }
    }

    /// The route's name, if it has one.
    pub fn route_name(&self) -> Option<&'a str> {
        self.route.name.as_deref()
    }

    /// The route's upstream timeout.
    pub fn timeout(&self) -> Option<Duration> {
        self.route.timeout
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
}
