//! Certificates made at test time (feature `test-support`): a CA that issues server
//! and client certificates, valid, expired, or for other names.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A certificate authority for tests.
pub struct Authority {
    params: CertificateParams,
    key: KeyPair,
    /// The CA certificate, PEM.
    pub cert_pem: String,
}

/// A certificate and its key, PEM.
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

/// Paths of an [`Issued`] written to disk.
#[derive(Debug, Clone)]
pub struct IssuedFiles {
    /// The certificate file.
    pub cert: PathBuf,
    /// The key file.
    pub key: PathBuf,
}

/// What an issued certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A server certificate.
    Server,
    /// A client certificate.
    Client,
}

impl Authority {
    /// A new self-signed CA called `name`.
    pub fn new(name: &str) -> Authority {
        // Generation with a fixed algorithm cannot fail short of a broken crypto library.
        let key = KeyPair::generate().expect("generate a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Authority {
            cert_pem: cert.pem(),
            params,
            key,
        }
    }

    /// Issues a certificate for `names` (DNS names, IP addresses, or URIs such as
    /// `spiffe://...`). `expired` makes one whose validity ended yesterday.
    pub fn issue(&self, names: &[&str], usage: Usage, expired: bool) -> Issued {
        let key = KeyPair::generate().expect("generate a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("strait-test"),
        );
        params.subject_alt_names = names
            .iter()
            .map(|n| {
                if let Ok(ip) = n.parse() {
                    SanType::IpAddress(ip)
                } else if n.contains("://") {
                    SanType::URI((*n).try_into().expect("an ASCII URI"))
                } else {
                    SanType::DnsName((*n).try_into().expect("an ASCII name"))
                }
            })
            .collect();
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let now = std::time::SystemTime::now();
        let day = std::time::Duration::from_secs(86_400);
        if expired {
            params.not_before = (now - 30 * day).into();
            params.not_after = (now - day).into();
        } else {
            params.not_before = (now - day).into();
            params.not_after = (now + 365 * day).into();
        }
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params
            .signed_by(&key, &issuer)
            .expect("sign the certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `dir/NAME.pem`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, &self.cert_pem).expect("write the CA certificate");
        path
    }
}

impl Issued {
    /// Writes the certificate and key to `dir/NAME.pem` and `dir/NAME-key.pem`.
    pub fn write(&self, dir: &Path, name: &str) -> IssuedFiles {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}-key.pem"));
        std::fs::write(&cert, &self.cert_pem).expect("write the certificate");
        std::fs::write(&key, &self.key_pem).expect("write the key");
        IssuedFiles { cert, key }
    }
}
