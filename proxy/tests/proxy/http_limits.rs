//! The `http:` block of a listener reaches its connections: a configured limit is what
//! a client meets.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::proxy;

const YAML: &str = r#"
listeners:
  - name: web
    address: "127.0.0.1:0"
    protocol: http
    route_config: web
    http: { max_headers: 5, max_header_size: 2048 }
route_configs:
  - name: web
    virtual_hosts:
      - name: all
        routes:
          - match: { prefix: / }
            direct_response: { status: 200, body: ok }
"#;

/// The status code of the answer to `head`.
async fn status(addr: std::net::SocketAddr, head: String) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    while buf.len() < 12 {
        let n = stream.read_buf(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "closed without an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    String::from_utf8_lossy(&buf[9..12]).parse().unwrap()
}

fn request(fields: usize, value_len: usize) -> String {
    let mut head = String::from("GET / HTTP/1.1\r\nhost: web\r\n");
    for i in 1..fields {
        head.push_str(&format!("x-f{i}: {}\r\n", "v".repeat(value_len)));
    }
    head + "\r\n"
}

#[tokio::test]
async fn configured_header_limits_are_enforced() {
    let server = proxy(YAML).await;
    let addr = server.listener_addr("web").unwrap();
    assert_eq!(status(addr, request(5, 1)).await, 200, "five fields fit");
    assert_eq!(
        status(addr, request(6, 1)).await,
        431,
        "the sixth is over max_headers"
    );
    assert_eq!(
        status(addr, request(2, 1500)).await,
        200,
        "under max_header_size"
    );
    assert_eq!(
        status(addr, request(3, 1500)).await,
        431,
        "over max_header_size"
    );
    server.shutdown().await;
}
