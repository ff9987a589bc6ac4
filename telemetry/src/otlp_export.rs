//! The OTLP/gRPC exporter: one task that gathers encoded spans from a bounded queue
//! and sends them in batches (`TraceService/Export`) over one HTTP/2 connection it
//! keeps, made with the `h2` crate like every other HTTP/2 connection of Strait.
//!
//! A batch leaves when it holds [`BATCH`] spans or [`FLUSH_DELAY`] after its first
//! span, so a lightly sampled stream of requests costs one call now and then, not one
//! per span. A call that fails or outlasts [`EXPORT_TIMEOUT`] is counted and its spans
//! dropped; the next batch connects afresh.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::otlp_encode::{export_prefix, export_prefix_room};
use crate::tracer::TracerStats;

/// Most spans in one export call.
pub(crate) const BATCH: usize = 512;
/// How long a batch waits for more spans after its first.
pub(crate) const FLUSH_DELAY: Duration = Duration::from_millis(500);
/// Bound on one export call, its connect included (a blackholed collector).
pub(crate) const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The spans of one request, encoded ([`crate::otlp_encode::span`] entries).
#[derive(Debug)]
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    pub spans: u32,
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

/// Starts the exporter task for `endpoint` (`http://host:port`) and returns its queue.
pub(crate) fn start(
    endpoint: &str,
    service_name: &str,
    queue_len: usize,
    stats: Arc<crate::tracer::TracerStats>,
) -> Result<mpsc::Sender<Encoded>, String> {
    let authority = endpoint
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("tracing endpoint {endpoint:?} is not http://host:port"))?;
    let uri: http::Uri = format!("http://{authority}{EXPORT_PATH}")
        .parse()
        .map_err(|e| format!("tracing endpoint {endpoint:?}: {e}"))?;
    let (queue, spans) = mpsc::channel(queue_len);
    let exporter = Exporter {
        authority: authority.to_string(),
        uri,
        service_name: service_name.to_string(),
        connection: None,
        stats,
    };
    tokio::spawn(exporter.run(spans));
    Ok(queue)
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
    /// Exports batches until every sender is gone, then what is left.
    async fn run(mut self, mut queue: mpsc::Receiver<Encoded>) {
        // Each batch starts with room for the message's prefix.
        let room = export_prefix_room(&self.service_name);
        let mut batch = vec![0; room];
        let mut spans = 0usize;
        let mut open = true;
        while open {
            let Some(first) = queue.recv().await else {
                break;
            };
            spans += first.spans as usize;
            batch.extend_from_slice(&first.bytes);
            let deadline = Instant::now() + FLUSH_DELAY;
            while spans < BATCH {
                match tokio::time::timeout_at(deadline, queue.recv()).await {
                    Ok(Some(more)) => {
                        spans += more.spans as usize;
                        batch.extend_from_slice(&more.bytes);
                    }
                    Ok(None) => {
                        open = false;
                        break;
                    }
                    Err(_) => break,
                }
            }
            let full = std::mem::replace(&mut batch, vec![0; room]);
            self.send(full, room, spans as u64).await;
            spans = 0;
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
