use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use strait_codec_framework::Protocol;
use strait_stream::{UpstreamConnection, UpstreamOptions};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::lb::LbHost;

/// One upstream endpoint and its pool of multiplexed connections.
pub struct Host {
    addr: SocketAddr,
    weight: u32,
    slots: Vec<Slot>,
    next_slot: AtomicUsize,
    in_flight: AtomicUsize,
    backoff: Mutex<Backoff>,
    requests: AtomicU64,
    failures: AtomicU64,
}

/// One connection position in a host's pool; reconnected when its connection dies.
struct Slot {
    conn: Mutex<Option<UpstreamConnection>>,
    /// Serialises connection attempts for this slot, so a burst of requests finding it
    /// empty makes one connection, not many.
    connecting: tokio::sync::Mutex<()>,
}

/// Why no connection could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectError {
    /// The host failed recently and is waiting out its backoff.
    BackingOff,
    /// The attempt failed (refused, unreachable, timed out).
    Failed,
}

impl Host {
    pub(crate) fn new(addr: SocketAddr, weight: u32, connections: usize) -> Self {
        Host {
            addr,
            weight,
            slots: (0..connections.max(1))
                .map(|_| Slot {
                    conn: Mutex::new(None),
                    connecting: tokio::sync::Mutex::new(()),
                })
                .collect(),
            next_slot: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            backoff: Mutex::new(Backoff::default()),
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// The host's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host's load-balancing weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// Requests sent to this host and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Whether the host may be picked: it is not waiting out a connect backoff.
    pub fn available(&self) -> bool {
        self.backoff.lock().ready(Instant::now())
    }

    /// Open connections in the pool.
    pub fn open_connections(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.conn.lock().as_ref().is_some_and(|c| c.is_open()))
            .count()
    }

    pub(crate) fn record(&self, failed: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn counters(&self) -> (u64, u64, u32) {
        (
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            self.backoff.lock().failures(),
        )
    }

    /// Counts a request in flight until the guard drops.
    pub(crate) fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// A connection from the pool (slots taken round robin), connecting on demand.
    pub(crate) async fn connection(
        self: &Arc<Self>,
        protocol: &Arc<dyn Protocol>,
        options: UpstreamOptions,
        connect_timeout: Duration,
    ) -> Result<UpstreamConnection, ConnectError> {
        let index = self.next_slot.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[index];
        if let Some(conn) = slot.open() {
            return Ok(conn);
        }
        // Another slot may be open: use it rather than wait, and fill this one in the
        // background so the pool grows to its configured size.
        if let Some(conn) = self.slots.iter().find_map(Slot::open) {
            if slot.connecting.try_lock().is_err() || !self.available() {
                return Ok(conn); // a fill is under way, or the host is backing off
            }
            let host = self.clone();
            let protocol = protocol.clone();
            tokio::spawn(async move {
                let _ = host
                    .fill(&host.slots[index], &protocol, options, connect_timeout)
                    .await;
            });
            return Ok(conn);
        }
        self.fill(slot, protocol, options, connect_timeout).await
    }

    /// Connects every empty slot (used ahead of time, and by the maintenance task).
    pub(crate) async fn fill_all(
        &self,
        protocol: &Arc<dyn Protocol>,
        options: UpstreamOptions,
        connect_timeout: Duration,
    ) {
        for slot in &self.slots {
            if slot.open().is_none() && self.available() {
                let _ = self.fill(slot, protocol, options, connect_timeout).await;
            }
        }
    }

    async fn fill(
        &self,
        slot: &Slot,
        protocol: &Arc<dyn Protocol>,
        options: UpstreamOptions,
        connect_timeout: Duration,
    ) -> Result<UpstreamConnection, ConnectError> {
        let _guard = slot.connecting.lock().await;
        if let Some(conn) = slot.open() {
            return Ok(conn); // someone else connected while we waited
        }
        if !self.available() {
            return Err(ConnectError::BackingOff);
        }
        match UpstreamConnection::connect(self.addr, protocol.clone(), options, connect_timeout)
            .await
        {
            Ok(conn) => {
                self.backoff.lock().succeeded();
                *slot.conn.lock() = Some(conn.clone());
                Ok(conn)
            }
            Err(error) => {
                tracing::debug!(addr = %self.addr, %error, "upstream connect failed");
                self.backoff.lock().failed(Instant::now());
                Err(ConnectError::Failed)
            }
        }
    }

    /// Closes every pooled connection.
    pub(crate) fn close_all(&self) {
        for slot in &self.slots {
            if let Some(conn) = slot.conn.lock().take() {
                conn.close();
            }
        }
    }
}

impl Slot {
    fn open(&self) -> Option<UpstreamConnection> {
        self.conn.lock().as_ref().filter(|c| c.is_open()).cloned()
    }
}

/// Decrements a host's in-flight count when dropped.
pub(crate) struct InFlight(Arc<Host>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LbHost for Host {
    fn weight(&self) -> u32 {
        self.weight
    }
    fn healthy(&self) -> bool {
        self.available()
    }
    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}
