//! The six protocols of the one-pipeline table, each with a client that sends one
//! request and reads the status of its answer, and a backend that answers, resets or
//! hangs. Framed protocols share one backend driven by their own codec; HTTP/1.1 speaks
//! raw bytes; HTTP/2 and gRPC use the `h2` crate on both sides.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strait_codec_bolt::BoltFrame;
use strait_codec_dubbo::DubboFrame;
use strait_codec_framework::{Frame, FrameKind, Limits, Protocol, Registry};
use strait_example_lenproto::LenFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A protocol as the table drives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Bolt,
    Dubbo,
    Lenproto,
    Http1,
    Http2,
    Grpc,
}

/// What a backend does with each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers with success.
    Answer,
    /// Closes the connection once a request arrived.
    Reset,
    /// Reads requests and never answers.
    Hang,
    /// Answers with the protocol's server-error class (Bolt 2 server exception, Dubbo
    /// 80 SERVER_ERROR, lenproto 1, HTTP 503, gRPC UNAVAILABLE trailers-only).
    ServerError,
}

/// The values of one header a backend saw (`None`: a request without one).
pub type Seen = Arc<parking_lot::Mutex<Vec<Option<String>>>>;

/// The trace headers a backend records: `traceparent` and `sw8`.
#[derive(Clone, Default)]
pub struct Tap {
    traceparents: Seen,
    sw8s: Seen,
}

impl Tap {
    fn record(&self, get: impl Fn(&str) -> Option<String>) {
        self.traceparents.lock().push(get("traceparent"));
        self.sw8s.lock().push(get("sw8"));
    }
}

/// A running backend.
pub struct Backend {
    pub addr: SocketAddr,
    /// Requests received so far (health checks and heartbeats not counted).
    pub received: Arc<AtomicUsize>,
    /// The `traceparent` each of those requests carried, in arrival order.
    pub traceparents: Seen,
    /// The `sw8` each of them carried.
    #[allow(dead_code)] // read by the skywalking feature's tests
    pub sw8s: Seen,
    /// The accept loop and every connection's task: aborted by [`Backend::kill`].
    tasks: Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Backend {
    /// Dies at once, as a killed process would: the listening socket and every
    /// connection close.
    pub fn kill(&self) {
        for task in self.tasks.lock().drain(..) {
            task.abort();
        }
    }

    /// Waits until `n` requests arrived (bounded: a test failure, not a hang).
    pub async fn wait_received(&self, n: usize) {
        for _ in 0..500 {
            if self.received.load(Ordering::SeqCst) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "backend got {} requests, want {n}",
            self.received.load(Ordering::SeqCst)
        );
    }
}

/// The registry the proxy runs with: the built-in protocols plus lenproto, which
/// registers itself from its own crate.
pub fn registry() -> Registry {
    let mut registry = strait::builtin_registry();
    registry
        .register(strait_example_lenproto::protocol())
        .expect("lenproto registers");
    registry
}

/// A proxy config for the telemetry tables: `top` keys (`admin`, `tracing`...), one
/// listener per `(name, more keys)` speaking `wire` on a free port with route config
/// `rc`, whose routes are `(name, service, action)` (a service matched as
/// [`Wire::route_match`] does; an empty name leaves the route unnamed), and one
/// cluster of `wire` per `(name, host address, more keys)`.
pub fn proxy_config(
    wire: Wire,
    top: &str,
    listeners: &[(&str, &str)],
    routes: &[(&str, &str, &str)],
    clusters: &[(&str, String, &str)],
) -> String {
    let mut yaml = format!("drain_timeout: 200ms\n{top}\nlisteners:\n");
    for (name, keys) in listeners {
        yaml += &format!(
            "  - {{ name: {name}, address: \"127.0.0.1:0\", protocol: {}, route_config: rc{keys} }}\n",
            wire.listener_protocol()
        );
    }
    yaml += "route_configs:\n  - name: rc\n    virtual_hosts:\n      - name: all\n        domains: [\"*\"]\n        routes:\n";
    for (name, service, action) in routes {
        let name = if name.is_empty() {
            String::new()
        } else {
            format!("name: {name}, ")
        };
        yaml += &format!(
            "          - {{ {name}match: {}, route: {action} }}\n",
            wire.route_match(service)
        );
    }
    yaml += "clusters:\n";
    for (name, host, keys) in clusters {
        yaml += &format!(
            "  - {{ name: {name}, protocol: {}{keys}, endpoints: [{{ address: \"{host}\" }}] }}\n",
            wire.cluster_protocol()
        );
    }
    yaml
}

impl Wire {
    /// The listener's `protocol:`.
    pub fn listener_protocol(self) -> &'static str {
        match self {
            Wire::Bolt => "bolt",
            Wire::Dubbo => "dubbo",
            Wire::Lenproto => "lenproto",
            Wire::Http1 | Wire::Http2 | Wire::Grpc => "http",
        }
    }

    /// The cluster's `protocol:`.
    pub fn cluster_protocol(self) -> &'static str {
        match self {
            Wire::Http1 => "http1",
            Wire::Http2 | Wire::Grpc => "http2",
            other => other.listener_protocol(),
        }
    }

    /// The name the pipeline reports the request's protocol by.
    pub fn record_protocol(self) -> &'static str {
        match self {
            Wire::Http1 => "http1",
            Wire::Http2 => "http2",
            Wire::Grpc => "grpc",
            other => other.listener_protocol(),
        }
    }

    /// A route `match:` for requests to `service`.
    pub fn route_match(self, service: &str) -> String {
        match self {
            Wire::Http1 | Wire::Http2 | Wire::Grpc => format!("{{ prefix: \"/{service}\" }}"),
            _ => format!("{{ variables: [{{ name: service, exact: \"{service}\" }}] }}"),
        }
    }

    fn framed(self) -> Option<Arc<dyn Protocol>> {
        let name = match self {
            Wire::Bolt | Wire::Dubbo | Wire::Lenproto => self.listener_protocol(),
            _ => return None,
        };
        registry().get(name).cloned()
    }

    /// Sends one request for `service` on a new connection and returns the status of
    /// the answer in the protocol's own numbering (HTTP status; for gRPC the
    /// `grpc-status`, or the HTTP status when the answer carries none).
    pub async fn call(self, proxy: SocketAddr, service: &str) -> u32 {
        self.call_with(proxy, service, &[]).await
    }

    /// [`Wire::call`] with `headers` on the request (Bolt header-map entries, Dubbo
    /// attachments, HTTP headers; lenproto has none).
    pub async fn call_with(
        self,
        proxy: SocketAddr,
        service: &str,
        headers: &[(&str, &str)],
    ) -> u32 {
        let call = async {
            match self {
                Wire::Bolt | Wire::Dubbo | Wire::Lenproto => {
                    self.call_framed(proxy, service, headers).await
                }
                Wire::Http1 => call_http1(proxy, service, headers).await,
                Wire::Http2 => call_h2(proxy, service, false, headers).await,
                Wire::Grpc => call_h2(proxy, service, true, headers).await,
            }
        };
        tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("an answer within 10 s")
    }

    /// Starts a backend of this protocol.
    pub async fn backend(self, behaviour: Behaviour) -> Backend {
        self.backend_at("127.0.0.1:0".parse().unwrap(), behaviour)
            .await
    }

    /// Starts a backend of this protocol on `addr` (a killed backend's address, to
    /// bring it back).
    pub async fn backend_at(self, addr: SocketAddr, behaviour: Behaviour) -> Backend {
        let socket = TcpListener::bind(addr).await.unwrap();
        let addr = socket.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let tap = Tap::default();
        let counter = received.clone();
        let seen_all = tap.clone();
        let tasks = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let spawned = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = socket.accept().await {
                let counter = counter.clone();
                let seen = seen_all.clone();
                spawned.lock().push(tokio::spawn(async move {
                    match self {
                        Wire::Bolt | Wire::Dubbo | Wire::Lenproto => {
                            self.serve_framed(stream, behaviour, counter, seen).await
                        }
                        Wire::Http1 => serve_http1(stream, behaviour, counter, seen).await,
                        Wire::Http2 | Wire::Grpc => {
                            serve_h2(stream, behaviour, counter, seen, self == Wire::Grpc).await
                        }
                    }
                }));
            }
        });
        tasks.lock().push(accept);
        Backend {
            addr,
            received,
            traceparents: tap.traceparents,
            sw8s: tap.sw8s,
            tasks,
        }
    }

    fn request(self, service: &str, headers: &[(&str, &str)]) -> Bytes {
        let mut frame: Box<dyn Frame> = match self {
            Wire::Bolt => Box::new(
                BoltFrame::builder(FrameKind::Request)
                    .request_id(7)
                    .timeout_ms(5000)
                    .class_name(&b"com.alipay.sofa.rpc.core.request.SofaRequest"[..])
                    .header("service", service)
                    .content(Bytes::from_static(b"hi"))
                    .build()
                    .unwrap(),
            ),
            Wire::Dubbo => Box::new(
                DubboFrame::request(service, "sayHello")
                    .id(7)
                    .string_argument("hi")
                    .build()
                    .unwrap(),
            ),
            _ => Box::new(LenFrame::request(7, service, b"hi")),
        };
        for (name, value) in headers {
            frame.set_header(name, value);
        }
        let mut out = BytesMut::new();
        frame.encode(&mut out).unwrap();
        out.freeze()
    }

    fn answer(self, request: &dyn Frame, failed: bool) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            Wire::Bolt => {
                let request = request.as_any().downcast_ref::<BoltFrame>().unwrap();
                request
                    .response_builder()
                    .status(if failed { 2 } else { 0 })
                    .content(Bytes::from_static(b"ok"))
                    .build()
                    .unwrap()
                    .encode(&mut out)
            }
            Wire::Dubbo => {
                let answer = DubboFrame::response(request.request_id());
                let answer = if failed {
                    answer.error(80, "server error")
                } else {
                    answer.value("ok")
                };
                answer.build().unwrap().encode(&mut out)
            }
            _ => {
                let status = if failed { 1 } else { 0 };
                let mut answer =
                    LenFrame::new(FrameKind::Response, request.request_id() as u32, status);
                answer.body = Bytes::from_static(b"ok");
                answer.encode(&mut out)
            }
        }
        .unwrap();
        out.freeze()
    }

    async fn call_framed(self, proxy: SocketAddr, service: &str, headers: &[(&str, &str)]) -> u32 {
        let mut stream = TcpStream::connect(proxy).await.unwrap();
        self.call_framed_on(&mut stream, service, headers).await
    }

    /// One request for `service` on an open connection (framed wires and HTTP/1.1
    /// keep-alive), and the status of its answer.
    pub async fn call_on(self, stream: &mut TcpStream, service: &str) -> u32 {
        let call = async {
            match self {
                Wire::Http1 => call_http1_on(stream, service, &[]).await,
                _ => self.call_framed_on(stream, service, &[]).await,
            }
        };
        tokio::time::timeout(Duration::from_secs(10), call)
            .await
            .expect("an answer within 10 s")
    }

    async fn call_framed_on(
        self,
        stream: &mut TcpStream,
        service: &str,
        headers: &[(&str, &str)],
    ) -> u32 {
        let protocol = self.framed().unwrap();
        stream
            .write_all(&self.request(service, headers))
            .await
            .unwrap();
        let mut codec = protocol.new_codec(Limits::default());
        let mut buf = BytesMut::new();
        loop {
            if let Some(frame) = codec.decode(&mut buf).unwrap() {
                assert_eq!(frame.kind(), FrameKind::Response);
                assert_eq!(frame.request_id(), 7, "the answer keeps the caller's id");
                return frame.status().expect("a response has a status");
            }
            let n = stream.read_buf(&mut buf).await.unwrap();
            assert!(n > 0, "the proxy closed the connection without an answer");
        }
    }

    async fn serve_framed(
        self,
        mut stream: TcpStream,
        behaviour: Behaviour,
        received: Arc<AtomicUsize>,
        seen: Tap,
    ) {
        let protocol = self.framed().unwrap();
        let mut codec = protocol.new_codec(Limits::default());
        let mut buf = BytesMut::new();
        while stream.read_buf(&mut buf).await.unwrap_or(0) > 0 {
            while let Ok(Some(frame)) = codec.decode(&mut buf) {
                if frame.kind() == FrameKind::Heartbeat {
                    if let Some(ack) = protocol.heartbeat_reply(&*frame) {
                        let mut out = BytesMut::new();
                        ack.encode(&mut out).unwrap();
                        let _ = stream.write_all(&out).await;
                    }
                    continue;
                }
                seen.record(|name| frame.header(name).map(str::to_string));
                received.fetch_add(1, Ordering::SeqCst);
                match behaviour {
                    Behaviour::Answer | Behaviour::ServerError => {
                        let failed = behaviour == Behaviour::ServerError;
                        let _ = stream.write_all(&self.answer(&*frame, failed)).await;
                    }
                    Behaviour::Reset => return,
                    Behaviour::Hang => {}
                }
            }
        }
    }
}

async fn call_http1(proxy: SocketAddr, service: &str, headers: &[(&str, &str)]) -> u32 {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    call_http1_on(&mut stream, service, headers).await
}

async fn call_http1_on(stream: &mut TcpStream, service: &str, headers: &[(&str, &str)]) -> u32 {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!("GET /{service}/call HTTP/1.1\r\nhost: test\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read_buf(&mut buf).await.unwrap();
        assert!(n > 0, "the proxy closed the connection without an answer");
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let line = head.lines().next().unwrap_or_default().to_string();
    // The whole answer: its body has a length (every answer in the table does).
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no content-length in {head:?}"));
    while buf.len() < head_end + length {
        let n = stream.read_buf(&mut buf).await.unwrap();
        assert!(n > 0, "the proxy closed the connection mid-body");
    }
    line.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line {line:?}"))
}

async fn serve_http1(
    mut stream: TcpStream,
    behaviour: Behaviour,
    received: Arc<AtomicUsize>,
    seen: Tap,
) {
    let mut buf = Vec::new();
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let health = buf.starts_with(b"GET /health ");
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4); // the table's requests have no body
            if health {
                // The proxy's active health check: always answered, never counted.
                let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                if stream.write_all(answer).await.is_err() {
                    return;
                }
                continue;
            }
            seen.record(|wanted| {
                head.lines().find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case(wanted)
                        .then(|| value.trim().to_string())
                })
            });
            received.fetch_add(1, Ordering::SeqCst);
            match behaviour {
                Behaviour::Answer => {
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
                Behaviour::ServerError => {
                    let answer =
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
                Behaviour::Reset => return,
                Behaviour::Hang => {}
            }
        }
        if stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
            return;
        }
    }
}

async fn call_h2(proxy: SocketAddr, service: &str, grpc: bool, headers: &[(&str, &str)]) -> u32 {
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (mut client, connection) = h2::client::handshake(stream).await.unwrap();
    tokio::spawn(connection);
    let mut builder = http::Request::builder().uri(format!("http://test/{service}.Echo/Call"));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = if grpc {
        builder
            .method("POST")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap()
    } else {
        builder.method("GET").body(()).unwrap()
    };
    let (response, mut body) = client.send_request(request, !grpc).unwrap();
    if grpc {
        // One empty message: flag 0, length 0.
        body.send_data(Bytes::from_static(&[0, 0, 0, 0, 0]), true)
            .unwrap();
    }
    let response = response.await.unwrap();
    let status = u32::from(response.status().as_u16());
    if let Some(code) = strait_codec_http::grpc_status(response.headers()).filter(|_| grpc) {
        return code; // trailers-only
    }
    let mut body = response.into_body();
    while let Some(data) = body.data().await {
        let data = data.unwrap();
        let _ = body.flow_control().release_capacity(data.len());
    }
    match body.trailers().await.unwrap() {
        Some(trailers) => strait_codec_http::grpc_status(&trailers).unwrap_or(status),
        None => status,
    }
}

async fn serve_h2(
    stream: TcpStream,
    behaviour: Behaviour,
    received: Arc<AtomicUsize>,
    seen: Tap,
    grpc: bool,
) {
    let Ok(mut connection) = h2::server::handshake(stream).await else {
        return;
    };
    let mut held = Vec::new();
    while let Some(Ok((request, mut respond))) = connection.accept().await {
        if let Some(body) = health_answer(request.uri().path(), grpc) {
            // The proxy's active health check: always answered, never counted.
            let mut head = http::Response::builder().status(200);
            if grpc {
                head = head.header("content-type", "application/grpc");
            }
            if let Ok(mut send) = respond.send_response(head.body(()).unwrap(), false) {
                let _ = send.send_data(body, !grpc);
                if grpc {
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let _ = send.send_trailers(trailers);
                }
            }
            continue;
        }
        seen.record(|name| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        });
        received.fetch_add(1, Ordering::SeqCst);
        match behaviour {
            Behaviour::Answer => {
                drop(request);
                let mut head = http::Response::builder().status(200);
                if grpc {
                    head = head.header("content-type", "application/grpc");
                }
                let Ok(mut send) = respond.send_response(head.body(()).unwrap(), false) else {
                    continue;
                };
                let data = if grpc {
                    Bytes::from_static(&[0, 0, 0, 0, 0])
                } else {
                    Bytes::from_static(b"ok")
                };
                let _ = send.send_data(data, !grpc);
                if grpc {
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let _ = send.send_trailers(trailers);
                }
            }
            Behaviour::ServerError => {
                drop(request);
                let mut head = http::Response::builder();
                head = if grpc {
                    // Trailers-only: the status in the head.
                    head.status(200)
                        .header("content-type", "application/grpc")
                        .header("grpc-status", "14")
                } else {
                    head.status(503)
                };
                let _ = respond.send_response(head.body(()).unwrap(), true);
            }
            Behaviour::Reset => return, // drops the whole connection
            Behaviour::Hang => held.push((request, respond)),
        }
    }
}

/// The answer to a health check of the proxy's (`GET /health`, or the gRPC health
/// service's `Check`: `SERVING`), or `None` for any other path.
fn health_answer(path: &str, grpc: bool) -> Option<Bytes> {
    match (path, grpc) {
        ("/grpc.health.v1.Health/Check", true) => {
            Some(Bytes::from_static(&[0, 0, 0, 0, 2, 0x08, 0x01]))
        }
        ("/health", false) => Some(Bytes::new()),
        _ => None,
    }
}
