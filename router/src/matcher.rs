use std::fmt;

use regex::Regex;
use strait_codec_framework::Frame;

use crate::{PathMatch, RouteError, query_param, var};

/// Upper bound on the compiled size of one configured regex, so a hostile or careless
/// pattern cannot make a route table eat memory (the `regex` default is 10 MiB; a route
/// matcher never needs that much).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A regex that must match the *whole* value, as Envoy's `safe_regex` does.
///
/// The pattern is wrapped in `^(?:...)$` when it is compiled. Anchoring at compile time
/// (rather than comparing a found span with the value's length) keeps alternations right:
/// `a|ab` must fully match `ab`, but a leftmost-first search would stop at `a`. The field is
/// private so an unanchored [`Regex`] can never slip into a route.
#[derive(Clone)]
pub struct AnchoredRegex {
    pattern: String,
    regex: Regex,
}

impl AnchoredRegex {
    /// Compiles `pattern` with full-match semantics.
    pub fn new(pattern: &str) -> Result<Self, RouteError> {
        let regex = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map_err(|source| RouteError::BadRegex {
                pattern: pattern.to_string(),
                source,
            })?;
        Ok(AnchoredRegex {
            pattern: pattern.to_string(),
            regex,
        })
    }

    /// The pattern as configured, without the added anchors.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether the whole of `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl fmt::Debug for AnchoredRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnchoredRegex").field(&self.pattern).finish()
    }
}

/// How one value is tested. All string comparisons are case-sensitive and byte-wise.
#[derive(Debug, Clone)]
pub enum MatchKind {
    /// The value equals the string.
    Exact(String),
    /// The value starts with the string.
    Prefix(String),
    /// The value ends with the string.
    Suffix(String),
    /// The value contains the string.
    Contains(String),
    /// The whole value matches the regex.
    Regex(AnchoredRegex),
    /// `Present(true)`: the value exists (any content); `Present(false)`: it is absent.
    Present(bool),
}

impl MatchKind {
    /// Tests a value, `None` meaning the frame does not carry it. A missing value only
    /// satisfies `Present(false)`: an absent header is not "equal to the empty string".
    fn test(&self, value: Option<&str>) -> bool {
        let Some(value) = value else {
            return matches!(self, MatchKind::Present(false));
        };
        match self {
            MatchKind::Exact(s) => value == s,
            MatchKind::Prefix(s) => value.starts_with(s.as_str()),
            MatchKind::Suffix(s) => value.ends_with(s.as_str()),
            MatchKind::Contains(s) => value.contains(s.as_str()),
            MatchKind::Regex(re) => re.is_match(value),
            MatchKind::Present(present) => *present,
        }
    }
}

/// One condition on a named header or variable.
#[derive(Debug, Clone)]
pub struct ValueMatcher {
    /// Header or variable name, as the frame's protocol spells it.
    pub name: String,
    /// The test applied to the value.
    pub kind: MatchKind,
    /// Flips the final result, missing-value case included (Envoy's `invert_match`).
    pub invert: bool,
}

impl ValueMatcher {
    /// A matcher; rejects an empty name, which no frame could ever carry.
    pub fn new(name: impl Into<String>, kind: MatchKind, invert: bool) -> Result<Self, RouteError> {
        let name = name.into();
        if name.is_empty() {
            return Err(RouteError::EmptyMatcherName);
        }
        Ok(ValueMatcher { name, kind, invert })
    }

    /// A matcher whose value must fully match `pattern` (anchored for you).
    pub fn regex(name: impl Into<String>, pattern: &str, invert: bool) -> Result<Self, RouteError> {
        Self::new(name, MatchKind::Regex(AnchoredRegex::new(pattern)?), invert)
    }

    /// Applies the matcher to a value already read from the frame.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        self.kind.test(value) != self.invert
    }

    fn matches_header(&self, frame: &dyn Frame) -> bool {
        if let MatchKind::Exact(s) = &self.kind {
            // Equal bytes are valid UTF-8 (they equal a `str`): no check needed.
            let value = frame.header_bytes(&self.name);
            return value.is_some_and(|v| v == s.as_bytes()) != self.invert;
        }
        self.matches_value(frame.header(&self.name))
    }

    fn matches_variable(&self, frame: &dyn Frame) -> bool {
        if let MatchKind::Exact(s) = &self.kind {
            // As for headers: the common `service` or `method` match compares bytes.
            let value = frame.variable_bytes(&self.name);
            return value.is_some_and(|v| *v == *s.as_bytes()) != self.invert;
        }
        // `variable` returns a `Cow`: codecs that can lend the value allocate nothing here.
        self.matches_value(frame.variable(&self.name).as_deref())
    }
}

/// The conditions of a route: every one must hold (AND). An empty `RouteMatch` matches
/// every request.
///
/// They are checked cheapest first: a `path`/`prefix` comparison, then variables, then
/// headers, then a path regex, and last the query parameters, the only step that parses
/// anything (and only on routes that have such conditions).
#[derive(Debug, Clone, Default)]
pub struct RouteMatch {
    /// Condition on the request path ([`crate::var::PATH`], no query string).
    pub path: Option<PathMatch>,
    /// Conditions on routing variables (`service`, `method`, `path`...).
    pub variables: Vec<ValueMatcher>,
    /// Conditions on headers.
    pub headers: Vec<ValueMatcher>,
    /// Conditions on query parameters, by percent-decoded name and value (see
    /// [`crate::query_param`]), read from the [`crate::var::QUERY`] variable. A request
    /// without a query has no parameters.
    pub query_parameters: Vec<ValueMatcher>,
}

impl RouteMatch {
    /// A match over the given variable and header conditions.
    pub fn new(variables: Vec<ValueMatcher>, headers: Vec<ValueMatcher>) -> Self {
        RouteMatch {
            variables,
            headers,
            ..Self::default()
        }
    }

    /// A match that every request satisfies.
    pub fn any() -> Self {
        Self::default()
    }

    /// Adds a condition on the path (replacing any previous one).
    pub fn with_path(mut self, path: PathMatch) -> Self {
        self.path = Some(path);
        self
    }

    /// Adds conditions on query parameters.
    pub fn with_query_parameters(mut self, matchers: Vec<ValueMatcher>) -> Self {
        self.query_parameters.extend(matchers);
        self
    }

    /// Whether `frame` satisfies every condition, cheapest first.
    pub fn matches(&self, frame: &dyn Frame) -> bool {
        let (cheap_path, regex_path) = match &self.path {
            Some(p) if p.is_regex() => (None, Some(p)),
            other => (other.as_ref(), None),
        };
        cheap_path.is_none_or(|p| path_holds(p, frame))
            && self.variables.iter().all(|m| m.matches_variable(frame))
            && self.headers.iter().all(|m| m.matches_header(frame))
            && regex_path.is_none_or(|p| path_holds(p, frame))
            && self.query_holds(frame)
    }

    fn query_holds(&self, frame: &dyn Frame) -> bool {
        if self.query_parameters.is_empty() {
            return true;
        }
        let query = frame.variable(var::QUERY);
        let query = query.as_deref().unwrap_or("");
        self.query_parameters
            .iter()
            .all(|m| m.matches_value(query_param(query, &m.name).as_deref()))
    }
}

/// A frame without a path (an RPC frame) satisfies no path condition.
fn path_holds(matcher: &PathMatch, frame: &dyn Frame) -> bool {
    frame
        .variable(var::PATH)
        .is_some_and(|path| matcher.matches_path(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_value_only_matches_absent_then_invert_flips() {
        let kinds = [
            MatchKind::Exact(String::new()),
            MatchKind::Prefix(String::new()),
            MatchKind::Suffix(String::new()),
            MatchKind::Contains(String::new()),
            MatchKind::Regex(AnchoredRegex::new(".*").expect("valid")),
            MatchKind::Present(true),
        ];
        for kind in kinds {
            let plain = ValueMatcher::new("h", kind.clone(), false).expect("named");
            assert!(
                !plain.matches_value(None),
                "{kind:?} must not match a missing value"
            );
            let inverted = ValueMatcher::new("h", kind, true).expect("named");
            assert!(inverted.matches_value(None));
        }
        let absent = ValueMatcher::new("h", MatchKind::Present(false), false).expect("named");
        assert!(absent.matches_value(None));
        assert!(!absent.matches_value(Some("")));
    }

    #[test]
    fn regex_is_anchored_at_both_ends() {
        let re = AnchoredRegex::new("a|ab").expect("valid");
        assert!(
            re.is_match("ab"),
            "full match must consider the longer alternative"
        );
        assert!(re.is_match("a"));
        assert!(!re.is_match("xab"));
        assert!(!re.is_match("abx"));
        assert_eq!(re.as_str(), "a|ab");
    }

    #[test]
    fn bad_regex_and_empty_name_are_typed_errors() {
        let err = AnchoredRegex::new("(unclosed").expect_err("must fail");
        assert!(matches!(err, RouteError::BadRegex { ref pattern, .. } if pattern == "(unclosed"));
        let err = ValueMatcher::new("", MatchKind::Present(true), false).expect_err("must fail");
        assert_eq!(err, RouteError::EmptyMatcherName);
    }

    #[test]
    fn oversized_regex_is_rejected() {
        // A counted repetition that compiles far past the 1 MiB bound.
        let err = AnchoredRegex::new(r"\w{5000}\w{5000}").expect_err("too big");
        assert!(matches!(err, RouteError::BadRegex { .. }));
    }
}
