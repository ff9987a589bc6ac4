//! A running proxy: bound listeners, clusters, admin server, and graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use strait_codec_framework::{Registry, RequestHook};
use strait_upstream::Cluster;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::admin;
use crate::config::Config;
use crate::listener::{self, Listener};
use strait_pipeline::{ClusterSet, Pipeline};
use strait_telemetry::access_log::{AccessLog, Sink, Target};
use strait_telemetry::tracer::Tracer;
use strait_telemetry::{ListenerLayout, ListenerMetrics, Metrics, OpenConnection};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener's access log could not be opened.
    #[error("cannot open the access log {path}: {source}")]
    AccessLog {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The tracing exporter could not be set up.
    #[error("cannot start tracing: {0}")]
    Tracing(String),
    /// A listener or the admin server could not bind its address.
    #[error("cannot bind {what} to {addr}: {source}")]
    Bind {
        /// Which socket.
        what: String,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Counts live downstream connections so shutdown can wait for them.
#[derive(Default)]
pub(crate) struct Connections {
    live: AtomicUsize,
    idle: Notify,
}

impl Connections {
    /// Counts a connection live (and, with `metrics`, open on its listener) until the
    /// guard drops.
    pub(crate) fn enter(
        self: &Arc<Self>,
        metrics: Option<&Arc<ListenerMetrics>>,
    ) -> ConnectionGuard {
        self.live.fetch_add(1, Ordering::AcqRel);
        ConnectionGuard {
            connections: self.clone(),
            _open: metrics.map(|m| m.connection_opened()),
        }
    }

    async fn drained(&self) {
        loop {
            let notified = self.idle.notified();
            if self.live.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Marks one connection live until dropped.
pub(crate) struct ConnectionGuard {
    connections: Arc<Connections>,
    /// Counts it open on its listener's metrics while it lives.
    _open: Option<OpenConnection>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.connections.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.connections.idle.notify_waiters();
        }
    }
}

/// State the admin server reads.
pub(crate) struct AdminState {
    pub(crate) ready: AtomicBool,
    /// Set by `POST /healthcheck/fail`: `/ready` answers 503 while the proxy keeps
    /// serving, so a load balancer in front takes it out before a restart.
    pub(crate) health_failed: AtomicBool,
    pub(crate) config: Config,
    pub(crate) clusters: Arc<ClusterSet>,
    pub(crate) listeners: Vec<(String, SocketAddr)>,
    /// Request metrics, recorded while an admin server can serve them.
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// The access logs' outputs (for their dropped-line counts).
    pub(crate) access_logs: Vec<Arc<Sink>>,
    /// The tracer, if tracing is on (for its export counts).
    pub(crate) tracer: Option<Arc<Tracer>>,
}

/// A started proxy.
pub struct Server {
    listeners: Vec<(String, SocketAddr)>,
    admin_addr: Option<SocketAddr>,
    accept_tasks: Vec<JoinHandle<()>>,
    admin_task: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    connections: Arc<Connections>,
    clusters: Arc<ClusterSet>,
    drain_timeout: Duration,
    access_logs: Vec<Arc<Sink>>,
    /// Reloads TLS files when they change, while it lives.
    _tls_rotation: Option<strait_tls::Rotation>,
}

impl Server {
    /// Binds every listener and the admin server, then starts serving. If any socket
    /// cannot be bound nothing is started (no half-configured proxy).
    pub async fn start(config: Config, registry: Registry) -> Result<Server, ServerError> {
        Self::start_with_hook(config, registry, None).await
    }

    /// Like [`Server::start`], with `hook` told of every request's end, whatever its
    /// protocol (exactly once per request).
    pub async fn start_with_hook(
        config: Config,
        registry: Registry,
        hook: Option<Arc<dyn RequestHook>>,
    ) -> Result<Server, ServerError> {
        let mut bound = Vec::new();
        for l in &config.listeners {
            let socket =
                TcpListener::bind(l.address)
                    .await
                    .map_err(|source| ServerError::Bind {
                        what: format!("listener {:?}", l.name),
                        addr: l.address,
                        source,
                    })?;
            bound.push((l.clone(), socket));
        }
        let admin_socket = match config.admin {
            Some(addr) => {
                Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|source| ServerError::Bind {
                            what: "admin server".into(),
                            addr,
                            source,
                        })?,
                )
            }
            None => None,
        };

        let access_logs = open_access_logs(&config)?;
        let tls_rotation = watch_tls_files(&config);
        let tracer = match &config.tracing {
            Some(t) => Some(Tracer::start(t).await.map_err(ServerError::Tracing)?),
            None => None,
        };

        let clusters = Arc::new(ClusterSet::new(
            config
                .clusters
                .iter()
                .map(|c| Arc::new(Cluster::new(c.options.clone())))
                .collect(),
        ));
        for cluster in clusters.iter() {
            cluster.start();
        }
        // Clusters with active checks are warmed before any listener takes traffic:
        // a host takes its first request only after its first check passed.
        for cluster in clusters.iter() {
            cluster.first_checks().await;
        }
        // Metrics are recorded only where an admin server can serve them.
        let metrics = admin_socket
            .is_some()
            .then(|| Arc::new(request_metrics(&config, &registry)));
        let pipeline = Arc::new(Pipeline::new(clusters.clone(), hook));
        let (shutdown, _) = watch::channel(false);
        let connections = Arc::new(Connections::default());
        let registry = Arc::new(registry);
        let mut listeners = Vec::new();
        let mut accept_tasks = Vec::new();
        for (cfg, socket) in bound {
            // The bound address (a configured port 0 becomes a real port).
            let addr = socket.local_addr().unwrap_or(cfg.address);
            tracing::info!(listener = %cfg.name, %addr, "listening");
            listeners.push((cfg.name.clone(), addr));
            let access_log = cfg.access_log.as_ref().and_then(|a| {
                let sink = access_logs.iter().find(|s| *s.target() == a.target)?;
                Some(Arc::new(AccessLog::new(a.format.clone(), sink.clone())))
            });
            let listener = Listener {
                tracer: tracer.clone(),
                metrics: metrics
                    .as_ref()
                    .and_then(|m| m.listener(&cfg.name))
                    .cloned(),
                access_log,
                config: cfg,
                registry: registry.clone(),
                pipeline: pipeline.clone(),
                connections: connections.clone(),
                shutdown: shutdown.subscribe(),
            };
            accept_tasks.push(tokio::spawn(listener::accept_loop(listener, socket)));
        }

        let mut admin_addr = None;
        let mut admin_task = None;
        if let Some(socket) = admin_socket {
            admin_addr = socket.local_addr().ok();
            let state = Arc::new(AdminState {
                ready: AtomicBool::new(true),
                health_failed: AtomicBool::new(false),
                config: config.clone(),
                clusters: clusters.clone(),
                listeners: listeners.clone(),
                metrics,
                access_logs: access_logs.clone(),
                tracer,
            });
            if let Some(addr) = admin_addr {
                tracing::info!(%addr, "admin server listening");
            }
            admin_task = Some(tokio::spawn(admin::serve(
                socket,
                state,
                shutdown.subscribe(),
            )));
        }
        Ok(Server {
            listeners,
            admin_addr,
            accept_tasks,
            admin_task,
            shutdown,
            connections,
            clusters,
            drain_timeout: config.drain_timeout,
            access_logs,
            _tls_rotation: tls_rotation,
        })
    }

    /// Reopens every access-log file (after log rotation moved them: SIGUSR1).
    pub fn reopen_access_logs(&self) {
        for sink in &self.access_logs {
            sink.reopen();
        }
    }

    /// The bound address of the listener called `name`.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
    }

    /// The bound address of the admin server.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Stops accepting, lets in-flight requests finish for at most the configured drain
    /// timeout, then closes everything. Returns whether every connection drained.
    pub async fn shutdown(self) -> bool {
        // Listening sockets close first, and are closed once the aborted accept tasks
        // have ended: by the time anything says draining (`/ready` 503), no connection
        // can be accepted any more.
        for task in &self.accept_tasks {
            task.abort();
        }
        for task in self.accept_tasks {
            let _ = task.await;
        }
        for (name, addr) in &self.listeners {
            tracing::info!(listener = %name, %addr, "stopped listening");
        }
        let _ = self.shutdown.send(true);
        let drained = tokio::time::timeout(self.drain_timeout, self.connections.drained())
            .await
            .is_ok();
        if !drained {
            tracing::warn!("drain timeout reached with connections still open");
        }
        if let Some(task) = self.admin_task {
            task.abort();
        }
        for cluster in self.clusters.iter() {
            cluster.shutdown();
        }
        // The last requests' lines reach their files before the process exits.
        for sink in &self.access_logs {
            sink.flush(Duration::from_secs(2));
        }
        drained
    }
}

/// The request metrics of `config`'s listeners and clusters, for requests of every
/// protocol `registry` holds (and gRPC, which the HTTP door tells apart).
fn request_metrics(config: &Config, registry: &Registry) -> Metrics {
    let mut protocols: Vec<&'static str> = registry.upstream_names().collect();
    if !protocols.contains(&"grpc") {
        protocols.push("grpc");
    }
    let listeners: Vec<ListenerLayout> = config
        .listeners
        .iter()
        .map(|l| ListenerLayout {
            name: l.name.clone(),
            routes: (0u32..)
                .map_while(|i| l.routes.route_at(i))
                .map(|(_, route)| route.name.clone())
                .collect(),
        })
        .collect();
    let clusters: Vec<String> = config
        .clusters
        .iter()
        .map(|c| c.options.name.clone())
        .collect();
    Metrics::new(&protocols, &listeners, &clusters)
}

/// One sink per distinct access-log target of `config` (listeners that name the same
/// file share its writer).
fn open_access_logs(config: &Config) -> Result<Vec<Arc<Sink>>, ServerError> {
    let mut sinks: Vec<Arc<Sink>> = Vec::new();
    for log in config
        .listeners
        .iter()
        .filter_map(|l| l.access_log.as_ref())
    {
        if sinks.iter().any(|s| *s.target() == log.target) {
            continue;
        }
        let sink = Sink::open(log.target.clone()).map_err(|source| ServerError::AccessLog {
            path: match &log.target {
                Target::Stdout => "stdout".into(),
                Target::File(path) => path.display().to_string(),
            },
            source,
        })?;
        sinks.push(sink);
    }
    Ok(sinks)
}

/// Starts watching the TLS files of `config`'s listeners and clusters. A watch that
/// cannot be set up is logged: the material loaded at start stays in use.
fn watch_tls_files(config: &Config) -> Option<strait_tls::Rotation> {
    let servers: Vec<_> = config
        .listeners
        .iter()
        .filter_map(|l| l.tls.clone())
        .collect();
    let clients: Vec<_> = config
        .clusters
        .iter()
        .filter_map(|c| c.options.tls.clone())
        .collect();
    match strait_tls::Rotation::start(&servers, &clients) {
        Ok(rotation) => rotation,
        Err(error) => {
            tracing::warn!(%error, "TLS files are not watched: certificates will not rotate");
            None
        }
    }
}
