//! `route_configs[]`: from the file to a [`RouteTable`], every error at its key, plus the
//! checks that depend on which listener serves a route config.

use std::collections::HashSet;

use serde_saphyr::{Location, Spanned};
use strait_router::{
    AnchoredRegex, MatchKind, PathMatch, Redirect, RetryPolicy, Route, RouteAction, RouteError,
    RouteMatch, RouteTable, ValueMatcher, VirtualHost,
};

use super::super::file::*;
use super::super::{ConfigError, ListenerProtocol};
use super::Ctx;

/// Builds one route table; `key` is `route_configs[i]`.
pub(super) fn build_route_table(
    cx: &Ctx<'_>,
    rc: &RouteConfigFile,
    key: &str,
    clusters: &HashSet<&str>,
) -> Result<RouteTable, ConfigError> {
    let mut hosts = Vec::new();
    for (i, vh) in rc.virtual_hosts.iter().enumerate() {
        let vkey = format!("{key}.virtual_hosts[{i}]");
        let mut routes = Vec::new();
        for (j, r) in vh.routes.iter().enumerate() {
            routes.push(build_route(
                cx,
                r,
                &format!("{vkey}.routes[{j}]"),
                clusters,
            )?);
        }
        let domains = vh.domains.iter().map(|d| d.value.clone()).collect();
        hosts.push(VirtualHost::new(vh.name.value.clone(), domains, routes));
    }
    RouteTable::new(hosts).map_err(|e| {
        cx.err(
            rc.name.referenced,
            format!("{key}.virtual_hosts"),
            e.to_string(),
        )
    })
}

const ONE_ACTION: &str = "set exactly one of route, redirect, direct_response";

fn build_route(
    cx: &Ctx<'_>,
    spanned: &Spanned<RouteFile>,
    key: &str,
    clusters: &HashSet<&str>,
) -> Result<Route, ConfigError> {
    let r = &spanned.value;
    // In file order, so a second action is reported where it was written.
    let mut actions: Vec<(&str, Location)> = [
        r.route.as_ref().map(|a| ("route", a.referenced)),
        r.redirect.as_ref().map(|a| ("redirect", a.referenced)),
        r.direct_response
            .as_ref()
            .map(|a| ("direct_response", a.referenced)),
    ]
    .into_iter()
    .flatten()
    .collect();
    actions.sort_by_key(|(_, at)| (at.line(), at.column()));
    match actions.as_slice() {
        [] => return Err(cx.err(spanned.referenced, key, ONE_ACTION)),
        [_] => {}
        [_, (second, at), ..] => {
            return Err(cx.err(*at, format!("{key}.{second}"), ONE_ACTION));
        }
    }

    let matcher = build_match(cx, &r.matcher, &format!("{key}.match"))?;
    let retry_policy = match r.route.as_ref().and_then(|a| a.value.retry_policy.as_ref()) {
        Some(p) => Some(retry_policy(cx, p, &format!("{key}.route.retry_policy"))?),
        None => None,
    };
    let (action, timeout) = match (&r.route, &r.redirect, &r.direct_response) {
        (Some(a), _, _) => build_forward(cx, a, &format!("{key}.route"), clusters)?,
        (None, Some(d), _) => {
            let redirect = build_redirect(cx, d, &format!("{key}.redirect"))?;
            (RouteAction::redirect(redirect), None)
        }
        (None, None, Some(d)) => (
            RouteAction::direct(d.value.status, d.value.body.clone()),
            None,
        ),
        (None, None, None) => return Err(cx.err(spanned.referenced, key, ONE_ACTION)),
    };

    let mut route = Route::new(matcher, action);
    if let Some(n) = &r.name {
        route = route.with_name(n.value.clone());
    }
    if let Some(t) = timeout {
        route = route.with_timeout(t);
    }
    route.retry_policy = retry_policy.map(std::sync::Arc::new);
    if let Some(a) = &r.route {
        let akey = format!("{key}.route");
        if let Some(p) = &a.value.prefix_rewrite {
            route = route.with_prefix_rewrite(&p.value).map_err(|e| {
                cx.err(
                    p.referenced,
                    format!("{akey}.prefix_rewrite"),
                    e.to_string(),
                )
            })?;
        }
        if let Some(h) = &a.value.host_rewrite {
            route = route
                .with_host_rewrite(&h.value)
                .map_err(|e| cx.err(h.referenced, format!("{akey}.host_rewrite"), e.to_string()))?;
        }
    }
    for h in &r.request_headers_to_add {
        route = route.with_header_to_add(h.name.value.clone(), h.value.value.clone());
    }
    for h in &r.request_headers_to_remove {
        route = route.with_header_to_remove(h.value.clone());
    }
    // Response headers only ever go onto HTTP responses: always checked as HTTP.
    let rkey = format!("{key}.response_headers_to_add");
    for (i, h) in r.response_headers_to_add.iter().enumerate() {
        http_header(cx, h, &format!("{rkey}[{i}]"))?;
        route = route.with_response_header_to_add(h.name.value.clone(), h.value.value.clone());
    }
    let rkey = format!("{key}.response_headers_to_remove");
    for (i, h) in r.response_headers_to_remove.iter().enumerate() {
        http_header_name(cx, h, format!("{rkey}[{i}]"))?;
        route = route.with_response_header_to_remove(h.value.clone());
    }
    route.check().map_err(|e| {
        // From the file, only a prefix rewrite can be inconsistent with the match (the
        // other rewrites live under `route:`, which always forwards).
        let site = r
            .route
            .as_ref()
            .and_then(|a| a.value.prefix_rewrite.as_ref())
            .map(|p| (p.referenced, format!("{key}.route.prefix_rewrite")))
            .or_else(|| {
                let d = r.redirect.as_ref()?;
                let p = d.value.prefix_rewrite.as_ref()?;
                Some((p.referenced, format!("{key}.redirect.prefix_rewrite")))
            });
        let (at, k) = site.unwrap_or((spanned.referenced, key.to_string()));
        cx.err(at, k, e.to_string())
    })?;
    Ok(route)
}

/// `route.retry_policy:`.
fn retry_policy(
    cx: &Ctx<'_>,
    p: &Spanned<RetryPolicyFile>,
    key: &str,
) -> Result<RetryPolicy, ConfigError> {
    let f = &p.value;
    let mut policy = RetryPolicy::default();
    for (i, name) in f.retry_on.iter().enumerate() {
        if !policy.retry_on.set(&name.value) {
            return Err(cx.err(
                name.referenced,
                format!("{key}.retry_on[{i}]"),
                format!(
                    "unknown condition {:?} (connect-failure, reset, timeout, gateway-error, 5xx, retriable-status-codes)",
                    name.value
                ),
            ));
        }
    }
    if f.retry_on.is_empty() {
        return Err(cx.err(
            p.referenced,
            format!("{key}.retry_on"),
            "list at least one condition",
        ));
    }
    policy.retriable_status_codes = f.retriable_status_codes.iter().map(|c| c.value).collect();
    match (
        policy.retry_on.retriable_status_codes,
        f.retriable_status_codes.first(),
    ) {
        (true, None) => {
            return Err(cx.err(
                p.referenced,
                format!("{key}.retriable_status_codes"),
                "retry_on lists retriable-status-codes: list the statuses",
            ));
        }
        (false, Some(c)) => {
            return Err(cx.err(
                c.referenced,
                format!("{key}.retriable_status_codes"),
                "only read when retry_on lists retriable-status-codes",
            ));
        }
        _ => {}
    }
    if let Some(n) = &f.num_retries {
        if n.value > 10 {
            return Err(cx.err(n.referenced, format!("{key}.num_retries"), "at most 10"));
        }
        policy.num_retries = n.value;
    }
    if let Some(t) = &f.per_try_timeout {
        let d = cx.duration(t, format!("{key}.per_try_timeout"))?;
        if d.is_zero() {
            return Err(cx.err(
                t.referenced,
                format!("{key}.per_try_timeout"),
                "must be longer than 0s",
            ));
        }
        policy.per_try_timeout = Some(d);
    }
    if let Some(b) = &f.retry_back_off {
        let bkey = format!("{key}.retry_back_off");
        policy.base_interval =
            cx.duration(&b.value.base_interval, format!("{bkey}.base_interval"))?;
        if policy.base_interval.is_zero() {
            return Err(cx.err(
                b.value.base_interval.referenced,
                format!("{bkey}.base_interval"),
                "must be longer than 0s",
            ));
        }
        policy.max_interval = match &b.value.max_interval {
            Some(m) => {
                let max = cx.duration(m, format!("{bkey}.max_interval"))?;
                if max < policy.base_interval {
                    return Err(cx.err(
                        m.referenced,
                        format!("{bkey}.max_interval"),
                        "shorter than base_interval",
                    ));
                }
                max
            }
            None => policy.base_interval * 10,
        };
    }
    Ok(policy)
}

/// `route:`: the cluster or split, and its timeout.
fn build_forward(
    cx: &Ctx<'_>,
    a: &Spanned<RouteActionFile>,
    akey: &str,
    clusters: &HashSet<&str>,
) -> Result<(RouteAction, Option<std::time::Duration>), ConfigError> {
    let check_cluster = |name: &Spanned<String>, k: String| {
        if clusters.contains(name.value.as_str()) {
            Ok(name.value.clone())
        } else {
            Err(cx.err(
                name.referenced,
                k,
                format!("no cluster named {:?}", name.value),
            ))
        }
    };
    let action = match (&a.value.cluster, &a.value.weighted_clusters) {
        (Some(c), None) => RouteAction::cluster(check_cluster(c, format!("{akey}.cluster"))?),
        (None, Some(w)) => {
            let mut list = Vec::new();
            for (i, wc) in w.iter().enumerate() {
                let name = check_cluster(
                    &wc.value.name,
                    format!("{akey}.weighted_clusters[{i}].name"),
                )?;
                list.push((name, wc.value.weight));
            }
            RouteAction::weighted(list)
        }
        _ => {
            return Err(cx.err(
                a.referenced,
                akey,
                "set exactly one of cluster, weighted_clusters",
            ));
        }
    }
    .map_err(|e| cx.err(a.referenced, akey, e.to_string()))?;
    let timeout = match &a.value.timeout {
        Some(t) => Some(cx.duration(t, format!("{akey}.timeout"))?),
        None => None,
    };
    Ok((action, timeout))
}

/// `match:`; `key` is `...routes[j].match`.
fn build_match(cx: &Ctx<'_>, m: &MatchFile, key: &str) -> Result<RouteMatch, ConfigError> {
    let variables = matchers(cx, &m.variables, &format!("{key}.variables"))?;
    let headers = matchers(cx, &m.headers, &format!("{key}.headers"))?;
    let query = matchers(cx, &m.query_parameters, &format!("{key}.query_parameters"))?;
    let mut out = RouteMatch::new(variables, headers).with_query_parameters(query);

    let specifiers = [
        ("path", &m.path),
        ("prefix", &m.prefix),
        ("regex", &m.regex),
    ];
    let mut set: Vec<_> = specifiers
        .iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| (*name, v)))
        .collect();
    // In file order, so a second one is reported where it was written.
    set.sort_by_key(|(_, v)| (v.referenced.line(), v.referenced.column()));
    let mut set = set.into_iter();
    let Some((name, value)) = set.next() else {
        return Ok(out);
    };
    if let Some((second, v)) = set.next() {
        return Err(cx.err(
            v.referenced,
            format!("{key}.{second}"),
            "set at most one of path, prefix, regex",
        ));
    }
    let path = match name {
        "path" => PathMatch::exact(value.value.clone()),
        "prefix" => PathMatch::prefix(value.value.clone()),
        _ => PathMatch::regex(&value.value)
            .map_err(|e| cx.err(value.referenced, format!("{key}.regex"), e.to_string()))?,
    };
    let case_sensitive = m.case_sensitive.as_ref().is_none_or(|c| c.value);
    out = out.with_path(path.with_case_sensitive(case_sensitive));
    Ok(out)
}

fn matchers(
    cx: &Ctx<'_>,
    list: &[Spanned<MatcherFile>],
    key: &str,
) -> Result<Vec<ValueMatcher>, ConfigError> {
    let mut out = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let mkey = format!("{key}[{i}]");
        let v = &m.value;
        let mut kinds = Vec::new();
        if let Some(s) = &v.exact {
            kinds.push(Ok(MatchKind::Exact(s.clone())));
        }
        if let Some(s) = &v.prefix {
            kinds.push(Ok(MatchKind::Prefix(s.clone())));
        }
        if let Some(s) = &v.suffix {
            kinds.push(Ok(MatchKind::Suffix(s.clone())));
        }
        if let Some(s) = &v.contains {
            kinds.push(Ok(MatchKind::Contains(s.clone())));
        }
        if let Some(s) = &v.regex {
            kinds.push(
                AnchoredRegex::new(s)
                    .map(MatchKind::Regex)
                    .map_err(|e| cx.err(m.referenced, format!("{mkey}.regex"), e.to_string())),
            );
        }
        if let Some(p) = v.present {
            kinds.push(Ok(MatchKind::Present(p)));
        }
        let kind = match (kinds.len(), kinds.pop()) {
            (1, Some(kind)) => kind?,
            _ => {
                return Err(cx.err(
                    m.referenced,
                    mkey,
                    "set exactly one of exact, prefix, suffix, contains, regex, present",
                ));
            }
        };
        out.push(
            ValueMatcher::new(v.name.value.clone(), kind, v.invert)
                .map_err(|e| cx.err(m.referenced, mkey, e.to_string()))?,
        );
    }
    Ok(out)
}

/// `redirect:`; `key` is `...routes[j].redirect`.
fn build_redirect(
    cx: &Ctx<'_>,
    d: &Spanned<RedirectFile>,
    key: &str,
) -> Result<Redirect, ConfigError> {
    let v = &d.value;
    let at = |s: Location, field: &str, e: RouteError| {
        cx.err(s, format!("{key}.{field}"), e.to_string())
    };
    let mut r = Redirect::new().with_strip_query(v.strip_query);
    if let Some(c) = &v.response_code {
        let code = u16::try_from(c.value)
            .ok()
            .filter(|c| Redirect::RESPONSE_CODES.contains(c))
            .ok_or_else(|| {
                cx.err(
                    c.referenced,
                    format!("{key}.response_code"),
                    format!("{} is not one of 301, 302, 303, 307, 308", c.value),
                )
            })?;
        r = r
            .with_response_code(code)
            .map_err(|e| at(c.referenced, "response_code", e))?;
    }
    if let Some(s) = &v.scheme_redirect {
        r = r
            .with_scheme(&s.value)
            .map_err(|e| at(s.referenced, "scheme_redirect", e))?;
    }
    if let Some(h) = &v.host_redirect {
        r = r
            .with_host(&h.value)
            .map_err(|e| at(h.referenced, "host_redirect", e))?;
    }
    if let Some(p) = &v.port_redirect {
        let port = u16::try_from(p.value)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                cx.err(
                    p.referenced,
                    format!("{key}.port_redirect"),
                    format!("{} is not a port (1-65535)", p.value),
                )
            })?;
        r = r
            .with_port(port)
            .map_err(|e| at(p.referenced, "port_redirect", e))?;
    }
    if let Some(p) = &v.path_redirect {
        r = r
            .with_path(&p.value)
            .map_err(|e| at(p.referenced, "path_redirect", e))?;
    }
    if let Some(p) = &v.prefix_rewrite {
        r = r
            .with_prefix_rewrite(&p.value)
            .map_err(|e| at(p.referenced, "prefix_rewrite", e))?;
    }
    Ok(r)
}

/// A `{name, value}` that goes onto an HTTP message.
fn http_header(cx: &Ctx<'_>, h: &HeaderValueFile, key: &str) -> Result<(), ConfigError> {
    http_header_name(cx, &h.name, format!("{key}.name"))?;
    // RFC 9110 field-value: no control characters but HTAB.
    if h.value
        .value
        .bytes()
        .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
    {
        return Err(cx.err(
            h.value.referenced,
            format!("{key}.value"),
            "a header value cannot hold control characters (CR, LF, NUL...)",
        ));
    }
    Ok(())
}

/// An RFC 9110 token; a pseudo-header (`:path`) gets a pointer to the keys that reach it.
fn http_header_name(cx: &Ctx<'_>, name: &Spanned<String>, key: String) -> Result<(), ConfigError> {
    let n = &name.value;
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if n.starts_with(':') {
        return Err(cx.err(
            name.referenced,
            key,
            format!(
                "{n:?} is a pseudo-header, not a header (use path, prefix, regex, host_rewrite, prefix_rewrite or the variables path, authority, http_method, scheme)"
            ),
        ));
    }
    if n.is_empty() || !n.bytes().all(tchar) {
        return Err(cx.err(
            name.referenced,
            key,
            format!("{n:?} is not a valid HTTP header name"),
        ));
    }
    Ok(())
}

/// What the protocol of a listener allows in the route config it uses. A framed
/// protocol's forwarder applies no redirect, path or host rewrite or response header, so
/// a route config served by such a listener must not hold them (it would be ignored); an
/// HTTP listener's route config must use HTTP header names and statuses. An `auto`
/// listener is not checked: its redirect routes answer framed requests as unrouted.
pub(super) fn check_listener_routes(
    cx: &Ctx<'_>,
    parsed: &FileConfig,
    listener: &ListenerFile,
    protocol: &ListenerProtocol,
) -> Result<(), ConfigError> {
    let Some((index, rc)) = parsed
        .route_configs
        .iter()
        .enumerate()
        .find(|(_, rc)| rc.name.value == listener.route_config.value)
    else {
        return Ok(());
    };
    let routes = rc.virtual_hosts.iter().enumerate().flat_map(|(i, vh)| {
        vh.routes.iter().enumerate().map(move |(j, r)| {
            (
                format!("route_configs[{index}].virtual_hosts[{i}].routes[{j}]"),
                &r.value,
            )
        })
    });
    match protocol {
        ListenerProtocol::Fixed(p) => {
            let only_http = |at: Location, key: String| {
                cx.err(
                    at,
                    key,
                    format!(
                        "HTTP only, but route config {:?} is used by listener {:?} (protocol {})",
                        rc.name.value,
                        listener.name.value,
                        p.name()
                    ),
                )
            };
            for (key, r) in routes {
                if let Some(d) = &r.redirect {
                    return Err(only_http(d.referenced, format!("{key}.redirect")));
                }
                if let Some(a) = &r.route {
                    if let Some(p) = &a.value.prefix_rewrite {
                        return Err(only_http(
                            p.referenced,
                            format!("{key}.route.prefix_rewrite"),
                        ));
                    }
                    if let Some(h) = &a.value.host_rewrite {
                        return Err(only_http(h.referenced, format!("{key}.route.host_rewrite")));
                    }
                }
                if let Some(h) = r.response_headers_to_add.first() {
                    return Err(only_http(
                        h.name.referenced,
                        format!("{key}.response_headers_to_add"),
                    ));
                }
                if let Some(h) = r.response_headers_to_remove.first() {
                    return Err(only_http(
                        h.referenced,
                        format!("{key}.response_headers_to_remove"),
                    ));
                }
            }
        }
        ListenerProtocol::Http(_) => {
            for (key, r) in routes {
                for (i, m) in r.matcher.headers.iter().enumerate() {
                    http_header_name(cx, &m.value.name, format!("{key}.match.headers[{i}].name"))?;
                }
                for (i, h) in r.request_headers_to_add.iter().enumerate() {
                    http_header(cx, h, &format!("{key}.request_headers_to_add[{i}]"))?;
                }
                for (i, h) in r.request_headers_to_remove.iter().enumerate() {
                    http_header_name(cx, h, format!("{key}.request_headers_to_remove[{i}]"))?;
                }
                if let Some(d) = r
                    .direct_response
                    .as_ref()
                    .filter(|d| !(200..=599).contains(&d.value.status))
                {
                    return Err(cx.err(
                        d.referenced,
                        format!("{key}.direct_response.status"),
                        format!(
                            "{} is not an HTTP status (200-599), and route config {:?} is used by HTTP listener {:?}",
                            d.value.status, rc.name.value, listener.name.value
                        ),
                    ));
                }
            }
        }
        ListenerProtocol::Auto { .. } => {}
    }
    Ok(())
}

/// The route as written, for `/config_dump`.
pub(super) fn route_dump(r: &Spanned<RouteFile>) -> serde_json::Value {
    use serde_json::json;
    let r = &r.value;
    let m = |list: &[Spanned<MatcherFile>]| {
        list.iter()
            .map(|m| {
                let v = &m.value;
                json!({ "name": v.name.value, "exact": v.exact, "prefix": v.prefix, "suffix": v.suffix,
                        "contains": v.contains, "regex": v.regex, "present": v.present, "invert": v.invert })
            })
            .collect::<Vec<_>>()
    };
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.value.clone());
    let headers = |list: &[HeaderValueFile]| {
        list.iter()
            .map(|h| json!({ "name": h.name.value, "value": h.value.value }))
            .collect::<Vec<_>>()
    };
    let names = |list: &[Spanned<String>]| list.iter().map(|h| h.value.clone()).collect::<Vec<_>>();
    json!({
        "name": text(&r.name),
        "match": {
            "path": text(&r.matcher.path),
            "prefix": text(&r.matcher.prefix),
            "regex": text(&r.matcher.regex),
            "case_sensitive": r.matcher.case_sensitive.as_ref().is_none_or(|c| c.value),
            "variables": m(&r.matcher.variables),
            "headers": m(&r.matcher.headers),
            "query_parameters": m(&r.matcher.query_parameters),
        },
        "route": r.route.as_ref().map(|a| json!({
            "cluster": text(&a.value.cluster),
            "weighted_clusters": a.value.weighted_clusters.as_ref().map(|w| w.iter().map(|wc| json!({ "name": wc.value.name.value, "weight": wc.value.weight })).collect::<Vec<_>>()),
            "timeout": text(&a.value.timeout),
            "prefix_rewrite": text(&a.value.prefix_rewrite),
            "host_rewrite": text(&a.value.host_rewrite),
            "retry_policy": a.value.retry_policy.as_ref().and_then(|p| {
                // Checked already: a dump is only made of a valid file.
                let policy = retry_policy(&Ctx { file: "" }, p, "").ok()?;
                Some(json!({
                    "retry_on": policy.retry_on.names(),
                    "retriable_status_codes": (!policy.retriable_status_codes.is_empty()).then_some(&policy.retriable_status_codes),
                    "num_retries": policy.num_retries,
                    "per_try_timeout": policy.per_try_timeout.map(crate::config::duration::format),
                    "retry_back_off": {
                        "base_interval": crate::config::duration::format(policy.base_interval),
                        "max_interval": crate::config::duration::format(policy.max_interval),
                    },
                }))
            }),
        })),
        "redirect": r.redirect.as_ref().map(|d| {
            let d = &d.value;
            json!({
                "scheme_redirect": text(&d.scheme_redirect),
                "host_redirect": text(&d.host_redirect),
                "port_redirect": d.port_redirect.as_ref().map(|p| p.value),
                "path_redirect": text(&d.path_redirect),
                "prefix_rewrite": text(&d.prefix_rewrite),
                "response_code": d.response_code.as_ref().map_or(u32::from(Redirect::DEFAULT_RESPONSE_CODE), |c| c.value),
                "strip_query": d.strip_query,
            })
        }),
        "direct_response": r.direct_response.as_ref().map(|d| json!({ "status": d.value.status, "body": d.value.body })),
        "request_headers_to_add": headers(&r.request_headers_to_add),
        "request_headers_to_remove": names(&r.request_headers_to_remove),
        "response_headers_to_add": headers(&r.response_headers_to_add),
        "response_headers_to_remove": names(&r.response_headers_to_remove),
    })
}
