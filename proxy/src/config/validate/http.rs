//! The `http:` blocks of listeners and clusters: HTTP server and client limits, today's
//! values as defaults, each checked against what HTTP allows.

use std::time::Duration;

use serde_json::{Value, json};
use serde_saphyr::Spanned;
use strait_stream::http::{ClientOptions, ServerOptions};

use super::super::file::{Http2File, HttpClientFile, HttpServerFile};
use super::{ConfigError, Ctx};

/// HTTP/2's largest flow-control window (RFC 9113 §6.9.1).
const MAX_WINDOW: u64 = (1 << 31) - 1;
/// HTTP/2's `SETTINGS_MAX_FRAME_SIZE` bounds (RFC 9113 §6.5.2).
const FRAME_SIZES: (u64, u64) = (16_384, 16_777_215);
/// Head size bounds: room for a request line, and no more than a frame may carry.
const HEAD_SIZES: (u64, u64) = (1024, 16 * 1024 * 1024);

impl Ctx<'_> {
    pub(super) fn within(
        &self,
        v: &Spanned<u64>,
        key: String,
        (lo, hi): (u64, u64),
    ) -> Result<u64, ConfigError> {
        if (lo..=hi).contains(&v.value) {
            Ok(v.value)
        } else {
            Err(self.err(v.referenced, key, format!("must be between {lo} and {hi}")))
        }
    }

    /// A duration where `0s` means "none".
    pub(super) fn optional_duration(
        &self,
        v: &Spanned<String>,
        key: String,
    ) -> Result<Option<Duration>, ConfigError> {
        let d = self.duration(v, key)?;
        Ok((!d.is_zero()).then_some(d))
    }
}

/// The server options of a listener's `http:` block (defaults when absent).
pub(super) fn server_options(
    cx: &Ctx<'_>,
    file: Option<&Spanned<HttpServerFile>>,
    key: &str,
) -> Result<ServerOptions, ConfigError> {
    let mut o = ServerOptions::default();
    let Some(file) = file.map(|f| &f.value) else {
        return Ok(o);
    };
    if let Some(t) = &file.header_read_timeout {
        o.header_read_timeout = cx.optional_duration(t, format!("{key}.header_read_timeout"))?;
    }
    if let Some(t) = &file.idle_timeout {
        o.idle_timeout = cx.optional_duration(t, format!("{key}.idle_timeout"))?;
    }
    if let Some(v) = &file.max_header_size {
        o.max_header_bytes = cx.within(v, format!("{key}.max_header_size"), HEAD_SIZES)? as usize;
    }
    if let Some(v) = &file.max_headers {
        o.max_headers = cx.within(v, format!("{key}.max_headers"), (1, 1024))? as usize;
    }
    o.h2c_upgrade = file.h2c_upgrade.unwrap_or(o.h2c_upgrade);
    o.h1_half_close = file.half_close.unwrap_or(o.h1_half_close);
    if let Some(h2) = &file.http2 {
        let key = format!("{key}.http2");
        let v = &h2.value;
        if let Some(n) = &v.max_concurrent_streams {
            let key = format!("{key}.max_concurrent_streams");
            o.h2_max_concurrent_streams = cx.within(n, key, (1, u64::from(u32::MAX)))? as u32;
        }
        windows(cx, v, &key)?.apply(h2_settings!(o));
    }
    Ok(o)
}

/// The client options of an HTTP cluster's `http:` block (defaults when absent);
/// `http2` tells whether the cluster speaks HTTP/2 (only then is `http2:` valid).
pub(super) fn client_options(
    cx: &Ctx<'_>,
    file: Option<&Spanned<HttpClientFile>>,
    key: &str,
    http2: bool,
) -> Result<ClientOptions, ConfigError> {
    let mut o = ClientOptions::default();
    let Some(file) = file.map(|f| &f.value) else {
        return Ok(o);
    };
    if let Some(v) = &file.max_header_size {
        o.max_header_bytes = cx.within(v, format!("{key}.max_header_size"), HEAD_SIZES)? as usize;
    }
    if let Some(v) = &file.max_headers {
        o.max_headers = cx.within(v, format!("{key}.max_headers"), (1, 1024))? as usize;
    }
    if let Some(h2) = &file.http2 {
        let key = format!("{key}.http2");
        if !http2 {
            return Err(cx.err(h2.referenced, key, "only valid on http2 clusters"));
        }
        if let Some(n) = &h2.value.max_concurrent_streams {
            return Err(cx.err(
                n.referenced,
                format!("{key}.max_concurrent_streams"),
                "the upstream's own SETTINGS bound its streams; cap connections with max_connections_per_host and requests with max_requests",
            ));
        }
        windows(cx, &h2.value, &key)?.apply(h2_settings!(o));
    }
    Ok(o)
}

/// The settings an `http2:` block shares between listeners and clusters.
struct Windows {
    stream: Option<u32>,
    connection: Option<u32>,
    frame: Option<u32>,
    keepalive_interval: Option<Option<Duration>>,
    keepalive_timeout: Option<Duration>,
}

/// The [`H2Settings`] of a `ServerOptions` or `ClientOptions` (same field names,
/// different types).
macro_rules! h2_settings {
    ($o:expr) => {
        H2Settings {
            stream: &mut $o.h2_initial_stream_window,
            connection: &mut $o.h2_initial_connection_window,
            frame: &mut $o.h2_max_frame_size,
            keepalive_interval: &mut $o.h2_keepalive_interval,
            keepalive_timeout: &mut $o.h2_keepalive_timeout,
        }
    };
}
use h2_settings;

/// The HTTP/2 fields of a server's or a client's options, to set from a [`Windows`].
struct H2Settings<'a> {
    stream: &'a mut u32,
    connection: &'a mut u32,
    frame: &'a mut u32,
    keepalive_interval: &'a mut Option<Duration>,
    keepalive_timeout: &'a mut Duration,
}

impl Windows {
    /// Overrides the settings this block sets, keeping the others' defaults.
    fn apply(self, to: H2Settings<'_>) {
        let set = |dst: &mut u32, v: Option<u32>| *dst = v.unwrap_or(*dst);
        set(to.stream, self.stream);
        set(to.connection, self.connection);
        set(to.frame, self.frame);
        if let Some(interval) = self.keepalive_interval {
            *to.keepalive_interval = interval;
        }
        if let Some(timeout) = self.keepalive_timeout {
            *to.keepalive_timeout = timeout;
        }
    }
}

fn windows(cx: &Ctx<'_>, v: &Http2File, key: &str) -> Result<Windows, ConfigError> {
    let window = |w: &Option<Spanned<u64>>, name: &str| -> Result<Option<u32>, ConfigError> {
        w.as_ref()
            .map(|w| {
                cx.within(w, format!("{key}.{name}"), (65_535, MAX_WINDOW))
                    .map(|n| n as u32)
            })
            .transpose()
    };
    Ok(Windows {
        stream: window(&v.initial_stream_window_size, "initial_stream_window_size")?,
        connection: window(
            &v.initial_connection_window_size,
            "initial_connection_window_size",
        )?,
        frame: v
            .max_frame_size
            .as_ref()
            .map(|f| {
                cx.within(f, format!("{key}.max_frame_size"), FRAME_SIZES)
                    .map(|n| n as u32)
            })
            .transpose()?,
        keepalive_interval: v
            .keepalive_interval
            .as_ref()
            .map(|t| cx.optional_duration(t, format!("{key}.keepalive_interval")))
            .transpose()?,
        keepalive_timeout: v
            .keepalive_timeout
            .as_ref()
            .map(|t| cx.duration(t, format!("{key}.keepalive_timeout")))
            .transpose()?,
    })
}

/// A duration key as written: `0s` for none.
fn duration(d: Option<Duration>) -> Value {
    json!(crate::config::duration::format(d.unwrap_or_default()))
}

/// A listener's effective `http:` block, for `/config_dump` (`0s` = none).
pub(super) fn server_dump(o: &ServerOptions) -> Value {
    json!({
        "header_read_timeout": duration(o.header_read_timeout),
        "idle_timeout": duration(o.idle_timeout),
        "max_header_size": o.max_header_bytes,
        "max_headers": o.max_headers,
        "h2c_upgrade": o.h2c_upgrade,
        "half_close": o.h1_half_close,
        "http2": {
            "max_concurrent_streams": o.h2_max_concurrent_streams,
            "initial_stream_window_size": o.h2_initial_stream_window,
            "initial_connection_window_size": o.h2_initial_connection_window,
            "max_frame_size": o.h2_max_frame_size,
            "keepalive_interval": duration(o.h2_keepalive_interval),
            "keepalive_timeout": duration(Some(o.h2_keepalive_timeout)),
        },
    })
}

/// An HTTP cluster's effective `http:` block, for `/config_dump`.
pub(super) fn client_dump(o: &ClientOptions, http2: bool) -> Value {
    let mut v = json!({
        "max_header_size": o.max_header_bytes,
        "max_headers": o.max_headers,
    });
    if http2 {
        v["http2"] = json!({
            "initial_stream_window_size": o.h2_initial_stream_window,
            "initial_connection_window_size": o.h2_initial_connection_window,
            "max_frame_size": o.h2_max_frame_size,
            "keepalive_interval": duration(o.h2_keepalive_interval),
            "keepalive_timeout": duration(Some(o.h2_keepalive_timeout)),
        });
    }
    v
}
