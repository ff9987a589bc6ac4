//! Reading PEM files: certificate chains, private keys, CA bundles, and what the
//! metrics and checks read out of a certificate (expiry, subject alternative names).

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// The bytes of every file a context was built from, to tell a real change from an
/// event that left the contents as they were (Kubernetes touches many files at once).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Contents(Vec<(PathBuf, Vec<u8>)>);

impl Contents {
    /// Reads `paths`, in order.
    pub(crate) fn read<'a>(paths: impl Iterator<Item = &'a Path>) -> Result<Self, TlsError> {
        let mut files = Vec::new();
        for path in paths {
            let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            files.push((path.to_path_buf(), bytes));
        }
        Ok(Contents(files))
    }

    fn bytes(&self, path: &Path) -> &[u8] {
        self.0
            .iter()
            .find(|(p, _)| p == path)
            .map_or(&[][..], |(_, b)| b.as_slice())
    }

    /// The certificate chain in `path` (leaf first).
    pub(crate) fn chain(&self, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let chain = CertificateDer::pem_slice_iter(self.bytes(path))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(path, format!("not a PEM certificate file: {e}")))?;
        if chain.is_empty() {
            return Err(pem_error(path, "holds no CERTIFICATE block".into()));
        }
        Ok(chain)
    }

    /// The private key in `path` (PKCS#8, PKCS#1 or SEC1).
    pub(crate) fn key(&self, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(self.bytes(path))
            .map_err(|e| pem_error(path, format!("holds no usable private key: {e}")))
    }

    /// The trust anchors in the CA bundle `path`.
    pub(crate) fn roots(&self, path: &Path) -> Result<rustls::RootCertStore, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in self.chain(path)? {
            roots
                .add(cert)
                .map_err(|e| pem_error(path, format!("not a usable CA certificate: {e}")))?;
        }
        Ok(roots)
    }
}

fn pem_error(path: &Path, what: String) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        what,
    }
}

/// When one loaded certificate stops being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateExpiry {
    /// The file it came from.
    pub file: PathBuf,
    /// Its `notAfter`, in seconds since the Unix epoch.
    pub not_after: i64,
}

/// The `notAfter` of a DER certificate, if it parses.
pub(crate) fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

/// The subject alternative names of a DER certificate, as written in an allow-list:
/// DNS names and URIs (SPIFFE ids) as they are, IP addresses in their usual notation.
pub(crate) fn subject_alt_names(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(n) | GeneralName::URI(n) | GeneralName::RFC822Name(n) => {
                Some((*n).to_string())
            }
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::Ipv4Addr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*bytes)
                    .ok()
                    .map(|b| std::net::Ipv6Addr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}
