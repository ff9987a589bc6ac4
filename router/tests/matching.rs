//! Matcher kinds, inversion and AND semantics, read through the `Frame` trait.

mod support;

use strait_router::{AnchoredRegex, MatchKind, RouteError, RouteMatch, ValueMatcher};
use support::MapFrame;

fn header(name: &str, kind: MatchKind) -> ValueMatcher {
    ValueMatcher::new(name, kind, false).expect("valid matcher")
}

fn only_headers(matchers: Vec<ValueMatcher>) -> RouteMatch {
    RouteMatch::new(Vec::new(), matchers)
}

fn only_variables(matchers: Vec<ValueMatcher>) -> RouteMatch {
    RouteMatch::new(matchers, Vec::new())
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn every_kind_on_a_header() {
    let frame = MapFrame::new().with_header("svc", "com.acme.OrderService");
    let yes = [
        MatchKind::Exact(s("com.acme.OrderService")),
        MatchKind::Prefix(s("com.acme.")),
        MatchKind::Suffix(s("Service")),
        MatchKind::Contains(s("Order")),
        MatchKind::Regex(AnchoredRegex::new(r"com\.acme\.\w+").expect("valid")),
        MatchKind::Present(true),
    ];
    for kind in yes {
        let m = only_headers(vec![header("svc", kind.clone())]);
        assert!(m.matches(&frame), "{kind:?} should match");
    }
    let no = [
        MatchKind::Exact(s("com.acme")),
        MatchKind::Prefix(s("org.")),
        MatchKind::Suffix(s("Impl")),
        MatchKind::Contains(s("Payment")),
        MatchKind::Regex(AnchoredRegex::new(r"acme\.\w+").expect("valid")),
        MatchKind::Present(false),
    ];
    for kind in no {
        let m = only_headers(vec![header("svc", kind.clone())]);
        assert!(!m.matches(&frame), "{kind:?} should not match");
    }
}

#[test]
fn every_kind_on_a_variable() {
    let frame = MapFrame::new().with_var("method", "getOrder");
    let cases = [
        (MatchKind::Exact(s("getOrder")), true),
        (MatchKind::Prefix(s("get")), true),
        (MatchKind::Suffix(s("Order")), true),
        (MatchKind::Contains(s("tOr")), true),
        (
            MatchKind::Regex(AnchoredRegex::new("get.*").expect("valid")),
            true,
        ),
        (
            MatchKind::Regex(AnchoredRegex::new("get").expect("valid")),
            false,
        ),
        (MatchKind::Present(true), true),
        (MatchKind::Present(false), false),
    ];
    for (kind, expected) in cases {
        let m = only_variables(vec![header("method", kind.clone())]);
        assert_eq!(m.matches(&frame), expected, "{kind:?}");
    }
    // A header of the same name is not a variable.
    let header_only = MapFrame::new().with_header("method", "getOrder");
    let m = only_variables(vec![header("method", MatchKind::Present(true))]);
    assert!(!m.matches(&header_only));
}

#[test]
fn invert_flips_match_and_missing() {
    let frame = MapFrame::new().with_header("env", "prod");
    let not_prod = ValueMatcher::new("env", MatchKind::Exact(s("prod")), true).expect("valid");
    assert!(!only_headers(vec![not_prod.clone()]).matches(&frame));
    assert!(
        only_headers(vec![not_prod.clone()]).matches(&MapFrame::new().with_header("env", "dev"))
    );
    // Missing: Exact does not match, so the inverted matcher does.
    assert!(only_headers(vec![not_prod]).matches(&MapFrame::new()));
    // Present(false) on a missing value matches; inverted, it does not.
    let absent = ValueMatcher::new("env", MatchKind::Present(false), false).expect("valid");
    let not_absent = ValueMatcher::new("env", MatchKind::Present(false), true).expect("valid");
    assert!(only_headers(vec![absent]).matches(&MapFrame::new()));
    assert!(!only_headers(vec![not_absent.clone()]).matches(&MapFrame::new()));
    assert!(only_headers(vec![not_absent]).matches(&frame));
}

#[test]
fn conditions_are_anded_and_empty_matches_all() {
    let m = RouteMatch::new(
        vec![header("service", MatchKind::Exact(s("Orders")))],
        vec![
            header("zone", MatchKind::Exact(s("a"))),
            header("canary", MatchKind::Present(true)),
        ],
    );
    let full = MapFrame::new()
        .with_var("service", "Orders")
        .with_header("zone", "a")
        .with_header("canary", "1");
    assert!(m.matches(&full));
    let missing_header = MapFrame::new()
        .with_var("service", "Orders")
        .with_header("zone", "a");
    assert!(!m.matches(&missing_header));
    let wrong_var = MapFrame::new()
        .with_var("service", "Payments")
        .with_header("zone", "a")
        .with_header("canary", "1");
    assert!(!m.matches(&wrong_var));
    assert!(RouteMatch::any().matches(&MapFrame::new()));
}

#[test]
fn regex_is_full_match() {
    let m = only_headers(vec![
        ValueMatcher::regex("v", r"1\.\d+", false).expect("valid"),
    ]);
    assert!(m.matches(&MapFrame::new().with_header("v", "1.23")));
    assert!(!m.matches(&MapFrame::new().with_header("v", "1.23-beta")));
    assert!(!m.matches(&MapFrame::new().with_header("v", "v1.23")));
}

#[test]
fn constructors_reject_bad_input() {
    assert!(matches!(
        ValueMatcher::regex("v", "[", false),
        Err(RouteError::BadRegex { .. })
    ));
    assert!(matches!(
        ValueMatcher::new("", MatchKind::Present(true), false),
        Err(RouteError::EmptyMatcherName)
    ));
}
