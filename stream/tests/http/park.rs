//! Idle HTTP/1.1 connections parked without a task (`serve_connection_parking`): they
//! leave their task once idle, are served again when bytes arrive, close at their
//! deadline, on shutdown and when the client goes, and keep their keepsake until then.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use strait_stream::http::{Handler, IdleConnections, ServerOptions, serve_connection_parking};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::support::{Observed, TestHandler, connect, eventually, read_response};

/// Counts a connection open until dropped (what the proxy's connection guard does).
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct ParkingServer {
    addr: std::net::SocketAddr,
    idle: IdleConnections,
    open: Arc<AtomicUsize>,
    observed: Arc<Observed>,
    shutdown: watch::Sender<bool>,
    _accept: JoinHandle<()>,
}

impl ParkingServer {
    fn parked(&self) -> usize {
        self.idle.parked()
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

async fn parking_server(options: ServerOptions) -> ParkingServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let observed = Arc::new(Observed::default());
    let (chunks, _) = mpsc::unbounded_channel();
    let handler: Arc<dyn Handler> = Arc::new(TestHandler {
        observed: observed.clone(),
        chunks,
    });
    let idle = IdleConnections::new(&options, shutdown_rx.clone()).unwrap();
    let options = Arc::new(options);
    let open = Arc::new(AtomicUsize::new(0));
    let accept = {
        let (idle, open) = (idle.clone(), open.clone());
        tokio::spawn(async move {
            loop {
                let Ok((socket, peer)) = listener.accept().await else {
                    return;
                };
                open.fetch_add(1, Ordering::SeqCst);
                let parker = idle.parker(Box::new(Open(open.clone())));
                let (handler, options, shutdown) =
                    (handler.clone(), options.clone(), shutdown_rx.clone());
                tokio::spawn(serve_connection_parking(
                    socket,
                    Bytes::new(),
                    peer,
                    handler,
                    options,
                    shutdown,
                    parker,
                ));
            }
        })
    };
    ParkingServer {
        addr,
        idle,
        open,
        observed,
        shutdown,
        _accept: accept,
    }
}

async fn get_info(conn: &mut BufReader<TcpStream>) {
    conn.get_mut()
        .write_all(b"GET /info HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    let response = read_response(conn, false).await;
    assert_eq!(response.status, 200);
    assert!(
        response.text().starts_with("GET /info"),
        "{}",
        response.text()
    );
}

/// Reads until the server closes the connection; panics if it does not within 10 s.
async fn closed_by_server(conn: &mut BufReader<TcpStream>) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest));
    read.await.expect("the server closes the connection").ok();
    assert!(rest.is_empty(), "unexpected bytes {rest:?}");
}

#[tokio::test]
async fn an_idle_connection_parks_and_is_served_again() {
    let server = parking_server(ServerOptions::default()).await;
    let mut conn = connect(server.addr).await;
    get_info(&mut conn).await;
    eventually(|| server.parked() == 1).await;
    // Parked: its task is gone, but it is still open (the keepsake is held).
    assert_eq!(server.open(), 1);
    get_info(&mut conn).await;
    eventually(|| server.parked() == 1).await;
    // Two pipelined requests in one write wake it once and are both answered.
    conn.get_mut()
        .write_all(b"GET /info HTTP/1.1\r\nhost: a\r\n\r\nGET /info HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(read_response(&mut conn, false).await.status, 200);
    }
    assert_eq!(server.observed.requests.load(Ordering::SeqCst), 4);
    eventually(|| server.parked() == 1).await;
    assert_eq!(server.open(), 1);
}

#[tokio::test]
async fn many_parked_connections_each_resume_their_own() {
    let server = parking_server(ServerOptions::default()).await;
    let mut conns = Vec::new();
    for _ in 0..50 {
        let mut conn = connect(server.addr).await;
        get_info(&mut conn).await;
        conns.push(conn);
    }
    eventually(|| server.parked() == 50).await;
    for (i, conn) in conns.iter_mut().enumerate() {
        if i % 2 == 0 {
            get_info(conn).await;
        }
    }
    for conn in conns.iter_mut().rev() {
        get_info(conn).await;
    }
    assert_eq!(
        server.observed.requests.load(Ordering::SeqCst),
        50 + 25 + 50
    );
    eventually(|| server.parked() == 50).await;
}

#[tokio::test]
async fn a_client_leaving_a_parked_connection_releases_it() {
    let server = parking_server(ServerOptions::default()).await;
    let mut conn = connect(server.addr).await;
    get_info(&mut conn).await;
    eventually(|| server.parked() == 1).await;
    drop(conn);
    eventually(|| server.open() == 0).await;
    assert_eq!(server.parked(), 0);
}

#[tokio::test]
async fn a_parked_connection_closes_at_its_idle_deadline() {
    let options = ServerOptions {
        header_read_timeout: Some(Duration::from_millis(400)),
        ..ServerOptions::default()
    };
    let server = parking_server(options).await;
    let mut conn = connect(server.addr).await;
    get_info(&mut conn).await;
    closed_by_server(&mut conn).await;
    eventually(|| server.open() == 0).await;
    assert_eq!(server.parked(), 0);
}

#[tokio::test]
async fn shutdown_closes_parked_connections() {
    let server = parking_server(ServerOptions::default()).await;
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut conn = connect(server.addr).await;
        get_info(&mut conn).await;
        conns.push(conn);
    }
    eventually(|| server.parked() == 3).await;
    server.shutdown.send(true).unwrap();
    for conn in &mut conns {
        closed_by_server(conn).await;
    }
    eventually(|| server.open() == 0).await;
}
