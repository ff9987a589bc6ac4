//! The one way every pool and health check reaches a host: TCP, `TCP_NODELAY`, then
//! the cluster's TLS handshake when it has TLS.

use std::net::SocketAddr;

use strait_stream::UpstreamIo;
use strait_tls::ClientTls;
use tokio::net::TcpStream;

/// Connects to `addr`, over TLS when `tls` is set. The error says what failed, for the
/// log.
pub(crate) async fn connect(
    addr: SocketAddr,
    tls: Option<&ClientTls>,
) -> Result<UpstreamIo, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    // Requests and answers are written whole: no Nagle delay on the last segment.
    let _ = stream.set_nodelay(true);
    match tls {
        None => Ok(UpstreamIo::Tcp(stream)),
        Some(tls) => match tls.connect(stream, addr).await {
            Ok(stream) => Ok(UpstreamIo::Wrapped(Box::new(stream))),
            Err((_, error)) => Err(format!("TLS handshake with {addr}: {error}")),
        },
    }
}
