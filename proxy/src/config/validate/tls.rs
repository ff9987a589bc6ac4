//! `tls:` of listeners and clusters: the files are loaded here, so a certificate that
//! does not parse or a key that does not match is a configuration error naming its key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use serde_saphyr::Spanned;
use strait_tls::{
    CertificateFiles, ClientTls, ClientTlsSettings, ServerTls, ServerTlsSettings, TlsVersion,
};

use super::Ctx;
use crate::config::ListenerProtocol;
use crate::config::file::{ClusterTlsFile, ListenerTlsFile};

/// A handshake not done within this is abandoned (Envoy's
/// `transport_socket_connect_timeout` has no default; a bound keeps idle sockets from
/// holding handshake state).
const DEFAULT_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A path as written, relative to the configuration file's directory.
fn path(cx: &Ctx<'_>, v: &Spanned<String>, key: &str) -> Result<PathBuf, super::ConfigError> {
    if v.value.is_empty() {
        return Err(cx.err(v.referenced, key, "empty: give a file path"));
    }
    let written = Path::new(&v.value);
    let base = Path::new(cx.file).parent().unwrap_or(Path::new(""));
    let joined = if written.is_absolute() {
        written.to_path_buf()
    } else {
        base.join(written)
    };
    Ok(std::path::absolute(&joined).unwrap_or(joined))
}

fn alpn(
    cx: &Ctx<'_>,
    written: &Option<Vec<Spanned<String>>>,
    key: &str,
    default: &[&str],
) -> Result<Vec<String>, super::ConfigError> {
    match written {
        None => Ok(default.iter().map(|s| s.to_string()).collect()),
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if p.value.is_empty() || p.value.len() > 255 {
                    Err(cx.err(
                        p.referenced,
                        format!("{key}[{i}]"),
                        "an ALPN protocol id is 1 to 255 bytes (h2, http/1.1)",
                    ))
                } else {
                    Ok(p.value.clone())
                }
            })
            .collect(),
    }
}

/// A listener's `tls` (at `key`, within the block written at `at`), loaded.
pub(super) fn listener_tls(
    cx: &Ctx<'_>,
    file: &Spanned<ListenerTlsFile>,
    key: &str,
    listener: &str,
    protocol: &ListenerProtocol,
) -> Result<Arc<ServerTls>, super::ConfigError> {
    let at = file.referenced;
    let file = &file.value;
    if file.certificates.is_empty() {
        return Err(cx.err(
            at,
            format!("{key}.certificates"),
            "at least one certificate (cert_file and key_file) is needed",
        ));
    }
    let mut certificates = Vec::new();
    for (i, c) in file.certificates.iter().enumerate() {
        let k = format!("{key}.certificates[{i}]");
        certificates.push(CertificateFiles {
            cert_file: path(cx, &c.value.cert_file, &format!("{k}.cert_file"))?,
            key_file: path(cx, &c.value.key_file, &format!("{k}.key_file"))?,
            server_names: c
                .value
                .server_names
                .iter()
                .map(|n| n.value.clone())
                .collect(),
        });
    }
    // HTTP listeners offer both versions; framed RPC negotiates nothing.
    let default_alpn: &[&str] = match protocol {
        ListenerProtocol::Fixed(_) => &[],
        _ => &["h2", "http/1.1"],
    };
    let min_version = match &file.min_version {
        None => TlsVersion::default(),
        Some(v) => TlsVersion::parse(&v.value).ok_or_else(|| {
            cx.err(
                v.referenced,
                format!("{key}.min_version"),
                format!(
                    "{:?} is not a TLS version: write \"1.2\" or \"1.3\"",
                    v.value
                ),
            )
        })?,
    };
    let client_ca_file = file
        .client_ca_file
        .as_ref()
        .map(|f| path(cx, f, &format!("{key}.client_ca_file")))
        .transpose()?;
    let require = file.require_client_certificate.as_ref();
    if let Some(r) = require.filter(|r| r.value && client_ca_file.is_none()) {
        return Err(cx.err(
            r.referenced,
            format!("{key}.require_client_certificate"),
            "needs client_ca_file, the CA bundle client certificates are verified against",
        ));
    }
    if let Some(first) = file
        .allowed_sans
        .first()
        .filter(|_| client_ca_file.is_none())
    {
        return Err(cx.err(
            first.referenced,
            format!("{key}.allowed_sans"),
            "needs client_ca_file: SANs are read from verified client certificates",
        ));
    }
    let handshake_timeout = match &file.handshake_timeout {
        Some(t) => cx.duration(t, format!("{key}.handshake_timeout"))?,
        None => DEFAULT_HANDSHAKE_TIMEOUT,
    };
    let settings = ServerTlsSettings {
        certificates,
        alpn: alpn(cx, &file.alpn, &format!("{key}.alpn"), default_alpn)?,
        min_version,
        client_ca_file,
        require_client_certificate: require.is_some_and(|r| r.value),
        allowed_sans: file.allowed_sans.iter().map(|s| s.value.clone()).collect(),
        handshake_timeout,
    };
    ServerTls::load(listener, settings).map_err(|e| cx.err(at, key, e.to_string()))
}

/// A cluster's `tls` (at `key`), loaded; `transport` is the cluster's protocol name.
pub(super) fn cluster_tls(
    cx: &Ctx<'_>,
    file: &Spanned<ClusterTlsFile>,
    key: &str,
    cluster: &str,
    transport: &str,
) -> Result<Arc<ClientTls>, super::ConfigError> {
    let at = file.referenced;
    let file = &file.value;
    let optional = |v: &Option<Spanned<String>>, name: &str| {
        v.as_ref()
            .map(|f| path(cx, f, &format!("{key}.{name}")))
            .transpose()
    };
    let insecure = file.insecure_skip_verify.as_ref();
    if let (Some(i), Some(_)) = (insecure.filter(|i| i.value), &file.ca_file) {
        return Err(cx.err(
            i.referenced,
            format!("{key}.insecure_skip_verify"),
            "contradicts ca_file: verify against the CA, or skip verification, not both",
        ));
    }
    if file.ca_file.is_none() && !insecure.is_some_and(|i| i.value) {
        return Err(cx.err(
            at,
            format!("{key}.ca_file"),
            "is needed to verify the upstream's certificate (to skip verification, write insecure_skip_verify: true)",
        ));
    }
    match (&file.cert_file, &file.key_file) {
        (Some(c), None) => {
            return Err(cx.err(
                c.referenced,
                format!("{key}.key_file"),
                "cert_file needs its key_file",
            ));
        }
        (None, Some(k)) => {
            return Err(cx.err(
                k.referenced,
                format!("{key}.cert_file"),
                "key_file needs its cert_file",
            ));
        }
        _ => {}
    }
    let default_alpn: &[&str] = match transport {
        "http2" => &["h2"],
        "http1" => &["http/1.1"],
        _ => &[],
    };
    let settings = ClientTlsSettings {
        server_name: file.server_name.as_ref().map(|n| n.value.clone()),
        ca_file: optional(&file.ca_file, "ca_file")?,
        cert_file: optional(&file.cert_file, "cert_file")?,
        key_file: optional(&file.key_file, "key_file")?,
        alpn: alpn(cx, &file.alpn, &format!("{key}.alpn"), default_alpn)?,
        insecure_skip_verify: insecure.is_some_and(|i| i.value),
    };
    ClientTls::load(cluster, settings).map_err(|e| cx.err(at, key, e.to_string()))
}

/// A listener's `tls` as the configuration writes it.
pub(super) fn listener_dump(tls: &ServerTls) -> serde_json::Value {
    let s = tls.settings();
    json!({
        "certificates": s.certificates.iter().map(|c| json!({
            "cert_file": c.cert_file.display().to_string(),
            "key_file": c.key_file.display().to_string(),
            "server_names": c.server_names,
        })).collect::<Vec<_>>(),
        "alpn": s.alpn,
        "min_version": s.min_version.as_str(),
        "client_ca_file": s.client_ca_file.as_ref().map(|p| p.display().to_string()),
        "require_client_certificate": s.require_client_certificate,
        "allowed_sans": s.allowed_sans,
        "handshake_timeout": crate::config::duration::format(s.handshake_timeout),
    })
}

/// A cluster's `tls` as the configuration writes it.
pub(super) fn cluster_dump(tls: &ClientTls) -> serde_json::Value {
    let s = tls.settings();
    let file = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    json!({
        "server_name": s.server_name,
        "ca_file": file(&s.ca_file),
        "cert_file": file(&s.cert_file),
        "key_file": file(&s.key_file),
        "alpn": s.alpn,
        "insecure_skip_verify": s.insecure_skip_verify.then_some(true),
    })
}
