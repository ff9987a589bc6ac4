//! Envoy's redirect action: answer with a 3xx and a `Location` built from the request.

use std::borrow::Cow;

use strait_codec_framework::Frame;

use crate::path::{PathMatch, push_query, rewrite_prefix};
use crate::{RouteError, var};

/// A redirect: each part of the request URL that is not replaced is kept. Built with
/// [`Redirect::new`] and the checked `with_*` setters; answered as
/// [`crate::RouteTarget::Redirect`] with the location computed per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    response_code: u16,
    scheme: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    path: Option<String>,
    prefix_rewrite: Option<String>,
    strip_query: bool,
}

impl Default for Redirect {
    fn default() -> Self {
        Self::new()
    }
}

impl Redirect {
    /// The status of a redirect that does not set one (Moved Permanently).
    pub const DEFAULT_RESPONSE_CODE: u16 = 301;
    /// The statuses a redirect may answer with.
    pub const RESPONSE_CODES: [u16; 5] = [301, 302, 303, 307, 308];

    /// A 301 to the request's own URL, until parts are replaced.
    pub fn new() -> Self {
        Redirect {
            response_code: Self::DEFAULT_RESPONSE_CODE,
            scheme: None,
            host: None,
            port: None,
            path: None,
            prefix_rewrite: None,
            strip_query: false,
        }
    }

    /// Answers with `code`, one of [`Redirect::RESPONSE_CODES`].
    pub fn with_response_code(mut self, code: u16) -> Result<Self, RouteError> {
        if !Self::RESPONSE_CODES.contains(&code) {
            return Err(RouteError::BadRedirectCode(code));
        }
        self.response_code = code;
        Ok(self)
    }

    /// Replaces the scheme (`https`). Must be RFC 3986 scheme syntax; stored lower-cased.
    pub fn with_scheme(mut self, scheme: &str) -> Result<Self, RouteError> {
        let mut bytes = scheme.bytes();
        let valid = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
            && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !valid {
            return Err(RouteError::BadRedirect {
                part: "scheme",
                value: scheme.to_string(),
            });
        }
        self.scheme = Some(scheme.to_ascii_lowercase());
        Ok(self)
    }

    /// Replaces the host (it may carry a `:port`). No `/`, `?`, `#`, `@`, whitespace or
    /// control characters.
    pub fn with_host(mut self, host: &str) -> Result<Self, RouteError> {
        if host.is_empty() || host.bytes().any(|b| b"/?#@".contains(&b) || not_visible(b)) {
            return Err(RouteError::BadRedirect {
                part: "host",
                value: host.to_string(),
            });
        }
        self.host = Some(host.to_string());
        Ok(self)
    }

    /// Replaces the port (any port of the host is dropped first). Port 0 is rejected.
    pub fn with_port(mut self, port: u16) -> Result<Self, RouteError> {
        if port == 0 {
            return Err(RouteError::BadRedirect {
                part: "port",
                value: "0".into(),
            });
        }
        self.port = Some(port);
        Ok(self)
    }

    /// Replaces the whole path. It starts with `/`; a `?query` in it replaces the
    /// request's query (and `strip_query` no longer matters). Exclusive with
    /// [`Redirect::with_prefix_rewrite`].
    pub fn with_path(mut self, path: &str) -> Result<Self, RouteError> {
        if self.prefix_rewrite.is_some() {
            return Err(RouteError::PathAndPrefixRewrite);
        }
        if !path.starts_with('/') || path.bytes().any(|b| b == b'#' || not_visible(b)) {
            return Err(RouteError::BadRedirect {
                part: "path",
                value: path.to_string(),
            });
        }
        self.path = Some(path.to_string());
        Ok(self)
    }

    /// Replaces the part of the path the route's `path` or `prefix` condition matched (the
    /// route checks it has one, see [`crate::Route::check`]). Exclusive with
    /// [`Redirect::with_path`].
    pub fn with_prefix_rewrite(mut self, rewrite: &str) -> Result<Self, RouteError> {
        if self.path.is_some() {
            return Err(RouteError::PathAndPrefixRewrite);
        }
        check_prefix_rewrite(rewrite)?;
        self.prefix_rewrite = Some(rewrite.to_string());
        Ok(self)
    }

    /// Drops the request's query string from the location.
    pub fn with_strip_query(mut self, strip_query: bool) -> Self {
        self.strip_query = strip_query;
        self
    }

    /// The status answered.
    pub fn response_code(&self) -> u16 {
        self.response_code
    }

    /// The replacement scheme, lower-cased.
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// The replacement host.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The replacement port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The replacement path (possibly with a query).
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The replacement for the matched path prefix.
    pub fn prefix_rewrite(&self) -> Option<&str> {
        self.prefix_rewrite.as_deref()
    }

    /// Whether the request's query is dropped.
    pub fn strip_query(&self) -> bool {
        self.strip_query
    }

    /// The `Location` for a request, from its [`var::SCHEME`] (default `http`),
    /// [`var::AUTHORITY`] (else [`var::HOST`]), [`var::PATH`] and [`var::QUERY`]:
    ///
    /// - scheme: the replacement, else the request's;
    /// - host: the replacement, else the request's; with a replacement port, the host's own
    ///   port is dropped and the new one appended; without one, a request port that is the
    ///   default of the request's scheme (`:80` for http, `:443` for https) is dropped when
    ///   the scheme changes, as Envoy does (`http://a:80` ▶ `https://a`);
    /// - path: the replacement, else the prefix rewrite of the request's, else the request's;
    /// - query: the replacement path's own, else none with `strip_query`, else the request's.
    ///
    /// With no host at all the location is relative (`/path?query`).
    pub(crate) fn location(&self, matched: Option<&PathMatch>, frame: &dyn Frame) -> String {
        let request_scheme = frame.variable(var::SCHEME);
        let request_scheme = request_scheme.as_deref().unwrap_or("http");
        let scheme = self.scheme.as_deref().unwrap_or(request_scheme);
        let request_host = frame
            .variable(var::AUTHORITY)
            .or_else(|| frame.variable(var::HOST));
        let host: Option<Cow<'_, str>> = match (&self.host, request_host) {
            (Some(host), _) => Some(Cow::Borrowed(host.as_str())),
            (None, Some(host)) if !host.is_empty() => Some(host),
            (None, _) => None,
        };

        let request_path = frame.variable(var::PATH);
        let request_path = request_path.as_deref().unwrap_or("/");
        let (path, own_query): (Cow<'_, str>, Option<&str>) =
            match (&self.path, &self.prefix_rewrite) {
                (Some(path), _) => match path.split_once('?') {
                    Some((path, query)) => (Cow::Borrowed(path), Some(query)),
                    None => (Cow::Borrowed(path.as_str()), None),
                },
                (None, Some(rewrite)) => (
                    Cow::Owned(rewrite_prefix(matched, rewrite, request_path)),
                    None,
                ),
                (None, None) => (Cow::Borrowed(request_path), None),
            };
        let request_query = frame.variable(var::QUERY);
        let query = match own_query {
            Some(query) => Some(query),
            None if self.strip_query => None,
            None => request_query.as_deref(),
        };

        let mut out = String::new();
        if let Some(host) = host {
            out.push_str(scheme);
            out.push_str("://");
            match self.port {
                Some(port) => {
                    out.push_str(crate::table::strip_port(&host).unwrap_or(&host));
                    out.push(':');
                    out.push_str(&port.to_string());
                }
                None if self.host.is_none() && !scheme.eq_ignore_ascii_case(request_scheme) => {
                    out.push_str(without_default_port(&host, request_scheme));
                }
                None => out.push_str(&host),
            }
        }
        out.push_str(&path);
        push_query(&mut out, query);
        out
    }
}

/// `host` without its port when that port is `scheme`'s default.
fn without_default_port<'h>(host: &'h str, scheme: &str) -> &'h str {
    let default = if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        return host;
    };
    match crate::table::strip_port(host) {
        Some(bare) if &host[bare.len() + 1..] == default => bare,
        _ => host,
    }
}

/// Whitespace, a control character or a byte outside ASCII (must be percent-encoded).
fn not_visible(b: u8) -> bool {
    !b.is_ascii_graphic()
}

/// A prefix rewrite goes into a request line: no `?`, `#`, whitespace or control bytes.
pub(crate) fn check_prefix_rewrite(rewrite: &str) -> Result<(), RouteError> {
    if rewrite
        .bytes()
        .any(|b| b == b'?' || b == b'#' || not_visible(b))
    {
        return Err(RouteError::BadPrefixRewrite(rewrite.to_string()));
    }
    Ok(())
}
