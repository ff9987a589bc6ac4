//! A cluster's TLS: the server name to ask for and verify, the CA bundle, a client
//! certificate for mTLS, ALPN.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::files::{CertificateExpiry, Contents, not_after};
use crate::material::{Loaded, Material};
use crate::stats::{FailureReason, TlsStats};
use crate::{ClientStream, TlsError, provider};

/// What a cluster's `tls:` block says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientTlsSettings {
    /// The name sent as SNI and verified in the server's certificate (default: the
    /// host's IP address).
    pub server_name: Option<String>,
    /// The CA bundle the server's certificate is verified against.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain for mTLS.
    pub cert_file: Option<PathBuf>,
    /// Its private key.
    pub key_file: Option<PathBuf>,
    /// ALPN protocols asked for (`h2` for an HTTP/2 cluster).
    pub alpn: Vec<String>,
    /// Accept any server certificate: no CA, no name check. For tests only.
    pub insecure_skip_verify: bool,
}

impl ClientTlsSettings {
    fn files(&self) -> impl Iterator<Item = &Path> {
        [&self.ca_file, &self.cert_file, &self.key_file]
            .into_iter()
            .filter_map(|f| f.as_deref())
    }
}

/// A cluster's TLS context, reloadable while connections use it.
pub struct ClientTls {
    name: String,
    settings: ClientTlsSettings,
    /// The fixed server name, parsed once.
    server_name: Option<ServerName<'static>>,
    material: Material<rustls::ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Loads the files `settings` names, for the cluster `name`.
    pub fn load(name: &str, settings: ClientTlsSettings) -> Result<Arc<Self>, TlsError> {
        let server_name = match &settings.server_name {
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|e| TlsError::Rustls(format!("server_name {n:?}: {e}")))?,
            ),
            None => None,
        };
        let loaded = build_from(&settings, Contents::read(settings.files())?)?;
        if settings.insecure_skip_verify {
            tracing::warn!(cluster = %name, "TLS insecure_skip_verify: upstream certificates are NOT verified");
        }
        Ok(Arc::new(ClientTls {
            name: name.to_string(),
            settings,
            server_name,
            material: Material::new(loaded),
        }))
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &ClientTlsSettings {
        &self.settings
    }

    /// Its cluster's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every file it reads.
    pub fn files(&self) -> Vec<PathBuf> {
        self.settings.files().map(Path::to_path_buf).collect()
    }

    /// Its counters.
    pub fn stats(&self) -> &TlsStats {
        self.material.stats()
    }

    /// When the loaded client certificate expires.
    pub fn expiry(&self) -> Vec<CertificateExpiry> {
        self.material.expiry()
    }

    /// Reads the files again and, if they changed, takes them for new handshakes.
    /// Returns whether the material changed; on an error the old material stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let settings = &self.settings;
        self.material
            .reload(settings.files(), |contents| build_from(settings, contents))
    }

    /// Runs the client side of a handshake with the host at `addr` over `io`. Counts
    /// the handshake or why it failed; the error says why, for the log.
    pub async fn connect<IO>(
        &self,
        io: IO,
        addr: SocketAddr,
    ) -> Result<ClientStream<IO>, (FailureReason, String)>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
        let connector = tokio_rustls::TlsConnector::from(self.material.config());
        match connector.connect(name, io).await {
            Ok(stream) => {
                self.material.stats().handshake();
                Ok(stream)
            }
            Err(error) => {
                let reason = FailureReason::of(&error);
                self.material.stats().failed(reason);
                Err((reason, error.to_string()))
            }
        }
    }
}

fn build_from(
    settings: &ClientTlsSettings,
    contents: Contents,
) -> Result<Loaded<rustls::ClientConfig>, TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match (&settings.ca_file, settings.insecure_skip_verify) {
        (_, true) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider))),
        (Some(ca), false) => builder.with_root_certificates(contents.roots(ca)?),
        (None, false) => {
            return Err(TlsError::Rustls(
                "a ca_file is needed to verify the upstream (or insecure_skip_verify: true)".into(),
            ));
        }
    };
    let mut expiry = Vec::new();
    let mut config = match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => {
            let chain = contents.chain(cert)?;
            if let Some(not_after) = not_after(&chain[0]) {
                expiry.push(CertificateExpiry {
                    file: cert.clone(),
                    not_after,
                });
            }
            builder
                .with_client_auth_cert(chain, contents.key(key)?)
                .map_err(|e| {
                    TlsError::Rustls(format!("{} and {}: {e}", cert.display(), key.display()))
                })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(TlsError::Rustls(
                "cert_file and key_file go together".into(),
            ));
        }
    };
    config.alpn_protocols = settings
        .alpn
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    Ok(Loaded {
        config: Arc::new(config),
        contents,
        expiry,
    })
}

/// Accepts any server certificate (`insecure_skip_verify`), still checking that the
/// handshake is signed by the key of the certificate presented.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
