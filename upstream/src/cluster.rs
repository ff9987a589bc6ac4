use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use strait_codec_framework::{Frame, FrameKind, Protocol, ProxyFailure};
use strait_stream::{UpstreamError, UpstreamOptions};
use tokio::sync::watch;

use crate::host::{ConnectError, Host};
use crate::lb::{Balancer, LbPolicy};

/// One endpoint of a static cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    /// Where the host listens.
    pub addr: SocketAddr,
    /// Its load-balancing weight (≥ 1).
    pub weight: u32,
}

/// Everything a cluster is built from.
#[derive(Clone)]
pub struct ClusterOptions {
    /// Cluster name, as routes refer to it.
    pub name: String,
    /// The protocol spoken to the hosts.
    pub protocol: Arc<dyn Protocol>,
    /// How a host is picked.
    pub lb_policy: LbPolicy,
    /// Bound on one connection attempt.
    pub connect_timeout: Duration,
    /// Multiplexed connections per host.
    pub max_connections_per_host: usize,
    /// Connect every pool slot at start and keep them connected, instead of on demand.
    pub preconnect: bool,
    /// Requests in flight across the cluster before new ones fail with overflow.
    pub max_requests: usize,
    /// Settings of each upstream connection (limits, keepalive).
    pub connection: UpstreamOptions,
    /// The hosts.
    pub endpoints: Vec<Endpoint>,
}

/// A static cluster: hosts, a load balancer and per-host connection pools.
pub struct Cluster {
    options: ClusterOptions,
    hosts: Vec<Arc<Host>>,
    lb: Balancer,
    active: AtomicUsize,
    stop: watch::Sender<bool>,
}

/// A point-in-time view of a cluster, for the admin API.
#[derive(Debug, Clone)]
pub struct ClusterSnapshot {
    /// Cluster name.
    pub name: String,
    /// Requests in flight across the cluster.
    pub in_flight: usize,
    /// Per-host state.
    pub hosts: Vec<HostSnapshot>,
}

/// A point-in-time view of one host.
#[derive(Debug, Clone)]
pub struct HostSnapshot {
    /// Host address.
    pub addr: SocketAddr,
    /// Load-balancing weight.
    pub weight: u32,
    /// Whether the host can be picked (not backing off after connect failures).
    pub available: bool,
    /// Requests in flight to this host.
    pub in_flight: usize,
    /// Open pooled connections.
    pub connections: usize,
    /// Requests sent so far.
    pub requests: u64,
    /// Requests that failed (connect failure, reset, timeout).
    pub failures: u64,
    /// Consecutive failed connection attempts.
    pub connect_failures: u32,
}

impl Cluster {
    /// Builds the cluster; call [`Cluster::start`] inside a runtime to pre-connect.
    pub fn new(options: ClusterOptions) -> Self {
        let hosts = options
            .endpoints
            .iter()
            .map(|e| {
                Arc::new(Host::new(
                    e.addr,
                    e.weight.max(1),
                    options.max_connections_per_host,
                ))
            })
            .collect();
        let lb = Balancer::new(options.lb_policy);
        let (stop, _) = watch::channel(false);
        Cluster {
            options,
            hosts,
            lb,
            active: AtomicUsize::new(0),
            stop,
        }
    }

    /// The cluster's name.
    pub fn name(&self) -> &str {
        &self.options.name
    }

    /// The protocol spoken to the hosts.
    pub fn protocol(&self) -> &Arc<dyn Protocol> {
        &self.options.protocol
    }

    /// The hosts.
    pub fn hosts(&self) -> &[Arc<Host>] {
        &self.hosts
    }

    /// Starts pre-connecting and the reconnect task, if the cluster pre-connects.
    pub fn start(self: &Arc<Self>) {
        if !self.options.preconnect {
            return;
        }
        let cluster = Arc::downgrade(self);
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            loop {
                let Some(c) = cluster.upgrade() else { return };
                for host in &c.hosts {
                    host.fill_all(
                        &c.options.protocol,
                        c.options.connection,
                        c.options.connect_timeout,
                    )
                    .await;
                }
                drop(c);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }

    /// Stops background work and closes every connection.
    pub fn shutdown(&self) {
        let _ = self.stop.send(true);
        for host in &self.hosts {
            host.close_all();
        }
    }

    /// Forwards `request` to a host and waits for the response, at most `timeout`. A
    /// oneway request resolves to `None` once written.
    pub async fn forward(
        &self,
        request: &mut dyn Frame,
        timeout: Duration,
    ) -> Result<Option<Box<dyn Frame>>, ProxyFailure> {
        if self.active.fetch_add(1, Ordering::AcqRel) >= self.options.max_requests {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return Err(ProxyFailure::Overflow);
        }
        let result = self.forward_admitted(request, timeout).await;
        self.active.fetch_sub(1, Ordering::AcqRel);
        result
    }

    async fn forward_admitted(
        &self,
        request: &mut dyn Frame,
        timeout: Duration,
    ) -> Result<Option<Box<dyn Frame>>, ProxyFailure> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last = ProxyFailure::NoHealthyUpstream;
        // A failed connect sent nothing, so another host may be tried; once a request
        // is written it is never sent twice.
        for _ in 0..self.hosts.len().max(1) {
            let Some(index) = self.lb.pick(&self.hosts) else {
                return Err(last);
            };
            let host = &self.hosts[index];
            let conn = match host
                .connection(
                    &self.options.protocol,
                    self.options.connection,
                    self.options.connect_timeout,
                )
                .await
            {
                Ok(conn) => conn,
                Err(ConnectError::BackingOff) => continue,
                Err(ConnectError::Failed) => {
                    host.record(true);
                    last = ProxyFailure::ConnectFailure;
                    continue;
                }
            };
            let _in_flight = host.start_request();
            if request.kind() == FrameKind::Oneway {
                let sent = conn.send_oneway(request).await;
                host.record(sent.is_err());
                return sent.map(|()| None).map_err(failure_of);
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let result = conn.call(request, remaining).await;
            host.record(result.is_err());
            return result.map(Some).map_err(failure_of);
        }
        Err(last)
    }

    /// The cluster's state, for the admin API.
    pub fn snapshot(&self) -> ClusterSnapshot {
        ClusterSnapshot {
            name: self.options.name.clone(),
            in_flight: self.active.load(Ordering::Relaxed),
            hosts: self
                .hosts
                .iter()
                .map(|h| {
                    let (requests, failures, connect_failures) = h.counters();
                    HostSnapshot {
                        addr: h.addr(),
                        weight: h.weight(),
                        available: h.available(),
                        in_flight: h.in_flight(),
                        connections: h.open_connections(),
                        requests,
                        failures,
                        connect_failures,
                    }
                })
                .collect(),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn failure_of(error: UpstreamError) -> ProxyFailure {
    match error {
        UpstreamError::Timeout => ProxyFailure::Timeout,
        UpstreamError::Reset | UpstreamError::Closed => ProxyFailure::UpstreamReset,
        UpstreamError::Encode(_) => ProxyFailure::CodecError,
        UpstreamError::IdsExhausted => ProxyFailure::Overflow,
    }
}
