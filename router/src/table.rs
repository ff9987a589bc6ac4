use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use strait_codec_framework::Frame;

use crate::{Route, RouteDecision, RouteError};

/// A named group of domains sharing one ordered route list.
#[derive(Debug, Clone)]
pub struct VirtualHost {
    /// Name, used in logs and metric labels.
    pub name: String,
    /// Domains served: `*` (the default host), `*<suffix>` (for example `*.example.com`)
    /// or an exact name, optionally with `:port`. Compared case-insensitively.
    pub domains: Vec<String>,
    /// Routes, tried in order; the first match wins.
    pub routes: Vec<Route>,
}

impl VirtualHost {
    /// A virtual host; domains are checked when it is put into a [`RouteTable`].
    pub fn new(name: impl Into<String>, domains: Vec<String>, routes: Vec<Route>) -> Self {
        VirtualHost {
            name: name.into(),
            domains,
            routes,
        }
    }

    /// The first route whose conditions `frame` satisfies.
    pub fn find_route(&self, frame: &dyn Frame) -> Option<&Route> {
        self.routes.iter().find(|route| route.matches(frame))
    }
}

/// An immutable set of virtual hosts with a precomputed domain index.
///
/// Selection by authority: exact domain, then the longest matching `*<suffix>` wildcard,
/// then the `*` host. Each step tries the authority as given, then without its `:port`.
/// Protocols without an authority (Bolt, Dubbo) pass `None` and get the `*` host.
#[derive(Debug, Clone)]
pub struct RouteTable {
    virtual_hosts: Vec<VirtualHost>,
    /// Lower-cased exact domain ▶ index into `virtual_hosts`.
    exact: HashMap<String, usize>,
    /// Lower-cased wildcard suffixes (the part after `*`), longest first, so the first
    /// hit is the most specific one.
    suffixes: Vec<(String, usize)>,
    /// Index of the host whose domains include `*`.
    default: Option<usize>,
    /// Every route as (virtual host, position), in [`RouteDecision::route_index`] order.
    flat: Vec<(usize, usize)>,
}

impl RouteTable {
    /// Builds the table, rejecting hosts without domains, unsupported patterns (a `*`
    /// anywhere but first, as in `foo.*`) and a domain claimed twice.
    /// Every route is checked too ([`Route::check`]).
    pub fn new(mut virtual_hosts: Vec<VirtualHost>) -> Result<Self, RouteError> {
        let mut flat = Vec::new();
        for (host_index, host) in virtual_hosts.iter_mut().enumerate() {
            for (route_index, route) in host.routes.iter_mut().enumerate() {
                route.check()?;
                // Tables hold far fewer than 2^32 routes (each is config text).
                route.index = u32::try_from(flat.len()).unwrap_or(u32::MAX);
                flat.push((host_index, route_index));
            }
        }
        let mut exact = HashMap::new();
        let mut suffixes: Vec<(String, usize)> = Vec::new();
        let mut default = None;
        for (index, host) in virtual_hosts.iter().enumerate() {
            if host.domains.is_empty() {
                return Err(RouteError::NoDomains {
                    virtual_host: host.name.clone(),
                });
            }
            for domain in &host.domains {
                let lower = domain.to_ascii_lowercase();
                let bad = || RouteError::BadDomain {
                    virtual_host: host.name.clone(),
                    domain: domain.clone(),
                };
                let duplicate = || RouteError::DuplicateDomain {
                    domain: lower.clone(),
                };
                if lower == "*" {
                    if default.replace(index).is_some() {
                        return Err(duplicate());
                    }
                } else if let Some(suffix) = lower.strip_prefix('*') {
                    if suffix.contains('*') {
                        return Err(bad());
                    }
                    if suffixes.iter().any(|(s, _)| s == suffix) {
                        return Err(duplicate());
                    }
                    suffixes.push((suffix.to_string(), index));
                } else if lower.is_empty() || lower.contains('*') {
                    return Err(bad());
                } else {
                    match exact.entry(lower.clone()) {
                        Entry::Occupied(_) => return Err(duplicate()),
                        Entry::Vacant(slot) => {
                            slot.insert(index);
                        }
                    }
                }
            }
        }
        // Stable sort: equal lengths cannot both match one host, so their order is moot.
        suffixes.sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        Ok(RouteTable {
            virtual_hosts,
            exact,
            suffixes,
            default,
            flat,
        })
    }

    /// The route at `index` ([`RouteDecision::route_index`]), with its virtual host.
    pub fn route_at(&self, index: u32) -> Option<(&VirtualHost, &Route)> {
        let (host, route) = *self.flat.get(usize::try_from(index).ok()?)?;
        let host = &self.virtual_hosts[host];
        Some((host, &host.routes[route]))
    }

    /// The virtual hosts, in configuration order.
    pub fn virtual_hosts(&self) -> &[VirtualHost] {
        &self.virtual_hosts
    }

    /// Selects the virtual host for `authority` (`None` for protocols without one).
    pub fn select_virtual_host(&self, authority: Option<&str>) -> Option<&VirtualHost> {
        let index = match authority {
            Some(authority) => self.lookup(authority),
            None => self.default,
        };
        index.map(|i| &self.virtual_hosts[i])
    }

    fn lookup(&self, authority: &str) -> Option<usize> {
        // Lower-case only when needed: authorities are almost always lower case already,
        // so the common path allocates nothing.
        let authority: Cow<'_, str> = if authority.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(authority.to_ascii_lowercase())
        } else {
            Cow::Borrowed(authority)
        };
        let full: &str = &authority;
        let bare = strip_port(full);
        let candidates = [Some(full), bare];
        let candidates = || candidates.iter().flatten();
        candidates()
            .find_map(|host| self.exact.get(*host).copied())
            .or_else(|| {
                candidates().find_map(|host| {
                    self.suffixes
                        .iter()
                        // The wildcard must stand for at least one character.
                        .find(|(suffix, _)| {
                            host.len() > suffix.len() && host.ends_with(suffix.as_str())
                        })
                        .map(|(_, index)| *index)
                })
            })
            .or(self.default)
    }

    /// Routes a request: selects the virtual host, finds the first matching route and
    /// resolves its action (drawing a random number only for weighted splits).
    pub fn route(&self, authority: Option<&str>, frame: &dyn Frame) -> Option<RouteDecision<'_>> {
        let (virtual_host, route) = self.matching_route(authority, frame)?;
        Some(RouteDecision {
            virtual_host,
            route,
            target: route.target(frame),
        })
    }

    /// Like [`RouteTable::route`], with the weighted choice driven by `rng_value`.
    pub fn route_with(
        &self,
        authority: Option<&str>,
        frame: &dyn Frame,
        rng_value: u64,
    ) -> Option<RouteDecision<'_>> {
        let (virtual_host, route) = self.matching_route(authority, frame)?;
        Some(RouteDecision {
            virtual_host,
            route,
            target: route.target_with(frame, rng_value),
        })
    }

    /// The selected virtual host and its first matching route, action unresolved.
    pub fn matching_route(
        &self,
        authority: Option<&str>,
        frame: &dyn Frame,
    ) -> Option<(&VirtualHost, &Route)> {
        let virtual_host = self.select_virtual_host(authority)?;
        Some((virtual_host, virtual_host.find_route(frame)?))
    }
}

/// `host` without a trailing `:port`, or `None` if it has none. A bare IPv6 address
/// (`::1`) has colons but no port; a bracketed one (`[::1]:80`) does.
pub(crate) fn strip_port(authority: &str) -> Option<&str> {
    let (host, port) = authority.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return None;
    }
    Some(host)
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn strip_port_handles_ipv6() {
        assert_eq!(strip_port("a.com:8080"), Some("a.com"));
        assert_eq!(strip_port("a.com"), None);
        assert_eq!(strip_port("a.com:"), None);
        assert_eq!(strip_port("::1"), None);
        assert_eq!(strip_port("[::1]:80"), Some("[::1]"));
        assert_eq!(strip_port("[::1]"), None);
    }
}
