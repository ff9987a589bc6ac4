//! The `strait` command line as a library call: [`run`] parses the flags, sets up
//! logging, loads and checks the configuration, starts the proxy and serves until
//! SIGTERM or SIGINT, then drains. The `strait` binary is `run` on the built-in
//! protocols; a binary that adds a protocol is the same call on a registry holding it:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     let registry = strait::builtin_registry();
//!     // registry.register(my_codec::protocol()).expect("a new protocol name");
//!     strait::run(registry)
//! }
//! ```

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use strait_codec_framework::Registry;

use crate::Server;

/// The version `--version` prints: the crate version and the commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("STRAIT_COMMIT"), ")");

/// Strait: a service-mesh data-plane proxy.
#[derive(Parser, Debug)]
#[command(name = "strait", version = VERSION, about)]
pub struct Args {
    /// The YAML configuration file.
    #[arg(short = 'c', long = "config")]
    pub config: PathBuf,
    /// Check the configuration and exit: 0 if valid, 1 with the error otherwise.
    #[arg(long)]
    pub validate: bool,
    /// Worker threads (default: one per CPU core).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// How log lines are written to stderr. The level comes from `RUST_LOG` (default
    /// `info`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event; coloured only when stderr is a terminal
    /// (and `NO_COLOR` is unset).
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`...).
    Json,
}

/// Runs the proxy as the `strait` binary does, with the protocols of `registry`, on the
/// process's command line. Returns the process's exit code: 0 after a clean stop (or a
/// valid `--validate`), 1 when the configuration is invalid or the proxy cannot start.
pub fn run(registry: Registry) -> ExitCode {
    run_with_args(Args::parse(), registry)
}

/// [`run`] with flags already parsed.
pub fn run_with_args(args: Args, registry: Registry) -> ExitCode {
    init_logging(args.log_format);
    let config = match crate::config::load(&args.config, &registry) {
        Ok(c) => c,
        Err(error) => {
            eprintln!("strait: invalid configuration: {error}");
            return ExitCode::from(1);
        }
    };
    if args.validate {
        println!("{}: configuration is valid", args.config.display());
        return ExitCode::SUCCESS;
    }
    tracing::info!(
        path = %args.config.display(),
        listeners = config.listeners.len(),
        clusters = config.clusters.len(),
        "configuration loaded"
    );

    // One worker: a current-thread runtime, everything on the main thread, no work
    // stealing. More: a multi-thread runtime with that many workers.
    let mut builder = match args.concurrency {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("strait: cannot start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        let server = match Server::start(config, registry).await {
            Ok(s) => s,
            Err(error) => {
                eprintln!("strait: {error}");
                return ExitCode::from(1);
            }
        };
        #[cfg(feature = "mimalloc")]
        tokio::spawn(crate::allocator::trim_periodically());
        wait_for_signal(&server).await;
        tracing::info!("shutting down: draining in-flight requests");
        server.shutdown().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// Replaces the log filter of the running process, where [`run`] set up logging.
type SetFilter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// How `POST /logging?level=` changes the filter; unset until [`run`] installed its
/// subscriber (a process embedding [`crate::Server`] keeps its own logging).
static LOG_FILTER: std::sync::OnceLock<SetFilter> = std::sync::OnceLock::new();

/// Sets the log filter (`RUST_LOG` syntax: `debug`, `info,strait_upstream=debug`).
pub(crate) fn set_log_filter(filter: &str) -> Result<(), String> {
    match LOG_FILTER.get() {
        Some(set) => set(filter),
        None => {
            Err("this process's logging was not set up by strait::run: its filter is fixed".into())
        }
    }
}

/// Log lines to stderr at `RUST_LOG`'s level (default `info`), through a filter that
/// `POST /logging?level=` can replace.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, fmt, reload};

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    // A second `run` in one process (tests) keeps the first subscriber.
    let installed = match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(wants_colour()),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
    };
    if installed.is_ok() {
        let _ = LOG_FILTER.set(Box::new(move |spec: &str| {
            let filter = EnvFilter::try_new(spec)
                .map_err(|error| format!("invalid log filter {spec:?}: {error}"))?;
            handle.reload(filter).map_err(|error| error.to_string())
        }));
    }
}

/// Colour codes only for a person at a terminal: never into a file, a pipe or a log
/// collector, and not when `NO_COLOR` is set (no-color.org).
fn wants_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Serves until SIGTERM or SIGINT; meanwhile SIGHUP reloads the configuration file
/// and SIGUSR1 reopens the access logs (after log rotation moved their files).
async fn wait_for_signal(server: &Server) {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(mut term), Ok(mut int), Ok(mut usr1), Ok(mut hup)) => loop {
            tokio::select! {
                _ = term.recv() => return,
                _ = int.recv() => return,
                _ = usr1.recv() => {
                    tracing::info!("SIGUSR1: reopening access logs");
                    server.reopen_access_logs();
                }
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    // The outcome is logged by the reload itself.
                    let _ = server.reload().await;
                }
            }
        },
        _ => {
            // Without signal handlers, run until killed.
            std::future::pending::<()>().await;
        }
    }
}
