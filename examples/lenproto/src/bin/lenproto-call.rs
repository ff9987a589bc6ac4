//! `lenproto-call ADDR SERVICE BODY`: sends one lenproto request for `SERVICE` and
//! prints the answer as `status=S body=B`. Exits 0 when the status is 0, 1 otherwise.

use std::process::ExitCode;

use bytes::BytesMut;
use strait_codec_framework::{Frame, Limits};
use strait_example_lenproto::{LenFrame, protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, service, body] = args.as_slice() else {
        eprintln!("usage: lenproto-call ADDR SERVICE BODY");
        return ExitCode::from(2);
    };
    match call(addr, service, body).await {
        Ok(answer) => {
            let status = answer.status().unwrap_or(0);
            println!("status={status} body={}", String::from_utf8_lossy(&answer.body()));
            if status == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(error) => {
            eprintln!("lenproto-call: {error}");
            ExitCode::from(2)
        }
    }
}

async fn call(addr: &str, service: &str, body: &str) -> std::io::Result<Box<dyn Frame>> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut out = BytesMut::new();
    LenFrame::request(1, service, body.as_bytes()).encode(&mut out).map_err(std::io::Error::other)?;
    stream.write_all(&out).await?;
    let mut codec = protocol().new_codec(Limits::default());
    let mut buf = BytesMut::new();
    loop {
        if let Some(answer) = codec.decode(&mut buf).map_err(|e| std::io::Error::other(e.to_string()))? {
            return Ok(answer);
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::other("the connection closed before an answer"));
        }
    }
}
