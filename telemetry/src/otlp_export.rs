//! The OTLP/gRPC exporter: requests append their encoded spans to one shared buffer,
//! and one task sends what it holds in batches (`TraceService/Export`) over one HTTP/2
//! connection it keeps, made with the `h2` crate like every other HTTP/2 connection of
//! Strait.
//!
//! A request's spans are written straight into the buffer, under a lock held for the
//! writing: no allocation, no channel and no wake-up per request. The task is woken
//! when [`BATCH`] spans wait, and looks every [`FLUSH_DELAY`] otherwise, so a lightly
//! sampled stream of requests costs one call now and then. Past [`MAX_PENDING`] spans
//! (a collector that is down or slow), new spans are dropped and counted. A call that
//! fails or outlasts [`EXPORT_TIMEOUT`] is counted and its spans dropped; the next
//! batch connects afresh.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::otlp_encode::{export_prefix, export_prefix_room};
use crate::tracer::TracerStats;

/// Spans that wake the export task.
pub(crate) const BATCH: usize = 512;
/// Spans waiting for export before new ones are dropped.
pub(crate) const MAX_PENDING: usize = 8192;
/// How often the export task looks for spans when fewer than [`BATCH`] wait.
pub(crate) const FLUSH_DELAY: Duration = Duration::from_millis(500);
/// Bound on one export call, its connect included (a blackholed collector).
pub(crate) const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Where requests leave their encoded spans for the export task.
#[derive(Debug)]
pub(crate) struct SpanBuffer {
    pending: Mutex<Pending>,
    /// Room for the message's prefix at the front of every batch.
    room: usize,
    wake: Notify,
    stats: Arc<TracerStats>,
}

#[derive(Debug)]
struct Pending {
    /// `room` bytes, then the spans ([`crate::otlp_encode::span`] entries).
    bytes: Vec<u8>,
    spans: usize,
    /// Whether the task was woken for this batch already.
    woken: bool,
}

impl SpanBuffer {
    /// An empty buffer whose batches start with `room` bytes for their prefix.
    fn new(room: usize, stats: Arc<TracerStats>) -> Self {
        SpanBuffer {
            pending: Mutex::new(Pending {
                bytes: vec![0; room],
                spans: 0,
                woken: false,
            }),
            room,
            wake: Notify::new(),
            stats,
        }
    }

    /// Appends the `spans` spans `write` encodes, or counts them dropped when
    /// [`MAX_PENDING`] wait already.
    pub(crate) fn push(&self, spans: u32, write: impl FnOnce(&mut Vec<u8>)) {
        let mut pending = self.pending.lock();
        if pending.spans >= MAX_PENDING {
            drop(pending);
            self.stats
                .dropped
                .fetch_add(u64::from(spans), Ordering::Relaxed);
            return;
        }
        write(&mut pending.bytes);
        pending.spans += spans as usize;
        if pending.spans >= BATCH && !pending.woken {
            pending.woken = true;
            drop(pending);
            self.wake.notify_one();
        }
    }

    /// What waits, and a fresh batch in its place (sized like the one taken).
    fn take(&self) -> (Vec<u8>, usize) {
        let mut pending = self.pending.lock();
        let capacity = pending.bytes.len();
        let mut fresh = Vec::with_capacity(capacity.max(self.room + 4096));
        fresh.resize(self.room, 0);
        let bytes = std::mem::replace(&mut pending.bytes, fresh);
        let spans = std::mem::take(&mut pending.spans);
        pending.woken = false;
        (bytes, spans)
    }
}

/// Why an export call failed.
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("connect to the collector: {0}")]
    Connect(#[source] std::io::Error),
    #[error("HTTP/2: {0}")]
    Http2(#[from] h2::Error),
    #[error("request: {0}")]
    Request(#[from] http::Error),
    #[error("the collector answered HTTP status {0}")]
    Status(http::StatusCode),
    #[error("the collector answered gRPC status {code}: {message}")]
    Grpc { code: String, message: String },
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}

/// Starts the exporter task for `endpoint` (`http://host:port`) and returns the
/// buffer it exports from. The task ends, sending what is left, once the buffer is
/// the task's alone (the tracer is gone).
pub(crate) fn start(
    endpoint: &str,
    service_name: &str,
    stats: Arc<TracerStats>,
) -> Result<Arc<SpanBuffer>, String> {
    let authority = endpoint
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("tracing endpoint {endpoint:?} is not http://host:port"))?;
    let uri: http::Uri = format!("http://{authority}{EXPORT_PATH}")
        .parse()
        .map_err(|e| format!("tracing endpoint {endpoint:?}: {e}"))?;
    let buffer = Arc::new(SpanBuffer::new(
        export_prefix_room(service_name),
        stats.clone(),
    ));
    let exporter = Exporter {
        authority: authority.to_string(),
        uri,
        service_name: service_name.to_string(),
        connection: None,
        stats,
    };
    tokio::spawn(exporter.run(buffer.clone()));
    Ok(buffer)
}

struct Exporter {
    authority: String,
    uri: http::Uri,
    service_name: String,
    /// The open connection to the collector, if any.
    connection: Option<h2::client::SendRequest<Bytes>>,
    stats: Arc<TracerStats>,
}

impl Exporter {
    /// Exports what the buffer holds, when woken or every [`FLUSH_DELAY`], until the
    /// tracer is gone; then what is left.
    async fn run(mut self, buffer: Arc<SpanBuffer>) {
        loop {
            let _ = tokio::time::timeout(FLUSH_DELAY, buffer.wake.notified()).await;
            let last = Arc::strong_count(&buffer) == 1;
            let (batch, spans) = buffer.take();
            if spans > 0 {
                self.send(batch, buffer.room, spans as u64).await;
            }
            if last {
                return;
            }
        }
    }

    /// Sends one batch (`n` spans after `room` bytes), counting what became of it.
    async fn send(&mut self, mut batch: Vec<u8>, room: usize, n: u64) {
        let prefix = export_prefix(&self.service_name, batch.len() - room);
        let start = room - prefix.len();
        batch[start..room].copy_from_slice(&prefix);
        let message = Bytes::from(batch).slice(start..);
        let result = match tokio::time::timeout(EXPORT_TIMEOUT, self.call(message)).await {
            Ok(result) => result,
            Err(_) => Err(ExportError::TimedOut(EXPORT_TIMEOUT)),
        };
        match result {
            Ok(()) => {
                self.stats.exported.fetch_add(n, Ordering::Relaxed);
            }
            Err(error) => {
                // The connection may be the trouble: the next batch makes a new one.
                self.connection = None;
                self.stats.failed_exports.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%error, spans = n, "span export failed");
            }
        }
    }

    /// One unary `Export` call.
    async fn call(&mut self, message: Bytes) -> Result<(), ExportError> {
        let client = match self.connection.take() {
            Some(client) => client,
            None => self.connect().await?,
        };
        let mut client = client.ready().await?;
        let request = http::Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .header(http::header::TE, "trailers")
            .body(())?;
        let (response, mut body) = client.send_request(request, false)?;
        // h2 holds what the peer's window does not take yet and sends it as it opens.
        body.send_data(message, true)?;
        self.connection = Some(client);
        let response = response.await?;
        if response.status() != http::StatusCode::OK {
            return Err(ExportError::Status(response.status()));
        }
        // A trailers-only answer carries its status in the headers.
        if let Some(status) = grpc_status(response.headers()) {
            return status;
        }
        let mut body = response.into_body();
        while let Some(chunk) = body.data().await {
            let chunk = chunk?;
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        match body.trailers().await?.as_ref().and_then(grpc_status) {
            Some(status) => status,
            None => Err(ExportError::Grpc {
                code: "missing".into(),
                message: "no grpc-status".into(),
            }),
        }
    }

    async fn connect(&self) -> Result<h2::client::SendRequest<Bytes>, ExportError> {
        let tcp = TcpStream::connect(self.authority.as_str())
            .await
            .map_err(ExportError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let (client, connection) = h2::client::handshake(tcp).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "collector connection closed");
            }
        });
        Ok(client)
    }
}

/// `Some(Ok)` for `grpc-status: 0`, `Some(Err)` for another, `None` without one.
fn grpc_status(headers: &http::HeaderMap) -> Option<Result<(), ExportError>> {
    let code = headers.get("grpc-status")?;
    if code.as_bytes() == b"0" {
        return Some(Ok(()));
    }
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or_default();
    Some(Err(ExportError::Grpc {
        code: String::from_utf8_lossy(code.as_bytes()).into_owned(),
        message: message.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(room: usize) -> SpanBuffer {
        SpanBuffer::new(room, Arc::new(TracerStats::default()))
    }

    #[test]
    fn spans_wait_after_the_room_and_past_the_bound_are_dropped_and_counted() {
        let buffer = buffer(7);
        buffer.push(2, |out| out.extend_from_slice(b"ab"));
        buffer.push(1, |out| out.extend_from_slice(b"c"));
        let (batch, spans) = buffer.take();
        assert_eq!(
            (&batch[..7], &batch[7..], spans),
            (&[0u8; 7][..], &b"abc"[..], 3)
        );
        // The next batch starts with its room again.
        let (batch, spans) = buffer.take();
        assert_eq!((batch.len(), spans), (7, 0));

        for _ in 0..MAX_PENDING / 2 {
            buffer.push(2, |out| out.push(b'x'));
        }
        buffer.push(2, |_| panic!("not written: the buffer is full"));
        assert_eq!(buffer.stats.dropped.load(Ordering::Relaxed), 2);
        let (_, spans) = buffer.take();
        assert_eq!(spans, MAX_PENDING);
        buffer.push(1, |out| out.push(b'y'));
        assert_eq!(buffer.take().1, 1, "room again once taken");
    }

    #[tokio::test]
    async fn a_full_batch_wakes_the_export_task_once() {
        let buffer = buffer(0);
        for _ in 0..BATCH - 1 {
            buffer.push(1, |_| {});
        }
        let woken = tokio::time::timeout(Duration::from_millis(50), buffer.wake.notified());
        assert!(woken.await.is_err(), "not before a batch is full");
        buffer.push(1, |_| {});
        buffer.push(1, |_| {});
        tokio::time::timeout(Duration::from_secs(5), buffer.wake.notified())
            .await
            .expect("woken at a full batch");
        assert!(
            buffer.pending.lock().woken,
            "and not again for the same batch"
        );
    }
}
