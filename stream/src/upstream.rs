//! A multiplexed client connection to one upstream host.
//!
//! The connection owns its own request-id space: each request forwarded over it gets a
//! fresh id (wrapping at the protocol's id width and skipping ids still in flight), and
//! the response is matched back through an in-flight map. Many downstream connections
//! share a few of these.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use strait_codec_framework::{
    CodecError, DecodeError, Frame, FrameKind, Limits, Protocol, RequestId,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

/// Why a request sent upstream got no response.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The connection closed (or was closed) with the request in flight.
    #[error("upstream connection reset")]
    Reset,
    /// The connection is closed or going away: the request was not sent.
    #[error("upstream connection closed")]
    Closed,
    /// No response within the deadline.
    #[error("upstream timed out")]
    Timeout,
    /// The request could not be encoded.
    #[error("encoding request: {0}")]
    Encode(CodecError),
    /// Every id of the connection's id space is in flight.
    #[error("request id space exhausted")]
    IdsExhausted,
}

/// Settings of an upstream connection.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamOptions {
    /// Codec limits for responses.
    pub limits: Limits,
    /// Send the protocol's heartbeat after this much idle time (`None`: never).
    pub heartbeat_interval: Option<Duration>,
    /// Close the connection after this many heartbeats in a row went unanswered.
    pub heartbeat_max_failures: u32,
    /// Encoded requests queued for the writer before senders wait.
    pub write_queue: usize,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            limits: Limits::default(),
            heartbeat_interval: None,
            heartbeat_max_failures: 3,
            write_queue: 1024,
        }
    }
}

type Reply = oneshot::Sender<Result<Box<dyn Frame>, UpstreamError>>;

struct Shared {
    protocol: Arc<dyn Protocol>,
    peer: SocketAddr,
    next_id: AtomicU64,
    in_flight: Mutex<HashMap<RequestId, Reply>>,
    open: AtomicBool,
    /// Milliseconds since `epoch` of the last frame read or written; drives keepalive.
    last_activity: AtomicU64,
    epoch: Instant,
    close: Notify,
    unknown_responses: AtomicU64,
}

/// A handle to one multiplexed upstream connection. Cloning is cheap; all clones share
/// the connection. The connection lives until the peer closes it, an I/O error, failed
/// keepalives, or [`UpstreamConnection::close`].
#[derive(Clone)]
pub struct UpstreamConnection {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Bytes>,
}

impl UpstreamConnection {
    /// Connects to `peer` and starts the connection's reader, writer and keepalive.
    pub async fn connect(
        peer: SocketAddr,
        protocol: Arc<dyn Protocol>,
        options: UpstreamOptions,
        connect_timeout: Duration,
    ) -> std::io::Result<Self> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(peer))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"))??;
        stream.set_nodelay(true)?;
        Ok(Self::start(stream, peer, protocol, options))
    }

    /// Runs the connection over an already connected stream.
    pub fn start(
        stream: TcpStream,
        peer: SocketAddr,
        protocol: Arc<dyn Protocol>,
        options: UpstreamOptions,
    ) -> Self {
        let (tx, rx) = mpsc::channel(options.write_queue.max(1));
        let shared = Arc::new(Shared {
            protocol,
            peer,
            next_id: AtomicU64::new(1),
            in_flight: Mutex::new(HashMap::new()),
            open: AtomicBool::new(true),
            last_activity: AtomicU64::new(0),
            epoch: Instant::now(),
            close: Notify::new(),
            unknown_responses: AtomicU64::new(0),
        });
        let conn = UpstreamConnection { shared, tx };
        let (rd, wr) = stream.into_split();
        tokio::spawn(conn.clone().run(rd, wr, rx, options));
        conn
    }

    /// The address of the upstream host.
    pub fn peer(&self) -> SocketAddr {
        self.shared.peer
    }

    /// Whether new requests may be sent on this connection.
    pub fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Requests currently awaiting a response.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.lock().len()
    }

    /// Responses received for ids that were no longer pending (late or unknown).
    pub fn unknown_responses(&self) -> u64 {
        self.shared.unknown_responses.load(Ordering::Relaxed)
    }

    /// Closes the connection; requests in flight fail with [`UpstreamError::Reset`].
    pub fn close(&self) {
        self.shared.open.store(false, Ordering::Release);
        self.shared.close.notify_one();
    }

    /// Sends `request` with a fresh upstream id and waits for its response, at most
    /// `timeout`. The request's own id is restored before returning, whatever happens.
    pub async fn call(
        &self,
        request: &mut dyn Frame,
        timeout: Duration,
    ) -> Result<Box<dyn Frame>, UpstreamError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let id = self.register(reply_tx)?;
        if let Err(e) = self.send_with_id(request, id).await {
            self.shared.in_flight.lock().remove(&id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, reply_rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(UpstreamError::Reset),
            Err(_) => {
                // A late response for this id will find nothing and be counted.
                self.shared.in_flight.lock().remove(&id);
                Err(UpstreamError::Timeout)
            }
        }
    }

    /// Sends a oneway request: nothing is registered and nothing will be awaited.
    pub async fn send_oneway(&self, request: &mut dyn Frame) -> Result<(), UpstreamError> {
        let id = self.next_free_id(&self.shared.in_flight.lock())?;
        self.send_with_id(request, id).await
    }

    fn register(&self, reply: Reply) -> Result<RequestId, UpstreamError> {
        if !self.is_open() {
            return Err(UpstreamError::Closed);
        }
        let mut map = self.shared.in_flight.lock();
        let id = self.next_free_id(&map)?;
        map.insert(id, reply);
        Ok(id)
    }

    /// The next id in the protocol's id space that is not in flight. The counter wraps
    /// explicitly at the id width (Bolt: u32::MAX → 0).
    fn next_free_id(
        &self,
        in_flight: &HashMap<RequestId, Reply>,
    ) -> Result<RequestId, UpstreamError> {
        let width = self.shared.protocol.id_width();
        for _ in 0..in_flight.len() + 1 {
            let id = self
                .shared
                .next_id
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |id| {
                    Some(width.next(id))
                })
                // The closure always returns Some, so fetch_update cannot fail.
                .unwrap_or_else(|id| id);
            if !in_flight.contains_key(&id) {
                return Ok(id);
            }
        }
        Err(UpstreamError::IdsExhausted)
    }

    async fn send_with_id(
        &self,
        request: &mut dyn Frame,
        id: RequestId,
    ) -> Result<(), UpstreamError> {
        let original = request.request_id();
        request.set_request_id(id);
        let mut buf = BytesMut::new();
        let encoded = request.encode(&mut buf);
        request.set_request_id(original);
        encoded.map_err(UpstreamError::Encode)?;
        self.tx
            .send(buf.freeze())
            .await
            .map_err(|_| UpstreamError::Closed)
    }

    fn touch(&self) {
        let ms = self.shared.epoch.elapsed().as_millis() as u64;
        self.shared.last_activity.store(ms, Ordering::Relaxed);
    }

    async fn run(
        self,
        rd: OwnedReadHalf,
        wr: OwnedWriteHalf,
        rx: mpsc::Receiver<Bytes>,
        options: UpstreamOptions,
    ) {
        let reason = tokio::select! {
            r = self.read_loop(rd, options.limits) => r,
            r = self.write_loop(wr, rx) => r,
            r = self.keepalive_loop(options) => r,
            _ = self.shared.close.notified() => "closed by the proxy".to_string(),
        };
        self.shared.open.store(false, Ordering::Release);
        let pending: Vec<Reply> = self
            .shared
            .in_flight
            .lock()
            .drain()
            .map(|(_, r)| r)
            .collect();
        tracing::debug!(peer = %self.shared.peer, %reason, failed = pending.len(), "upstream connection ended");
        for reply in pending {
            let _ = reply.send(Err(UpstreamError::Reset));
        }
    }

    async fn read_loop(&self, mut rd: OwnedReadHalf, limits: Limits) -> String {
        let mut codec = self.shared.protocol.new_codec(limits);
        let mut buf = BytesMut::with_capacity(16 * 1024);
        loop {
            buf.reserve(16 * 1024);
            match rd.read_buf(&mut buf).await {
                Ok(0) => return "upstream closed the connection".into(),
                Ok(_) => {}
                Err(e) => return format!("read error: {e}"),
            }
            self.touch();
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(frame)) => self.dispatch(frame).await,
                    Ok(None) => break,
                    Err(DecodeError::Rejected { error, .. }) => {
                        tracing::warn!(peer = %self.shared.peer, %error, "dropping malformed upstream frame");
                    }
                    Err(DecodeError::Fatal(error)) => return format!("decode error: {error}"),
                }
            }
        }
    }

    async fn dispatch(&self, frame: Box<dyn Frame>) {
        match frame.kind() {
            FrameKind::Response | FrameKind::HeartbeatAck => {
                let reply = self.shared.in_flight.lock().remove(&frame.request_id());
                match reply {
                    Some(reply) => {
                        let _ = reply.send(Ok(frame));
                    }
                    None => {
                        self.shared
                            .unknown_responses
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(
                            id = frame.request_id(),
                            "response for an id not in flight"
                        );
                    }
                }
            }
            FrameKind::Heartbeat => {
                // The upstream probes us: answer it like any peer would.
                if let Some(reply) = self.shared.protocol.heartbeat_reply(&*frame) {
                    let mut buf = BytesMut::new();
                    if reply.encode(&mut buf).is_ok() {
                        let _ = self.tx.send(buf.freeze()).await;
                    }
                }
            }
            FrameKind::GoAway => {
                // No new requests; those in flight may still be answered.
                self.shared.open.store(false, Ordering::Release);
            }
            FrameKind::Request | FrameKind::Oneway => {
                tracing::debug!("ignoring request sent by an upstream");
            }
        }
    }

    async fn write_loop(&self, mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) -> String {
        let mut batch = BytesMut::with_capacity(64 * 1024);
        while let Some(first) = rx.recv().await {
            batch.extend_from_slice(&first);
            // Coalesce whatever else is queued into one write.
            while batch.len() < 64 * 1024 {
                match rx.try_recv() {
                    Ok(more) => batch.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if let Err(e) = wr.write_all(&batch).await {
                return format!("write error: {e}");
            }
            batch.clear();
            self.touch();
        }
        "all senders dropped".into()
    }

    async fn keepalive_loop(&self, options: UpstreamOptions) -> String {
        let Some(interval) = options.heartbeat_interval else {
            return std::future::pending().await;
        };
        let mut failures = 0u32;
        loop {
            tokio::time::sleep(interval).await;
            let idle_ms = (self.shared.epoch.elapsed().as_millis() as u64)
                .saturating_sub(self.shared.last_activity.load(Ordering::Relaxed));
            if idle_ms < interval.as_millis() as u64 {
                continue;
            }
            let Some(ok) = self.heartbeat(interval).await else {
                return std::future::pending().await; // the protocol has no keepalive
            };
            if ok {
                failures = 0;
            } else {
                failures += 1;
                if failures >= options.heartbeat_max_failures.max(1) {
                    return format!("{failures} heartbeats unanswered");
                }
            }
        }
    }

    /// Sends one heartbeat; `None` if the protocol has none, else whether it was acked.
    async fn heartbeat(&self, timeout: Duration) -> Option<bool> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let id = self.register(reply_tx).ok()?;
        let Some(mut probe) = self.shared.protocol.heartbeat_request(id) else {
            self.shared.in_flight.lock().remove(&id);
            return None;
        };
        let mut buf = BytesMut::new();
        probe.set_request_id(id);
        if probe.encode(&mut buf).is_err() || self.tx.send(buf.freeze()).await.is_err() {
            self.shared.in_flight.lock().remove(&id);
            return Some(false);
        }
        let acked = matches!(
            tokio::time::timeout(timeout, reply_rx).await,
            Ok(Ok(Ok(ref f))) if f.kind() == FrameKind::HeartbeatAck
        );
        if !acked {
            self.shared.in_flight.lock().remove(&id);
        }
        Some(acked)
    }
}
