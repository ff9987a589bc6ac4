//! Conditions on the request path (Envoy's `path`, `prefix` and `safe_regex`), and the
//! prefix rewrite that replaces what a `path` or `prefix` condition matched.

use crate::{AnchoredRegex, RouteError};

/// How the path is tested.
#[derive(Debug, Clone)]
pub enum PathKind {
    /// The path equals the string (Envoy `path`).
    Exact(String),
    /// The path starts with the string (Envoy `prefix`). A plain string prefix: `/api`
    /// also matches `/apiary`.
    Prefix(String),
    /// The whole path matches the regex (Envoy `safe_regex`).
    Regex(AnchoredRegex),
}

/// A condition on the request path: the [`crate::var::PATH`] variable, which excludes the
/// query string. A request without that variable (an RPC frame) never matches.
#[derive(Debug, Clone)]
pub struct PathMatch {
    kind: PathKind,
    case_sensitive: bool,
}

impl PathMatch {
    /// The path must equal `path`.
    pub fn exact(path: impl Into<String>) -> Self {
        Self::of(PathKind::Exact(path.into()))
    }

    /// The path must start with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        Self::of(PathKind::Prefix(prefix.into()))
    }

    /// The whole path must match `pattern` (anchored for you).
    pub fn regex(pattern: &str) -> Result<Self, RouteError> {
        AnchoredRegex::new(pattern).map(|re| Self::of(PathKind::Regex(re)))
    }

    fn of(kind: PathKind) -> Self {
        PathMatch {
            kind,
            case_sensitive: true,
        }
    }

    /// Sets case sensitivity (default `true`). `false` compares `path` and `prefix` ASCII
    /// case-insensitively, without allocating. As in Envoy it does not affect `regex`
    /// (write `(?i)` in the pattern instead).
    pub fn with_case_sensitive(mut self, case_sensitive: bool) -> Self {
        self.case_sensitive = case_sensitive;
        self
    }

    /// The test applied.
    pub fn kind(&self) -> &PathKind {
        &self.kind
    }

    /// Whether `path` and `prefix` compare case-sensitively.
    pub fn is_case_sensitive(&self) -> bool {
        self.case_sensitive
    }

    /// Whether the test is a regex (the router runs it after the cheaper conditions).
    pub fn is_regex(&self) -> bool {
        matches!(self.kind, PathKind::Regex(_))
    }

    /// Whether `path` (without its query string) satisfies the condition.
    pub fn matches_path(&self, path: &str) -> bool {
        match &self.kind {
            PathKind::Exact(p) if self.case_sensitive => path == p,
            PathKind::Exact(p) => path.eq_ignore_ascii_case(p),
            PathKind::Prefix(p) => self.prefix_len(p, path).is_some(),
            PathKind::Regex(re) => re.is_match(path),
        }
    }

    /// `Some(prefix.len())` if `path` starts with `prefix` under this match's case rule.
    fn prefix_len(&self, prefix: &str, path: &str) -> Option<usize> {
        let head = path.as_bytes().get(..prefix.len())?;
        let hit = if self.case_sensitive {
            head == prefix.as_bytes()
        } else {
            head.eq_ignore_ascii_case(prefix.as_bytes())
        };
        hit.then_some(prefix.len())
    }

    /// How many leading bytes of `path` a prefix rewrite replaces: all of it for `path`,
    /// the matched prefix for `prefix`, nothing when the condition does not hold. `None`
    /// for `regex`, which has no prefix to replace.
    fn rewritable_len(&self, path: &str) -> Option<usize> {
        match &self.kind {
            PathKind::Exact(_) => Some(if self.matches_path(path) {
                path.len()
            } else {
                0
            }),
            PathKind::Prefix(p) => Some(self.prefix_len(p, path).unwrap_or(0)),
            PathKind::Regex(_) => None,
        }
    }
}

/// `path` with the part `matched` matched replaced by `rewrite` (a prefix rewrite), as
/// Envoy does it: no slash is added or collapsed, except that a result not starting with
/// `/` gets one (an empty rewrite of `/api` on `/api` gives `/`, not an empty path).
pub(crate) fn rewrite_prefix(matched: Option<&PathMatch>, rewrite: &str, path: &str) -> String {
    let cut = matched.and_then(|m| m.rewritable_len(path)).unwrap_or(0);
    // `cut` is a char boundary: the matched bytes equal a `str`'s bytes, modulo ASCII case.
    let rest = path.get(cut..).unwrap_or("");
    let mut out = String::with_capacity(1 + rewrite.len() + rest.len());
    let leads_with_slash =
        rewrite.starts_with('/') || (rewrite.is_empty() && rest.starts_with('/'));
    if !leads_with_slash {
        out.push('/');
    }
    out.push_str(rewrite);
    out.push_str(rest);
    out
}

/// Appends `?query` unless the query is absent or empty.
pub(crate) fn push_query(out: &mut String, query: Option<&str>) {
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(query);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_prefix_compares_bytes_without_allocating() {
        let m = PathMatch::prefix("/API/").with_case_sensitive(false);
        assert!(m.matches_path("/api/v1"));
        assert!(!m.matches_path("/api"));
        // A multi-byte character straddling the prefix length is simply unequal.
        assert!(!PathMatch::prefix("/a").matches_path("/é"));
        assert!(!m.matches_path(""));
    }

    #[test]
    fn rewrite_replaces_the_matched_part_and_keeps_a_leading_slash() {
        let p = PathMatch::prefix("/api");
        assert_eq!(rewrite_prefix(Some(&p), "/v2", "/api/users"), "/v2/users");
        assert_eq!(rewrite_prefix(Some(&p), "", "/api/users"), "/users");
        assert_eq!(rewrite_prefix(Some(&p), "", "/api"), "/");
        assert_eq!(rewrite_prefix(Some(&p), "v2", "/apix"), "/v2x");
        assert_eq!(rewrite_prefix(Some(&p), "/", "/api/x"), "//x");
        let ci = PathMatch::prefix("/API").with_case_sensitive(false);
        assert_eq!(rewrite_prefix(Some(&ci), "/v2", "/Api/x"), "/v2/x");
        let exact = PathMatch::exact("/old");
        assert_eq!(rewrite_prefix(Some(&exact), "/new", "/old"), "/new");
        let mut out = String::from("/p");
        push_query(&mut out, Some(""));
        push_query(&mut out, None);
        assert_eq!(out, "/p");
        push_query(&mut out, Some("a=1"));
        assert_eq!(out, "/p?a=1");
    }
}
