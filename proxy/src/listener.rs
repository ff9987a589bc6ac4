//! Accepting downstream connections and choosing their protocol.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use strait_codec_framework::{Detect, Limits, Protocol, Registry};
use strait_stream::downstream::{self, DownstreamOptions};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::config::{ListenerConfig, ListenerProtocol};
use crate::forward::{Clusters, Forwarder};
use crate::server::Connections;

/// Enough bytes to tell every registered protocol apart (the HTTP/2 preface is 24).
const MAX_DETECT_BYTES: usize = 64;

pub(crate) struct Listener {
    pub(crate) config: ListenerConfig,
    pub(crate) registry: Arc<Registry>,
    pub(crate) clusters: Arc<Clusters>,
    pub(crate) connections: Arc<Connections>,
    pub(crate) shutdown: watch::Receiver<bool>,
}

pub(crate) async fn accept_loop(listener: Listener, socket: TcpListener) {
    let listener = Arc::new(listener);
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
        let guard = listener.connections.enter();
        tokio::spawn(async move {
            let _guard = guard;
            if let Err(error) = serve_connection(&listener, stream).await {
                tracing::debug!(%peer, listener = %listener.config.name, %error, "downstream connection closed");
            }
        });
    }
}

async fn serve_connection(listener: &Listener, mut stream: TcpStream) -> Result<(), String> {
    let mut initial = BytesMut::new();
    let protocol: Arc<dyn Protocol> = match &listener.config.protocol {
        ListenerProtocol::Fixed(p) => p.clone(),
        ListenerProtocol::Http => return Err("HTTP listeners are not served yet".into()),
        ListenerProtocol::Auto { timeout } => {
            detect(&listener.registry, &mut stream, &mut initial, *timeout).await?
        }
    };
    let handler = Arc::new(Forwarder {
        protocol: protocol.clone(),
        routes: listener.config.routes.clone(),
        clusters: listener.clusters.clone(),
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

/// Reads until one registered protocol claims the prefix, in registration order.
async fn detect(
    registry: &Registry,
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<Arc<dyn Protocol>, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match registry.detect(buf) {
            Ok(p) => return Ok(p.clone()),
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
