//! `lenproto-echo --listen ADDR [--name NAME]`: a lenproto backend that answers every
//! request with status 0 and the body `NAME:<request body>`, and heartbeats with their
//! ack. Prints `listening on ADDR` once bound (port 0 picks one).

use std::net::SocketAddr;

use bytes::BytesMut;
use strait_codec_framework::{Frame, FrameKind, Limits};
use strait_example_lenproto::{LenFrame, protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let listen: SocketAddr = flag("--listen")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| std::io::Error::other("usage: lenproto-echo --listen ADDR [--name NAME]"))?;
    let name = flag("--name").cloned().unwrap_or_else(|| "echo".into());
    let socket = TcpListener::bind(listen).await?;
    println!("listening on {}", socket.local_addr()?);
    loop {
        let (stream, _) = socket.accept().await?;
        tokio::spawn(serve(stream, name.clone()));
    }
}

/// Answers the requests of one connection until it closes.
async fn serve(mut stream: TcpStream, name: String) -> std::io::Result<()> {
    let mut codec = protocol().new_codec(Limits::default());
    let mut buf = BytesMut::new();
    while stream.read_buf(&mut buf).await? > 0 {
        let mut out = BytesMut::new();
        while let Some(request) = codec.decode(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))? {
            let id = request.request_id() as u32;
            let reply = match request.kind() {
                FrameKind::Request => {
                    let mut reply = LenFrame::new(FrameKind::Response, id, 0);
                    let body = format!("{name}:{}", String::from_utf8_lossy(&request.body()));
                    reply.body = body.into_bytes().into();
                    reply
                }
                FrameKind::Heartbeat => LenFrame::new(FrameKind::HeartbeatAck, id, 0),
                _ => continue,
            };
            reply.encode(&mut out).map_err(std::io::Error::other)?;
        }
        stream.write_all(&out).await?;
    }
    Ok(())
}
