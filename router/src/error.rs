/// Why a route table, or one of its parts, was rejected while it was built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    /// A regex matcher's pattern does not compile (or exceeds the compiled-size bound).
    #[error("bad regex {pattern:?}: {source}")]
    BadRegex {
        /// The pattern as configured, before anchoring.
        pattern: String,
        /// What the regex compiler said.
        #[source]
        source: regex::Error,
    },
    /// A header or variable matcher has an empty name, so it could never match anything.
    #[error("a matcher has an empty header or variable name")]
    EmptyMatcherName,
    /// A cluster action, or one weighted entry, names no cluster.
    #[error("empty cluster name")]
    EmptyClusterName,
    /// A weighted-clusters action lists no cluster.
    #[error("weighted clusters action lists no cluster")]
    EmptyWeightedClusters,
    /// Every cluster of a weighted-clusters action has weight 0, so none could be picked.
    #[error("weighted clusters action has a total weight of 0")]
    ZeroTotalWeight,
    /// A virtual host lists no domain, so it could never be selected.
    #[error("virtual host {virtual_host:?} has no domains")]
    NoDomains {
        /// Name of the virtual host.
        virtual_host: String,
    },
    /// A domain pattern is not `*`, `*<suffix>` or a plain name.
    #[error("virtual host {virtual_host:?}: unsupported domain pattern {domain:?}")]
    BadDomain {
        /// Name of the virtual host.
        virtual_host: String,
        /// The offending domain.
        domain: String,
    },
    /// Two virtual hosts (or one, twice) claim the same domain; selection would be ambiguous.
    #[error("domain {domain:?} is claimed by more than one virtual host")]
    DuplicateDomain {
        /// The domain, lower-cased.
        domain: String,
    },
    /// A redirect's `response_code` is not one of 301, 302, 303, 307, 308.
    #[error("redirect response_code {0} is not one of 301, 302, 303, 307, 308")]
    BadRedirectCode(u16),
    /// A part of a redirect cannot go into a URL as written.
    #[error("invalid redirect {part} {value:?}")]
    BadRedirect {
        /// `scheme`, `host`, `port` or `path`.
        part: &'static str,
        /// The value as configured.
        value: String,
    },
    /// A redirect sets both a replacement path and a prefix rewrite.
    #[error("a redirect sets only one of path_redirect, prefix_rewrite")]
    PathAndPrefixRewrite,
    /// A prefix rewrite holds bytes a path cannot (`?`, `#`, whitespace, controls).
    #[error("invalid prefix_rewrite {0:?}")]
    BadPrefixRewrite(String),
    /// A host rewrite is empty or holds bytes an authority cannot.
    #[error("invalid host_rewrite {0:?}")]
    BadHostRewrite(String),
    /// A prefix rewrite on a route whose path condition is a regex: there is no matched
    /// prefix to replace.
    #[error("prefix_rewrite needs a path or prefix match, not regex")]
    PrefixRewriteWithRegex,
    /// A prefix rewrite on a route without any path condition.
    #[error("prefix_rewrite needs a path or prefix match")]
    PrefixRewriteWithoutPathMatch,
    /// A path or host rewrite on a route that does not forward (a redirect or a direct
    /// response), where it would never apply.
    #[error("prefix_rewrite and host_rewrite only apply to a route that forwards to a cluster")]
    RewriteWithoutForward,
}
