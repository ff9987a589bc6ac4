//! How HTTP and gRPC answers are classed for the one request outcome.

use http::HeaderMap;
use strait_codec_framework::ResponseClass;

use crate::failure::GRPC_STATUS;

/// An HTTP status's class: 5xx is the upstream's failure, 4xx the caller's.
pub fn classify_http_status(status: u16) -> ResponseClass {
    match status {
        500..=599 => ResponseClass::ServerError,
        400..=499 => ResponseClass::ClientError,
        _ => ResponseClass::Success,
    }
}

/// The HTTP status a gRPC status code corresponds to (the mapping Envoy and the gRPC
/// HTTP gateways use), so both are classed alike.
pub fn grpc_to_http_status(code: u32) -> u16 {
    match code {
        0 => 200,
        1 => 499,          // CANCELLED
        3 | 9 | 11 => 400, // INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
        4 => 504,          // DEADLINE_EXCEEDED
        5 => 404,          // NOT_FOUND
        6 | 10 => 409,     // ALREADY_EXISTS, ABORTED
        7 => 403,          // PERMISSION_DENIED
        8 => 429,          // RESOURCE_EXHAUSTED
        12 => 501,         // UNIMPLEMENTED
        14 => 503,         // UNAVAILABLE
        16 => 401,         // UNAUTHENTICATED
        _ => 500,          // UNKNOWN, INTERNAL, DATA_LOSS, and codes gRPC does not define
    }
}

/// A gRPC status code's class: UNAVAILABLE, INTERNAL, UNKNOWN, DATA_LOSS,
/// DEADLINE_EXCEEDED and UNIMPLEMENTED are the server's failure.
pub fn classify_grpc_status(code: u32) -> ResponseClass {
    classify_http_status(grpc_to_http_status(code))
}

/// The `grpc-status` a header block (trailers, or the head of a trailers-only answer)
/// carries, if any.
pub fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    std::str::from_utf8(headers.get(GRPC_STATUS)?.as_bytes())
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_classes() {
        assert_eq!(classify_http_status(200), ResponseClass::Success);
        assert_eq!(classify_http_status(304), ResponseClass::Success);
        assert_eq!(classify_http_status(404), ResponseClass::ClientError);
        assert_eq!(classify_http_status(503), ResponseClass::ServerError);
    }

    #[test]
    fn grpc_classes() {
        assert_eq!(classify_grpc_status(0), ResponseClass::Success);
        for code in [2, 4, 12, 13, 14, 15, 99] {
            assert_eq!(
                classify_grpc_status(code),
                ResponseClass::ServerError,
                "{code}"
            );
        }
        for code in [1, 3, 5, 7, 8, 16] {
            assert_eq!(
                classify_grpc_status(code),
                ResponseClass::ClientError,
                "{code}"
            );
        }
    }

    #[test]
    fn grpc_status_is_read_from_headers() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_status(&headers), None);
        headers.insert(GRPC_STATUS, http::HeaderValue::from_static("14"));
        assert_eq!(grpc_status(&headers), Some(14));
    }
}
