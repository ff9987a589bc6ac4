//! A running proxy: bound listeners, clusters, admin server, and graceful shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;

use strait_codec_framework::{Registry, RequestHook};
use strait_upstream::Cluster;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::admin;
use crate::config::{Config, ListenerConfig};
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
    /// The running proxy: its snapshot in force, and `POST /reload`.
    pub(crate) core: Arc<Core>,
}

/// One configuration in force, as the admin server and the accessors read it.
pub(crate) struct Snapshot {
    /// 1 for the configuration the proxy started with, then one more per reload.
    pub(crate) version: u64,
    /// When it took effect.
    pub(crate) loaded_at: SystemTime,
    pub(crate) config: Config,
    pub(crate) clusters: Arc<ClusterSet>,
    /// Every listener and its bound address.
    pub(crate) listeners: Vec<(String, SocketAddr)>,
    /// Request metrics, recorded while an admin server can serve them.
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// The access logs' outputs (for their dropped-line counts).
    pub(crate) access_logs: Vec<Arc<Sink>>,
    /// The tracer, if tracing is on (for its export counts).
    pub(crate) tracer: Option<Arc<Tracer>>,
}

/// Counts of configuration reloads.
#[derive(Default)]
pub(crate) struct ReloadCounts {
    pub(crate) succeeded: AtomicU64,
    pub(crate) failed: AtomicU64,
}

/// What a running proxy shares between its listeners, the admin server, its signal
/// handlers and its reloads.
pub(crate) struct Core {
    registry: Arc<Registry>,
    hook: Option<Arc<dyn RequestHook>>,
    connections: Arc<Connections>,
    /// Turns true at shutdown (the admin server stops saying ready).
    shutdown: watch::Sender<bool>,
    /// The snapshot in force.
    snapshot: ArcSwap<Snapshot>,
    /// What a reload changes; its lock serialises reloads and shutdown.
    live: tokio::sync::Mutex<Live>,
    pub(crate) reloads: ReloadCounts,
    /// Whether an admin server runs (request metrics are recorded only then).
    has_admin: bool,
    /// Itself, for the config watcher's task (which must not keep it alive).
    me: std::sync::Weak<Core>,
}

/// The running parts a reload adds, keeps or removes.
struct Live {
    listeners: Vec<Running>,
    /// Reloads TLS files when they change.
    rotation: Option<strait_tls::Rotation>,
    /// Reloads the configuration when its file changes (`watch: true`).
    watcher: Option<ConfigWatcher>,
    /// Set once shut down: no reload after that.
    stopped: bool,
}

impl Core {
    fn weak(&self) -> std::sync::Weak<Core> {
        self.me.clone()
    }
}

/// One listening socket and its connections' drain signal.
struct Running {
    config: ListenerConfig,
    addr: SocketAddr,
    handle: listener::Handle,
    /// Turns true when its connections must drain.
    stop: watch::Sender<bool>,
}

/// A started proxy.
pub struct Server {
    core: Arc<Core>,
    admin_addr: Option<SocketAddr>,
    admin_task: Option<JoinHandle<()>>,
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
        let bound = bind_listeners(&config, &[]).await?;
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
        let registry = Arc::new(registry);
        let parts = Parts::build(
            &config,
            &registry,
            hook.as_ref(),
            admin_socket.is_some(),
            None,
        )
        .await?;
        let (shutdown, _) = watch::channel(false);
        let core = Arc::new_cyclic(|me| Core {
            me: me.clone(),
            registry,
            hook,
            connections: Arc::new(Connections::default()),
            shutdown,
            snapshot: ArcSwap::from_pointee(parts.snapshot(0, &config, Vec::new())),
            live: tokio::sync::Mutex::new(Live {
                listeners: Vec::new(),
                rotation: None,
                watcher: None,
                stopped: false,
            }),
            reloads: ReloadCounts::default(),
            has_admin: admin_socket.is_some(),
        });
        {
            let mut live = core.live.lock().await;
            core.install_version(&mut live, config, parts, bound, 1)
                .await;
        }

        let mut admin_addr = None;
        let mut admin_task = None;
        if let Some(socket) = admin_socket {
            admin_addr = socket.local_addr().ok();
            let state = Arc::new(AdminState {
                ready: AtomicBool::new(true),
                health_failed: AtomicBool::new(false),
                core: core.clone(),
            });
            if let Some(addr) = admin_addr {
                tracing::info!(%addr, "admin server listening");
            }
            admin_task = Some(tokio::spawn(admin::serve(
                socket,
                state,
                core.shutdown.subscribe(),
            )));
        }
        Ok(Server {
            core,
            admin_addr,
            admin_task,
        })
    }

    /// Reopens every access-log file (after log rotation moved them: SIGUSR1).
    pub fn reopen_access_logs(&self) {
        for sink in &self.core.snapshot.load().access_logs {
            sink.reopen();
        }
    }

    /// Reads the configuration file again and, if it is valid, makes it the one in
    /// force (SIGHUP, `POST /reload`, a change of a watched file). Returns the new
    /// snapshot's version, or why the running configuration stays.
    pub async fn reload(&self) -> Result<u64, String> {
        self.core.reload().await
    }

    /// Makes `config` the configuration in force, as a reload of a file would.
    pub async fn reload_with(&self, config: Config) -> Result<u64, String> {
        self.core.reload_with(config).await
    }

    /// The bound address of the listener called `name`.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.core
            .snapshot
            .load()
            .listeners
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
        let core = &self.core;
        let mut live = core.live.lock().await;
        live.stopped = true;
        live.watcher = None;
        // Listening sockets close first, and are closed once the aborted accept tasks
        // have ended: by the time anything says draining (`/ready` 503), no connection
        // can be accepted any more.
        let running = std::mem::take(&mut live.listeners);
        let mut stops = Vec::new();
        for r in running {
            r.handle.stop().await;
            tracing::info!(listener = %r.config.name, addr = %r.addr, "stopped listening");
            stops.push(r.stop);
        }
        let _ = core.shutdown.send(true);
        for stop in &stops {
            let _ = stop.send(true);
        }
        let snapshot = core.snapshot.load_full();
        let drain_timeout = snapshot.config.drain_timeout;
        let drained = tokio::time::timeout(drain_timeout, core.connections.drained())
            .await
            .is_ok();
        if !drained {
            tracing::warn!("drain timeout reached with connections still open");
        }
        if let Some(task) = self.admin_task {
            task.abort();
        }
        for cluster in snapshot.clusters.iter() {
            cluster.shutdown();
        }
        // The last requests' lines reach their files before the process exits.
        for sink in &snapshot.access_logs {
            sink.flush(Duration::from_secs(2));
        }
        drained
    }
}

impl Core {
    /// The snapshot in force.
    pub(crate) fn snapshot(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// [`Server::reload`].
    pub(crate) async fn reload(&self) -> Result<u64, String> {
        let source = self.snapshot.load().config.source.clone();
        let Some(path) = source else {
            return Err("the configuration was not read from a file: nothing to reload".into());
        };
        match crate::config::load(&path, &self.registry) {
            Ok(config) => self.reload_with(config).await,
            Err(error) => {
                self.reloads.failed.fetch_add(1, Ordering::Relaxed);
                let error = error.to_string();
                tracing::error!(%error, "reload refused: the running configuration stays");
                Err(error)
            }
        }
    }

    /// [`Server::reload_with`].
    pub(crate) async fn reload_with(&self, config: Config) -> Result<u64, String> {
        let mut live = self.live.lock().await;
        let result = self.try_reload(&mut live, config).await;
        match &result {
            Ok(version) => {
                self.reloads.succeeded.fetch_add(1, Ordering::Relaxed);
                tracing::info!(version, "configuration reloaded");
            }
            Err(error) => {
                self.reloads.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "reload refused: the running configuration stays");
            }
        }
        result
    }

    async fn try_reload(&self, live: &mut Live, mut config: Config) -> Result<u64, String> {
        if live.stopped {
            return Err("the proxy is shutting down".into());
        }
        let old = self.snapshot.load_full();
        adopt_tls(&mut config, &old.config);
        if config.admin != old.config.admin {
            tracing::warn!("the admin address changed: it takes effect at the next restart");
        }
        // Everything that can fail comes before anything changes: new sockets, access
        // log files, the tracer.
        let keep: Vec<(String, SocketAddr)> = live
            .listeners
            .iter()
            .map(|r| (r.config.name.clone(), r.config.address))
            .collect();
        let bound = bind_listeners(&config, &keep)
            .await
            .map_err(|e| e.to_string())?;
        let parts = Parts::build(
            &config,
            &self.registry,
            self.hook.as_ref(),
            self.has_admin,
            Some(&old),
        )
        .await
        .map_err(|e| e.to_string())?;
        let version = old.version + 1;
        let retired: Vec<Arc<Cluster>> = old
            .clusters
            .iter()
            .filter(|c| !parts.clusters.iter().any(|n| Arc::ptr_eq(n, c)))
            .cloned()
            .collect();
        let retired_logs: Vec<Arc<Sink>> = old
            .access_logs
            .iter()
            .filter(|s| !parts.access_logs.iter().any(|n| Arc::ptr_eq(n, s)))
            .cloned()
            .collect();
        self.install_version(live, config, parts, bound, version)
            .await;
        // Requests already on their way to a removed or replaced cluster finish there:
        // it shuts down once they had the drain timeout to do so.
        let drain = self.snapshot.load().config.drain_timeout;
        if !retired.is_empty() || !retired_logs.is_empty() {
            tokio::spawn(async move {
                tokio::time::sleep(drain).await;
                for cluster in retired {
                    cluster.shutdown();
                }
                for sink in retired_logs {
                    sink.flush(Duration::from_secs(2));
                }
            });
        }
        Ok(version)
    }

    /// Makes `config` (with its built `parts` and newly `bound` sockets) the one in
    /// force: listeners kept (same name and address) take it without closing their
    /// socket, new ones start, removed ones stop accepting and drain.
    async fn install_version(
        &self,
        live: &mut Live,
        config: Config,
        parts: Parts,
        mut bound: Bound,
        version: u64,
    ) {
        let mut running = std::mem::take(&mut live.listeners);
        let mut next = Vec::new();
        let mut addrs = Vec::new();
        for cfg in &config.listeners {
            let kept = running
                .iter()
                .position(|r| r.config.name == cfg.name && r.config.address == cfg.address)
                .map(|i| running.swap_remove(i));
            match kept {
                Some(mut r) => {
                    let listener = parts.listener(self, cfg, r.stop.subscribe());
                    r.handle.update(listener);
                    r.config = cfg.clone();
                    addrs.push((cfg.name.clone(), r.addr));
                    next.push(r);
                }
                None => {
                    let Some(i) = bound.iter().position(|(name, _)| *name == cfg.name) else {
                        continue;
                    };
                    let (_, socket) = bound.swap_remove(i);
                    // The bound address (a configured port 0 becomes a real port).
                    let addr = socket.local_addr().unwrap_or(cfg.address);
                    tracing::info!(listener = %cfg.name, %addr, "listening");
                    let (stop, stopped) = watch::channel(false);
                    let listener = parts.listener(self, cfg, stopped);
                    addrs.push((cfg.name.clone(), addr));
                    next.push(Running {
                        config: cfg.clone(),
                        addr,
                        handle: listener::Handle::spawn(listener, socket),
                        stop,
                    });
                }
            }
        }
        for r in running {
            r.handle.stop().await;
            let _ = r.stop.send(true);
            tracing::info!(listener = %r.config.name, addr = %r.addr, "stopped listening (removed by a reload)");
        }
        live.listeners = next;
        live.rotation = watch_tls_files(&config);
        let watch = config.watch.then_some(config.source.clone()).flatten();
        match (&live.watcher, watch) {
            (Some(w), Some(path)) if w.path == path => {}
            (_, Some(path)) => live.watcher = ConfigWatcher::start(self, path),
            (_, None) => live.watcher = None,
        }
        self.snapshot
            .store(Arc::new(parts.snapshot(version, &config, addrs)));
    }
}

/// Sockets bound for the listeners a configuration adds, by listener name.
type Bound = Vec<(String, TcpListener)>;

/// Binds the listeners of `config` that are not among `running` (name and address).
async fn bind_listeners(
    config: &Config,
    running: &[(String, SocketAddr)],
) -> Result<Bound, ServerError> {
    let mut bound = Vec::new();
    for l in &config.listeners {
        if running.iter().any(|(n, a)| *n == l.name && *a == l.address) {
            continue;
        }
        let socket = TcpListener::bind(l.address)
            .await
            .map_err(|source| ServerError::Bind {
                what: format!("listener {:?}", l.name),
                addr: l.address,
                source,
            })?;
        bound.push((l.name.clone(), socket));
    }
    Ok(bound)
}

/// What one configuration runs on, built before it takes effect.
struct Parts {
    clusters: Arc<ClusterSet>,
    pipeline: Arc<Pipeline>,
    metrics: Option<Arc<Metrics>>,
    access_logs: Vec<Arc<Sink>>,
    tracer: Option<Arc<Tracer>>,
}

impl Parts {
    /// Builds them for `config`, keeping from `old` (the snapshot in force) every
    /// cluster whose configuration did not change (its connections, health and
    /// ejections with it), the access logs still written and the tracer.
    async fn build(
        config: &Config,
        registry: &Registry,
        hook: Option<&Arc<dyn RequestHook>>,
        with_metrics: bool,
        old: Option<&Snapshot>,
    ) -> Result<Parts, ServerError> {
        let access_logs = open_access_logs(config, old.map_or(&[][..], |o| &o.access_logs))?;
        let tracer = match (&config.tracing, old) {
            (None, _) => None,
            (Some(_), Some(old))
                if old.config.dump.get("tracing") == config.dump.get("tracing") =>
            {
                old.tracer.clone()
            }
            (Some(t), _) => Some(Tracer::start(t).await.map_err(ServerError::Tracing)?),
        };
        let mut fresh = Vec::new();
        let clusters: Vec<Arc<Cluster>> = config
            .clusters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let unchanged = old.and_then(|old| {
                    let (_, cluster) = old.clusters.get(&c.options.name)?;
                    (cluster_dump(&old.config, &c.options.name) == config.dump["clusters"].get(i))
                        .then(|| cluster.clone())
                });
                unchanged.unwrap_or_else(|| {
                    let cluster = Arc::new(Cluster::new(c.options.clone()));
                    fresh.push(cluster.clone());
                    cluster
                })
            })
            .collect();
        for cluster in &fresh {
            cluster.start();
        }
        // Clusters with active checks are warmed before any listener takes traffic:
        // a host takes its first request only after its first check passed.
        for cluster in &fresh {
            cluster.first_checks().await;
        }
        let clusters = Arc::new(ClusterSet::new(clusters));
        let same_layout = |old: &Snapshot| {
            metrics_layout(&old.config, registry) == metrics_layout(config, registry)
        };
        let metrics = match old.filter(|o| same_layout(o)) {
            Some(old) if with_metrics => old.metrics.clone(),
            _ => with_metrics.then(|| Arc::new(request_metrics(config, registry))),
        };
        let pipeline = Arc::new(Pipeline::new(clusters.clone(), hook.cloned()));
        Ok(Parts {
            clusters,
            pipeline,
            metrics,
            access_logs,
            tracer,
        })
    }

    /// The listener `cfg` of this configuration, draining on `stop`.
    fn listener(&self, core: &Core, cfg: &ListenerConfig, stop: watch::Receiver<bool>) -> Listener {
        let access_log = cfg.access_log.as_ref().and_then(|a| {
            let sink = self.access_logs.iter().find(|s| *s.target() == a.target)?;
            Some(Arc::new(AccessLog::new(a.format.clone(), sink.clone())))
        });
        Listener {
            tracer: self.tracer.clone(),
            metrics: self
                .metrics
                .as_ref()
                .and_then(|m| m.listener(&cfg.name))
                .cloned(),
            access_log,
            config: cfg.clone(),
            registry: core.registry.clone(),
            pipeline: self.pipeline.clone(),
            connections: core.connections.clone(),
            shutdown: stop,
        }
    }

    fn snapshot(
        &self,
        version: u64,
        config: &Config,
        listeners: Vec<(String, SocketAddr)>,
    ) -> Snapshot {
        Snapshot {
            version,
            loaded_at: SystemTime::now(),
            config: config.clone(),
            clusters: self.clusters.clone(),
            listeners,
            metrics: self.metrics.clone(),
            access_logs: self.access_logs.clone(),
            tracer: self.tracer.clone(),
        }
    }
}

/// Gives `config` the TLS contexts of `old` whose settings it repeats: they keep their
/// counts and the material their rotation loaded, and a kept cluster reports the
/// context its connections use.
fn adopt_tls(config: &mut Config, old: &Config) {
    for l in &mut config.listeners {
        let Some(new) = &l.tls else { continue };
        let same = old
            .listeners
            .iter()
            .filter_map(|o| o.tls.as_ref())
            .find(|o| o.name() == new.name() && o.settings() == new.settings());
        if let Some(same) = same {
            l.tls = Some(same.clone());
        }
    }
    for c in &mut config.clusters {
        let Some(new) = &c.options.tls else { continue };
        let same = old
            .clusters
            .iter()
            .filter_map(|o| o.options.tls.as_ref())
            .find(|o| o.name() == new.name() && o.settings() == new.settings());
        if let Some(same) = same {
            c.options.tls = Some(same.clone());
        }
    }
}

/// The dump of the cluster `name` in `config`.
fn cluster_dump<'a>(config: &'a Config, name: &str) -> Option<&'a serde_json::Value> {
    config.dump["clusters"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

/// Watches the configuration file (`watch: true`): its directory, for editors that
/// replace the file and Kubernetes ConfigMaps that swap a symlink. A change of the
/// file's contents reloads it.
struct ConfigWatcher {
    path: PathBuf,
    _watcher: notify::RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for ConfigWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ConfigWatcher {
    fn start(core: &Core, path: PathBuf) -> Option<ConfigWatcher> {
        use notify::Watcher as _;
        let (events, mut changed) = tokio::sync::mpsc::unbounded_channel::<()>();
        let watched = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
        let dir = watched
            .parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| ".".into());
        let made = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = events.send(());
            }
        });
        let mut watcher = match made {
            Ok(w) => w,
            Err(error) => {
                tracing::warn!(%error, "cannot watch the configuration file: reload with SIGHUP or POST /reload");
                return None;
            }
        };
        if let Err(error) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(%error, dir = %dir.display(), "cannot watch the configuration file's directory");
            return None;
        }
        let core = core.weak();
        let file = path.clone();
        let task = tokio::spawn(async move {
            let mut last = std::fs::read(&file).ok();
            while changed.recv().await.is_some() {
                // A save is often several events (truncate, write, rename): settle.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while changed.try_recv().is_ok() {}
                let now = std::fs::read(&file).ok();
                if now.is_none() || now == last {
                    continue;
                }
                last = now;
                let Some(core) = core.upgrade() else { return };
                tracing::info!(path = %file.display(), "configuration file changed: reloading");
                let _ = core.reload().await;
            }
        });
        Some(ConfigWatcher {
            path,
            _watcher: watcher,
            task,
        })
    }
}

/// The request metrics of `config`'s listeners and clusters, for requests of every
/// protocol `registry` holds (and gRPC, which the HTTP door tells apart).
fn request_metrics(config: &Config, registry: &Registry) -> Metrics {
    let (protocols, listeners, clusters) = metrics_layout(config, registry);
    Metrics::new(&protocols, &listeners, &clusters)
}

/// What the request metrics of `config` are laid out by: protocols, each listener's
/// routes, the clusters. Two configurations with the same layout share one `Metrics`
/// across a reload (no counter restarts from zero).
fn metrics_layout(
    config: &Config,
    registry: &Registry,
) -> (Vec<&'static str>, Vec<ListenerLayout>, Vec<String>) {
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
    (protocols, listeners, clusters)
}

/// One sink per distinct access-log target of `config` (listeners that name the same
/// file share its writer).
fn open_access_logs(config: &Config, open: &[Arc<Sink>]) -> Result<Vec<Arc<Sink>>, ServerError> {
    let mut sinks: Vec<Arc<Sink>> = Vec::new();
    for log in config
        .listeners
        .iter()
        .filter_map(|l| l.access_log.as_ref())
    {
        if sinks.iter().any(|s| *s.target() == log.target) {
            continue;
        }
        // A file already written by the running configuration keeps its writer.
        if let Some(sink) = open.iter().find(|s| *s.target() == log.target) {
            sinks.push(sink.clone());
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
