//! In-process harness: the real proxy (`strait::Server` on port 0), scriptable Bolt
//! upstreams, and a raw Bolt client, so each §6.4 case can be driven byte by byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strait_codec_bolt::{BoltCodec, BoltFrame};
use strait_codec_framework::{Frame, FrameKind, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub const SERVICE: &str = "com.alipay.test.TestService:1.0";

/// Starts the proxy on `yaml` (listener addresses may use port 0).
pub async fn proxy(yaml: &str) -> strait::Server {
    let registry = strait::builtin_registry();
    let config = strait::config::parse("test.yaml", yaml, &registry).expect("valid config");
    strait::Server::start(config, registry)
        .await
        .expect("proxy starts")
}

/// A config with one Bolt listener routing `SERVICE` to a cluster of `endpoints`.
pub fn config(endpoints: &[SocketAddr], cluster_extra: &str, route_extra: &str) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|a| format!("{{ address: \"{a}\" }}"))
        .collect();
    format!(
        r#"
listeners:
  - {{ name: rpc, address: "127.0.0.1:0", protocol: bolt, route_config: rpc }}
route_configs:
  - name: rpc
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match: {{ variables: [{{ name: service, exact: "{SERVICE}" }}] }}
            route: {{ cluster: up{route_extra} }}
clusters:
  - name: up
    protocol: bolt
    connect_timeout: 500ms
    endpoints: [{}]
{cluster_extra}
"#,
        eps.join(", ")
    )
}

/// What a scripted upstream does on its own.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers every two-way request at once (content echoed, `x-served-by` header) and
    /// acks heartbeats.
    Echo(&'static str),
    /// Answers nothing: the test replies through [`Received::conn`].
    Manual,
}

/// A frame an upstream received.
pub struct Received {
    pub frame: BoltFrame,
    pub conn: Conn,
}

/// Lets a test write to, or close, one upstream connection.
#[derive(Clone)]
pub struct Conn(mpsc::UnboundedSender<Option<Bytes>>);

impl Conn {
    pub fn send(&self, frame: &BoltFrame) {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf).unwrap();
        let _ = self.0.send(Some(buf.freeze()));
    }

    /// Closes the connection (the proxy sees EOF).
    pub fn close(&self) {
        let _ = self.0.send(None);
    }
}

/// A scripted Bolt upstream on 127.0.0.1:0.
pub struct Upstream {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    rx: mpsc::UnboundedReceiver<Received>,
}

impl Upstream {
    pub async fn start(mode: Mode) -> Upstream {
        let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = mpsc::unbounded_channel();
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = socket.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, mode, tx.clone()));
            }
        });
        Upstream { addr, accepted, rx }
    }

    /// The next frame received, within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn serve(stream: TcpStream, mode: Mode, tx: mpsc::UnboundedSender<Received>) {
    let (mut rd, mut wr) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Option<Bytes>>();
    tokio::spawn(async move {
        while let Some(Some(bytes)) = out_rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
        // `None` (close) or every sender gone: drop the write half, then the task.
    });
    let conn = Conn(out_tx);
    let mut codec = BoltCodec::new(Limits::default());
    let mut buf = BytesMut::new();
    loop {
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while let Ok(Some(frame)) = codec.decode_bolt(&mut buf) {
            if let Mode::Echo(name) = mode {
                match frame.kind() {
                    FrameKind::Request => conn.send(&echo(&frame, name)),
                    FrameKind::Heartbeat => conn.send(&frame.response_builder().build().unwrap()),
                    _ => {}
                }
            }
            if tx
                .send(Received {
                    frame,
                    conn: conn.clone(),
                })
                .is_err()
            {
                return;
            }
        }
        if conn.0.is_closed() {
            return;
        }
    }
}

/// The echo answer to `request`: content echoed, served-by header.
pub fn echo(request: &BoltFrame, name: &str) -> BoltFrame {
    request
        .response_builder()
        .class_name(&b"com.alipay.sofa.rpc.core.response.SofaResponse"[..])
        .header("x-served-by", name)
        .content(request.body())
        .build()
        .unwrap()
}

/// A Bolt request for `service` with `content`.
pub fn request(id: u32, service: &str, content: &str) -> BoltFrame {
    BoltFrame::builder(FrameKind::Request)
        .request_id(id)
        .timeout_ms(3000)
        .class_name(&b"com.alipay.sofa.rpc.core.request.SofaRequest"[..])
        .header("service", service)
        .header("sofa_head_method_name", "sayHello")
        .content(Bytes::copy_from_slice(content.as_bytes()))
        .build()
        .unwrap()
}

/// A raw Bolt client connection.
pub struct Client {
    stream: TcpStream,
    codec: BoltCodec,
    buf: BytesMut,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: TcpStream::connect(addr).await.unwrap(),
            codec: BoltCodec::new(Limits::default()),
            buf: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, frame: &BoltFrame) {
        let mut out = BytesMut::new();
        frame.encode(&mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next frame from the proxy within `wait`, or why none came: silence (the
    /// connection is still open) and a close are different answers, so a "nothing
    /// arrives" check cannot pass on a connection the proxy dropped.
    pub async fn recv(&mut self, wait: Duration) -> Result<BoltFrame, NoFrame> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(frame) = self
                .codec
                .decode_bolt(&mut self.buf)
                .expect("proxy sent a valid frame")
            {
                return Ok(frame);
            }
            read_more(&mut self.stream, &mut self.buf, deadline).await?;
        }
    }

    /// Whether the proxy closed the connection within `wait` (EOF or reset).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let mut scratch = [0u8; 256];
        matches!(
            tokio::time::timeout(wait, self.stream.read(&mut scratch)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Why a client's `recv` returned no frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFrame {
    /// Nothing arrived within the wait; the connection is still open.
    Silent,
    /// The proxy closed the connection (EOF or reset).
    Closed,
}

/// Reads more bytes into `buf` before `deadline`: `Silent` if none came, `Closed` on EOF
/// or a reset.
pub async fn read_more(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    deadline: tokio::time::Instant,
) -> Result<(), NoFrame> {
    match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
        Err(_) => Err(NoFrame::Silent),
        Ok(Ok(0)) | Ok(Err(_)) => Err(NoFrame::Closed),
        Ok(Ok(_)) => Ok(()),
    }
}

pub const SHORT: Duration = Duration::from_millis(300);
pub const LONG: Duration = Duration::from_secs(5);

/// `GET path` on the admin server; the response body.
pub async fn admin_get(server: &strait::Server, path: &str) -> String {
    let mut stream = TcpStream::connect(server.admin_addr().expect("admin configured"))
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or(text)
}
