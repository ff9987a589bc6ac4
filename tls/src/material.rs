//! [`Material`]: what a TLS context has in force, and its reload when files change.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::TlsError;
use crate::files::{CertificateExpiry, Contents};
use crate::stats::TlsStats;

/// A rustls configuration (`C`: server or client) and what it was built from.
pub(crate) struct Loaded<C> {
    pub(crate) config: Arc<C>,
    pub(crate) contents: Contents,
    pub(crate) expiry: Vec<CertificateExpiry>,
}

/// The material a context uses for new handshakes, replaced whole by a reload, and the
/// context's counters.
pub(crate) struct Material<C> {
    loaded: ArcSwap<Loaded<C>>,
    stats: TlsStats,
}

impl<C> Material<C> {
    pub(crate) fn new(loaded: Loaded<C>) -> Self {
        Material {
            loaded: ArcSwap::from_pointee(loaded),
            stats: TlsStats::default(),
        }
    }

    /// The configuration for the next handshake.
    pub(crate) fn config(&self) -> Arc<C> {
        self.loaded.load().config.clone()
    }

    pub(crate) fn expiry(&self) -> Vec<CertificateExpiry> {
        self.loaded.load().expiry.clone()
    }

    pub(crate) fn stats(&self) -> &TlsStats {
        &self.stats
    }

    /// Reads `files` again and, if their contents changed, builds new material from
    /// them with `build`. Returns whether it changed; on an error the old material
    /// stays (and the failure is counted).
    pub(crate) fn reload<'a>(
        &self,
        files: impl Iterator<Item = &'a Path>,
        build: impl FnOnce(Contents) -> Result<Loaded<C>, TlsError>,
    ) -> Result<bool, TlsError> {
        let contents = Contents::read(files)?;
        if contents == self.loaded.load().contents {
            return Ok(false);
        }
        match build(contents) {
            Ok(loaded) => {
                self.loaded.store(Arc::new(loaded));
                self.stats.rotated(true);
                Ok(true)
            }
            Err(error) => {
                self.stats.rotated(false);
                Err(error)
            }
        }
    }
}
