//! `strait`: runs the proxy on a config file, or checks one with `--validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

// The `mimalloc` feature (on by default) selects mimalloc as the global allocator.
#[cfg(feature = "mimalloc")]
#[allow(unsafe_code)] // one call into mimalloc's C API, with its SAFETY note
mod allocator;

/// Strait: a service-mesh data-plane proxy.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The YAML configuration file.
    #[arg(short = 'c', long = "config")]
    config: PathBuf,
    /// Check the configuration and exit: 0 if valid, 1 with the error otherwise.
    #[arg(long)]
    validate: bool,
    /// Worker threads (default: one per CPU core).
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let registry = strait::builtin_registry();
    let config = match strait::config::load(&args.config, &registry) {
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
        let server = match strait::Server::start(config, registry).await {
            Ok(s) => s,
            Err(error) => {
                eprintln!("strait: {error}");
                return ExitCode::from(1);
            }
        };
        #[cfg(feature = "mimalloc")]
        tokio::spawn(allocator::trim_periodically());
        wait_for_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        server.shutdown().await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            // Without signal handlers, run until killed.
            std::future::pending::<()>().await;
        }
    }
}
