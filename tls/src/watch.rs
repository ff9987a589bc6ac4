//! Live rotation: the directories of every TLS file are watched, and a change there
//! reloads the contexts reading them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::{ClientTls, ServerTls};

/// Events arriving within this window after the first are handled as one change: a
/// certificate and its key are rarely written in one step.
const SETTLE: Duration = Duration::from_millis(100);

/// Watches the TLS files of a set of contexts and reloads them when they change. The
/// directories are watched, not the files: Kubernetes updates a secret mount by
/// swapping a `..data` symlink, which no watch on the old file would see. Stops
/// when dropped.
pub struct Rotation {
    _watcher: notify::RecommendedWatcher,
}

/// A context the rotation reloads.
enum Context {
    Server(Arc<ServerTls>),
    Client(Arc<ClientTls>),
}

impl Context {
    fn reload(&self) {
        let (kind, name, reloaded) = match self {
            Context::Server(tls) => ("listener", tls.name(), tls.reload()),
            Context::Client(tls) => ("cluster", tls.name(), tls.reload()),
        };
        match reloaded {
            Ok(true) => tracing::info!(%kind, %name, "TLS material reloaded"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%kind, %name, %error, "TLS files changed but cannot be loaded: keeping the previous material")
            }
        }
    }
}

impl Rotation {
    /// Starts watching the files of `servers` and `clients`. `None` when there is
    /// nothing to watch.
    pub fn start(
        servers: &[Arc<ServerTls>],
        clients: &[Arc<ClientTls>],
    ) -> Result<Option<Rotation>, String> {
        let contexts: Vec<Context> = servers
            .iter()
            .cloned()
            .map(Context::Server)
            .chain(clients.iter().cloned().map(Context::Client))
            .collect();
        let files = servers
            .iter()
            .flat_map(|s| s.files())
            .chain(clients.iter().flat_map(|c| c.files()));
        let dirs: BTreeSet<PathBuf> = files
            .map(|f| {
                let f = std::path::absolute(&f).unwrap_or(f);
                f.parent().map(PathBuf::from).unwrap_or_else(|| ".".into())
            })
            .collect();
        if dirs.is_empty() {
            return Ok(None);
        }
        let (events, received) = mpsc::channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| !e.kind.is_access()) {
                    let _ = events.send(());
                }
            })
            .map_err(|e| format!("cannot watch TLS files: {e}"))?;
        for dir in &dirs {
            watcher
                .watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
        }
        std::thread::Builder::new()
            .name("strait-tls-watch".into())
            .spawn(move || {
                // Files changed while no watch was on them (between the previous
                // rotation and this one, at a reload) are read now.
                for context in &contexts {
                    context.reload();
                }
                // Ends when the watcher (and with it the sender) is dropped.
                while received.recv().is_ok() {
                    std::thread::sleep(SETTLE);
                    while received.try_recv().is_ok() {}
                    for context in &contexts {
                        context.reload();
                    }
                }
            })
            .map_err(|e| format!("cannot start the TLS watcher: {e}"))?;
        Ok(Some(Rotation { _watcher: watcher }))
    }
}
