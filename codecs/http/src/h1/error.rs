//! Typed errors of the HTTP/1.1 codec, each telling the driver how to answer.

use http::StatusCode;

/// A message head that cannot be accepted (RFC 9112 §2–§7).
///
/// On the downstream side (a request) the driver answers [`ParseError::status`] and closes the
/// connection. On the upstream side (a response) every variant means 502 to the downstream and
/// the upstream connection is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Request or status line, or a header line, is not valid HTTP/1.1 syntax.
    #[error("malformed HTTP/1 message head: {0}")]
    Malformed(&'static str),
    /// A header line continued with obs-fold in a request (RFC 9112 §5.2).
    #[error("obsolete line folding in a request header")]
    ObsFold,
    /// The head is larger than the configured limit.
    #[error("message head larger than {max} bytes")]
    HeadTooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// More header fields than the configured limit.
    #[error("more than {max} header fields")]
    TooManyHeaders {
        /// The limit in fields.
        max: usize,
    },
    /// An HTTP/1.1 request without `Host` (RFC 9112 §3.2).
    #[error("HTTP/1.1 request without Host")]
    MissingHost,
    /// A request with more than one `Host` field (RFC 9112 §3.2).
    #[error("request with more than one Host field")]
    DuplicateHost,
    /// The request target's form does not fit the method (RFC 9112 §3.2).
    #[error("request target form not allowed for this method")]
    BadTarget,
    /// Both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3, request smuggling).
    #[error("both Transfer-Encoding and Content-Length")]
    TransferEncodingWithContentLength,
    /// `Transfer-Encoding` in an HTTP/1.0 request (RFC 9112 §6.1).
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    /// A request whose last transfer coding is not `chunked`, or with `chunked` twice
    /// (RFC 9112 §6.3 item 4).
    #[error("chunked is not the final transfer coding")]
    ChunkedNotFinal,
    /// A request transfer coding the proxy does not know (RFC 9112 §6.1: 501).
    #[error("unknown transfer coding")]
    UnknownTransferCoding,
    /// `Content-Length` that is not `1*DIGIT` or overflows `u64`.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// Several `Content-Length` values that differ (RFC 9110 §8.6).
    #[error("differing Content-Length values")]
    ConflictingContentLength,
}

impl ParseError {
    /// The status to answer a downstream request that failed with this error: 431 for the
    /// size limits, 501 for an unknown transfer coding, else 400. The connection is closed
    /// after the answer in every case.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::HeadTooLarge { .. } | Self::TooManyHeaders { .. } => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Self::UnknownTransferCoding => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A message body that violates its framing (RFC 9112 §6, §7).
///
/// For a request body the driver answers 400 (if the response has not started) and closes;
/// for a response body the exchange is aborted and the upstream connection dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A chunk-size line that is not `1*HEXDIG [BWS] [; ext] CRLF`.
    #[error("malformed chunk size line")]
    BadChunkSize,
    /// A chunk size of more than 16 hex digits or overflowing `u64`.
    #[error("chunk size overflows")]
    ChunkSizeOverflow,
    /// A chunk's data not followed by CRLF, or a bare LF where CRLF is required.
    #[error("missing CRLF after chunk")]
    BadChunkEnd,
    /// Chunk extensions larger than the per-message limit.
    #[error("chunk extensions larger than {max} bytes")]
    ExtensionsTooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// Trailer section larger than its limit.
    #[error("trailer section larger than {max} bytes")]
    TrailersTooLarge {
        /// The limit in bytes.
        max: usize,
    },
    /// Trailer section that is not valid field syntax, or has too many fields.
    #[error("malformed trailer section")]
    BadTrailers,
    /// The connection ended before the body did.
    #[error("connection closed before the message body ended")]
    Incomplete,
}

impl DecodeError {
    /// The status to answer a downstream request whose body failed with this error
    /// (if no response was started): 400 for every variant.
    pub fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}
