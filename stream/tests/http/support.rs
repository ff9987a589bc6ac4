//! Shared test harness: a server running `serve_connection` with a small test handler,
//! raw HTTP/1 response reading, and test bodies.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use strait_codec_http::ConnectionInfo;
use strait_stream::http::{
    Body, Handler, HandlerFuture, ServeError, ServerOptions, serve_connection,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

/// What the test handler tells the test.
#[derive(Default)]
pub struct Observed {
    /// Bytes produced by `/big` response bodies so far.
    pub produced: AtomicU64,
    /// Requests that reached the handler.
    pub requests: AtomicUsize,
    /// Released by the test to let `/slow` answer.
    pub gate: Notify,
    /// Requests waiting at the gate.
    pub waiting: AtomicUsize,
}

/// The test handler:
/// - `/info`: `METHOD target request-version ctx-version`, header `x-peer`;
/// - `/echo`: the request body (and trailers) streamed back;
/// - `/headers`: the URI, version and sorted request headers, one per line;
/// - `/stream`: reads the body chunk by chunk, reporting each chunk, then answers with
///   a chunked body `got N bytes`;
/// - `/slow`: waits for the gate, then answers `slow`;
/// - `/big`: an endless streamed body of 16 KiB chunks, counting what was produced;
/// - `/trailers`: `data` then trailers `x-trailer: yes`, `grpc-status: 0`;
/// - `/grpc-fail`: `failure_response(NoRoute)` for the request;
/// - `/upgrade`: answers 101 and echoes bytes on the upgraded connection;
/// - `/until-length`: reads the body until its `content-length` bytes are in (not to its
///   end), then answers `got N` and drops it, as a proxy whose upstream answered does.
pub struct TestHandler {
    pub observed: Arc<Observed>,
    pub chunks: mpsc::UnboundedSender<Bytes>,
}

impl Handler for TestHandler {
    fn call(&self, mut request: Request<Body>, ctx: ConnectionInfo) -> HandlerFuture {
        let observed = self.observed.clone();
        let chunks = self.chunks.clone();
        observed.requests.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            match request.uri().path() {
                "/info" => {
                    let text = format!(
                        "{} {} {:?} {:?}",
                        request.method(),
                        request.uri(),
                        request.version(),
                        ctx.version()
                    );
                    let mut response = Response::new(Body::from(text));
                    response.headers_mut().insert(
                        "x-peer",
                        HeaderValue::from_str(&ctx.peer().to_string()).unwrap(),
                    );
                    response
                }
                "/echo" => Response::new(request.into_body()),
                "/until-length" => {
                    let want: usize = request
                        .headers()
                        .get("content-length")
                        .and_then(|v| v.to_str().ok()?.parse().ok())
                        .unwrap_or(0);
                    let mut body = request.into_body();
                    let mut got = 0;
                    while got < want {
                        match body.frame().await {
                            Some(Ok(frame)) => got += frame.into_data().map_or(0, |d| d.len()),
                            _ => break,
                        }
                    }
                    Response::new(Body::from(format!("got {got}")))
                }
                "/headers" => {
                    let mut lines: Vec<String> = request
                        .headers()
                        .iter()
                        .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
                        .collect();
                    lines.sort();
                    lines.insert(0, format!("{} {:?}", request.uri(), request.version()));
                    Response::new(Body::from(lines.join("\n")))
                }
                "/stream" => {
                    let mut body = request.into_body();
                    let mut total = 0;
                    while let Some(frame) = body.frame().await {
                        let Ok(frame) = frame else { break };
                        if let Ok(data) = frame.into_data() {
                            total += data.len();
                            let _ = chunks.send(data);
                        }
                    }
                    Response::new(Body::boxed(Chunks::new(vec![
                        Bytes::from(format!("got {total} ")),
                        Bytes::from_static(b"bytes"),
                    ])))
                }
                "/slow" => {
                    observed.waiting.fetch_add(1, Ordering::SeqCst);
                    observed.gate.notified().await;
                    Response::new(Body::from("slow"))
                }
                "/big" => Response::new(Body::boxed(Producer {
                    produced: observed.clone(),
                })),
                "/trailers" => {
                    let mut trailers = HeaderMap::new();
                    trailers.insert("x-trailer", HeaderValue::from_static("yes"));
                    trailers.insert("grpc-status", HeaderValue::from_static("0"));
                    Response::new(Body::boxed(Chunks::with_trailers(
                        vec![Bytes::from_static(b"data")],
                        trailers,
                    )))
                }
                "/grpc-fail" => {
                    let (parts, _) = request.into_parts();
                    strait_codec_http::failure_response(
                        &parts,
                        strait_codec_framework::ProxyFailure::NoRoute,
                        "",
                    )
                }
                "/upgrade" => {
                    let on_upgrade = strait_stream::http::upgrade::on(&mut request);
                    tokio::spawn(async move {
                        let Some(Ok(mut io)) = (match on_upgrade {
                            Some(on) => Some(on.await),
                            None => None,
                        }) else {
                            return;
                        };
                        let mut buf = [0u8; 1024];
                        loop {
                            match io.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if io.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                    });
                    let mut response = Response::new(Body::Empty);
                    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                    response
                        .headers_mut()
                        .insert("connection", HeaderValue::from_static("upgrade"));
                    response
                        .headers_mut()
                        .insert("upgrade", HeaderValue::from_static("echo"));
                    response
                }
                _ => Response::builder()
                    .status(404)
                    .body(Body::from("not found"))
                    .unwrap(),
            }
        })
    }
}

/// A body of given chunks (no size hint, so HTTP/1 sends it chunked), then trailers.
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Chunks {
    pub fn new(chunks: Vec<Bytes>) -> Self {
        Chunks {
            chunks: chunks.into(),
            trailers: None,
        }
    }

    pub fn with_trailers(chunks: Vec<Bytes>, trailers: HeaderMap) -> Self {
        Chunks {
            chunks: chunks.into(),
            trailers: Some(trailers),
        }
    }
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

const CHUNK: &[u8] = &[b'x'; 16 * 1024];

/// An endless body: each poll produces 16 KiB at once (never pending), so only the
/// consumer's pace bounds how much is produced.
pub struct Producer {
    produced: Arc<Observed>,
}

impl http_body::Body for Producer {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.produced
            .produced
            .fetch_add(CHUNK.len() as u64, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(CHUNK)))))
    }
}

/// A running test server.
pub struct Server {
    pub addr: SocketAddr,
    pub observed: Arc<Observed>,
    pub chunks: mpsc::UnboundedReceiver<Bytes>,
    pub shutdown: watch::Sender<bool>,
    /// The result of every finished connection.
    pub results: mpsc::UnboundedReceiver<Result<(), ServeError>>,
    _accept: JoinHandle<()>,
}

pub async fn server() -> Server {
    server_with(ServerOptions::default()).await
}

pub async fn server_with(options: ServerOptions) -> Server {
    let observed = Arc::new(Observed::default());
    let (chunk_tx, chunks) = mpsc::unbounded_channel();
    let handler: Arc<dyn Handler> = Arc::new(TestHandler {
        observed: observed.clone(),
        chunks: chunk_tx,
    });
    serve_with_handler(handler, options, observed, chunks).await
}

pub async fn serve_with_handler(
    handler: Arc<dyn Handler>,
    options: ServerOptions,
    observed: Arc<Observed>,
    chunks: mpsc::UnboundedReceiver<Bytes>,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (result_tx, results) = mpsc::unbounded_channel();
    let options = Arc::new(options);
    let accept = tokio::spawn(async move {
        loop {
            let Ok((mut socket, peer)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let options = options.clone();
            let shutdown = shutdown_rx.clone();
            let result_tx = result_tx.clone();
            tokio::spawn(async move {
                // Play the protocol detector: read the first bytes and hand them over.
                let mut first = vec![0u8; 3];
                let n = socket.read(&mut first).await.unwrap_or(0);
                first.truncate(n);
                let result =
                    serve_connection(socket, Bytes::from(first), peer, handler, options, shutdown)
                        .await;
                let _ = result_tx.send(result);
            });
        }
    });
    Server {
        addr,
        observed,
        chunks,
        shutdown,
        results,
        _accept: accept,
    }
}

/// A raw HTTP/1 response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunked: bool,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Reads one response; `head_only` for answers to HEAD (no body follows).
pub async fn read_response(reader: &mut BufReader<TcpStream>, head_only: bool) -> RawResponse {
    let mut line = String::new();
    reader.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("HTTP/1.1 "), "status line {line:?}");
    let status: u16 = line[9..12].parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':').unwrap();
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut response = RawResponse {
        status,
        headers,
        body: Vec::new(),
        chunked: false,
    };
    if head_only || status < 200 || status == 204 || status == 304 {
        return response;
    }
    if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().unwrap();
        response.body.resize(len, 0);
        reader.read_exact(&mut response.body).await.unwrap();
    } else if response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        response.chunked = true;
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await.unwrap();
            let size = usize::from_str_radix(size.trim_end(), 16).unwrap();
            if size == 0 {
                // Trailers (none expected) and the final CRLF.
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).await.unwrap();
                    if line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = response.body.len();
            response.body.resize(start + size, 0);
            reader
                .read_exact(&mut response.body[start..])
                .await
                .unwrap();
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).await.unwrap();
        }
    } else {
        reader.read_to_end(&mut response.body).await.unwrap();
    }
    response
}

/// Connects a raw socket.
pub async fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    BufReader::new(stream)
}

/// Waits until `f` holds, checking every few milliseconds (bounded by nextest's
/// timeout, no assertion on time).
pub async fn eventually(mut f: impl FnMut() -> bool) {
    while !f() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `value` stops changing for a while: a producer that is stalled.
pub async fn settled(value: impl Fn() -> u64) -> u64 {
    let mut last = value();
    let mut stable = 0;
    while stable < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = value();
        if now == last {
            stable += 1;
        } else {
            stable = 0;
            last = now;
        }
    }
    last
}
