//! [`ConnectionInfo`]: what a server driver knows about a request besides its head.

use std::net::{IpAddr, SocketAddr};

use http::{HeaderValue, Version};

use crate::Scheme;

/// Per-request facts from the downstream connection, handed to the driver's request
/// handler with every request. Cloning costs a reference-count increment.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    peer: SocketAddr,
    version: Version,
    scheme: Scheme,
    /// The peer IP as a header value, built once per connection for `x-forwarded-for`.
    peer_ip: HeaderValue,
    /// Bytes of this request's head on the wire (HTTP/1; 0 where not known).
    head_bytes: u32,
}

impl ConnectionInfo {
    /// The context of requests from `peer`, received as `version` over `scheme`.
    pub fn new(peer: SocketAddr, version: Version, scheme: Scheme) -> Self {
        ConnectionInfo {
            peer,
            version,
            scheme,
            peer_ip: ip_header_value(peer.ip()),
            head_bytes: 0,
        }
    }

    /// Bytes of the request head as received (request line, fields, final CRLF), for
    /// HTTP/1.1; 0 for HTTP/2, whose compressed heads are not counted.
    pub fn request_head_bytes(&self) -> u64 {
        u64::from(self.head_bytes)
    }

    /// The context of one HTTP/1 request: its version and head size.
    pub fn for_request(&self, version: Version, head_bytes: usize) -> Self {
        ConnectionInfo {
            version,
            head_bytes: u32::try_from(head_bytes).unwrap_or(u32::MAX),
            ..self.clone()
        }
    }

    /// The downstream peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The downstream HTTP version (`HTTP_11`, `HTTP_10` or `HTTP_2`).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The scheme of the downstream connection.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The peer's IP (IPv4-mapped IPv6 shown as IPv4) as a header value.
    pub fn peer_ip_value(&self) -> &HeaderValue {
        &self.peer_ip
    }

    /// The same context for requests of `version` (a connection upgraded to h2c).
    pub fn with_version(&self, version: Version) -> Self {
        ConnectionInfo {
            version,
            ..self.clone()
        }
    }
}

fn ip_header_value(ip: IpAddr) -> HeaderValue {
    let text = ip.to_canonical().to_string();
    // An IP address's text form is ASCII digits, dots, colons and hex letters only.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}
