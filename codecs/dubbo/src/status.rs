//! Dubbo response statuses (`wire-formats.md` §2.3) and the proxy-failure mapping (§3.3).

use strait_codec_framework::{ProxyFailure, ResponseClass};

/// 20: OK.
pub const OK: u8 = 20;
/// 25: the server could not serialize its response.
pub const SERIALIZATION_ERROR: u8 = 25;
/// 30: client-local timeout before the request was sent.
pub const CLIENT_TIMEOUT: u8 = 30;
/// 31: timeout after the request was sent.
pub const SERVER_TIMEOUT: u8 = 31;
/// 35: the channel closed with requests pending.
pub const CHANNEL_INACTIVE: u8 = 35;
/// 40: the request could not be decoded.
pub const BAD_REQUEST: u8 = 40;
/// 50: the response could not be encoded.
pub const BAD_RESPONSE: u8 = 50;
/// 60: no such service (MOSN: no route, no upstream).
pub const SERVICE_NOT_FOUND: u8 = 60;
/// 70: the service threw.
pub const SERVICE_ERROR: u8 = 70;
/// 80: server internal error.
pub const SERVER_ERROR: u8 = 80;
/// 90: client-local decode failure.
pub const CLIENT_ERROR: u8 = 90;
/// 100: the server's thread pool rejected the request.
pub const SERVER_THREADPOOL_EXHAUSTED_ERROR: u8 = 100;

/// Whether `status` is one Java defines. Others are forwarded but never generated.
pub fn is_known(status: u8) -> bool {
    matches!(
        status,
        20 | 25 | 30 | 31 | 35 | 40 | 50 | 60 | 70 | 80 | 90 | 100
    )
}

/// The status the proxy answers with when it fails a request (`wire-formats.md` §3.3,
/// "Recommend"): 31 for a timeout (the request was sent) and 100 for overflow and rate
/// limiting (what a Java server says when it is full), where MOSN says 30 and 40.
pub fn status_for(failure: ProxyFailure) -> u8 {
    match failure {
        ProxyFailure::NoRoute
        | ProxyFailure::NoHealthyUpstream
        | ProxyFailure::ConnectFailure
        | ProxyFailure::UpstreamReset => SERVICE_NOT_FOUND,
        ProxyFailure::Timeout => SERVER_TIMEOUT,
        ProxyFailure::Overflow | ProxyFailure::RateLimited => SERVER_THREADPOOL_EXHAUSTED_ERROR,
        ProxyFailure::CodecError => BAD_REQUEST,
    }
}

/// MOSN's internal code for `failure`: the `<code>|` prefix of the error text, which
/// MOSN users' clients parse.
pub fn mosn_code(failure: ProxyFailure) -> u16 {
    match failure {
        ProxyFailure::NoRoute => 404,
        ProxyFailure::NoHealthyUpstream
        | ProxyFailure::ConnectFailure
        | ProxyFailure::UpstreamReset => 502,
        ProxyFailure::Overflow => 503,
        ProxyFailure::Timeout => 504,
        ProxyFailure::RateLimited => 509,
        ProxyFailure::CodecError => 0,
    }
}

/// The default text of a direct response with `status` and no configured body.
pub fn default_text(status: u8) -> &'static str {
    match status {
        OK => "ok",
        SERIALIZATION_ERROR => "serialization error",
        CLIENT_TIMEOUT => "client timeout",
        SERVER_TIMEOUT => "server timeout",
        CHANNEL_INACTIVE => "channel inactive",
        BAD_REQUEST => "bad request",
        BAD_RESPONSE => "bad response",
        SERVICE_NOT_FOUND => "service not found",
        SERVICE_ERROR => "service error",
        SERVER_ERROR => "server error",
        CLIENT_ERROR => "client error",
        SERVER_THREADPOOL_EXHAUSTED_ERROR => "server thread pool exhausted",
        _ => "unknown status",
    }
}

/// How a response status is classed: a bad request, an unknown service or a client-side
/// error is the caller's fault; timeouts, service and server errors, a full thread pool
/// and unknown statuses are the provider's. An application exception travels with
/// status 20 and is a success here (the provider worked).
pub fn classify(status: Option<u8>) -> ResponseClass {
    match status {
        Some(OK) => ResponseClass::Success,
        Some(BAD_REQUEST | SERVICE_NOT_FOUND | CLIENT_ERROR) => ResponseClass::ClientError,
        _ => ResponseClass::ServerError,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn classes_follow_blame() {
        use strait_codec_framework::ResponseClass as C;
        assert_eq!(super::classify(Some(super::OK)), C::Success);
        for s in [
            super::SERVICE_ERROR,
            super::SERVER_ERROR,
            super::SERVER_TIMEOUT,
            100,
        ] {
            assert_eq!(super::classify(Some(s)), C::ServerError, "{s}");
        }
        for s in [
            super::BAD_REQUEST,
            super::SERVICE_NOT_FOUND,
            super::CLIENT_ERROR,
        ] {
            assert_eq!(super::classify(Some(s)), C::ClientError, "{s}");
        }
        assert_eq!(super::classify(None), C::ServerError);
    }

    use super::*;

    #[test]
    fn mapping_follows_the_table() {
        use ProxyFailure::*;
        let got: Vec<_> = [
            NoRoute,
            NoHealthyUpstream,
            ConnectFailure,
            UpstreamReset,
            Timeout,
            Overflow,
            RateLimited,
            CodecError,
        ]
        .into_iter()
        .map(|f| (status_for(f), mosn_code(f)))
        .collect();
        assert_eq!(
            got,
            [
                (60, 404),
                (60, 502),
                (60, 502),
                (60, 502),
                (31, 504),
                (100, 503),
                (100, 509),
                (40, 0)
            ]
        );
    }

    #[test]
    fn known_statuses() {
        let known: Vec<u8> = (0..=255).filter(|s| is_known(*s)).collect();
        assert_eq!(known, [20, 25, 30, 31, 35, 40, 50, 60, 70, 80, 90, 100]);
        assert_eq!(default_text(60), "service not found");
        assert_eq!(default_text(21), "unknown status");
    }
}
