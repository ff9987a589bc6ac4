//! TLS for Strait's listeners and clusters, shared by every protocol: a listener's
//! [`ServerTls`] terminates TLS before protocol detection, a cluster's [`ClientTls`]
//! originates it under every connection the cluster's pools open. Both are built from
//! PEM files, keep the material they last loaded, and reload it when a [`Rotation`]
//! sees the files change: new handshakes take the new material at once, established
//! connections keep theirs.

mod client;
mod files;
mod material;
mod server;
mod stats;
#[cfg(feature = "test-support")]
pub mod test_certs;
mod watch;

use std::path::PathBuf;

pub use client::{ClientTls, ClientTlsSettings};
pub use files::CertificateExpiry;
pub use server::{CertificateFiles, ServerTls, ServerTlsSettings};
pub use stats::{FailureReason, TlsStats};
pub use watch::Rotation;

/// The TLS stream of an accepted downstream connection.
pub type ServerStream<IO> = tokio_rustls::server::TlsStream<IO>;
/// The TLS stream of an upstream connection.
pub type ClientStream<IO> = tokio_rustls::client::TlsStream<IO>;

/// The lowest TLS version a context accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl TlsVersion {
    /// As written in configuration: `"1.2"` or `"1.3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }

    /// Parses `"1.2"` or `"1.3"` (`TLSv1.2` and `TLSv1_3` spellings too).
    pub fn parse(text: &str) -> Option<Self> {
        let digits = text
            .trim_start_matches("TLSv")
            .trim_start_matches("tlsv")
            .replace('_', ".");
        match digits.as_str() {
            "1.2" => Some(TlsVersion::Tls12),
            "1.3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    fn versions(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        match self {
            TlsVersion::Tls12 => rustls::ALL_VERSIONS,
            TlsVersion::Tls13 => &TLS13_ONLY,
        }
    }
}

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind needed.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        what: String,
    },
    /// rustls refused the combination (a key that does not match its certificate...).
    #[error("{0}")]
    Rustls(String),
}

/// The process-wide crypto provider (aws-lc-rs), which every configuration names
/// explicitly so nothing depends on a global default being installed.
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<std::sync::Arc<rustls::crypto::CryptoProvider>> =
        std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}
