//! Tunnelling an upgraded connection (WebSocket...) after a `101`.

use crate::http::upgrade::{OnUpgrade, UpgradeError};

/// Why a tunnel ended abnormally.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    /// One side never completed its upgrade.
    #[error("upgrade failed: {0}")]
    Upgrade(#[from] UpgradeError),
    /// Copying failed.
    #[error("tunnel I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Waits for both sides of an upgrade (the downstream request's and the upstream
/// response's [`OnUpgrade`]) and copies bytes both ways until both sides have closed
/// (a side's end of stream is passed on as a write shutdown). Returns the bytes copied
/// downstream → upstream and upstream → downstream.
pub async fn tunnel(downstream: OnUpgrade, upstream: OnUpgrade) -> Result<(u64, u64), TunnelError> {
    let (mut downstream, mut upstream) = tokio::try_join!(downstream, upstream)?;
    Ok(tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await?)
}
