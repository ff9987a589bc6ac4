//! Active health checks: each host of a cluster is probed on a connection of the
//! check's own (never queued behind traffic), every `interval` plus a random jitter.
//!
//! The probe is one of four kinds: a TCP connect; an HTTP request for a path with
//! expected statuses; the gRPC health service (`grpc.health.v1.Health/Check`); or the
//! protocol's own probe, which any codec provides through
//! [`strait_codec_framework::Protocol::health_check_request`] (a Bolt heartbeat, a Dubbo
//! heartbeat event, the examples' lenproto heartbeat): nothing here knows a framed
//! protocol.
//!
//! Thresholds follow Envoy: a host waiting for its first verdict takes traffic after
//! one pass; a healthy host is marked down after `unhealthy_threshold` failures in a
//! row, and back up after `healthy_threshold` passes in a row.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt;
use strait_codec_framework::{Limits, PoolMode, Protocol};
use strait_stream::UpstreamIo;
use strait_stream::http::{Body, ClientOptions, Http1Connection, Http2Connection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::health::ClusterHealth;
use crate::host::Host;

/// A cluster's active health check.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// What a probe does.
    pub kind: CheckKind,
    /// Time between probes of one host.
    pub interval: Duration,
    /// Up to this much is added to each interval at random, so the checks of many
    /// proxies do not arrive together.
    pub interval_jitter: Duration,
    /// A probe not done within this fails.
    pub timeout: Duration,
    /// Failures in a row that mark a healthy host down.
    pub unhealthy_threshold: u32,
    /// Passes in a row that bring a failed host back.
    pub healthy_threshold: u32,
}

impl HealthCheck {
    /// A check of `kind` with Envoy-like defaults: every 5 s with up to 1 s of jitter,
    /// 2 s timeout, down after 3 failures, back after 2 passes.
    pub fn new(kind: CheckKind) -> Self {
        HealthCheck {
            kind,
            interval: Duration::from_secs(5),
            interval_jitter: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            unhealthy_threshold: 3,
            healthy_threshold: 2,
        }
    }
}

/// What one probe does.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// Connect, then close.
    Tcp,
    /// `GET path` in the cluster's HTTP version; passes on an expected status.
    Http {
        /// The path requested.
        path: String,
        /// Statuses that pass (each an inclusive range).
        expected_statuses: Vec<RangeInclusive<u16>>,
    },
    /// `grpc.health.v1.Health/Check` over HTTP/2; passes on `SERVING`.
    Grpc {
        /// The service asked about (empty: the server as a whole).
        service_name: String,
    },
    /// The protocol's own probe (a heartbeat), answered by the host itself.
    Protocol,
}

impl CheckKind {
    /// The configuration name: `tcp`, `http`, `grpc` or `protocol`.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::Http { .. } => "http",
            CheckKind::Grpc { .. } => "grpc",
            CheckKind::Protocol => "protocol",
        }
    }
}

/// What the probes of one cluster need besides the host's address.
#[derive(Clone)]
pub(crate) enum Speaks {
    /// A framed protocol (for the `protocol` probe).
    Framed(Arc<dyn Protocol>),
    /// HTTP/1.1 or HTTP/2, with the pool's client limits.
    Http {
        mode: PoolMode,
        client: ClientOptions,
        /// The `Host`/`:authority` a probe sends: the cluster's name, as Envoy does.
        authority: String,
    },
}

/// Probes `host` until `stop` fires, setting its check verdict.
pub(crate) async fn run(
    host: Arc<Host>,
    cluster: Arc<ClusterHealth>,
    check: Arc<HealthCheck>,
    speaks: Speaks,
    mut stop: watch::Receiver<bool>,
) {
    let (mut passes, mut failures) = (0u32, 0u32);
    loop {
        if host.removed() {
            // Out of its cluster (DNS): not probed, and its verdict starts afresh if it
            // comes back.
            (passes, failures) = (0, 0);
            tokio::select! {
                _ = tokio::time::sleep(check.interval) => continue,
                _ = stop.changed() => return,
            }
        }
        let verdict = match tokio::time::timeout(
            check.timeout,
            probe(&check.kind, host.addr(), host.tls(), &speaks),
        )
        .await
        {
            Ok(verdict) => verdict,
            Err(_) => Err(format!("no answer within {:?}", check.timeout)),
        };
        if host.removed() {
            continue; // it left while probed: its verdict no longer counts
        }
        let pending = host.health().check_failed() && passes == 0 && failures == 0;
        match verdict {
            Ok(()) => {
                failures = 0;
                passes = passes.saturating_add(1);
                if host.health().check_failed()
                    && (pending || passes >= check.healthy_threshold.max(1))
                    && host.health().set_check(&cluster, None, Instant::now())
                {
                    tracing::info!(cluster = %host.cluster(), host = %host.addr(), check = check.kind.as_str(), passes, "upstream host passed its health check");
                }
            }
            Err(reason) => {
                passes = 0;
                failures = failures.saturating_add(1);
                // A host waiting for its first verdict gets it now (it was never in);
                // a healthy one goes down after `unhealthy_threshold` failures.
                if pending || failures >= check.unhealthy_threshold.max(1) {
                    let changed =
                        host.health()
                            .set_check(&cluster, Some(reason.clone()), Instant::now());
                    if changed || pending {
                        tracing::warn!(cluster = %host.cluster(), host = %host.addr(), check = check.kind.as_str(), %reason, failures, "upstream host failed its health check");
                    }
                }
            }
        }
        let jitter = match check.interval_jitter.as_millis() {
            0 => Duration::ZERO,
            max => Duration::from_millis(crate::lb::random_below(
                u64::try_from(max).unwrap_or(u64::MAX),
            )),
        };
        tokio::select! {
            _ = tokio::time::sleep(check.interval + jitter) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One probe of the host at `addr`: `Ok` when it passes, the reason otherwise.
pub(crate) async fn probe(
    kind: &CheckKind,
    addr: std::net::SocketAddr,
    tls: Option<&strait_tls::ClientTls>,
    speaks: &Speaks,
) -> Result<(), String> {
    // The check's own connection, with the cluster's TLS settings, for every kind.
    let stream = crate::connect::connect(addr, tls).await?;
    match (kind, speaks) {
        (CheckKind::Tcp, _) => Ok(()),
        (CheckKind::Protocol, Speaks::Framed(protocol)) => {
            protocol_probe(stream, protocol.as_ref()).await
        }
        (
            CheckKind::Http {
                path,
                expected_statuses,
            },
            Speaks::Http {
                mode,
                client,
                authority,
            },
        ) => {
            let request = Request::builder()
                .method(Method::GET)
                .uri(path.as_str())
                .header(http::header::HOST, authority.as_str())
                .header(http::header::USER_AGENT, "strait-health-check")
                .body(Body::empty())
                .map_err(|e| format!("bad request: {e}"))?;
            let status = match mode {
                PoolMode::Http2Streams => {
                    let conn = Http2Connection::handshake(stream, client)
                        .await
                        .map_err(|e| e.to_string())?;
                    conn.send(prepare_h2(request, authority)?)
                        .await
                        .map_err(|e| e.to_string())?
                        .status()
                }
                _ => {
                    let mut conn = Http1Connection::handshake(stream, client)
                        .await
                        .map_err(|e| e.to_string())?;
                    conn.send(request)
                        .await
                        .map_err(|e| e.to_string())?
                        .status()
                }
            };
            if expected_statuses
                .iter()
                .any(|r| r.contains(&status.as_u16()))
            {
                Ok(())
            } else {
                Err(format!("status {}", status.as_u16()))
            }
        }
        (
            CheckKind::Grpc { service_name },
            Speaks::Http {
                client, authority, ..
            },
        ) => grpc_probe(stream, client, authority, service_name).await,
        (kind, _) => Err(format!(
            "a {} check cannot be made to this cluster",
            kind.as_str()
        )),
    }
}

/// An HTTP/2 request names its target in the URI (`:scheme`, `:authority`).
fn prepare_h2(mut request: Request<Body>, authority: &str) -> Result<Request<Body>, String> {
    let uri = format!("http://{authority}{}", request.uri());
    *request.uri_mut() = uri.parse().map_err(|e| format!("bad uri {uri}: {e}"))?;
    *request.version_mut() = http::Version::HTTP_2;
    request.headers_mut().remove(http::header::HOST);
    Ok(request)
}

/// Sends the protocol's health-check request and waits for its answer.
async fn protocol_probe(mut stream: UpstreamIo, protocol: &dyn Protocol) -> Result<(), String> {
    const ID: u64 = 1;
    let request = protocol
        .health_check_request(ID)
        .ok_or_else(|| format!("protocol {} has no health-check probe", protocol.name()))?;
    let mut out = BytesMut::new();
    request
        .encode(&mut out)
        .map_err(|e| format!("encode probe: {e}"))?;
    stream
        .write_all(&out)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut codec = protocol.new_codec(Limits::default());
    let mut input = BytesMut::with_capacity(1024);
    loop {
        while let Some(frame) = codec
            .decode(&mut input)
            .map_err(|e| format!("bad answer: {e}"))?
        {
            if frame.kind().is_request() || frame.request_id() != ID {
                continue; // not the answer (a request of the host's own, say)
            }
            return if protocol.health_check_passed(frame.as_ref()) {
                Ok(())
            } else {
                Err(format!(
                    "answered with status {}",
                    frame.status().map_or("?".into(), |s| s.to_string())
                ))
            };
        }
        if stream
            .read_buf(&mut input)
            .await
            .map_err(|e| format!("read: {e}"))?
            == 0
        {
            return Err("closed before answering".into());
        }
    }
}

/// `grpc.health.v1.Health/Check` for `service`: passes when the answer is `SERVING`.
async fn grpc_probe(
    stream: UpstreamIo,
    client: &ClientOptions,
    authority: &str,
    service: &str,
) -> Result<(), String> {
    // HealthCheckRequest { string service = 1; }, in one length-prefixed gRPC message.
    let mut message = BytesMut::new();
    if !service.is_empty() {
        message.put_u8(0x0a);
        put_varint(&mut message, service.len() as u64);
        message.put_slice(service.as_bytes());
    }
    let mut body = BytesMut::with_capacity(5 + message.len());
    body.put_u8(0);
    body.put_u32(u32::try_from(message.len()).map_err(|_| "service name too long")?);
    body.put_slice(&message);
    let uri = format!("http://{authority}/grpc.health.v1.Health/Check");
    let request = Request::builder()
        .method(Method::POST)
        .uri(uri)
        .version(http::Version::HTTP_2)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, "strait-health-check")
        .body(Body::full(body.freeze()))
        .map_err(|e| format!("bad request: {e}"))?;
    let conn = Http2Connection::handshake(stream, client)
        .await
        .map_err(|e| e.to_string())?;
    let response = conn.send(request).await.map_err(|e| e.to_string())?;
    if response.status() != StatusCode::OK {
        return Err(format!("HTTP status {}", response.status().as_u16()));
    }
    let head_status = response.headers().get("grpc-status").cloned();
    let collected = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("read answer: {e}"))?;
    let trailer_status = collected
        .trailers()
        .and_then(|t| t.get("grpc-status").cloned());
    let status = trailer_status.or(head_status);
    if status.as_ref().map(HeaderValue::as_bytes) != Some(b"0") {
        let status = status.map_or("none".into(), |s| {
            String::from_utf8_lossy(s.as_bytes()).into_owned()
        });
        return Err(format!("grpc-status {status}"));
    }
    match serving_status(collected.to_bytes()) {
        Some(1) => Ok(()),
        Some(other) => Err(format!("serving status {other} (1 is SERVING)")),
        None => Err("unreadable HealthCheckResponse".into()),
    }
}

/// The `status` field (1) of a length-prefixed `HealthCheckResponse`; an absent field
/// is 0 (`UNKNOWN`), as protobuf defaults go.
fn serving_status(mut body: Bytes) -> Option<u64> {
    if body.len() < 5 || body[0] != 0 {
        return None; // compressed or truncated: not what a health service sends
    }
    body.advance(1);
    let len = body.get_u32() as usize;
    let mut message = body.get(..len)?;
    let mut status = 0;
    while !message.is_empty() {
        let key = varint(&mut message)?;
        match key & 7 {
            0 => {
                let value = varint(&mut message)?;
                if key >> 3 == 1 {
                    status = value;
                }
            }
            2 => {
                let len = usize::try_from(varint(&mut message)?).ok()?;
                message = message.get(len..)?;
            }
            1 => message = message.get(8..)?,
            5 => message = message.get(4..)?,
            _ => return None,
        }
    }
    Some(status)
}

fn varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn put_varint(out: &mut BytesMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_status_reads_the_health_response() {
        let framed = |m: &[u8]| {
            let mut b = vec![0, 0, 0, 0, m.len() as u8];
            b.extend_from_slice(m);
            Bytes::from(b)
        };
        assert_eq!(serving_status(framed(&[0x08, 0x01])), Some(1));
        assert_eq!(serving_status(framed(&[0x08, 0x02])), Some(2));
        assert_eq!(
            serving_status(framed(&[])),
            Some(0),
            "absent field is UNKNOWN"
        );
        // Unknown fields before it are skipped.
        assert_eq!(
            serving_status(framed(&[0x12, 0x01, 0x41, 0x08, 0x01])),
            Some(1)
        );
        assert_eq!(serving_status(framed(&[0x08])), None, "truncated varint");
        assert_eq!(serving_status(Bytes::from_static(&[1, 0, 0, 0, 0])), None);
        let mut v = BytesMut::new();
        put_varint(&mut v, 300);
        assert_eq!(varint(&mut &v[..]), Some(300));
    }

    /// An HTTP/1.1 host answering every request with `status`; returns its address and
    /// the request lines it saw.
    async fn http_backend(
        status: u16,
    ) -> (std::net::SocketAddr, Arc<parking_lot::Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        if stream.read_buf(&mut head).await.unwrap_or(0) == 0 {
                            return;
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    log.lock()
                        .push(text.lines().next().unwrap_or_default().to_string());
                    let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        (addr, seen)
    }

    /// The HTTP check asks for its path and passes only on an expected status.
    #[tokio::test]
    async fn http_probe_passes_on_expected_statuses_only() {
        let speaks = Speaks::Http {
            mode: PoolMode::PingPong,
            client: ClientOptions::default(),
            authority: "web".into(),
        };
        let check = |expected: Vec<RangeInclusive<u16>>| CheckKind::Http {
            path: "/healthz".into(),
            expected_statuses: expected,
        };
        let (ok, seen) = http_backend(200).await;
        probe(&check(vec![200..=200]), ok, None, &speaks)
            .await
            .unwrap();
        assert_eq!(seen.lock().as_slice(), ["GET /healthz HTTP/1.1"]);
        let (unavailable, _) = http_backend(503).await;
        let error = probe(&check(vec![200..=200]), unavailable, None, &speaks)
            .await
            .unwrap_err();
        assert_eq!(error, "status 503");
        probe(
            &check(vec![200..=204, 500..=599]),
            unavailable,
            None,
            &speaks,
        )
        .await
        .unwrap();
    }

    /// A lenproto host that answers heartbeats with their ack.
    async fn heartbeat_backend() -> std::net::SocketAddr {
        use strait_codec_framework::{Frame, FrameKind};
        use strait_example_lenproto::{LenFrame, LenProto};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut codec = LenProto.new_codec(Limits::default());
                    let mut input = BytesMut::new();
                    while stream.read_buf(&mut input).await.unwrap_or(0) > 0 {
                        while let Ok(Some(frame)) = codec.decode(&mut input) {
                            if frame.kind() == FrameKind::Heartbeat {
                                let ack = LenFrame::new(
                                    FrameKind::HeartbeatAck,
                                    frame.request_id() as u32,
                                    0,
                                );
                                let mut out = BytesMut::new();
                                ack.encode(&mut out).unwrap();
                                let _ = stream.write_all(&out).await;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    /// The protocol probe speaks the codec's own heartbeat: lenproto's echo backend
    /// answers it; a host that accepts and never answers fails on the timeout; a
    /// refused host fails at once.
    #[tokio::test]
    async fn protocol_probe_uses_the_codecs_heartbeat() {
        use strait_example_lenproto::LenProto;
        let speaks = Speaks::Framed(Arc::new(LenProto));
        let backend = heartbeat_backend().await;
        probe(&CheckKind::Protocol, backend, None, &speaks)
            .await
            .unwrap();
        probe(&CheckKind::Tcp, backend, None, &speaks)
            .await
            .unwrap();
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let held = tokio::spawn(async move {
            let (s, _) = silent.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(s);
        });
        let timed = tokio::time::timeout(
            Duration::from_millis(200),
            probe(&CheckKind::Protocol, silent_addr, None, &speaks),
        )
        .await;
        assert!(timed.is_err(), "a silent host never passes");
        held.abort();
        let refused = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let error = probe(&CheckKind::Protocol, refused, None, &speaks)
            .await
            .unwrap_err();
        assert!(error.starts_with("connect to "), "{error}");
        let error = probe(
            &CheckKind::Grpc {
                service_name: String::new(),
            },
            backend,
            None,
            &speaks,
        )
        .await
        .unwrap_err();
        assert_eq!(error, "a grpc check cannot be made to this cluster");
    }
}
