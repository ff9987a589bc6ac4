//! Proxies lenproto through the real Strait server, with lenproto registered from this
//! crate alone: no other crate knows the protocol exists.

use std::net::SocketAddr;

use bytes::BytesMut;
use strait_codec_framework::{Frame, FrameKind, Limits};
use strait_example_lenproto::{LenFrame, protocol, status_for};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A lenproto backend answering every request with "<name>:<body>".
async fn backend(name: &'static str) -> SocketAddr {
    let socket = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = socket.accept().await.unwrap();
            tokio::spawn(async move {
                let mut codec = protocol().new_codec(Limits::default());
                let mut buf = BytesMut::new();
                while stream.read_buf(&mut buf).await.unwrap_or(0) > 0 {
                    while let Some(req) = codec.decode(&mut buf).unwrap() {
                        let mut out = BytesMut::new();
                        let mut resp = LenFrame::request(0, "", b"");
                        resp.kind = FrameKind::Response;
                        resp.id = req.request_id() as u32;
                        resp.headers.clear();
                        resp.body =
                            format!("{name}:{}", String::from_utf8_lossy(&req.body())).into_bytes().into();
                        resp.encode(&mut out).unwrap();
                        stream.write_all(&out).await.unwrap();
                    }
                }
            });
        }
    });
    addr
}

async fn roundtrip(stream: &mut TcpStream, frame: &LenFrame) -> Box<dyn Frame> {
    let mut out = BytesMut::new();
    frame.encode(&mut out).unwrap();
    stream.write_all(&out).await.unwrap();
    let mut codec = protocol().new_codec(Limits::default());
    let mut buf = BytesMut::new();
    loop {
        if let Some(f) = codec.decode(&mut buf).unwrap() {
            return f;
        }
        assert!(stream.read_buf(&mut buf).await.unwrap() > 0, "proxy closed the connection");
    }
}

#[tokio::test]
async fn lenproto_is_routed_proxied_and_answered_by_strait() {
    let a = backend("a").await;
    let b = backend("b").await;
    let mut registry = strait::builtin_registry();
    registry.register(protocol()).unwrap();
    let yaml = format!(
        r#"
listeners:
  - {{ name: lp, address: "127.0.0.1:0", protocol: lenproto, route_config: lp }}
route_configs:
  - name: lp
    virtual_hosts:
      - name: all
        routes:
          - match: {{ variables: [{{ name: service, exact: alpha }}] }}
            route: {{ cluster: a }}
          - match: {{ headers: [{{ name: service, prefix: "be" }}] }}
            route: {{ cluster: b }}
clusters:
  - {{ name: a, protocol: lenproto, endpoints: [{{ address: "{a}" }}] }}
  - {{ name: b, protocol: lenproto, endpoints: [{{ address: "{b}" }}] }}
"#
    );
    let config = strait::config::parse("lenproto.yaml", &yaml, &registry).unwrap();
    let server = strait::Server::start(config, registry).await.unwrap();
    let mut client = TcpStream::connect(server.listener_addr("lp").unwrap()).await.unwrap();

    let resp = roundtrip(&mut client, &LenFrame::request(41, "alpha", b"hi")).await;
    assert_eq!((resp.kind(), resp.request_id(), resp.status()), (FrameKind::Response, 41, Some(0)));
    assert_eq!(&resp.body()[..], b"a:hi");

    let resp = roundtrip(&mut client, &LenFrame::request(42, "beta", b"yo")).await;
    assert_eq!((resp.request_id(), &resp.body()[..]), (42, &b"b:yo"[..]));

    let resp = roundtrip(&mut client, &LenFrame::request(43, "gamma", b"")).await;
    let no_route = status_for(strait_codec_framework::ProxyFailure::NoRoute);
    assert_eq!((resp.request_id(), resp.status()), (43, Some(no_route.into())));

    let mut hb = LenFrame::request(44, "alpha", b"");
    hb.kind = FrameKind::Heartbeat;
    let resp = roundtrip(&mut client, &hb).await;
    assert_eq!((resp.kind(), resp.request_id()), (FrameKind::HeartbeatAck, 44));

    assert!(server.shutdown().await);
}

#[test]
fn codec_round_trips_and_waits_at_every_split() {
    let mut frame = LenFrame::request(7, "alpha", b"payload");
    frame.timeout_ms = 250;
    let mut wire = BytesMut::new();
    frame.encode(&mut wire).unwrap();
    for split in 0..wire.len() {
        let mut codec = protocol().new_codec(Limits::default());
        let mut buf = BytesMut::from(&wire[..split]);
        assert!(codec.decode(&mut buf).unwrap().is_none(), "split at {split}");
        assert_eq!(buf.len(), split, "need-more leaves the buffer untouched");
        buf.extend_from_slice(&wire[split..]);
        let decoded = codec.decode(&mut buf).unwrap().expect("whole frame");
        let decoded = decoded.as_any().downcast_ref::<LenFrame>().unwrap();
        assert_eq!(decoded, &frame);
        assert!(buf.is_empty());
    }
    let tiny = Limits { max_frame_size: 20 };
    let mut buf = wire.clone();
    assert!(protocol().new_codec(tiny).decode(&mut buf).is_err(), "limit checked before buffering");
}

/// The shared conformance kit, on frames lenproto's own encoder wrote (a protocol with
/// no captures from another implementation yet): request, oneway, response, heartbeat.
#[test]
fn the_conformance_kit_passes() {
    let mut request = LenFrame::request(7, "alpha", b"payload");
    request.timeout_ms = 250;
    let mut oneway = LenFrame::request(8, "beta", b"");
    oneway.kind = FrameKind::Oneway;
    let mut response = LenFrame::new(FrameKind::Response, 7, 0);
    response.body = b"a:payload".to_vec().into();
    let heartbeat = LenFrame::new(FrameKind::Heartbeat, 9, 0);
    let frames: Vec<(&str, Vec<u8>)> =
        [("request", request), ("oneway", oneway), ("response", response), ("heartbeat", heartbeat)]
            .into_iter()
            .map(|(name, frame)| {
                let mut out = BytesMut::new();
                frame.encode(&mut out).unwrap();
                (name, out.to_vec())
            })
            .collect();
    let report = strait_conformance_fixtures::kit::check_codec(&*protocol(), &frames, 1000);
    assert_eq!(report.frames, 4);
    assert!(report.mutants_decoded > 0, "{report:?}");
}

/// The kit fails when a frame does not survive: a capture with a stray byte after its
/// frame, and one cut short, are both caught.
#[test]
fn the_conformance_kit_catches_bad_frames() {
    let mut out = BytesMut::new();
    LenFrame::request(1, "alpha", b"x").encode(&mut out).unwrap();
    let mut stray = out.to_vec();
    stray.push(b'L');
    let short = out[..out.len() - 1].to_vec();
    for (what, bytes) in [("stray byte", stray), ("cut short", short)] {
        let frames = [(what, bytes)];
        let caught = std::panic::catch_unwind(|| {
            strait_conformance_fixtures::kit::check_codec(&*protocol(), &frames, 10)
        });
        assert!(caught.is_err(), "{what}: the kit passed a broken frame");
    }
}
