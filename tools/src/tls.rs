//! TLS for the tools' connections (`--tls-ca`): a client that verifies the server
//! against a CA file, and the stream type the tools read and write.

use std::path::PathBuf;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// The TLS flags every tool takes.
#[derive(clap::Args, Debug, Clone)]
pub struct TlsArgs {
    /// Connect over TLS, verifying the server against this CA file (PEM).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// The server name sent (SNI) and verified.
    #[arg(long, default_value = "localhost")]
    pub tls_name: String,
}

/// A connected stream: plain TCP, or TLS (wrapped), as Strait's upstream drivers take it.
pub type Stream = strait_stream::UpstreamIo;

/// A client TLS configuration trusting `ca`; `resumption: false` makes every
/// handshake a full one (a handshake benchmark).
pub fn client_config(
    ca: &std::path::Path,
    resumption: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !resumption {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// Connects to `addr`, over TLS with `config` when given.
pub async fn connect(
    addr: &str,
    config: Option<&(Arc<rustls::ClientConfig>, String)>,
) -> Result<Stream, String> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
    let Some((config, name)) = config else {
        return Ok(Stream::Tcp(tcp));
    };
    let name = ServerName::try_from(name.clone()).map_err(|e| format!("--tls-name: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
    Ok(Stream::Wrapped(Box::new(tls)))
}

impl TlsArgs {
    /// The configuration and server name to connect with, if TLS was asked for.
    pub fn config(&self) -> Result<Option<(Arc<rustls::ClientConfig>, String)>, String> {
        match &self.tls_ca {
            None => Ok(None),
            Some(ca) => Ok(Some((client_config(ca, true)?, self.tls_name.clone()))),
        }
    }
}
