//! Virtual host selection, route order, actions and header mutations.

mod support;

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use strait_codec_framework::Frame;
use strait_router::{
    MatchKind, Route, RouteAction, RouteError, RouteMatch, RouteTable, RouteTarget, ValueMatcher,
    VirtualHost,
};
use support::MapFrame;

fn to_cluster(cluster: &str) -> Route {
    Route::new(
        RouteMatch::any(),
        RouteAction::cluster(cluster).expect("named"),
    )
}

fn host(name: &str, domains: &[&str], cluster: &str) -> VirtualHost {
    VirtualHost::new(
        name,
        domains.iter().map(|d| d.to_string()).collect(),
        vec![to_cluster(cluster)],
    )
}

fn when_var(name: &str, value: &str) -> RouteMatch {
    RouteMatch::new(
        vec![ValueMatcher::new(name, MatchKind::Exact(value.to_string()), false).expect("valid")],
        Vec::new(),
    )
}

fn cluster_for(table: &RouteTable, authority: Option<&str>) -> Option<String> {
    table
        .route(authority, &MapFrame::new())
        .and_then(|d| d.cluster().map(str::to_string))
}

#[test]
fn virtual_host_selection_exact_then_longest_suffix_then_default() {
    let table = RouteTable::new(vec![
        host("wild", &["*.example.com"], "wild"),
        host("deeper", &["*.api.example.com"], "deeper"),
        host("exact", &["api.example.com", "Other.com:8080"], "exact"),
        host("default", &["*"], "default"),
    ])
    .expect("valid table");
    let pick = |a: Option<&str>| cluster_for(&table, a);
    assert_eq!(pick(Some("api.example.com")).as_deref(), Some("exact"));
    assert_eq!(pick(Some("API.Example.com")).as_deref(), Some("exact"));
    assert_eq!(pick(Some("api.example.com:443")).as_deref(), Some("exact"));
    assert_eq!(pick(Some("other.com:8080")).as_deref(), Some("exact"));
    assert_eq!(pick(Some("v1.api.example.com")).as_deref(), Some("deeper"));
    assert_eq!(pick(Some("www.example.com")).as_deref(), Some("wild"));
    assert_eq!(pick(Some("www.example.com:80")).as_deref(), Some("wild"));
    // The wildcard stands for at least one character.
    assert_eq!(pick(Some("example.com")).as_deref(), Some("default"));
    assert_eq!(pick(Some("elsewhere.org")).as_deref(), Some("default"));
    // RPC protocols have no authority: the `*` host.
    assert_eq!(pick(None).as_deref(), Some("default"));
}

#[test]
fn no_default_host_means_no_route() {
    let table = RouteTable::new(vec![host("a", &["a.com"], "a")]).expect("valid");
    assert_eq!(cluster_for(&table, None), None);
    assert_eq!(cluster_for(&table, Some("b.com")), None);
    // `*` listed among other domains still makes the host the default.
    let table = RouteTable::new(vec![
        host("a", &["a.com"], "a"),
        host("b", &["b.com", "*"], "b"),
    ])
    .expect("valid");
    assert_eq!(cluster_for(&table, None).as_deref(), Some("b"));
}

#[test]
fn table_validation_errors() {
    let err = RouteTable::new(vec![VirtualHost::new("empty", Vec::new(), Vec::new())]);
    assert!(matches!(err, Err(RouteError::NoDomains { .. })));
    let err = RouteTable::new(vec![host("x", &["foo.*"], "x")]);
    assert!(matches!(err, Err(RouteError::BadDomain { .. })));
    let err = RouteTable::new(vec![host("x", &[""], "x")]);
    assert!(matches!(err, Err(RouteError::BadDomain { .. })));
    let err = RouteTable::new(vec![host("x", &["A.com"], "x"), host("y", &["a.com"], "y")]);
    assert!(matches!(err, Err(RouteError::DuplicateDomain { ref domain }) if domain == "a.com"));
    let err = RouteTable::new(vec![host("x", &["*"], "x"), host("y", &["*"], "y")]);
    assert!(matches!(err, Err(RouteError::DuplicateDomain { .. })));
    let err = RouteTable::new(vec![
        host("x", &["*.a.com"], "x"),
        host("y", &["*.a.com"], "y"),
    ]);
    assert!(matches!(err, Err(RouteError::DuplicateDomain { .. })));
}

#[test]
fn first_matching_route_wins() {
    let routes = vec![
        Route::new(
            when_var("method", "pay"),
            RouteAction::cluster("payments").expect("named"),
        )
        .with_name("pay"),
        Route::new(
            when_var("service", "Orders"),
            RouteAction::cluster("orders").expect("named"),
        )
        .with_name("orders"),
        to_cluster("fallback").with_name("catch-all"),
    ];
    let table =
        RouteTable::new(vec![VirtualHost::new("rpc", vec!["*".into()], routes)]).expect("valid");
    let both = MapFrame::new()
        .with_var("service", "Orders")
        .with_var("method", "pay");
    let decision = table.route(None, &both).expect("routed");
    assert_eq!(decision.route_name(), Some("pay"));
    assert_eq!(decision.cluster(), Some("payments"));
    assert_eq!(decision.virtual_host.name, "rpc");
    let orders = MapFrame::new()
        .with_var("service", "Orders")
        .with_var("method", "get");
    assert_eq!(
        table.route(None, &orders).and_then(|d| d.cluster()),
        Some("orders")
    );
    let other = MapFrame::new();
    assert_eq!(
        table.route(None, &other).and_then(|d| d.route_name()),
        Some("catch-all")
    );
}

#[test]
fn no_matching_route_is_none() {
    let routes = vec![Route::new(
        when_var("service", "Orders"),
        RouteAction::cluster("orders").expect("named"),
    )];
    let table =
        RouteTable::new(vec![VirtualHost::new("rpc", vec!["*".into()], routes)]).expect("valid");
    assert!(
        table
            .route(None, &MapFrame::new().with_var("service", "Other"))
            .is_none()
    );
}

#[test]
fn direct_response_and_timeout() {
    let route = Route::new(
        RouteMatch::any(),
        RouteAction::direct(503, Some("maintenance".into())),
    )
    .with_timeout(Duration::from_millis(250));
    let table =
        RouteTable::new(vec![VirtualHost::new("h", vec!["*".into()], vec![route])]).expect("valid");
    let decision = table.route(None, &MapFrame::new()).expect("routed");
    assert_eq!(
        decision.target,
        RouteTarget::DirectResponse {
            status: 503,
            body: Some("maintenance")
        }
    );
    assert_eq!(decision.cluster(), None);
    assert_eq!(decision.timeout(), Some(Duration::from_millis(250)));
}

#[test]
fn weighted_split_through_the_table() {
    let split = RouteAction::weighted(vec![("v1".into(), 90), ("v2".into(), 10)]).expect("valid");
    let route = Route::new(RouteMatch::any(), split);
    let table =
        RouteTable::new(vec![VirtualHost::new("h", vec!["*".into()], vec![route])]).expect("valid");
    let frame = MapFrame::new();
    // Deterministic core: one full period gives the exact ratio.
    let v2 = (0..10_000u64)
        .filter(|&r| table.route_with(None, &frame, r).and_then(|d| d.cluster()) == Some("v2"))
        .count();
    assert_eq!(v2, 1_000);
    // Seeded generator: within five sigma of 10%.
    let mut rng = SmallRng::seed_from_u64(42);
    let v2 = (0..10_000)
        .filter(|_| {
            table
                .route_with(None, &frame, rng.random())
                .and_then(|d| d.cluster())
                == Some("v2")
        })
        .count();
    assert!((850..=1_150).contains(&v2), "v2 picked {v2} times");
    // Thread rng: only checks both sides are reachable.
    let picks: Vec<_> = (0..2_000)
        .filter_map(|_| table.route(None, &frame).and_then(|d| d.cluster()))
        .collect();
    assert!(picks.contains(&"v1") && picks.contains(&"v2"));
}

#[test]
fn header_mutations_remove_then_add() {
    let route = to_cluster("c")
        .with_header_to_remove("x-internal")
        .with_header_to_remove("x-route")
        .with_header_to_add("x-route", "canary")
        .with_header_to_add("x-env", "prod");
    let table =
        RouteTable::new(vec![VirtualHost::new("h", vec!["*".into()], vec![route])]).expect("valid");
    let mut frame = MapFrame::new()
        .with_header("x-internal", "secret")
        .with_header("x-route", "old")
        .with_header("keep", "1");
    let decision = table.route(None, &frame).expect("routed");
    assert_eq!(decision.request_headers_to_remove().len(), 2);
    assert_eq!(decision.request_headers_to_add().len(), 2);
    decision.apply_request_headers(&mut frame);

    assert_eq!(frame.header("x-internal"), None);
    assert_eq!(frame.header("x-route"), Some("canary"));
    assert_eq!(frame.header("x-env"), Some("prod"));
    assert_eq!(frame.header("keep"), Some("1"));
}

#[test]
fn table_is_shareable_across_workers() {
    // The table is published in an immutable snapshot read by every worker thread.
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<RouteTable>();
}
