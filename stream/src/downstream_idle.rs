//! Idle framed downstream connections parked without a task ([`crate::idle_set`]), as
//! idle HTTP/1.1 connections are: one mechanism for every driver.
//!
//! A framed connection with nothing in flight, nothing to write and nothing buffered
//! for [`PARK_AFTER`] leaves its task and Tokio's reactor, keeping its socket, its
//! protocol, handler, limits and shutdown signal, and whatever its owner asked to keep
//! with it. Its next bytes (a request, a heartbeat, its close) serve it again in a new
//! task, with a fresh codec: between frames a codec holds nothing.

use std::io;
use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use strait_codec_framework::Protocol;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::downstream::{DownstreamOptions, ServeError, run};
use crate::handler::RequestHandler;
use crate::idle_set::{IdleSet, Parked};

/// How long a framed connection stays idle in its task before it parks. Long against
/// the gaps of a busy client (which therefore never parks), short against a
/// connection's idle life.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

/// Where a listener's idle framed connections wait without a task. Cloning shares it.
pub struct IdleFramed<H: RequestHandler> {
    set: IdleSet<ParkedFramed<H>>,
}

impl<H: RequestHandler> Clone for IdleFramed<H> {
    fn clone(&self) -> Self {
        IdleFramed {
            set: self.set.clone(),
        }
    }
}

impl<H: RequestHandler> IdleFramed<H> {
    /// A set whose parked connections all close once `shutdown` turns true. Must be
    /// called inside a Tokio runtime; fails if the system gives no poll instance or
    /// thread for it.
    pub fn new(shutdown: watch::Receiver<bool>) -> io::Result<Self> {
        // No deadline applies to an idle framed connection: the tick only bounds how
        // long a shutdown waits for the set.
        Ok(IdleFramed {
            set: IdleSet::new(Duration::from_millis(200), shutdown)?,
        })
    }

    /// Connections parked now.
    pub fn parked(&self) -> usize {
        self.set.len()
    }

    /// What one connection parks with: this set, and `keep`, held until the connection
    /// ends.
    pub fn parker(&self, keep: Box<dyn Send + Sync>) -> FramedParker<H> {
        self.set.parker(keep)
    }
}

/// Where one framed connection parks when idle, and what it keeps until it ends.
pub type FramedParker<H> = crate::idle_set::Parker<ParkedFramed<H>>;

/// A framed connection's serving state, apart from its socket.
struct Served<H: RequestHandler> {
    protocol: Arc<dyn Protocol>,
    handler: Arc<H>,
    options: DownstreamOptions,
    shutdown: watch::Receiver<bool>,
    parker: FramedParker<H>,
}

/// One parked framed connection.
pub struct ParkedFramed<H: RequestHandler> {
    socket: StdTcpStream,
    state: Served<H>,
}

impl<H: RequestHandler> Parked for ParkedFramed<H> {
    fn socket(&self) -> &StdTcpStream {
        &self.socket
    }

    fn resume(self: Box<Self>, runtime: &Handle) {
        runtime.spawn(async move {
            let ParkedFramed { socket, state } = *self;
            let peer = socket.peer_addr().ok();
            let ended = match TcpStream::from_std(socket) {
                Ok(stream) => serve_resumed(stream, state, true).await,
                Err(error) => Err(ServeError::Io(error)),
            };
            if let Err(error) = ended {
                tracing::debug!(?peer, %error, "downstream connection closed");
            }
        });
    }
}

/// Like [`crate::downstream::serve`] for a TCP connection, except that once idle for
/// [`PARK_AFTER`] the connection parks in `parker`'s set and this call returns while it
/// lives on; it is served again, in a new task, when its next bytes come.
pub async fn serve_parking<H: RequestHandler>(
    stream: TcpStream,
    initial: BytesMut,
    protocol: Arc<dyn Protocol>,
    handler: Arc<H>,
    options: DownstreamOptions,
    shutdown: watch::Receiver<bool>,
    parker: FramedParker<H>,
) -> Result<(), ServeError> {
    let state = Served {
        protocol,
        handler,
        options,
        shutdown,
        parker,
    };
    serve_until_parked(stream, initial, state, true).await
}

/// Serves a parked connection again. Boxed where it is awaited: rare, and it must not
/// size every connection's task.
async fn serve_resumed<H: RequestHandler>(
    stream: TcpStream,
    state: Served<H>,
    may_park: bool,
) -> Result<(), ServeError> {
    Box::pin(serve_until_parked(stream, BytesMut::new(), state, may_park)).await
}

async fn serve_until_parked<H: RequestHandler>(
    stream: TcpStream,
    initial: BytesMut,
    state: Served<H>,
    may_park: bool,
) -> Result<(), ServeError> {
    let (rd, wr) = stream.into_split();
    let parked = run(
        rd,
        wr,
        initial,
        state.protocol.clone(),
        state.handler.clone(),
        state.options.clone(),
        state.shutdown.clone(),
        may_park.then_some(PARK_AFTER),
    )
    .await?;
    let Some((rd, wr)) = parked else {
        return Ok(());
    };
    // Halves of one stream: reuniting cannot fail.
    let stream = rd
        .reunite(wr)
        .map_err(|e| ServeError::Io(io::Error::other(e)))?;
    let socket = stream.into_std()?;
    let set = state.parker.set().clone();
    match set.park(Box::new(ParkedFramed { socket, state }), None) {
        Ok(()) => Ok(()),
        // Shutting down (or the socket cannot be watched): serve it here, where the
        // shutdown closes it, and park no more.
        Err(parked) => {
            let ParkedFramed { socket, state } = *parked;
            serve_resumed(TcpStream::from_std(socket)?, state, false).await
        }
    }
}
