//! Accepting downstream connections and choosing their protocol.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strait_codec_framework::{Detect, Limits, Protocol, Registered, Registry, RequestHook};
use strait_stream::downstream::{self, DownstreamOptions, ServeError};
use strait_stream::downstream_idle::{IdleFramed, serve_parking};
use strait_stream::http::{
    Handler, IdleConnections, ServerOptions, serve_connection, serve_connection_parking,
};
use strait_tls::ServerStream;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::{ListenerConfig, ListenerProtocol};
use crate::server::{ConnectionGuard, Connections};
use arc_swap::ArcSwap;
use strait_pipeline::{FramedForwarder, HttpForwarder, ListenerPipeline, ListenerSlot, Pipeline};
use strait_telemetry::ListenerMetrics;
use strait_telemetry::access_log::AccessLog;
use strait_telemetry::tracer::Tracer;
use tokio::task::JoinHandle;

/// Enough bytes to tell every registered protocol apart (the HTTP/2 preface is 24).
const MAX_DETECT_BYTES: usize = 64;

pub(crate) struct Listener {
    pub(crate) config: ListenerConfig,
    pub(crate) registry: Arc<Registry>,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) connections: Arc<Connections>,
    /// Turns true when the listener's connections must drain (shutdown, or the
    /// listener was removed by a reload).
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The listener's request metrics (and request hook), when they are recorded.
    pub(crate) metrics: Option<Arc<ListenerMetrics>>,
    /// Its access log, if it has one.
    pub(crate) access_log: Option<Arc<AccessLog>>,
    /// The tracer, if tracing is on.
    pub(crate) tracer: Option<Arc<Tracer>>,
}

impl Listener {
    /// The hooks that hear this listener's requests: metrics, the tracer (before the
    /// access log, which logs the trace id it sets), the access log.
    fn hooks(&self) -> Vec<Arc<dyn RequestHook>> {
        let metrics = self.metrics.clone().map(|m| m as Arc<dyn RequestHook>);
        let tracer = self.tracer.clone().map(|t| t as Arc<dyn RequestHook>);
        let access_log = self.access_log.clone().map(|a| a as Arc<dyn RequestHook>);
        metrics
            .into_iter()
            .chain(tracer)
            .chain(access_log)
            .collect()
    }

    /// Its entry into the pipeline: its routes, the snapshot's clusters, its hooks.
    fn entry(&self) -> Arc<ListenerPipeline> {
        Arc::new(ListenerPipeline::new(
            &self.config.name,
            self.config.routes.clone(),
            self.pipeline.clone(),
            self.hooks(),
        ))
    }
}

/// What a listener needs to serve HTTP, built once per listener.
struct HttpServing {
    handler: Arc<dyn Handler>,
    options: Arc<ServerOptions>,
    /// The same for connections that came over TLS (scheme `https`).
    tls_options: Arc<ServerOptions>,
    /// Where its idle HTTP/1.1 connections wait without a task (`None` if the system
    /// gave no poll instance for it: they then wait in their tasks).
    idle: Option<IdleConnections>,
}

/// A downstream connection: plain TCP, or TLS over it.
enum Accepted {
    Plain(TcpStream),
    Tls(Box<ServerStream<TcpStream>>),
}

/// The first byte of a TLS record carrying a handshake (the ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a connection turned out to speak.
enum Speaks {
    Framed(Arc<dyn Protocol>),
    Http,
}

/// What every connection of one listener shares, for one version of its
/// configuration: a connection keeps the version it was accepted with (its TLS, its
/// limits); its requests take the listener's current routes and clusters from `slot`.
struct Shared {
    listener: Listener,
    slot: Arc<ListenerSlot>,
    http: HttpServing,
    /// Where its idle framed connections wait without a task (`None` for an `http`
    /// listener, or if the system gave no poll instance: they then keep their tasks).
    framed_idle: Option<IdleFramed<FramedForwarder>>,
}

impl Shared {
    /// The shared state of `listener`, with the idle sets of `previous` (the same
    /// listener's older version) when it had them.
    fn new(listener: Listener, slot: Arc<ListenerSlot>, previous: Option<&Shared>) -> Shared {
        // Only a listener that may serve HTTP gets an HTTP idle set (and its thread), and
        // only one that may serve framed protocols a framed one.
        let serves_http = !matches!(listener.config.protocol, ListenerProtocol::Fixed(_));
        let serves_framed = !matches!(listener.config.protocol, ListenerProtocol::Http(_));
        let name = &listener.config.name;
        let reused = |prev: Option<&Shared>| prev.and_then(|p| p.http.idle.clone());
        let idle = serves_http
            .then(|| match reused(previous) {
                Some(idle) => Some(idle),
                None => idle_or_warn(
                    name,
                    "HTTP/1.1",
                    IdleConnections::new(&listener.config.http, listener.shutdown.clone()),
                ),
            })
            .flatten();
        let framed_idle = serves_framed
            .then(|| match previous.and_then(|p| p.framed_idle.clone()) {
                Some(idle) => Some(idle),
                None => idle_or_warn(name, "framed", IdleFramed::new(listener.shutdown.clone())),
            })
            .flatten();
        let tls_options = Arc::new(ServerOptions {
            scheme: strait_codec_http::Scheme::Https,
            ..(*listener.config.http).clone()
        });
        let http = HttpServing {
            handler: Arc::new(HttpForwarder::new(slot.clone())),
            idle,
            options: listener.config.http.clone(),
            tls_options,
        };
        Shared {
            listener,
            slot,
            http,
            framed_idle,
        }
    }
}

/// A running listener: its accept loop, and the versions of its configuration.
pub(crate) struct Handle {
    shared: Arc<ArcSwap<Shared>>,
    accept: JoinHandle<()>,
}

impl Handle {
    /// Starts accepting on `socket` for `listener`.
    pub(crate) fn spawn(listener: Listener, socket: TcpListener) -> Handle {
        let slot = ListenerSlot::new(listener.entry());
        let shared = Arc::new(ArcSwap::from_pointee(Shared::new(listener, slot, None)));
        let accept = tokio::spawn(accept_loop(shared.clone(), socket));
        Handle { shared, accept }
    }

    /// Takes a reloaded configuration of the same listener (same name and address):
    /// the socket stays open; new connections take the new version, and every
    /// connection's next requests the new routes and clusters.
    pub(crate) fn update(&self, listener: Listener) {
        let old = self.shared.load_full();
        let slot = old.slot.clone();
        let entry = listener.entry();
        self.shared
            .store(Arc::new(Shared::new(listener, slot.clone(), Some(&old))));
        slot.replace(entry);
    }

    /// Stops accepting (the socket closes once the accept task has ended).
    pub(crate) async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
    }
}

async fn accept_loop(current: Arc<ArcSwap<Shared>>, socket: TcpListener) {
    loop {
        let (stream, peer) = match socket.accept().await {
            Ok(s) => s,
            Err(error) => {
                // Out of fds and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = current.load_full();
        let guard = shared
            .listener
            .connections
            .enter(shared.listener.metrics.as_ref());
        // A connection's task holds only the future of what it speaks: an idle Bolt
        // connection must not carry the size of an HTTP server's state (a task is
        // allocated at the size of its largest state).
        match &shared.listener.config.protocol {
            ListenerProtocol::Fixed(_) | ListenerProtocol::Http(_)
                if shared.listener.config.tls.is_some() =>
            {
                tokio::spawn(handshake_then_serve(shared, guard, stream, peer));
            }
            ListenerProtocol::Fixed(protocol) => {
                let protocol = protocol.clone();
                tokio::spawn(async move {
                    let stream = Accepted::Plain(stream);
                    let ended =
                        serve_framed(&shared, guard, stream, BytesMut::new(), protocol, peer).await;
                    log_end(&shared, peer, ended);
                });
            }
            ListenerProtocol::Http(_) => {
                tokio::spawn(async move {
                    let stream = Accepted::Plain(stream);
                    let ended = serve_http(&shared, guard, stream, Bytes::new(), peer).await;
                    log_end(&shared, peer, ended);
                });
            }
            ListenerProtocol::Auto { timeout } => {
                let timeout = *timeout;
                tokio::spawn(detect_then_serve(shared, guard, stream, peer, timeout));
            }
        }
    }
}

/// The idle set made for a listener, or `None` (with a warning) if the system gave none.
fn idle_or_warn<T>(listener: &str, kind: &str, made: std::io::Result<T>) -> Option<T> {
    match made {
        Ok(idle) => Some(idle),
        Err(error) => {
            tracing::warn!(%listener, %error, "no idle set: idle {kind} connections keep their tasks");
            None
        }
    }
}

fn log_end(shared: &Shared, peer: SocketAddr, ended: Result<(), String>) {
    if let Err(error) = ended {
        let listener = &shared.listener.config.name;
        tracing::debug!(%peer, %listener, %error, "downstream connection closed");
    }
}

/// An `auto` connection: detection in this task, then the chosen driver in a task of
/// its own, so the connection's lifetime memory is its driver's alone (the detection
/// state, its timer included, is freed). On a listener with TLS, a connection opening
/// with a TLS handshake record is TLS: the handshake comes first, then the protocol
/// inside is chosen by ALPN, or detected from its first bytes.
async fn detect_then_serve(
    shared: Arc<Shared>,
    guard: ConnectionGuard,
    mut stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) {
    if shared.listener.config.tls.is_some() {
        let mut first = [0u8; 1];
        match tokio::time::timeout(timeout, stream.peek(&mut first)).await {
            Ok(Ok(1)) if first[0] == TLS_HANDSHAKE_RECORD => {
                return handshake_then_serve(shared, guard, stream, peer).await;
            }
            Ok(Ok(1)) => {}
            Ok(Ok(_)) => {
                return log_end(
                    &shared,
                    peer,
                    Err("closed before the protocol was known".into()),
                );
            }
            Ok(Err(e)) => return log_end(&shared, peer, Err(e.to_string())),
            Err(_) => return log_end(&shared, peer, Err("first-byte timeout".into())),
        }
    }
    let mut initial = BytesMut::new();
    let registry = &shared.listener.registry;
    match detect(registry, &mut stream, &mut initial, timeout).await {
        Ok(speaks) => spawn_serving(
            shared,
            guard,
            Accepted::Plain(stream),
            initial,
            speaks,
            peer,
        ),
        Err(error) => log_end(&shared, peer, Err(error)),
    }
}

/// A connection to a TLS listener: the handshake in this task (a failure is counted
/// by its reason and closes the connection), then what the listener serves, or on an
/// `auto` listener what ALPN or the first bytes say, in a task of its own.
async fn handshake_then_serve(
    shared: Arc<Shared>,
    guard: ConnectionGuard,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let Some(tls) = shared.listener.config.tls.clone() else {
        return;
    };
    let mut stream = match tls.accept(stream).await {
        Ok(stream) => stream,
        Err(reason) => {
            let listener = &shared.listener.config.name;
            tracing::debug!(%peer, %listener, reason = reason.as_str(), "TLS handshake failed");
            return;
        }
    };
    let mut initial = BytesMut::new();
    let speaks = match &shared.listener.config.protocol {
        ListenerProtocol::Fixed(protocol) => Speaks::Framed(protocol.clone()),
        ListenerProtocol::Http(_) => Speaks::Http,
        ListenerProtocol::Auto { timeout } => {
            let alpn = stream.get_ref().1.alpn_protocol();
            if matches!(alpn, Some(b"h2" | b"http/1.1")) {
                Speaks::Http
            } else {
                let registry = &shared.listener.registry;
                match detect(registry, &mut stream, &mut initial, *timeout).await {
                    Ok(speaks) => speaks,
                    Err(error) => return log_end(&shared, peer, Err(error)),
                }
            }
        }
    };
    let stream = Accepted::Tls(Box::new(stream));
    spawn_serving(shared, guard, stream, initial, speaks, peer);
}

/// Serves a connection whose protocol is known in a task of its own.
fn spawn_serving(
    shared: Arc<Shared>,
    guard: ConnectionGuard,
    stream: Accepted,
    initial: BytesMut,
    speaks: Speaks,
    peer: SocketAddr,
) {
    match speaks {
        Speaks::Framed(protocol) => {
            tokio::spawn(async move {
                let ended = serve_framed(&shared, guard, stream, initial, protocol, peer).await;
                log_end(&shared, peer, ended);
            });
        }
        Speaks::Http => {
            tokio::spawn(async move {
                let ended = serve_http(&shared, guard, stream, initial.freeze(), peer).await;
                log_end(&shared, peer, ended);
            });
        }
    }
}

/// Serves an HTTP connection; an idle HTTP/1.1 one parks in the listener's idle set
/// (its task ends, and `guard`, counting it open, goes with it).
async fn serve_http(
    shared: &Shared,
    guard: ConnectionGuard,
    stream: Accepted,
    initial: Bytes,
    peer: SocketAddr,
) -> Result<(), String> {
    let handler = shared.http.handler.clone();
    let shutdown = shared.listener.shutdown.clone();
    let stream = match stream {
        Accepted::Plain(stream) => stream,
        Accepted::Tls(stream) => {
            let _guard = guard;
            let options = shared.http.tls_options.clone();
            let served = serve_connection(stream, initial, peer, handler, options, shutdown).await;
            return served.map_err(|e| e.to_string());
        }
    };
    let options = shared.http.options.clone();
    let served = match &shared.http.idle {
        Some(idle) => {
            let parker = idle.parker(Box::new(guard));
            serve_connection_parking(stream, initial, peer, handler, options, shutdown, parker)
                .await
        }
        None => {
            let _guard = guard;
            serve_connection(stream, initial, peer, handler, options, shutdown).await
        }
    };
    served.map_err(|e| e.to_string())
}

/// Serves a framed connection; an idle one parks in the listener's idle set (its task
/// ends, and `guard`, counting it open, goes with it).
async fn serve_framed(
    shared: &Shared,
    guard: ConnectionGuard,
    stream: Accepted,
    initial: BytesMut,
    protocol: Arc<dyn Protocol>,
    peer: SocketAddr,
) -> Result<(), String> {
    let listener = &shared.listener;
    let handler = Arc::new(FramedForwarder::new(
        shared.slot.clone(),
        protocol.clone(),
        Some(peer),
    ));
    let options = DownstreamOptions {
        limits: Limits {
            max_frame_size: listener.config.max_frame_size,
        },
        max_in_flight: listener.config.max_requests_per_connection,
        heartbeats_answered: listener.metrics.as_ref().map(|m| m.heartbeats_answered()),
    };
    let shutdown = listener.shutdown.clone();
    let name = protocol.name();
    let served = match (stream, &shared.framed_idle) {
        (Accepted::Tls(stream), _) => {
            // A TLS stream cannot be split without a lock, nor parked.
            let _guard = guard;
            let (rd, wr) = tokio::io::split(*stream);
            downstream::serve(rd, wr, initial, protocol, handler, options, shutdown).await
        }
        (Accepted::Plain(stream), Some(idle)) => {
            let parker = idle.parker(Box::new(guard));
            serve_parking(
                stream, initial, protocol, handler, options, shutdown, parker,
            )
            .await
        }
        (Accepted::Plain(stream), None) => {
            let _guard = guard;
            let (rd, wr) = stream.into_split();
            downstream::serve(rd, wr, initial, protocol, handler, options, shutdown).await
        }
    };
    if let (Err(ServeError::Decode(_)), Some(metrics)) = (&served, &listener.metrics) {
        metrics.protocol_error(name);
    }
    served.map_err(|e| e.to_string())
}

/// Reads until a registered protocol, in registration order, claims the prefix (the
/// registry's order alone decides: see [`Registry::detect`]).
async fn detect<IO: AsyncRead + Unpin>(
    registry: &Registry,
    stream: &mut IO,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<Speaks, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match registry.detect(buf) {
            Ok(Registered::Framed(p)) => return Ok(Speaks::Framed(p.clone())),
            // HTTP is the one message protocol; its driver serves HTTP/1.1 and HTTP/2.
            Ok(Registered::Messages(_)) => return Ok(Speaks::Http),
            Err(Detect::NoMatch) => return Err("no protocol matches the first bytes".into()),
            Err(_) if buf.len() >= MAX_DETECT_BYTES => {
                return Err("undecided after the detection limit".into());
            }
            Err(_) => {}
        }
        buf.reserve(1024);
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Err(_) => return Err("first-byte timeout".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Ok(Ok(0)) => return Err("closed before the protocol was known".into()),
            Ok(Ok(_)) => {}
        }
    }
}
