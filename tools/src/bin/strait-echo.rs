//! `strait-echo`: a multiplexed echo backend for SOFA Bolt (v1, v2, v2+CRC) and Dubbo,
//! told apart on each connection's first byte.
//!
//! Every request is answered with success, its own content (Bolt) or its arguments as
//! the result (Dubbo), and `x-served-by: NAME`, in the request's framing; heartbeats get
//! their ack; oneway requests are never answered. One task per connection: it reads a large chunk,
//! answers every complete frame in it into one buffer and writes that buffer once.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use bytes::BytesMut;
use clap::Parser;
use strait_codec_framework::{Codec, CodecError, DecodeError, Frame, Limits, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A SOFA Bolt and Dubbo echo backend.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the real one is printed).
    #[arg(long, default_value = "127.0.0.1:12200")]
    listen: String,
    /// Name put in the `x-served-by` response header.
    #[arg(long, default_value = "echo")]
    name: String,
    /// Runtime worker threads (1 = a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match strait_tools::runtime(args.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strait-echo: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> ExitCode {
    let listener = match TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("strait-echo: cannot listen on {}: {e}", args.listen);
            return ExitCode::from(1);
        }
    };
    let local = match listener.local_addr() {
        Ok(a) => a.to_string(),
        Err(_) => args.listen.clone(),
    };
    println!("listening on {local}");
    // A closed stdout must not stop the server; the line is informative only.
    let _ = std::io::stdout().flush();
    let name: Arc<str> = Arc::from(args.name.as_str());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let name = Arc::clone(&name);
                tokio::spawn(async move {
                    if let Err(e) = connection(stream, &name).await {
                        eprintln!("strait-echo: connection closed: {e}");
                    }
                });
            }
            Err(e) => {
                eprintln!("strait-echo: accept failed: {e}");
                // Typically EMFILE: back off instead of spinning.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Why a connection ended early.
#[derive(Debug)]
enum ConnError {
    Io(std::io::Error),
    Codec(CodecError),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) => write!(f, "i/o: {e}"),
            ConnError::Codec(e) => write!(f, "codec: {e}"),
        }
    }
}

async fn connection(mut stream: TcpStream, name: &str) -> Result<(), ConnError> {
    // Latency matters more than packet count for a benchmark backend.
    stream.set_nodelay(true).map_err(ConnError::Io)?;
    let mut codec: Option<Box<dyn Codec>> = None;
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf = BytesMut::with_capacity(64 * 1024);
    loop {
        if rbuf.capacity() - rbuf.len() < 16 * 1024 {
            rbuf.reserve(64 * 1024);
        }
        let n = stream.read_buf(&mut rbuf).await.map_err(ConnError::Io)?;
        if n == 0 {
            return Ok(());
        }
        let codec = codec.get_or_insert_with(|| {
            // Dubbo's magic starts 0xda; anything else is tried as Bolt.
            let protocol: Arc<dyn Protocol> = if rbuf.first() == Some(&0xda) {
                strait_codec_dubbo::protocol()
            } else {
                strait_codec_bolt::protocol()
            };
            protocol.new_codec(Limits::default())
        });
        loop {
            match codec.decode(&mut rbuf) {
                Ok(Some(frame)) => answer(&*frame, name, &mut wbuf).map_err(ConnError::Codec)?,
                Ok(None) => break,
                Err(DecodeError::Fatal(e)) => {
                    // Send what was already answered, then close.
                    let _ = stream.write_all(&wbuf).await;
                    return Err(ConnError::Codec(e));
                }
                Err(DecodeError::Rejected { error, reply }) => {
                    eprintln!("strait-echo: rejected frame: {error}");
                    if let Some(reply) = reply {
                        reply.encode(&mut wbuf).map_err(ConnError::Codec)?;
                    }
                }
            }
        }
        if !wbuf.is_empty() {
            stream.write_all(&wbuf).await.map_err(ConnError::Io)?;
            wbuf.clear();
        }
    }
}

/// Appends the answer to `frame` (if it gets one) to `out`.
fn answer(frame: &dyn Frame, name: &str, out: &mut BytesMut) -> Result<(), CodecError> {
    match strait_tools::echo_answer(frame, name)? {
        Some(reply) => reply.encode(out),
        None => Ok(()),
    }
}
