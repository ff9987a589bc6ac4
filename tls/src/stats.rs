//! Counts of one TLS context: handshakes, failed handshakes by reason, rotations.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a handshake failed, as a bounded label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The peer did not speak TLS (a plaintext client on a TLS port).
    NotTls,
    /// The client sent no certificate where one is required.
    NoClientCertificate,
    /// The peer's certificate is not signed by a trusted CA.
    UntrustedCertificate,
    /// The peer's certificate expired (or is not valid yet).
    ExpiredCertificate,
    /// The peer's certificate does not name what was expected (server name, allowed SANs).
    WrongName,
    /// Some other problem with the peer's certificate.
    BadCertificate,
    /// No TLS version, cipher suite or ALPN protocol in common.
    NoCommonParameters,
    /// The peer sent an alert (it refused our certificate, say).
    PeerAlert,
    /// The handshake did not finish in time.
    Timeout,
    /// The connection failed or closed during the handshake, or anything else.
    Other,
}

impl FailureReason {
    /// Every reason, in label order.
    pub const ALL: [FailureReason; 10] = [
        FailureReason::NotTls,
        FailureReason::NoClientCertificate,
        FailureReason::UntrustedCertificate,
        FailureReason::ExpiredCertificate,
        FailureReason::WrongName,
        FailureReason::BadCertificate,
        FailureReason::NoCommonParameters,
        FailureReason::PeerAlert,
        FailureReason::Timeout,
        FailureReason::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::NotTls => "not_tls",
            FailureReason::NoClientCertificate => "no_client_certificate",
            FailureReason::UntrustedCertificate => "untrusted_certificate",
            FailureReason::ExpiredCertificate => "expired_certificate",
            FailureReason::WrongName => "wrong_name",
            FailureReason::BadCertificate => "bad_certificate",
            FailureReason::NoCommonParameters => "no_common_parameters",
            FailureReason::PeerAlert => "peer_alert",
            FailureReason::Timeout => "timeout",
            FailureReason::Other => "other",
        }
    }

    /// The reason behind a failed handshake's I/O error.
    pub(crate) fn of(error: &std::io::Error) -> FailureReason {
        use rustls::{CertificateError, Error, PeerMisbehaved};
        let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
            return match error.kind() {
                std::io::ErrorKind::TimedOut => FailureReason::Timeout,
                _ => FailureReason::Other,
            };
        };
        match tls {
            Error::InvalidMessage(_) | Error::InappropriateMessage { .. } => FailureReason::NotTls,
            Error::NoCertificatesPresented => FailureReason::NoClientCertificate,
            Error::InvalidCertificate(cert) => match cert {
                CertificateError::UnknownIssuer
                | CertificateError::BadSignature
                | CertificateError::UnknownRevocationStatus => FailureReason::UntrustedCertificate,
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => FailureReason::ExpiredCertificate,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. }
                | CertificateError::ApplicationVerificationFailure => FailureReason::WrongName,
                _ => FailureReason::BadCertificate,
            },
            Error::PeerIncompatible(_) | Error::NoApplicationProtocol => {
                FailureReason::NoCommonParameters
            }
            Error::PeerMisbehaved(PeerMisbehaved::TooManyEmptyFragments) => FailureReason::NotTls,
            Error::AlertReceived(_) => FailureReason::PeerAlert,
            _ => FailureReason::Other,
        }
    }
}

/// One TLS context's counters (a listener's or a cluster's).
#[derive(Debug, Default)]
pub struct TlsStats {
    handshakes: AtomicU64,
    failures: [AtomicU64; FailureReason::ALL.len()],
    rotations: AtomicU64,
    rotation_failures: AtomicU64,
}

impl TlsStats {
    pub(crate) fn handshake(&self) {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self, reason: FailureReason) {
        let i = FailureReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(FailureReason::ALL.len() - 1);
        self.failures[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn rotated(&self, ok: bool) {
        let counter = if ok {
            &self.rotations
        } else {
            &self.rotation_failures
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Handshakes completed.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// Failed handshakes, by reason.
    pub fn failures(&self) -> impl Iterator<Item = (FailureReason, u64)> + '_ {
        FailureReason::ALL
            .iter()
            .zip(&self.failures)
            .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
    }

    /// Times changed files were loaded, and times they failed to load (the old
    /// material then stayed in use).
    pub fn rotations(&self) -> (u64, u64) {
        (
            self.rotations.load(Ordering::Relaxed),
            self.rotation_failures.load(Ordering::Relaxed),
        )
    }
}
