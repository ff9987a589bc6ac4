//! Access logs: one line per request, from the one request hook, for every protocol.
//!
//! A line is formatted on the connection's task into a buffer of its own and handed to
//! the sink's writer thread through a bounded queue: the file write never happens on
//! the request path, and a full queue (a stalled disk) drops lines, counted, instead of
//! slowing traffic. `reopen` (on SIGUSR1) makes the writer reopen its file, for log
//! rotation.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::Duration;

use strait_codec_framework::{Frame, RequestHook, RequestRecord, ViewSlot, rfc3339};

use crate::trace_context::caller_trace_id;

/// Lines waiting for the writer before new ones are dropped.
const QUEUE: usize = 65_536;

/// One field of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `%START_TIME%`: when the request started (RFC 3339 UTC, milliseconds).
    StartTime,
    /// `%DURATION%`: milliseconds from the decoded head to the outcome.
    Duration,
    /// `%UPSTREAM_DURATION%`: milliseconds from the last write upstream to the outcome.
    UpstreamDuration,
    /// `%LISTENER%`.
    Listener,
    /// `%PROTOCOL%`: `bolt`, `dubbo`, `http1`, `http2`, `grpc`...
    Protocol,
    /// `%SERVICE%`: the `service` variable.
    Service,
    /// `%METHOD%`: the `method` variable.
    Method,
    /// `%PATH%`: the `path` variable.
    Path,
    /// `%ROUTE%`: the matched route's name.
    Route,
    /// `%CLUSTER%`: the cluster the route chose.
    Cluster,
    /// `%STATUS%`: the answer's status, in the protocol's numbering.
    Status,
    /// `%OUTCOME%`: `success`, `upstream_timeout`, `no_route`...
    Outcome,
    /// `%UPSTREAM_HOST%`: the host that served the request (or was last tried).
    UpstreamHost,
    /// `%ATTEMPTS%`: attempts made (more than 1 after retries).
    Attempts,
    /// `%BYTES_RECEIVED%`: request bytes.
    BytesReceived,
    /// `%BYTES_SENT%`: response bytes.
    BytesSent,
    /// `%TRACE_ID%`: the request's trace id (from `traceparent`, `sw8` or
    /// `sofaTraceId`, or the one Strait started).
    TraceId,
    /// `%DOWNSTREAM_PEER%`: the caller's address.
    DownstreamPeer,
}

impl Field {
    /// Every field, with its name in a format string and its JSON key.
    pub const ALL: [(Field, &'static str, &'static str); 18] = [
        (Field::StartTime, "START_TIME", "start_time"),
        (Field::Duration, "DURATION", "duration_ms"),
        (
            Field::UpstreamDuration,
            "UPSTREAM_DURATION",
            "upstream_duration_ms",
        ),
        (Field::Listener, "LISTENER", "listener"),
        (Field::Protocol, "PROTOCOL", "protocol"),
        (Field::Service, "SERVICE", "service"),
        (Field::Method, "METHOD", "method"),
        (Field::Path, "PATH", "path"),
        (Field::Route, "ROUTE", "route"),
        (Field::Cluster, "CLUSTER", "cluster"),
        (Field::Status, "STATUS", "status"),
        (Field::Outcome, "OUTCOME", "outcome"),
        (Field::UpstreamHost, "UPSTREAM_HOST", "upstream_host"),
        (Field::Attempts, "ATTEMPTS", "attempts"),
        (Field::BytesReceived, "BYTES_RECEIVED", "bytes_received"),
        (Field::BytesSent, "BYTES_SENT", "bytes_sent"),
        (Field::TraceId, "TRACE_ID", "trace_id"),
        (Field::DownstreamPeer, "DOWNSTREAM_PEER", "downstream_peer"),
    ];

    fn by_name(name: &str) -> Option<Field> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(f, _, _)| *f)
    }
}

/// The line written when a listener's `access_log` names no `format`.
pub const DEFAULT_FORMAT: &str = "[%START_TIME%] %PROTOCOL% %SERVICE% %METHOD% %PATH% %STATUS% %OUTCOME% %DURATION%ms %UPSTREAM_HOST% %BYTES_RECEIVED% %BYTES_SENT% %TRACE_ID%";

/// How lines look: a format string of `%FIELD%`s, or one JSON object per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Text with `%FIELD%`s replaced (`-` where a field has no value).
    Text(Vec<Piece>),
    /// Every field, by its JSON key (`null` where it has no value).
    Json,
}

/// A piece of a text format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Copied as is.
    Literal(String),
    /// Replaced by the field's value.
    Field(Field),
}

/// Why a format string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// `%NAME%` names no field.
    #[error("unknown field %{0}% (fields: {list})", list = field_list())]
    UnknownField(String),
    /// A `%` opens a field that never closes.
    #[error("unclosed % at byte {0} (write %% for a literal %)")]
    Unclosed(usize),
}

fn field_list() -> String {
    Field::ALL
        .iter()
        .map(|(_, n, _)| format!("%{n}%"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Format {
    /// `json`, or a format string of `%FIELD%`s (`%%` is a literal `%`).
    pub fn parse(text: &str) -> Result<Format, FormatError> {
        if text == "json" {
            return Ok(Format::Json);
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut at = 0;
        while let Some(open) = rest.find('%') {
            literal.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('%') else {
                return Err(FormatError::Unclosed(at + open));
            };
            let name = &after[..close];
            if name.is_empty() {
                literal.push('%');
            } else {
                let field =
                    Field::by_name(name).ok_or_else(|| FormatError::UnknownField(name.into()))?;
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Field(field));
            }
            at += open + close + 2;
            rest = &after[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Format::Text(pieces))
    }

    /// Appends the line of `record` (without its newline).
    pub fn write(&self, record: &RequestRecord<'_>, out: &mut String) {
        match self {
            Format::Text(pieces) => {
                for piece in pieces {
                    match piece {
                        Piece::Literal(text) => out.push_str(text),
                        Piece::Field(field) => {
                            let before = out.len();
                            write_value(*field, record, out);
                            if out.len() == before {
                                out.push('-');
                            }
                        }
                    }
                }
            }
            Format::Json => {
                let mut object = serde_json::Map::new();
                let mut value = String::new();
                for (field, _, key) in Field::ALL {
                    value.clear();
                    write_value(field, record, &mut value);
                    let json = match field {
                        _ if value.is_empty() => serde_json::Value::Null,
                        Field::Duration | Field::UpstreamDuration => value
                            .parse::<f64>()
                            .map_or(serde_json::Value::Null, serde_json::Value::from),
                        Field::Status
                        | Field::Attempts
                        | Field::BytesReceived
                        | Field::BytesSent => value
                            .parse::<u64>()
                            .map_or(serde_json::Value::Null, serde_json::Value::from),
                        _ => serde_json::Value::from(value.as_str()),
                    };
                    object.insert(key.to_string(), json);
                }
                // A map of strings and numbers always serialises.
                let _ = write!(out, "{}", serde_json::Value::Object(object));
            }
        }
    }
}

/// Appends `field`'s value, or nothing when it has none.
fn write_value(field: Field, r: &RequestRecord<'_>, out: &mut String) {
    let view = r.view;
    let _ = match field {
        Field::StartTime => match view {
            Some(v) => {
                start_time(v.started, out);
                Ok(())
            }
            None => Ok(()),
        },
        Field::Duration => {
            push_millis(out, r.duration);
            Ok(())
        }
        Field::UpstreamDuration => {
            if let Some(d) = r.upstream_duration {
                push_millis(out, d);
            }
            Ok(())
        }
        Field::Listener => {
            out.push_str(r.listener);
            Ok(())
        }
        Field::Protocol => {
            out.push_str(r.protocol);
            Ok(())
        }
        Field::Service => push_opt(out, view.and_then(|v| v.service.as_deref())),
        Field::Method => push_opt(out, view.and_then(|v| v.method.as_deref())),
        Field::Path => push_opt(out, view.and_then(|v| v.path.as_deref())),
        Field::Route => push_opt(out, r.route),
        Field::Cluster => push_opt(out, r.cluster),
        Field::Status => {
            if let Some(s) = r.status {
                push_u64(out, u64::from(s));
            }
            Ok(())
        }
        Field::Outcome => {
            out.push_str(r.outcome.as_str());
            Ok(())
        }
        Field::UpstreamHost => push_addr(out, r.host),
        Field::Attempts => {
            push_u64(out, u64::from(r.attempt));
            Ok(())
        }
        Field::BytesReceived => {
            push_u64(out, r.request_bytes);
            Ok(())
        }
        Field::BytesSent => {
            push_u64(out, r.response_bytes);
            Ok(())
        }
        Field::TraceId => push_opt(out, view.and_then(|v| v.trace_id.as_deref())),
        Field::DownstreamPeer => push_addr(out, view.and_then(|v| v.peer)),
    };
}

thread_local! {
    /// The last second this thread formatted (`2026-12-02T09:30:45`), as seconds since
    /// the epoch and text: lines of one second share it.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// `at` as RFC 3339 UTC with milliseconds.
fn start_time(at: std::time::SystemTime, out: &mut String) {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            *cached = secs;
            *text = rfc3339(at, false);
            text.pop(); // the `Z`
        }
        out.push_str(text);
    });
    out.push('.');
    push_three_digits(out, since.subsec_millis());
    out.push('Z');
}

// Numbers are written by hand: `write!` goes through the formatting machinery, and
// (for the durations' three decimals) float formatting, which cost an access log
// several thousand instructions per line.

/// Appends `n` in decimal.
fn push_u64(out: &mut String, mut n: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(
        digits
            .get(start..)
            .unwrap_or_default()
            .iter()
            .map(|d| char::from(*d)),
    );
}

/// Appends `n` (below 1000) as three digits.
fn push_three_digits(out: &mut String, n: u32) {
    for d in [n / 100 % 10, n / 10 % 10, n % 10] {
        out.push(char::from(b'0' + d as u8));
    }
}

/// Appends `d` in milliseconds with three decimals (rounded to the microsecond).
fn push_millis(out: &mut String, d: Duration) {
    let micros = u64::try_from((d.as_nanos() + 500) / 1000).unwrap_or(u64::MAX);
    push_u64(out, micros / 1000);
    out.push('.');
    push_three_digits(out, (micros % 1000) as u32);
}

/// Appends `addr` as `ip:port` (`[ip]:port` for IPv6), or nothing.
fn push_addr(out: &mut String, addr: Option<SocketAddr>) -> std::fmt::Result {
    match addr {
        Some(SocketAddr::V4(a)) => {
            for (i, octet) in a.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u64(out, u64::from(octet));
            }
            out.push(':');
            push_u64(out, u64::from(a.port()));
            Ok(())
        }
        Some(a) => write!(out, "{a}"),
        None => Ok(()),
    }
}

fn push_opt(out: &mut String, value: Option<&str>) -> std::fmt::Result {
    if let Some(value) = value {
        // One request, one line: a value cannot break it. Printable ASCII, the usual
        // value, goes in whole.
        if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            out.push_str(value);
        } else {
            out.extend(value.chars().map(|c| if c.is_control() { ' ' } else { c }));
        }
    }
    Ok(())
}

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// The process's standard output.
    Stdout,
    /// A file, appended to (created if missing).
    File(PathBuf),
}

impl Target {
    /// `stdout`, or a file path.
    pub fn parse(text: &str) -> Target {
        match text {
            "stdout" | "-" => Target::Stdout,
            path => Target::File(PathBuf::from(path)),
        }
    }
}

enum Message {
    Line(String),
    /// Reopen the file: lines queued after it go to the new one.
    Reopen,
    /// Write everything queued, then answer.
    Flush(std::sync::mpsc::Sender<()>),
}

/// One output of access-log lines with its writer thread; listeners that name the same
/// target share it, so their lines never interleave mid-line.
#[derive(Debug)]
pub struct Sink {
    target: Target,
    queue: SyncSender<Message>,
    reopen: Arc<AtomicBool>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message")
    }
}

impl Sink {
    /// Opens `target` (a file is created if missing, and appended to) and starts its
    /// writer thread.
    pub fn open(target: Target) -> io::Result<Arc<Sink>> {
        let out = Output::open(&target)?;
        let (queue, lines) = sync_channel(QUEUE);
        let reopen = Arc::new(AtomicBool::new(false));
        let flag = reopen.clone();
        let name = target.clone();
        std::thread::Builder::new()
            .name("strait-access-log".into())
            .spawn(move || write_lines(lines, out, name, flag))?;
        Ok(Arc::new(Sink {
            target,
            queue,
            reopen,
            dropped: AtomicU64::new(0),
        }))
    }

    /// Where it writes.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Makes the writer reopen its file before its next write (log rotation moved
    /// the old one away).
    pub fn reopen(&self) {
        // In the queue, so lines queued after it go to the new file; the flag covers a
        // full queue.
        self.reopen.store(true, Ordering::Release);
        let _ = self.queue.try_send(Message::Reopen);
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Waits (at most `limit`) until every line queued so far is written.
    pub fn flush(&self, limit: Duration) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.queue.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(limit);
        }
    }

    fn push(&self, line: String) {
        match self.queue.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The open output of a writer thread.
enum Output {
    Stdout,
    File(io::BufWriter<File>),
}

impl Output {
    fn open(target: &Target) -> io::Result<Output> {
        Ok(match target {
            Target::Stdout => Output::Stdout,
            Target::File(path) => {
                Output::File(io::BufWriter::with_capacity(1 << 16, open_append(path)?))
            }
        })
    }

    fn write(&mut self, line: &str) -> io::Result<()> {
        match self {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")
            }
            Output::File(f) => {
                f.write_all(line.as_bytes())?;
                f.write_all(b"\n")
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout => io::stdout().lock().flush(),
            Output::File(f) => f.flush(),
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// How often the writer looks for lines. Senders never wake it (a wake is a system call
/// per line at a million lines a second): it polls, and lines reach the file within this.
const POLL: Duration = Duration::from_millis(5);

/// The writer thread: writes what came since its last look, flushes, sleeps; reopens
/// when asked; ends when every sender is gone.
fn write_lines(lines: Receiver<Message>, mut out: Output, target: Target, reopen: Arc<AtomicBool>) {
    let mut failed = false;
    loop {
        let mut wrote = false;
        loop {
            if reopen.load(Ordering::Acquire) && reopen.swap(false, Ordering::AcqRel) {
                let _ = out.flush();
                match Output::open(&target) {
                    Ok(new) => {
                        out = new;
                        failed = false;
                        tracing::info!(?target, "access log reopened");
                    }
                    Err(error) => {
                        tracing::warn!(?target, %error, "access log cannot be reopened");
                    }
                }
            }
            match lines.try_recv() {
                Ok(Message::Line(line)) => {
                    wrote = true;
                    if let Err(error) = out.write(&line)
                        && !std::mem::replace(&mut failed, true)
                    {
                        tracing::warn!(?target, %error, "access log write failed");
                    }
                }
                Ok(Message::Reopen) => {
                    // The flag was set before this was queued, so the check at the top
                    // of this or the next turn reopens before any later line.
                }
                Ok(Message::Flush(done)) => {
                    let _ = out.flush();
                    let _ = done.send(());
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    let _ = out.flush();
                    return;
                }
            }
        }
        if wrote {
            let _ = out.flush();
        }
        std::thread::sleep(POLL);
    }
}

/// One listener's access log: its format, its sink.
#[derive(Debug)]
pub struct AccessLog {
    format: Format,
    sink: Arc<Sink>,
}

impl AccessLog {
    /// Lines of `format` into `sink`.
    pub fn new(format: Format, sink: Arc<Sink>) -> Self {
        AccessLog { format, sink }
    }
}

impl RequestHook for AccessLog {
    fn wants_view(&self) -> bool {
        true
    }

    fn on_request_start(&self, request: &mut dyn Frame, view: &mut ViewSlot<'_>) -> bool {
        let view = view.view();
        view.take_variables(request);
        if view.trace_id.is_none() {
            view.trace_id = caller_trace_id(request);
        }
        true
    }

    fn on_request_end(&self, record: &RequestRecord<'_>) {
        let mut line = String::with_capacity(192);
        self.format.write(record, &mut line);
        self.sink.push(line);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, UNIX_EPOCH};

    use strait_codec_framework::{Outcome, RequestView, ResponseClass};

    use super::*;

    fn record<'a>(view: Option<&'a RequestView>) -> RequestRecord<'a> {
        RequestRecord {
            listener: "front",
            protocol: "dubbo",
            route: Some("orders"),
            route_index: Some(0),
            cluster: Some("orders-v1"),
            cluster_index: Some(0),
            host: Some("127.0.0.1:20880".parse::<SocketAddr>().unwrap()),
            attempt: 2,
            outcome: Outcome::Upstream(ResponseClass::Success),
            status: Some(20),
            duration: Duration::from_micros(1500),
            upstream_duration: Some(Duration::from_micros(900)),
            request_bytes: 310,
            response_bytes: 120,
            view,
        }
    }

    fn view() -> RequestView {
        RequestView {
            started: UNIX_EPOCH + Duration::from_millis(1_796_203_845_007),
            peer: Some("127.0.0.1:5000".parse().unwrap()),
            service: Some("com.example.Orders".into()),
            method: Some("place\nOrder".into()),
            path: None,
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            trace: None,
        }
    }

    #[test]
    fn text_format_fills_fields_and_dashes_missing_ones() {
        let format = Format::parse(
            "%START_TIME% %SERVICE%.%METHOD% %PATH% %STATUS% %OUTCOME% %DURATION% 100%% %ATTEMPTS%",
        )
        .unwrap();
        let view = view();
        let mut line = String::new();
        format.write(&record(Some(&view)), &mut line);
        assert_eq!(
            line,
            "2026-12-02T09:30:45.007Z com.example.Orders.place Order - 20 success 1.500 100% 2"
        );
        let mut line = String::new();
        format.write(&record(None), &mut line);
        assert_eq!(line, "- -.- - 20 success 1.500 100% 2");
    }

    #[test]
    fn json_lines_have_every_field() {
        let view = view();
        let mut line = String::new();
        Format::Json.write(&record(Some(&view)), &mut line);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["service"], "com.example.Orders");
        assert_eq!(v["status"], 20);
        assert_eq!(v["duration_ms"], 1.5);
        assert_eq!(v["upstream_host"], "127.0.0.1:20880");
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["path"], serde_json::Value::Null);
        assert_eq!(v.as_object().unwrap().len(), Field::ALL.len());
    }

    #[test]
    fn numbers_times_addresses_and_text_are_written_as_fmt_would() {
        for n in [0, 7, 10, 99, 1000, 65535, u64::from(u32::MAX), u64::MAX] {
            let mut out = String::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string());
        }
        for (nanos, want) in [
            (0, "0.000"),
            (1_234_500, "1.235"),
            (999_999_600, "1000.000"),
            (1_500_000, "1.500"),
            (60_000_012_000, "60000.012"),
        ] {
            let mut out = String::new();
            push_millis(&mut out, Duration::from_nanos(nanos));
            assert_eq!(out, want, "{nanos} ns");
        }
        for addr in [
            "10.0.0.255:80",
            "127.0.0.1:65535",
            "[::1]:443",
            "[fe80::1]:8080",
        ] {
            let mut out = String::new();
            push_addr(&mut out, Some(addr.parse().unwrap())).unwrap();
            assert_eq!(out, addr);
        }
        for (text, want) in [
            ("plain text", "plain text"),
            ("tab\there", "tab here"),
            ("del\u{7f}", "del "),
            ("café\u{85}", "café "),
        ] {
            let mut out = String::new();
            push_opt(&mut out, Some(text)).unwrap();
            assert_eq!(out, want, "{text:?}");
        }
    }

    #[test]
    fn bad_formats_say_what_is_wrong() {
        let unknown = Format::parse("%START_TIME% %NOPE%").unwrap_err();
        assert_eq!(unknown, FormatError::UnknownField("NOPE".into()));
        assert!(unknown.to_string().contains("%TRACE_ID%"), "{unknown}");
        assert_eq!(Format::parse("a %B").unwrap_err(), FormatError::Unclosed(2));
        assert!(Format::parse(DEFAULT_FORMAT).is_ok());
    }

    #[test]
    fn sink_writes_lines_and_reopens_a_rotated_file() {
        let dir = std::env::temp_dir().join(format!("strait-al-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("access.log");
        let sink = Sink::open(Target::File(path.clone())).unwrap();
        sink.push("one".into());
        sink.flush(Duration::from_secs(5));
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        sink.reopen();
        sink.push("two".into());
        sink.flush(Duration::from_secs(5));
        // The rotated file kept its line; the new one got the next.
        assert_eq!(
            std::fs::read_to_string(dir.join("access.log.1")).unwrap(),
            "one\n"
        );
        // The reopen happens on the writer's next wakeup: the flush above follows it.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(&path).unwrap_or_default() != "two\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "two never reached the new file"
            );
            sink.flush(Duration::from_secs(1));
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
