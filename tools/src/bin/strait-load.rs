//! `strait-load`: a SOFA Bolt and Dubbo load generator.
//!
//! Requests are pipelined over `--connections` connections with at most `--concurrency`
//! requests in flight in total. Closed loop (default): every answer frees a slot that is
//! refilled at once. Open loop (`--rate`): a pacer thread schedules requests at a fixed
//! rate and latency is measured from each request's *intended* send time, so a stalled
//! server shows up as latency instead of silently lowering the offered load (no
//! coordinated omission). Every answer is verified (Response kind, status 0, a request id
//! that is in flight on that connection, content equal to the request's). The summary is
//! one JSON line on stdout.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use clap::Parser;
use hdrhistogram::Histogram;
use strait_codec_framework::{Codec, DecodeError, Frame, FrameKind, Limits};
use strait_tools::tls::Stream;
use strait_tools::{DEFAULT_METHOD, DEFAULT_SERVICE, Proto, RequestSpec, parse_duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A SOFA Bolt and Dubbo load generator with HDR latency histograms.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// `host:port` of the Bolt server or proxy.
    addr: String,
    /// Number of connections.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Requests in flight in total (spread evenly over the connections).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long to send for (e.g. 10s, 500ms); the default when --requests is absent is 10s.
    #[arg(long, value_parser = parse_duration, conflicts_with = "requests")]
    duration: Option<Duration>,
    /// Send exactly this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Open loop: send at this fixed rate (requests per second, all connections together).
    #[arg(long)]
    rate: Option<f64>,
    /// Content size in bytes.
    #[arg(long, default_value_t = 128)]
    size: usize,
    /// Framing.
    #[arg(long, value_enum, default_value = "v1")]
    proto: Proto,
    /// `service` header (the routing key).
    #[arg(long, default_value = DEFAULT_SERVICE)]
    service: String,
    /// `sofa_head_method_name` header.
    #[arg(long, default_value = DEFAULT_METHOD)]
    method: String,
    /// Timeout field written in each request, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: i32,
    /// Once sending has stopped (or a closed-loop connection waits), give up on the
    /// requests still in flight after this long without an answer; they count as errors.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    stall_timeout: Duration,
    /// Runtime worker threads (1 = a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Instead of requests: full TLS handshakes (no session resumption), `--concurrency`
    /// at a time, each on a new connection closed right after; needs `--tls-ca`.
    #[arg(long)]
    handshakes: bool,
    #[command(flatten)]
    tls: strait_tools::tls::TlsArgs,
}

/// Slot indices are the low 16 bits of a request id.
const MAX_PER_CONNECTION: usize = 1 << 16;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.connections == 0 || args.concurrency < args.connections {
        eprintln!("strait-load: need --connections >= 1 and --concurrency >= --connections");
        return ExitCode::from(2);
    }
    if args.concurrency.div_ceil(args.connections) > MAX_PER_CONNECTION {
        eprintln!("strait-load: at most {MAX_PER_CONNECTION} requests in flight per connection");
        return ExitCode::from(2);
    }
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        eprintln!("strait-load: --rate must be a positive number");
        return ExitCode::from(2);
    }
    let runtime = match strait_tools::runtime(args.threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strait-load: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let ran = if args.handshakes {
        runtime.block_on(handshakes(args))
    } else {
        runtime.block_on(run(args))
    };
    match ran {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("strait-load: {e}");
            ExitCode::from(1)
        }
    }
}

/// What every connection task shares.
struct Plan {
    /// Requests still to be sent (u64::MAX: unbounded), closed loop only.
    budget: AtomicU64,
    /// No new request after this instant.
    send_deadline: Option<Instant>,
    stall_timeout: Duration,
}

impl Plan {
    /// Takes up to `want` requests from the budget.
    fn take(&self, want: u64) -> u64 {
        let mut got = 0;
        // fetch_update only fails when the closure returns None, i.e. the budget is 0.
        let _ = self
            .budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                got = left.min(want);
                (got > 0).then(|| left - got)
            });
        got
    }
}

/// One connection's outcome.
struct Outcome {
    hist: Histogram<u64>,
    /// Open loop: how late each request was written after its intended time.
    lag: Histogram<u64>,
    ok: u64,
    errors: u64,
    last_done: Option<Instant>,
    first_error: Option<String>,
}

async fn run(args: Args) -> Result<serde_json::Value, String> {
    let content = Bytes::from(
        (0..args.size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let spec = RequestSpec {
        proto: args.proto,
        service: args.service.clone(),
        method: args.method.clone(),
        timeout_ms: args.timeout_ms,
        content: content.clone(),
    };
    let expected = spec
        .expected_value()
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let spec = Arc::new(spec);

    let tls = args.tls.config()?;
    let mut streams = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        streams.push(strait_tools::tls::connect(&args.addr, tls.as_ref()).await?);
    }

    let duration = match (args.duration, args.requests) {
        (Some(d), _) => Some(d),
        (None, None) => Some(Duration::from_secs(10)),
        (None, Some(_)) => None,
    };
    let start = Instant::now();
    let plan = Arc::new(Plan {
        budget: AtomicU64::new(args.requests.unwrap_or(u64::MAX)),
        send_deadline: duration.map(|d| start + d),
        stall_timeout: args.stall_timeout,
    });

    let mut senders = Vec::new();
    let mut tasks = Vec::with_capacity(args.connections);
    for (i, stream) in streams.into_iter().enumerate() {
        // Spread the concurrency: the first `rem` connections get one more slot.
        let slots = args.concurrency / args.connections
            + usize::from(i < args.concurrency % args.connections);
        let template = spec
            .build_frame(0)
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let conn = Conn::new(stream, template, spec.clone(), expected.clone(), slots);
        let plan = Arc::clone(&plan);
        if args.rate.is_some() {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            tasks.push(tokio::spawn(conn.open_loop(rx, plan)));
        } else {
            tasks.push(tokio::spawn(conn.closed_loop(plan)));
        }
    }
    let pacer = args.rate.map(|rate| {
        let end = plan.send_deadline;
        let total = args.requests;
        std::thread::spawn(move || pace(senders, start, rate, end, total))
    });

    // Histograms in nanoseconds, 1 ns .. 1 h, 3 significant digits.
    let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)
        .map_err(|e| format!("histogram: {e}"))?;
    let mut lag = hist.clone();
    let (mut ok, mut errors, mut last_done, mut first_error) = (0u64, 0u64, start, None);
    for task in tasks {
        let o = task
            .await
            .map_err(|e| format!("connection task failed: {e}"))?;
        hist.add(&o.hist).map_err(|e| format!("histogram: {e}"))?;
        lag.add(&o.lag).map_err(|e| format!("histogram: {e}"))?;
        ok += o.ok;
        errors += o.errors;
        if let Some(t) = o.last_done {
            last_done = last_done.max(t);
        }
        if first_error.is_none() {
            first_error = o.first_error;
        }
    }
    if let Some(p) = pacer {
        // The pacer only ends after its channels; a panic there is a bug worth reporting.
        p.join()
            .map_err(|_| "the pacer thread panicked".to_string())?;
    }
    if let Some(e) = &first_error {
        eprintln!("strait-load: first error: {e}");
    }
    let elapsed = last_done.duration_since(start).as_secs_f64();
    let us = |q: f64| round1(hist.value_at_quantile(q) as f64 / 1000.0);
    let lag_us = |q: f64| round1(lag.value_at_quantile(q) as f64 / 1000.0);
    let open = args.rate.is_some();
    Ok(serde_json::json!({
        "requests": ok,
        "errors": errors,
        "elapsed_s": round3(elapsed),
        "rps": round1(if elapsed > 0.0 { ok as f64 / elapsed } else { 0.0 }),
        "p50_us": us(0.5),
        "p90_us": us(0.9),
        "p99_us": us(0.99),
        "max_us": round1(hist.max() as f64 / 1000.0),
        "mode": if open { "open" } else { "closed" },
        // Open loop: lateness of the actual write versus the intended send time. It is
        // part of the latency above (that is the point of measuring from intended times);
        // a large p50 here means the generator, not the server, is late.
        "send_lag_p50_us": open.then(|| lag_us(0.5)),
        "send_lag_p99_us": open.then(|| lag_us(0.99)),
        "rate": args.rate,
        "connections": args.connections,
        "concurrency": args.concurrency,
        "size": args.size,
        "proto": format!("{:?}", args.proto).to_lowercase(),
    }))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Open loop: hands out intended send times at `rate`, round robin over the connections.
/// A plain thread with `thread::sleep` (high-resolution timers, tens of µs of slack)
/// paces far more precisely than the runtime's millisecond timer wheel.
fn pace(
    senders: Vec<mpsc::UnboundedSender<Instant>>,
    start: Instant,
    rate: f64,
    end: Option<Instant>,
    total: Option<u64>,
) {
    let intended = |i: u64| start + Duration::from_secs_f64(i as f64 / rate);
    let mut i = 0u64;
    'pacing: loop {
        let next = intended(i);
        if end.is_some_and(|e| next >= e) || total.is_some_and(|t| i >= t) {
            break;
        }
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let now = Instant::now();
        loop {
            let t = intended(i);
            if t > now || end.is_some_and(|e| t >= e) || total.is_some_and(|n| i >= n) {
                break;
            }
            // usize -> u64 never truncates on supported targets; modulo keeps it in range.
            let conn = (i % senders.len() as u64) as usize;
            if senders[conn].send(t).is_err() {
                // The connection died; its task has counted the loss. Stop pacing it
                // by stopping altogether would hide the others' results, so skip.
                if senders.iter().all(|s| s.is_closed()) {
                    break 'pacing;
                }
            }
            i += 1;
        }
    }
}

/// One connection's state, owned by its task.
struct Conn {
    stream: Stream,
    codec: Box<dyn Codec>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    template: Box<dyn Frame>,
    spec: Arc<RequestSpec>,
    /// What an echo answer must carry (see [`RequestSpec::is_echo_answer`]).
    expected: Bytes,
    /// Per slot: the id in flight (if any) and its start (intended or actual send time).
    slot_id: Vec<Option<u32>>,
    slot_start: Vec<Instant>,
    free: Vec<u16>,
    seq: u16,
    /// Open loop: slots written into `wbuf` since the last flush (for the send lag).
    queued: Vec<u16>,
    open: bool,
    out: Outcome,
}

/// Why a connection stopped early.
enum Stop {
    Closed,
    Failed(String),
}

impl Conn {
    fn new(
        stream: Stream,
        template: Box<dyn Frame>,
        spec: Arc<RequestSpec>,
        expected: Bytes,
        slots: usize,
    ) -> Self {
        let now = Instant::now();
        Conn {
            stream,
            codec: spec.proto.protocol().new_codec(Limits::default()),
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: BytesMut::with_capacity(64 * 1024),
            template,
            spec,
            expected,
            slot_id: vec![None; slots],
            slot_start: vec![now; slots],
            // Slots are < MAX_PER_CONNECTION (checked in main), so they fit u16.
            free: (0..slots).rev().map(|s| s as u16).collect(),
            seq: 0,
            queued: Vec::new(),
            open: false,
            out: Outcome {
                // Bounds are constants that new_with_bounds accepts (low >= 1, high >= 2*low).
                hist: Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                    .expect("valid constant histogram bounds"),
                // Same constant bounds as above.
                lag: Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                    .expect("valid constant histogram bounds"),
                ok: 0,
                errors: 0,
                last_done: None,
                first_error: None,
            },
        }
    }

    fn in_flight(&self) -> usize {
        self.slot_id.len() - self.free.len()
    }

    fn error(&mut self, n: u64, why: impl FnOnce() -> String) {
        self.out.errors += n;
        if self.out.first_error.is_none() {
            self.out.first_error = Some(why());
        }
    }

    /// Queues one request whose latency counts from `start`. Requires a free slot.
    fn send(&mut self, start: Instant) -> Result<(), Stop> {
        let Some(slot) = self.free.pop() else {
            return Err(Stop::Failed("internal: no free slot".into()));
        };
        self.seq = self.seq.wrapping_add(1);
        let id = (u32::from(self.seq) << 16) | u32::from(slot);
        self.slot_id[usize::from(slot)] = Some(id);
        self.slot_start[usize::from(slot)] = start;
        if self.open {
            self.queued.push(slot);
        }
        self.template.set_request_id(u64::from(id));
        self.template
            .encode(&mut self.wbuf)
            .map_err(|e| Stop::Failed(format!("cannot encode a request: {e}")))
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        if !self.wbuf.is_empty() {
            self.stream
                .write_all(&self.wbuf)
                .await
                .map_err(|e| Stop::Failed(format!("write failed: {e}")))?;
            // A TLS stream may hold the last record until flushed (a no-op on TCP).
            self.stream
                .flush()
                .await
                .map_err(|e| Stop::Failed(format!("write failed: {e}")))?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads once and settles every complete answer.
    async fn read(&mut self) -> Result<(), Stop> {
        if self.rbuf.capacity() - self.rbuf.len() < 16 * 1024 {
            self.rbuf.reserve(64 * 1024);
        }
        let n = self
            .stream
            .read_buf(&mut self.rbuf)
            .await
            .map_err(|e| Stop::Failed(format!("read failed: {e}")))?;
        if n == 0 {
            return Err(Stop::Closed);
        }
        self.settle()
    }

    fn settle(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        loop {
            let frame = match self.codec.decode(&mut self.rbuf) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(DecodeError::Fatal(e)) => {
                    return Err(Stop::Failed(format!("undecodable answer: {e}")));
                }
                Err(DecodeError::Rejected { error, .. }) => {
                    self.error(1, || format!("rejected answer: {error}"));
                    continue;
                }
            };
            self.check(&*frame, now);
        }
    }

    /// Verifies one answer and records its latency.
    fn check(&mut self, frame: &dyn Frame, now: Instant) {
        if frame.kind() != FrameKind::Response {
            let kind = frame.kind();
            self.error(1, || format!("unexpected {kind:?} frame"));
            return;
        }
        let id = frame.request_id();
        let slot = (id & 0xffff) as usize;
        if self.slot_id.get(slot).copied().flatten().map(u64::from) != Some(id) {
            self.error(1, || format!("answer with unknown request id {id}"));
            return;
        }
        self.slot_id[slot] = None;
        // slot < slot_id.len() <= MAX_PER_CONNECTION, so it fits u16.
        self.free.push(slot as u16);
        self.out.last_done = Some(now);
        let status = frame.status();
        if status != Some(self.spec.proto.ok_status()) {
            self.error(1, || format!("answer {id} has status {status:?}"));
            return;
        }
        if !self.spec.is_echo_answer(frame, &self.expected) {
            self.error(1, || {
                format!("answer {id} does not echo the request content")
            });
            return;
        }
        self.out.ok += 1;
        let ns = now.duration_since(self.slot_start[slot]).as_nanos();
        self.out
            .hist
            .saturating_record(u64::try_from(ns).unwrap_or(u64::MAX).max(1));
    }

    /// Counts what is still in flight as lost and returns the outcome.
    fn finish(mut self, stop: Option<Stop>) -> Outcome {
        let lost = self.in_flight() as u64;
        match stop {
            Some(Stop::Failed(why)) => self.error(lost.max(1), || why),
            Some(Stop::Closed) if lost > 0 => {
                self.error(lost, || "connection closed with requests in flight".into())
            }
            _ if lost > 0 => self.error(lost, || "requests unanswered".into()),
            _ => {}
        }
        self.out
    }

    async fn closed_loop(mut self, plan: Arc<Plan>) -> Outcome {
        let stop = loop {
            let now = Instant::now();
            let room = self.free.len() as u64;
            if room > 0 && plan.send_deadline.is_none_or(|d| now < d) {
                let n = plan.take(room);
                let mut failed = None;
                for _ in 0..n {
                    if let Err(e) = self.send(now) {
                        failed = Some(e);
                        break;
                    }
                }
                if let Some(e) = failed {
                    break Some(e);
                }
            }
            if self.in_flight() == 0 {
                break None;
            }
            if let Err(e) = self.flush().await {
                break Some(e);
            }
            match tokio::time::timeout(plan.stall_timeout, self.read()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => break Some(e),
                Err(_) => break Some(Stop::Failed("stalled: no answer in time".into())),
            }
        };
        self.finish(stop)
    }

    async fn open_loop(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Instant>,
        plan: Arc<Plan>,
    ) -> Outcome {
        self.open = true;
        let mut pending: VecDeque<Instant> = VecDeque::new();
        let mut pacing = true;
        let stop = loop {
            let mut failed = None;
            while !self.free.is_empty() {
                let Some(t) = pending.pop_front() else { break };
                if let Err(e) = self.send(t) {
                    failed = Some(e);
                    break;
                }
            }
            if let Some(e) = failed {
                break Some(e);
            }
            if !self.wbuf.is_empty() {
                let now = Instant::now();
                for slot in self.queued.drain(..) {
                    let late = now.saturating_duration_since(self.slot_start[usize::from(slot)]);
                    let ns = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
                    self.out.lag.saturating_record(ns.max(1));
                }
            }
            if let Err(e) = self.flush().await {
                break Some(e);
            }
            if !pacing && pending.is_empty() && self.in_flight() == 0 {
                break None;
            }
            let waiting = self.in_flight() > 0;
            tokio::select! {
                biased;
                r = readable_or_read(&mut self.stream, &mut self.rbuf), if waiting => {
                    let settled = match r {
                        Err(e) => Err(Stop::Failed(format!("read failed: {e}"))),
                        Ok(None) => self.try_read(),
                        Ok(Some(0)) => Err(Stop::Closed),
                        Ok(Some(_)) => self.settle(),
                    };
                    if let Err(e) = settled {
                        break Some(e);
                    }
                }
                t = rx.recv(), if pacing => match t {
                    Some(t) => {
                        pending.push_back(t);
                        while let Ok(t) = rx.try_recv() {
                            pending.push_back(t);
                        }
                    }
                    None => pacing = false,
                },
                () = tokio::time::sleep(plan.stall_timeout), if !pacing => {
                    break Some(Stop::Failed("stalled: no answer in time".into()));
                }
            }
        };
        self.finish(stop)
    }

    /// Reads what the socket has without waiting, then settles the answers.
    fn try_read(&mut self) -> Result<(), Stop> {
        if self.rbuf.capacity() - self.rbuf.len() < 16 * 1024 {
            self.rbuf.reserve(64 * 1024);
        }
        let Stream::Tcp(tcp) = &mut self.stream else {
            // TLS reads in `readable_or_read`.
            return Ok(());
        };
        match tcp.try_read_buf(&mut self.rbuf) {
            Ok(0) => Err(Stop::Closed),
            Ok(_) => self.settle(),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(Stop::Failed(format!("read failed: {e}"))),
        }
    }
}

/// Waits until a plain socket is readable (`None`: read it with `try_read`), or reads a
/// TLS stream (which cannot say it is readable without reading): `Some(bytes read)`.
async fn readable_or_read(
    stream: &mut Stream,
    rbuf: &mut BytesMut,
) -> std::io::Result<Option<usize>> {
    match stream {
        Stream::Tcp(tcp) => tcp.readable().await.map(|()| None),
        Stream::Wrapped(tls) => {
            if rbuf.capacity() - rbuf.len() < 16 * 1024 {
                rbuf.reserve(64 * 1024);
            }
            tls.read_buf(rbuf).await.map(Some)
        }
    }
}

/// `--handshakes`: full TLS handshakes on new connections, `--concurrency` at a time,
/// for `--duration`.
async fn handshakes(args: Args) -> Result<serde_json::Value, String> {
    let Some(ca) = &args.tls.tls_ca else {
        return Err("--handshakes needs --tls-ca".into());
    };
    let config = (
        strait_tools::tls::client_config(ca, false)?,
        args.tls.tls_name.clone(),
    );
    let config = Arc::new(config);
    let duration = args.duration.unwrap_or(Duration::from_secs(10));
    let start = Instant::now();
    let until = start + duration;
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::OnceLock::<String>::new());
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (config, addr) = (config.clone(), args.addr.clone());
        let (done, failed, first_error) = (done.clone(), failed.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                match strait_tools::tls::connect(&addr, Some(&config)).await {
                    Ok(mut stream) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        let _ = stream.shutdown().await;
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        let _ = first_error.set(e);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| format!("handshake task failed: {e}"))?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Some(e) = first_error.get() {
        eprintln!("strait-load: first error: {e}");
    }
    let n = done.load(Ordering::Relaxed);
    Ok(serde_json::json!({
        "handshakes": n,
        "errors": failed.load(Ordering::Relaxed),
        "elapsed_s": round3(elapsed),
        "rate": round1(n as f64 / elapsed),
        "concurrency": args.concurrency,
    }))
}
