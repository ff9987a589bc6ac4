//! Accepting downstream connections and choosing their protocol.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use strait_codec_framework::{Detect, Limits, Protocol, Registry};
use strait_codec_http::{Handler, ServerOptions};
use strait_stream::downstream::{self, DownstreamOptions};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::{ListenerConfig, ListenerProtocol};
use crate::forward::Forwarder;
use crate::http::{HttpForwarder, HttpForwarding, HttpPools};
use crate::pipeline::Pipeline;
use crate::server::Connections;

/// Enough bytes to tell every registered protocol apart (the HTTP/2 preface is 24).
const MAX_DETECT_BYTES: usize = 64;

pub(crate) struct Listener {
    pub(crate) config: ListenerConfig,
    pub(crate) registry: Arc<Registry>,
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) http_pools: Arc<HttpPools>,
    pub(crate) connections: Arc<Connections>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

/// What a listener needs to serve HTTP, built once per listener.
struct HttpServing {
    handler: Arc<dyn Handler>,
    options: Arc<ServerOptions>,
}

/// What a connection turned out to speak.
enum Speaks {
    Framed(Arc<dyn Protocol>),
    Http,
}

pub(crate) async fn accept_loop(listener: Listener, socket: TcpListener) {
    let name: Arc<str> = Arc::from(listener.config.name.as_str());
    let http = Arc::new(HttpServing {
        handler: Arc::new(HttpForwarder(Arc::new(HttpForwarding {
            listener: name.clone(),
            routes: listener.config.routes.clone(),
            pools: listener.http_pools.clone(),
            pipeline: listener.pipeline.clone(),
        }))),
        options: Arc::new(ServerOptions::default()),
    });
    let listener = Arc::new((listener, name));
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
        let listener = listener.clone();
        let http = http.clone();
        let guard = listener.0.connections.enter();
        tokio::spawn(async move {
            let _guard = guard;
            let (listener, name) = &*listener;
            if let Err(error) = serve_connection(listener, name, &http, stream, peer).await {
                tracing::debug!(%peer, listener = %listener.config.name, %error, "downstream connection closed");
            }
        });
    }
}

async fn serve_connection(
    listener: &Listener,
    name: &Arc<str>,
    http: &HttpServing,
    mut stream: TcpStream,
    peer: std::net::SocketAddr,
) -> Result<(), String> {
    let mut initial = BytesMut::new();
    let speaks = match &listener.config.protocol {
        ListenerProtocol::Fixed(p) => Speaks::Framed(p.clone()),
        ListenerProtocol::Http => Speaks::Http,
        ListenerProtocol::Auto { timeout } => {
            detect(&listener.registry, &mut stream, &mut initial, *timeout).await?
        }
    };
    let protocol = match speaks {
        Speaks::Framed(p) => p,
        Speaks::Http => {
            return strait_codec_http::serve_connection(
                stream,
                initial.freeze(),
                peer,
                http.handler.clone(),
                http.options.clone(),
                listener.shutdown.clone(),
            )
            .await
            .map_err(|e| e.to_string());
        }
    };
    let handler = Arc::new(Forwarder {
        listener: name.clone(),
        protocol: protocol.clone(),
        routes: listener.config.routes.clone(),
        pipeline: listener.pipeline.clone(),
    });
    let options = DownstreamOptions {
        limits: Limits {
            max_frame_size: listener.config.max_frame_size,
        },
        max_in_flight: listener.config.max_requests_per_connection,
    };
    let (rd, wr) = stream.into_split();
    downstream::serve(
        rd,
        wr,
        initial,
        protocol,
        handler,
        options,
        listener.shutdown.clone(),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Reads until HTTP (checked first: its methods and preface are text a binary
/// protocol's magic never starts with) or one registered protocol, in registration
/// order, claims the prefix.
async fn detect(
    registry: &Registry,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<Speaks, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match strait_codec_http::detect(buf) {
            Detect::Match => return Ok(Speaks::Http),
            Detect::NeedMore if !buf.is_empty() && buf.len() < MAX_DETECT_BYTES => {}
            _ => match registry.detect(buf) {
                Ok(p) => return Ok(Speaks::Framed(p.clone())),
                Err(Detect::NoMatch) => {
                    return Err("no protocol matches the first bytes".into());
                }
                Err(_) if buf.len() >= MAX_DETECT_BYTES => {
                    return Err("undecided after the detection limit".into());
                }
                Err(_) => {}
            },
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
