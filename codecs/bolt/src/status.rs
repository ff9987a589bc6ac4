//! Bolt response statuses (`wire-formats.md` §1.3) and the proxy-failure mapping (§3.2).

use strait_codec_framework::{ProxyFailure, ResponseClass};

/// 0x0000: success.
pub const SUCCESS: u16 = 0x0000;
/// 0x0001: generic error.
pub const ERROR: u16 = 0x0001;
/// 0x0002: the server's processor threw.
pub const SERVER_EXCEPTION: u16 = 0x0002;
/// 0x0003: unknown.
pub const UNKNOWN: u16 = 0x0003;
/// 0x0004: the server's executor is full.
pub const SERVER_THREADPOOL_BUSY: u16 = 0x0004;
/// 0x0005: communication error.
pub const ERROR_COMM: u16 = 0x0005;
/// 0x0006: no processor (MOSN: no route, no upstream).
pub const NO_PROCESSOR: u16 = 0x0006;
/// 0x0007: timeout.
pub const TIMEOUT: u16 = 0x0007;
/// 0x0008: client-local send error.
pub const CLIENT_SEND_ERROR: u16 = 0x0008;
/// 0x0009: codec failure.
pub const CODEC_EXCEPTION: u16 = 0x0009;
/// 0x0010 (16): client-local connection closed.
pub const CONNECTION_CLOSED: u16 = 0x0010;
/// 0x0011 (17): the server failed to serialize its response.
pub const SERVER_SERIAL_EXCEPTION: u16 = 0x0011;
/// 0x0012 (18): the server failed to deserialize the request.
pub const SERVER_DESERIAL_EXCEPTION: u16 = 0x0012;

/// Whether `status` is one Java's `ResponseStatus.valueOf` knows. Unknown statuses are
/// forwarded untouched but never generated.
pub fn is_known(status: u16) -> bool {
    matches!(status, 0x0000..=0x0009 | 0x0010..=0x0012)
}

/// How a response status is classed. Statuses that say the request itself was wrong
/// (no processor for it, undecodable, not deserializable) are the caller's fault; every
/// other failure, unknown statuses included, is the server's.
pub fn classify(status: Option<u16>) -> ResponseClass {
    match status {
        Some(SUCCESS) => ResponseClass::Success,
        Some(NO_PROCESSOR | CLIENT_SEND_ERROR | CODEC_EXCEPTION | SERVER_DESERIAL_EXCEPTION) => {
            ResponseClass::ClientError
        }
        // A response without a readable status is not a success we can vouch for.
        _ => ResponseClass::ServerError,
    }
}

/// The status the proxy answers with when it fails a request (`wire-formats.md` §3.2).
/// Rate limiting maps to 4 (as overload), unlike MOSN's 3, so clients back off alike.
pub fn status_for(failure: ProxyFailure) -> u16 {
    match failure {
        ProxyFailure::NoRoute
        | ProxyFailure::NoHealthyUpstream
        | ProxyFailure::ConnectFailure
        | ProxyFailure::UpstreamReset => NO_PROCESSOR,
        ProxyFailure::Timeout => TIMEOUT,
        ProxyFailure::Overflow | ProxyFailure::RateLimited => SERVER_THREADPOOL_BUSY,
        ProxyFailure::CodecError => CODEC_EXCEPTION,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_blame() {
        assert_eq!(classify(Some(SUCCESS)), ResponseClass::Success);
        for s in [
            SERVER_EXCEPTION,
            SERVER_THREADPOOL_BUSY,
            TIMEOUT,
            ERROR,
            UNKNOWN,
        ] {
            assert_eq!(classify(Some(s)), ResponseClass::ServerError, "{s}");
        }
        for s in [NO_PROCESSOR, CODEC_EXCEPTION, SERVER_DESERIAL_EXCEPTION] {
            assert_eq!(classify(Some(s)), ResponseClass::ClientError, "{s}");
        }
        assert_eq!(classify(Some(0x7777)), ResponseClass::ServerError);
        assert_eq!(classify(None), ResponseClass::ServerError);
    }

    #[test]
    fn mapping_follows_the_table() {
        assert_eq!(status_for(ProxyFailure::NoRoute), 6);
        assert_eq!(status_for(ProxyFailure::NoHealthyUpstream), 6);
        assert_eq!(status_for(ProxyFailure::ConnectFailure), 6);
        assert_eq!(status_for(ProxyFailure::UpstreamReset), 6);
        assert_eq!(status_for(ProxyFailure::Timeout), 7);
        assert_eq!(status_for(ProxyFailure::Overflow), 4);
        assert_eq!(status_for(ProxyFailure::RateLimited), 4);
        assert_eq!(status_for(ProxyFailure::CodecError), 9);
    }

    #[test]
    fn known_statuses() {
        assert!(is_known(SERVER_DESERIAL_EXCEPTION));
        assert!(is_known(SUCCESS));
        assert!(!is_known(0x000a));
        assert!(!is_known(0x0013));
    }
}
