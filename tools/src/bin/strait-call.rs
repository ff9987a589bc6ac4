//! `strait-call`: sends one SOFA Bolt or Dubbo request and prints the answer on one line:
//! `status=<n> served-by=<x-served-by or -> body=<content as lossy UTF-8>`, then
//! ` error=<text>` when the answer carries a proxy's error text (Bolt's `x-proxy-error`;
//! a Dubbo error's message is its body).
//!
//! Exit status: 0 if the response status is success (Bolt 0, Dubbo 20), 1 otherwise (including
//! connection failures, timeouts and undecodable answers, which are reported on stderr).
//!
//! `--hold N --pid PID...` measures what idle connections cost a proxy: it reads the summed
//! VmRSS of the PIDs, then opens N connections one after the other, makes the call on each
//! (one request answered), keeps them all open and idle, waits `--settle-ms`, reads VmRSS
//! again and prints one JSON line `{"n","ok","errors","rss_before_kb","rss_after_kb",
//! "kib_per_conn"}` before closing them.

use std::process::ExitCode;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use clap::Parser;
use strait_codec_framework::{FrameKind, Limits};
use strait_tools::tls::Stream;
use strait_tools::{DEFAULT_METHOD, DEFAULT_SERVICE, Proto, RequestSpec, SERVED_BY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one SOFA Bolt or Dubbo request and prints the response.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// `host:port` of the Bolt server or proxy.
    addr: String,
    /// `service` header (the routing key).
    #[arg(long, default_value = DEFAULT_SERVICE)]
    service: String,
    /// `sofa_head_method_name` header.
    #[arg(long, default_value = DEFAULT_METHOD)]
    method: String,
    /// Framing.
    #[arg(long, value_enum, default_value = "v1")]
    proto: Proto,
    /// Request content.
    #[arg(long, default_value = "hello")]
    body: String,
    /// Timeout in milliseconds: written in the request and applied to the whole call.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u32,
    /// Open this many connections, one call each, and hold them (see the module doc).
    #[arg(long)]
    hold: Option<usize>,
    /// Processes whose summed VmRSS `--hold` measures (the proxy's).
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// How long `--hold` waits with every connection idle before measuring.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    #[command(flatten)]
    tls: strait_tools::tls::TlsArgs,
}

/// The request id used for the call.
const CALL_ID: u32 = 1;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strait-call: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(n) = args.hold {
        return match runtime.block_on(hold(&args, n)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("strait-call: {e}");
                ExitCode::from(1)
            }
        };
    }
    let limit = Duration::from_millis(u64::from(args.timeout_ms.max(1)));
    match runtime.block_on(async { tokio::time::timeout(limit, call(&args)).await }) {
        Ok(Ok(status)) if status == args.proto.ok_status() => ExitCode::SUCCESS,
        Ok(Ok(_)) => ExitCode::from(1),
        Ok(Err(e)) => {
            eprintln!("strait-call: {e}");
            ExitCode::from(1)
        }
        Err(_) => {
            eprintln!("strait-call: no answer within {} ms", args.timeout_ms);
            ExitCode::from(1)
        }
    }
}

/// Summed VmRSS of `pids`, in KiB.
fn rss_kb(pids: &[u32]) -> Result<u64, String> {
    let mut total = 0;
    for pid in pids {
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"));
        let kb = line.and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok());
        total += kb.ok_or_else(|| format!("{path}: no VmRSS"))?;
    }
    Ok(total)
}

/// `--hold N`: N idle connections that each carried one answered call.
async fn hold(args: &Args, n: usize) -> Result<(), String> {
    let before = rss_kb(&args.pids)?;
    let limit = Duration::from_millis(u64::from(args.timeout_ms.max(1)));
    let (mut held, mut ok, mut errors) = (Vec::with_capacity(n), 0usize, 0usize);
    for _ in 0..n {
        match tokio::time::timeout(limit, exchange(args)).await {
            Ok(Ok((status, stream))) => {
                ok += usize::from(status == args.proto.ok_status());
                held.push(stream);
            }
            Ok(Err(e)) => {
                errors += 1;
                eprintln!("strait-call: {e}");
            }
            Err(_) => errors += 1,
        }
    }
    tokio::time::sleep(Duration::from_millis(args.settle_ms)).await;
    let after = rss_kb(&args.pids)?;
    let per_conn = (after as f64 - before as f64) / held.len().max(1) as f64;
    println!(
        "{{\"n\":{n},\"ok\":{ok},\"errors\":{errors},\"rss_before_kb\":{before},\"rss_after_kb\":{after},\"kib_per_conn\":{per_conn:.2}}}"
    );
    drop(held);
    Ok(())
}

/// Makes the call and prints the answer; returns the response status.
async fn call(args: &Args) -> Result<u32, String> {
    let (status, _stream) = exchange(args).await?;
    Ok(status)
}

/// Makes the call on a new connection, prints the answer (not with `--hold`), and
/// returns the response status with the still open connection.
async fn exchange(args: &Args) -> Result<(u32, Stream), String> {
    let spec = RequestSpec {
        proto: args.proto,
        service: args.service.clone(),
        method: args.method.clone(),
        timeout_ms: i32::try_from(args.timeout_ms).unwrap_or(i32::MAX),
        content: Bytes::from(args.body.clone().into_bytes()),
    };
    let request = spec
        .build_frame(CALL_ID)
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let mut out = BytesMut::new();
    request
        .encode(&mut out)
        .map_err(|e| format!("cannot encode the request: {e}"))?;
    let tls = args.tls.config()?;
    let mut stream = strait_tools::tls::connect(&args.addr, tls.as_ref()).await?;
    stream
        .write_all(&out)
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    // A TLS stream may hold the last record until flushed.
    stream
        .flush()
        .await
        .map_err(|e| format!("write failed: {e}"))?;

    let mut codec = args.proto.protocol().new_codec(Limits::default());
    let mut buf = BytesMut::with_capacity(8 * 1024);
    loop {
        while let Some(frame) = codec
            .decode(&mut buf)
            .map_err(|e| format!("undecodable answer: {e}"))?
        {
            if frame.kind() != FrameKind::Response || frame.request_id() != u64::from(CALL_ID) {
                continue;
            }
            // A decoded Response always has a status field; u32::MAX marks "absent".
            let status = frame.status().unwrap_or(u32::MAX);
            if args.hold.is_none() {
                // A proxy's error text (Bolt's `x-proxy-error`; Dubbo's is its message,
                // already the body) follows the body.
                let error = frame
                    .header("x-proxy-error")
                    .map(|text| format!(" error={text}"))
                    .unwrap_or_default();
                println!(
                    "status={status} served-by={} body={}{error}",
                    frame.header(SERVED_BY).unwrap_or("-"),
                    strait_tools::answer_text(&*frame)
                );
            }
            return Ok((status, stream));
        }
        let n = stream
            .read_buf(&mut buf)
            .await
            .map_err(|e| format!("read failed: {e}"))?;
        if n == 0 {
            return Err("connection closed before the answer".into());
        }
    }
}
