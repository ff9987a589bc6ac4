//! Idle connections without a task (`docs/design/http1-fast-path.md` §1).
//!
//! A keep-alive connection spends most of its life waiting for the next request. Held
//! in a task, that wait costs the task (its header and future, cache-line aligned),
//! the wait's timer and the socket's registration with Tokio's reactor (its
//! `ScheduledIo`, 256 bytes). Parked here, it costs its socket (taken off Tokio's
//! reactor) and the few fields its owner needs to serve it again: the set watches
//! every parked socket with one `epoll` instance of its own, on one thread, and hands a
//! socket that turns readable back to the runtime ([`Parked::resume`], which spawns
//! the task that serves it). The same thread closes connections whose deadline passed
//! (checked every `tick`, so a deadline is honoured up to one tick late) and, on
//! shutdown, every parked connection at once.
//!
//! Parking and resuming cost one `epoll_ctl` each on the set's side and one on Tokio's;
//! they happen only after a connection has been idle for a while, never per request of
//! a busy one.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Weak};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use parking_lot::Mutex;
use slab::Slab;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::time::Instant;

/// A connection that can wait in an [`IdleSet`]. Dropping it closes it (its deadline
/// passed, or the set shut down).
pub trait Parked: Send + 'static {
    /// The socket whose readability ends the wait (off Tokio's reactor while parked).
    fn socket(&self) -> &TcpStream;

    /// Called once, on the set's thread, when the socket became readable (bytes, end
    /// of stream or an error): carry on serving it in a task of `runtime`'s.
    fn resume(self: Box<Self>, runtime: &Handle);
}

/// Where one connection parks whenever it goes idle, and what it keeps until it ends
/// (a count of open connections, say): made by [`IdleSet::parker`], carried by the
/// connection through every park and resume.
pub struct Parker<P: Parked> {
    set: IdleSet<P>,
    /// Held for its drop, when the connection ends.
    _keep: Box<dyn Send + Sync>,
}

impl<P: Parked> Parker<P> {
    /// The set the connection parks in.
    pub(crate) fn set(&self) -> &IdleSet<P> {
        &self.set
    }
}

/// Where idle connections of one kind wait. Cloning shares the set.
pub struct IdleSet<P: Parked> {
    inner: Arc<Inner<P>>,
}

impl<P: Parked> Clone for IdleSet<P> {
    fn clone(&self) -> Self {
        IdleSet {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<P> {
    registry: Registry,
    /// Wakes the set's thread (for shutdown).
    waker: mio::Waker,
    runtime: Handle,
    state: Mutex<State<P>>,
}

struct State<P> {
    slots: Slab<Entry<P>>,
    /// Set by shutdown: nothing parks any more.
    closed: bool,
    /// Tells a slot's successive occupants apart, so a late event for one never
    /// resumes the next.
    generation: u32,
}

struct Entry<P> {
    generation: u32,
    deadline: Option<Instant>,
    conn: Box<P>,
}

/// The token of the set's own waker; connection tokens are `key << 32 | generation`
/// with keys far below 2^31.
const WAKER: Token = Token(usize::MAX);

impl<P: Parked> IdleSet<P> {
    /// A set whose connections resume on the current runtime, checked for their
    /// deadline every `tick`, and all closed once `shutdown` turns true.
    ///
    /// Must be called inside a Tokio runtime. Fails if the system cannot give the set
    /// its poll instance or thread.
    pub fn new(tick: Duration, mut shutdown: watch::Receiver<bool>) -> io::Result<Self> {
        let poll = Poll::new()?;
        let inner = Arc::new(Inner {
            registry: poll.registry().try_clone()?,
            waker: mio::Waker::new(poll.registry(), WAKER)?,
            runtime: Handle::current(),
            state: Mutex::new(State {
                slots: Slab::new(),
                closed: false,
                generation: 0,
            }),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("strait-idle".into())
            .spawn(move || watch_parked(poll, weak, tick))?;
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            // A dropped sender means no shutdown will come: the set lives on.
            if shutdown.wait_for(|stop| *stop).await.is_err() {
                return;
            }
            if let Some(inner) = weak.upgrade() {
                inner.state.lock().closed = true;
                let _ = inner.waker.wake();
            }
        });
        Ok(IdleSet { inner })
    }

    /// Parks `conn` until its socket is readable (then [`Parked::resume`] runs) or
    /// `deadline` passes (then it is dropped). Gives it back when it may not park (the
    /// set shut down, or the socket could not be watched): the caller carries on with
    /// it.
    pub fn park(&self, conn: Box<P>, deadline: Option<Instant>) -> Result<(), Box<P>> {
        let mut state = self.inner.state.lock();
        if state.closed {
            return Err(conn);
        }
        state.generation = state.generation.wrapping_add(1);
        let generation = state.generation;
        let slot = state.slots.vacant_entry();
        let token = Token((slot.key() << 32) | generation as usize);
        let fd = conn.socket().as_raw_fd();
        // Registered under the lock, so the event, however soon, finds the entry.
        // Edge-triggered: a socket readable already reports it at once.
        if self
            .inner
            .registry
            .register(&mut SourceFd(&fd), token, Interest::READABLE)
            .is_err()
        {
            return Err(conn);
        }
        slot.insert(Entry {
            generation,
            deadline,
            conn,
        });
        Ok(())
    }

    /// Connections parked now.
    pub fn len(&self) -> usize {
        self.inner.state.lock().slots.len()
    }

    /// What one connection parks with: this set, and `keep`, held until the connection
    /// ends.
    pub fn parker(&self, keep: Box<dyn Send + Sync>) -> Parker<P> {
        Parker {
            set: self.clone(),
            _keep: keep,
        }
    }

    /// Whether no connection is parked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<P: Parked> Inner<P> {
    /// Takes the entry at `key` out of the set and off its poll.
    fn take(&self, state: &mut State<P>, key: usize) -> Box<P> {
        let entry = state.slots.remove(key);
        let fd = entry.conn.socket().as_raw_fd();
        // A socket already closed by its peer is still ours (we hold its fd): this
        // cannot fail but by a bug, and a stale registration would only wake nobody.
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        entry.conn
    }
}

/// The set's thread: resumes connections whose socket turned readable, closes those
/// past their deadline every `tick`, and on shutdown closes them all and ends.
fn watch_parked<P: Parked>(mut poll: Poll, set: Weak<Inner<P>>, tick: Duration) {
    let mut events = Events::with_capacity(256);
    let mut next_sweep = Instant::now() + tick;
    loop {
        if let Err(error) = poll.poll(&mut events, Some(tick))
            && error.kind() != io::ErrorKind::Interrupted
        {
            tracing::error!(%error, "idle connection poll failed; parked connections close");
            if let Some(inner) = set.upgrade() {
                close_all(&inner);
            }
            return;
        }
        let Some(inner) = set.upgrade() else { return };
        let mut resumed = Vec::new();
        let mut closing = Vec::new();
        let closed = {
            let mut state = inner.state.lock();
            for event in &events {
                let token = event.token();
                if token == WAKER {
                    continue;
                }
                let (key, generation) = (token.0 >> 32, token.0 as u32);
                if state
                    .slots
                    .get(key)
                    .is_some_and(|e| e.generation == generation)
                {
                    resumed.push(inner.take(&mut state, key));
                }
            }
            let now = Instant::now();
            if state.closed || now >= next_sweep {
                next_sweep = now + tick;
                let closed = state.closed;
                let expired: Vec<usize> = state
                    .slots
                    .iter()
                    .filter(|(_, e)| closed || e.deadline.is_some_and(|d| d <= now))
                    .map(|(key, _)| key)
                    .collect();
                for key in expired {
                    closing.push(inner.take(&mut state, key));
                }
            }
            state.closed
        };
        for conn in resumed {
            conn.resume(&inner.runtime);
        }
        // Closing sockets takes syscalls: outside the lock.
        drop(closing);
        if closed {
            return;
        }
    }
}

/// Closes every parked connection and lets none park again.
fn close_all<P: Parked>(inner: &Inner<P>) {
    let closing: Vec<Box<P>> = {
        let mut state = inner.state.lock();
        state.closed = true;
        let keys: Vec<usize> = state.slots.iter().map(|(key, _)| key).collect();
        keys.into_iter()
            .map(|key| inner.take(&mut state, key))
            .collect()
    };
    drop(closing);
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A parked server socket that counts its resumption and its closing.
    struct Fake {
        socket: TcpStream,
        resumed: Arc<AtomicUsize>,
        dropped: Arc<AtomicUsize>,
    }

    impl Parked for Fake {
        fn socket(&self) -> &TcpStream {
            &self.socket
        }

        fn resume(self: Box<Self>, _: &Handle) {
            self.resumed.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A client socket and its parked server side.
    struct Pair {
        client: TcpStream,
        resumed: Arc<AtomicUsize>,
        dropped: Arc<AtomicUsize>,
    }

    impl Pair {
        fn resumed(&self) -> usize {
            self.resumed.load(Ordering::SeqCst)
        }

        fn dropped(&self) -> usize {
            self.dropped.load(Ordering::SeqCst)
        }

        /// Whether the server side was closed (the client reads end of stream).
        fn closed_by_server(&mut self) -> bool {
            let mut byte = [0u8; 1];
            matches!(self.client.read(&mut byte), Ok(0))
        }
    }

    fn pair(listener: &TcpListener) -> (Pair, Box<Fake>) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, _) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        let (resumed, dropped) = (Arc::default(), Arc::default());
        let fake = Box::new(Fake {
            socket,
            resumed: Arc::clone(&resumed),
            dropped: Arc::clone(&dropped),
        });
        let pair = Pair {
            client,
            resumed,
            dropped,
        };
        (pair, fake)
    }

    fn set() -> (IdleSet<Fake>, watch::Sender<bool>, TcpListener) {
        let (tx, rx) = watch::channel(false);
        let set = IdleSet::new(Duration::from_millis(10), rx).unwrap();
        (set, tx, TcpListener::bind("127.0.0.1:0").unwrap())
    }

    async fn eventually(f: impl Fn() -> bool) {
        while !f() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn bytes_resume_a_parked_connection_once() {
        let (set, _stop, listener) = set();
        let (mut a, fake_a) = pair(&listener);
        let (b, fake_b) = pair(&listener);
        assert!(set.park(fake_a, None).is_ok());
        assert!(set.park(fake_b, None).is_ok());
        assert_eq!(set.len(), 2);
        a.client.write_all(b"GET").unwrap();
        eventually(|| a.resumed() == 1).await;
        assert_eq!(set.len(), 1);
        assert_eq!(b.resumed(), 0, "only the readable connection resumes");
        assert_eq!(b.dropped(), 0);
    }

    #[tokio::test]
    async fn a_connection_readable_before_it_parks_resumes_at_once() {
        let (set, _stop, listener) = set();
        let (mut a, fake) = pair(&listener);
        a.client.write_all(b"GET").unwrap();
        // Let the bytes reach the server side before it parks.
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(set.park(fake, None).is_ok());
        eventually(|| a.resumed() == 1).await;
    }

    #[tokio::test]
    async fn a_client_closing_resumes_its_connection() {
        let (set, _stop, listener) = set();
        let (a, fake) = pair(&listener);
        assert!(set.park(fake, None).is_ok());
        drop(a.client);
        eventually(|| a.resumed.load(Ordering::SeqCst) == 1).await;
    }

    #[tokio::test]
    async fn a_connection_past_its_deadline_is_closed() {
        let (set, _stop, listener) = set();
        let (mut soon, fake_soon) = pair(&listener);
        let (never, fake_never) = pair(&listener);
        let deadline = Instant::now() + Duration::from_millis(30);
        assert!(set.park(fake_soon, Some(deadline)).is_ok());
        assert!(set.park(fake_never, None).is_ok());
        eventually(|| soon.dropped() == 1).await;
        assert!(soon.closed_by_server());
        assert_eq!(soon.resumed(), 0);
        assert_eq!(never.dropped(), 0);
        assert_eq!(set.len(), 1);
    }

    #[tokio::test]
    async fn shutdown_closes_every_parked_connection_and_parks_no_more() {
        let (set, stop, listener) = set();
        let mut pairs = Vec::new();
        for _ in 0..3 {
            let (pair, fake) = pair(&listener);
            assert!(set.park(fake, None).is_ok());
            pairs.push(pair);
        }
        stop.send(true).unwrap();
        eventually(|| pairs.iter().all(|p| p.dropped() == 1)).await;
        for pair in &mut pairs {
            assert!(pair.closed_by_server());
        }
        assert_eq!(set.len(), 0);
        let (_late, fake) = pair(&listener);
        assert!(set.park(fake, None).is_err());
    }
}
