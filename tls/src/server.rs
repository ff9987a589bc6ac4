//! A listener's TLS: certificates chosen by SNI, ALPN, a minimum version, and client
//! certificates checked against a CA bundle and an optional SAN allow-list.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::files::{CertificateExpiry, Contents, not_after, subject_alt_names};
use crate::material::{Loaded, Material};
use crate::stats::{FailureReason, TlsStats};
use crate::{ServerStream, TlsError, TlsVersion, provider};

/// One certificate a listener serves, and the server names (SNI) it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// The PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The PEM private key.
    pub key_file: PathBuf,
    /// Server names this certificate is chosen for (`*.example.com` matches one label).
    /// Empty: the default certificate, served when no other one's names match.
    pub server_names: Vec<String>,
}

/// What a listener's `tls:` block says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsSettings {
    /// The certificates, at least one.
    pub certificates: Vec<CertificateFiles>,
    /// ALPN protocols offered, in preference order (`h2`, `http/1.1`); empty: none.
    pub alpn: Vec<String>,
    /// The lowest TLS version accepted.
    pub min_version: TlsVersion,
    /// CA bundle client certificates are verified against (mTLS).
    pub client_ca_file: Option<PathBuf>,
    /// Refuse clients without a certificate (needs `client_ca_file`).
    pub require_client_certificate: bool,
    /// When not empty, a client certificate must carry one of these subject
    /// alternative names (a SPIFFE URI, a DNS name, an IP address).
    pub allowed_sans: Vec<String>,
    /// Bound on a handshake.
    pub handshake_timeout: Duration,
}

impl ServerTlsSettings {
    fn files(&self) -> impl Iterator<Item = &Path> {
        self.certificates
            .iter()
            .flat_map(|c| [c.cert_file.as_path(), c.key_file.as_path()])
            .chain(self.client_ca_file.as_deref())
    }
}

/// A listener's TLS context, reloadable while connections use it.
pub struct ServerTls {
    name: String,
    settings: ServerTlsSettings,
    material: Material<rustls::ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the files `settings` names, for the listener `name`.
    pub fn load(name: &str, settings: ServerTlsSettings) -> Result<Arc<Self>, TlsError> {
        let loaded = build(&settings)?;
        Ok(Arc::new(ServerTls {
            name: name.to_string(),
            settings,
            material: Material::new(loaded),
        }))
    }

    /// The settings it was built from.
    pub fn settings(&self) -> &ServerTlsSettings {
        &self.settings
    }

    /// Its listener's name.
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

    /// When each loaded certificate expires.
    pub fn expiry(&self) -> Vec<CertificateExpiry> {
        self.material.expiry()
    }

    /// Bound on a handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.settings.handshake_timeout
    }

    /// Reads the files again and, if they changed, takes them for new handshakes.
    /// Returns whether the material changed; on an error the old material stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let settings = &self.settings;
        self.material
            .reload(settings.files(), |contents| build_from(settings, contents))
    }

    /// Runs the server side of a handshake on `io`, within the handshake timeout,
    /// with the material in force now. Counts the handshake or why it failed.
    pub async fn accept<IO>(&self, io: IO) -> Result<ServerStream<IO>, FailureReason>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.material.config());
        let reason = match tokio::time::timeout(
            self.settings.handshake_timeout,
            acceptor.accept(io),
        )
        .await
        {
            Ok(Ok(stream)) => {
                self.material.stats().handshake();
                return Ok(stream);
            }
            Ok(Err(error)) => FailureReason::of(&error),
            Err(_) => FailureReason::Timeout,
        };
        self.material.stats().failed(reason);
        Err(reason)
    }
}

fn build(settings: &ServerTlsSettings) -> Result<Loaded<rustls::ServerConfig>, TlsError> {
    build_from(settings, Contents::read(settings.files())?)
}

fn build_from(
    settings: &ServerTlsSettings,
    contents: Contents,
) -> Result<Loaded<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let mut named = Vec::new();
    let mut default = None;
    let mut expiry = Vec::new();
    for files in &settings.certificates {
        let chain = contents.chain(&files.cert_file)?;
        let key = contents.key(&files.key_file)?;
        if let Some(not_after) = not_after(&chain[0]) {
            expiry.push(CertificateExpiry {
                file: files.cert_file.clone(),
                not_after,
            });
        }
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| pem_error(&files.key_file, e))?;
        let certified = Arc::new(CertifiedKey::new(chain, signing));
        certified.keys_match().map_err(|e| {
            TlsError::Rustls(format!(
                "{} does not match the certificate {}: {e}",
                files.key_file.display(),
                files.cert_file.display()
            ))
        })?;
        if files.server_names.is_empty() {
            default.get_or_insert_with(|| certified.clone());
        }
        for name in &files.server_names {
            named.push((name.to_ascii_lowercase(), certified.clone()));
        }
    }
    let Some(default) = default.or_else(|| named.first().map(|(_, c)| c.clone())) else {
        return Err(TlsError::Rustls("no certificate".into()));
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(settings.min_version.versions())
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match &settings.client_ca_file {
        Some(ca) => {
            let roots = Arc::new(contents.roots(ca)?);
            let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
            if !settings.require_client_certificate {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| TlsError::Rustls(format!("{}: {e}", ca.display())))?;
            if settings.allowed_sans.is_empty() {
                builder.with_client_cert_verifier(verifier)
            } else {
                builder.with_client_cert_verifier(Arc::new(SanAllowList {
                    inner: verifier,
                    allowed: settings.allowed_sans.clone(),
                }))
            }
        }
        None if settings.require_client_certificate => {
            return Err(TlsError::Rustls(
                "require_client_certificate needs a client_ca_file".into(),
            ));
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(BySni { named, default }));
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

fn pem_error(path: &Path, error: rustls::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        what: format!("unusable private key: {error}"),
    }
}

/// Chooses the certificate by the name the client asked for (SNI).
#[derive(Debug)]
struct BySni {
    /// Lower-cased names (exact, or `*.suffix`) and their certificates.
    named: Vec<(String, Arc<CertifiedKey>)>,
    /// Served when no name matches, or the client sent none.
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(asked) = hello.server_name() else {
            return Some(self.default.clone());
        };
        let asked = asked.to_ascii_lowercase();
        let exact = self.named.iter().find(|(n, _)| *n == asked);
        let wildcard = || {
            let (_, parent) = asked.split_once('.')?;
            self.named
                .iter()
                .find(|(n, _)| n.strip_prefix("*.") == Some(parent))
        };
        let chosen = exact.or_else(wildcard).map(|(_, c)| c);
        Some(chosen.unwrap_or(&self.default).clone())
    }
}

/// A client-certificate verifier that also requires one of the allowed SANs.
#[derive(Debug)]
struct SanAllowList {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for SanAllowList {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let names = subject_alt_names(end_entity);
        if names.iter().any(|n| self.allowed.contains(n)) {
            Ok(verified)
        } else {
            tracing::debug!(sans = ?names, "client certificate has no allowed SAN");
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
