//! Idle HTTP/1.1 connections parked without a task ([`crate::idle_set`]).
//!
//! A connection idle for [`PARK_AFTER`] leaves its task and Tokio's reactor: what it
//! keeps is its socket, its [`ConnectionInfo`], the handler, options and shutdown
//! signal it is served with, and whatever its owner asked to keep with it (the
//! proxy's count of open connections). When the next request's bytes arrive it is
//! served again in a new task.

use std::io;
use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::time::Instant;

use super::h1::{self, H1End, Parking};
use super::{Handler, ServeError, ServerIo, ServerOptions, serve_upgraded_h2};
use crate::http::ConnectionInfo;
use crate::idle_set::{IdleSet, Parked};

/// How long an HTTP/1.1 connection waits for its next request in its task before it
/// parks. Long against a busy client's gap between requests (a steady keep-alive
/// client never parks, so no task is spawned per request), short against a
/// keep-alive's lifetime.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(100);

/// Where a listener's idle HTTP/1.1 connections wait without a task. Cloning shares it.
#[derive(Clone)]
pub struct IdleConnections {
    set: IdleSet<ParkedH1>,
}

impl IdleConnections {
    /// A set for connections served with `options`; every parked connection closes
    /// once `shutdown` turns true. Must be called inside a Tokio runtime; fails if the
    /// system gives no poll instance or thread for it.
    pub fn new(options: &ServerOptions, shutdown: watch::Receiver<bool>) -> io::Result<Self> {
        // Deadlines are checked every tick: a fraction of the shortest one.
        let tick = options.idle_wait().map_or(Duration::from_secs(1), |w| {
            (w / 8).clamp(Duration::from_millis(10), Duration::from_secs(1))
        });
        Ok(IdleConnections {
            set: IdleSet::new(tick, shutdown)?,
        })
    }

    /// Connections parked now.
    pub fn parked(&self) -> usize {
        self.set.len()
    }

    /// What one connection parks with: this set, and `keep`, held until the connection
    /// ends (a count of open connections, say).
    pub fn parker(&self, keep: Box<dyn Send + Sync>) -> Parker {
        self.set.parker(keep)
    }
}

/// Where one HTTP/1.1 connection parks when idle, and what it keeps until it ends
/// ([`IdleConnections::parker`]).
pub type Parker = crate::idle_set::Parker<ParkedH1>;

/// One parked HTTP/1.1 connection: everything needed to serve it again.
pub struct ParkedH1 {
    socket: StdTcpStream,
    state: Served,
}

/// A connection's serving state, apart from its socket.
struct Served {
    ctx: ConnectionInfo,
    handler: Arc<dyn Handler>,
    options: Arc<ServerOptions>,
    shutdown: watch::Receiver<bool>,
    parker: Parker,
    /// When its next head is due (set when it went idle).
    deadline: Option<Instant>,
}

impl Parked for ParkedH1 {
    fn socket(&self) -> &StdTcpStream {
        &self.socket
    }

    fn resume(self: Box<Self>, runtime: &Handle) {
        runtime.spawn(async move {
            let ParkedH1 { socket, state } = *self;
            let peer = state.ctx.peer();
            // Back on Tokio's reactor (inside the runtime, as it must be).
            let ended = match TcpStream::from_std(socket) {
                Ok(io) => serve_resumed(io, state, true).await,
                Err(error) => Err(ServeError::Io(error)),
            };
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "downstream connection closed");
            }
        });
    }
}

/// Serves an HTTP/1.1 connection that may park: from its first request (`io` as
/// accepted, `initial` read by detection) until it ends or parks; once parked, it is
/// served on in the tasks it is resumed in.
pub(super) async fn serve_h1_parking<IO: ServerIo>(
    io: IO,
    initial: Bytes,
    ctx: ConnectionInfo,
    handler: Arc<dyn Handler>,
    options: Arc<ServerOptions>,
    shutdown: watch::Receiver<bool>,
    parker: Parker,
) -> Result<(), ServeError> {
    let state = Served {
        ctx,
        handler,
        options,
        shutdown,
        parker,
        deadline: None,
    };
    let parking = Parking {
        after: Some(PARK_AFTER),
        resumed: None,
    };
    serve_until_parked(io, initial, state, parking).await
}

/// Serves a parked connection again, until it ends or parks again (`may_park`).
/// Boxed where it is awaited: rare, and it must not size every connection's task.
async fn serve_resumed(io: TcpStream, state: Served, may_park: bool) -> Result<(), ServeError> {
    let parking = Parking {
        after: may_park.then_some(PARK_AFTER),
        resumed: Some(state.deadline),
    };
    Box::pin(serve_until_parked(io, Bytes::new(), state, parking)).await
}

/// Serves `io` until it ends or parks.
async fn serve_until_parked<IO: ServerIo>(
    io: IO,
    initial: Bytes,
    mut state: Served,
    parking: Parking,
) -> Result<(), ServeError> {
    let mut io = io;
    let mut initial = initial;
    let mut parking = parking;
    loop {
        let ended = h1::serve(
            io,
            initial,
            state.ctx.clone(),
            state.handler.clone(),
            &state.options,
            &mut state.shutdown,
            parking,
        )
        .await?;
        let (back, deadline) = match ended {
            H1End::Closed => return Ok(()),
            H1End::H2c { io, rest, stream1 } => {
                let Served {
                    ctx,
                    handler,
                    options,
                    mut shutdown,
                    ..
                } = state;
                return serve_upgraded_h2(
                    io,
                    rest,
                    stream1,
                    &ctx,
                    handler,
                    &options,
                    &mut shutdown,
                )
                .await;
            }
            H1End::Park { io, deadline } => (io, deadline),
        };
        let socket = match back.into_parkable() {
            Ok(socket) => socket?,
            Err(back) => {
                // Not plain TCP: wait in this task after all.
                io = back;
                initial = Bytes::new();
                parking = Parking {
                    after: None,
                    resumed: Some(deadline),
                };
                continue;
            }
        };
        state.deadline = deadline;
        let set = state.parker.set().clone();
        return match set.park(Box::new(ParkedH1 { socket, state }), deadline) {
            Ok(()) => Ok(()),
            // Shutting down (or the socket cannot be watched): serve it here, where
            // the shutdown closes it, and park no more.
            Err(parked) => {
                let ParkedH1 { socket, state } = *parked;
                let io = TcpStream::from_std(socket)?;
                serve_resumed(io, state, false).await
            }
        };
    }
}
