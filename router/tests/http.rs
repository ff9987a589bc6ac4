//! The HTTP route language (Envoy semantics) over the protocol-neutral variables `path`,
//! `query`, `authority`/`host` and `scheme`, read through a fake frame (as the HTTP
//! `RequestHead` view presents them: `authority` with its port, `host` without).

mod support;

use strait_codec_framework::Frame;
use strait_router::{
    HeaderSink, MatchKind, PathMatch, Redirect, Route, RouteAction, RouteError, RouteMatch,
    RouteTable, RouteTarget, ValueMatcher, VirtualHost,
};
use support::MapFrame;

/// A request as the HTTP frame view presents it.
fn req(path: &str, query: Option<&str>) -> MapFrame {
    let frame = MapFrame::new()
        .with_var("path", path)
        .with_var("scheme", "http")
        .with_var("host", "example.com")
        .with_var("authority", "example.com");
    match query {
        Some(q) => frame.with_var("query", q),
        None => frame,
    }
}

fn on_path(path: PathMatch) -> RouteMatch {
    RouteMatch::any().with_path(path)
}

fn param(name: &str, kind: MatchKind) -> ValueMatcher {
    ValueMatcher::new(name, kind, false).expect("named")
}

fn s(v: &str) -> String {
    v.to_string()
}

fn table(routes: Vec<Route>) -> RouteTable {
    RouteTable::new(vec![VirtualHost::new("h", vec![s("*")], routes)]).expect("valid")
}

fn to(cluster: &str, matcher: RouteMatch) -> Route {
    Route::new(matcher, RouteAction::cluster(cluster).expect("named"))
}

fn redirect_to(matcher: RouteMatch, redirect: Redirect) -> Route {
    Route::new(matcher, RouteAction::redirect(redirect))
}

// === matchers ===

#[test]
fn path_is_exact_and_ignores_the_query() {
    let m = on_path(PathMatch::exact("/users"));
    assert!(m.matches(&req("/users", None)));
    assert!(m.matches(&req("/users", Some("id=7"))));
    assert!(!m.matches(&req("/users/", None)));
    assert!(!m.matches(&req("/user", None)));
    assert!(!m.matches(&req("/Users", None)));
    // A frame without a path (an RPC request) matches no path condition.
    assert!(!m.matches(&MapFrame::new()));
}

#[test]
fn prefix_is_a_plain_string_prefix() {
    let m = on_path(PathMatch::prefix("/api"));
    assert!(m.matches(&req("/api", None)));
    assert!(m.matches(&req("/api/v1", Some("x=1"))));
    assert!(m.matches(&req("/apiary", None)));
    assert!(!m.matches(&req("/ap", None)));
    assert!(!m.matches(&req("/v1/api", None)));
    assert!(on_path(PathMatch::prefix("/")).matches(&req("/", None)));
}

#[test]
fn regex_matches_the_whole_path_without_query() {
    let m = on_path(PathMatch::regex(r"/users/\d+").expect("valid"));
    assert!(m.matches(&req("/users/42", None)));
    assert!(m.matches(&req("/users/42", Some("verbose=1"))));
    assert!(!m.matches(&req("/users/42/posts", None)));
    assert!(!m.matches(&req("/v1/users/42", None)));
    assert!(!m.matches(&req("/users/abc", None)));
    assert!(matches!(
        PathMatch::regex("/users/("),
        Err(RouteError::BadRegex { .. })
    ));
}

#[test]
fn case_sensitive_false_folds_ascii_for_path_and_prefix_only() {
    let exact = on_path(PathMatch::exact("/Users").with_case_sensitive(false));
    assert!(exact.matches(&req("/users", None)));
    assert!(exact.matches(&req("/USERS", None)));
    assert!(!exact.matches(&req("/users/", None)));
    let prefix = on_path(PathMatch::prefix("/API/").with_case_sensitive(false));
    assert!(prefix.matches(&req("/api/x", None)));
    assert!(prefix.matches(&req("/Api/x", None)));
    assert!(!prefix.matches(&req("/apix", None)));
    // Default: sensitive.
    assert!(!on_path(PathMatch::prefix("/API/")).matches(&req("/api/x", None)));
    // As in Envoy, a regex is not affected; `(?i)` is.
    let re = on_path(
        PathMatch::regex("/users")
            .expect("valid")
            .with_case_sensitive(false),
    );
    assert!(!re.matches(&req("/USERS", None)));
    let re = on_path(PathMatch::regex("(?i)/users").expect("valid"));
    assert!(re.matches(&req("/USERS", None)));
}

#[test]
fn query_parameters_every_kind() {
    let frame = req("/search", Some("q=rust%20lang&page=2&debug&tag=a&tag=b"));
    let cases = [
        (param("q", MatchKind::Exact(s("rust lang"))), true),
        (param("q", MatchKind::Exact(s("rust%20lang"))), false),
        (param("q", MatchKind::Prefix(s("rust "))), true),
        (param("q", MatchKind::Suffix(s(" lang"))), true),
        (param("q", MatchKind::Contains(s("t l"))), true),
        (
            ValueMatcher::regex("page", r"\d+", false).expect("valid"),
            true,
        ),
        (
            ValueMatcher::regex("page", r"\d", false).expect("valid"),
            true,
        ),
        (
            ValueMatcher::regex("q", "rust", false).expect("valid"),
            false,
        ),
        (param("page", MatchKind::Present(true)), true),
        (param("missing", MatchKind::Present(false)), true),
        (param("missing", MatchKind::Present(true)), false),
        (param("missing", MatchKind::Exact(s(""))), false),
        // A parameter without `=` is present with the value "".
        (param("debug", MatchKind::Exact(s(""))), true),
        (param("debug", MatchKind::Present(true)), true),
        // The first occurrence wins.
        (param("tag", MatchKind::Exact(s("a"))), true),
        (param("tag", MatchKind::Exact(s("b"))), false),
        // Invert flips, the missing case included.
        (
            ValueMatcher::new("page", MatchKind::Exact(s("2")), true).expect("named"),
            false,
        ),
        (
            ValueMatcher::new("missing", MatchKind::Exact(s("2")), true).expect("named"),
            true,
        ),
    ];
    for (matcher, expected) in cases {
        let m = RouteMatch::any().with_query_parameters(vec![matcher.clone()]);
        assert_eq!(m.matches(&frame), expected, "{matcher:?}");
    }
}

#[test]
fn query_parameter_names_and_values_are_percent_decoded() {
    let frame = req(
        "/",
        Some("user%5Fid=a%2Bb&sp%20ace=%E2%82%AC&plus=a+b&bad=%zz"),
    );
    let holds = |name: &str, value: &str| {
        RouteMatch::any()
            .with_query_parameters(vec![param(name, MatchKind::Exact(s(value)))])
            .matches(&frame)
    };
    assert!(holds("user_id", "a+b"));
    assert!(holds("sp ace", "€"));
    // `+` is not a space in a URI query.
    assert!(holds("plus", "a+b"));
    assert!(!holds("plus", "a b"));
    // A `%` without two hex digits stays as written.
    assert!(holds("bad", "%zz"));
    assert!(!holds("user%5Fid", "a+b"));
}

#[test]
fn no_query_means_no_parameters() {
    let m = RouteMatch::any().with_query_parameters(vec![param("a", MatchKind::Present(false))]);
    assert!(m.matches(&req("/", None)));
    assert!(m.matches(&req("/", Some(""))));
    let m = RouteMatch::any().with_query_parameters(vec![param("a", MatchKind::Present(true))]);
    assert!(!m.matches(&req("/", None)));
}

#[test]
fn path_query_headers_and_variables_are_anded() {
    let m = RouteMatch::new(
        vec![param("http_method", MatchKind::Exact(s("GET")))],
        vec![param("x-canary", MatchKind::Present(true))],
    )
    .with_path(PathMatch::prefix("/api/"))
    .with_query_parameters(vec![param("v", MatchKind::Exact(s("2")))]);
    let full = req("/api/x", Some("v=2"))
        .with_var("http_method", "GET")
        .with_header("x-canary", "1");
    assert!(m.matches(&full));
    let wrong_path = req("/web/x", Some("v=2"))
        .with_var("http_method", "GET")
        .with_header("x-canary", "1");
    assert!(!m.matches(&wrong_path));
    let wrong_query = req("/api/x", Some("v=1"))
        .with_var("http_method", "GET")
        .with_header("x-canary", "1");
    assert!(!m.matches(&wrong_query));
    let no_header = req("/api/x", Some("v=2")).with_var("http_method", "GET");
    assert!(!m.matches(&no_header));
    let wrong_method = req("/api/x", Some("v=2"))
        .with_var("http_method", "POST")
        .with_header("x-canary", "1");
    assert!(!m.matches(&wrong_method));
}

// === actions ===

#[test]
fn prefix_rewrite_replaces_the_matched_prefix_and_keeps_the_query() {
    let route = to("api", on_path(PathMatch::prefix("/api/")))
        .with_prefix_rewrite("/v2/")
        .expect("valid");
    let t = table(vec![route]);
    let rewrite = |path: &str, query: Option<&str>| {
        let frame = req(path, query);
        t.route(None, &frame).expect("routed").path_rewrite(&frame)
    };
    assert_eq!(rewrite("/api/users", None).as_deref(), Some("/v2/users"));
    assert_eq!(
        rewrite("/api/users", Some("id=7&x=%20")).as_deref(),
        Some("/v2/users?id=7&x=%20")
    );
    assert_eq!(rewrite("/api/", Some("")).as_deref(), Some("/v2/"));

    // Case-insensitive prefix: the matched bytes are replaced whatever their case.
    let route = to(
        "api",
        on_path(PathMatch::prefix("/API").with_case_sensitive(false)),
    )
    .with_prefix_rewrite("")
    .expect("valid");
    let t = table(vec![route]);
    let frame = req("/Api/users", Some("a=1"));
    assert_eq!(
        t.route(None, &frame)
            .expect("routed")
            .path_rewrite(&frame)
            .as_deref(),
        Some("/users?a=1")
    );
}

#[test]
fn prefix_rewrite_with_a_path_match_replaces_the_whole_path() {
    let route = to("c", on_path(PathMatch::exact("/old")))
        .with_prefix_rewrite("/new/place")
        .expect("valid");
    let t = table(vec![route]);
    let frame = req("/old", Some("k=v"));
    let decision = t.route(None, &frame).expect("routed");
    assert_eq!(
        decision.path_rewrite(&frame).as_deref(),
        Some("/new/place?k=v")
    );
}

#[test]
fn no_rewrite_means_none() {
    let t = table(vec![to("c", on_path(PathMatch::prefix("/")))]);
    let frame = req("/x", Some("a=1"));
    let decision = t.route(None, &frame).expect("routed");
    assert_eq!(decision.path_rewrite(&frame), None);
    assert_eq!(decision.host_rewrite(), None);
}

#[test]
fn host_rewrite_is_exposed_on_the_decision() {
    let route = to("c", RouteMatch::any())
        .with_host_rewrite("backend.internal:8080")
        .expect("valid");
    let t = table(vec![route]);
    let frame = req("/", None);
    let decision = t.route(None, &frame).expect("routed");
    assert_eq!(decision.host_rewrite(), Some("backend.internal:8080"));
    assert_eq!(decision.cluster(), Some("c"));
    for bad in ["", "a b", "a/b", "user@host", "a?b"] {
        assert_eq!(
            to("c", RouteMatch::any()).with_host_rewrite(bad).err(),
            Some(RouteError::BadHostRewrite(s(bad))),
            "{bad:?}"
        );
    }
}

#[test]
fn response_headers_are_exposed_and_applied_remove_then_add() {
    let route = to("c", RouteMatch::any())
        .with_response_header_to_remove("server")
        .with_response_header_to_remove("x-cache")
        .with_response_header_to_add("x-cache", "route")
        .with_response_header_to_add("x-served-by", "strait");
    let t = table(vec![route]);
    let decision = t.route(None, &req("/", None)).expect("routed");
    assert_eq!(
        decision.response_headers_to_add(),
        &[(s("x-cache"), s("route")), (s("x-served-by"), s("strait"))]
    );
    assert_eq!(
        decision.response_headers_to_remove(),
        &[s("server"), s("x-cache")]
    );
    // Onto any Frame...
    let mut response = MapFrame::new()
        .with_header("server", "upstream")
        .with_header("x-cache", "HIT")
        .with_header("keep", "1");
    decision.apply_response_headers(&mut response);
    assert_eq!(
        response.headers,
        vec![
            (s("keep"), s("1")),
            (s("x-cache"), s("route")),
            (s("x-served-by"), s("strait"))
        ]
    );
    // ... also as a trait object ...
    let mut boxed: Box<dyn Frame> = Box::new(MapFrame::new().with_header("server", "x"));
    decision.apply_response_headers(boxed.as_mut());
    assert_eq!(boxed.header("server"), None);
    assert_eq!(boxed.header("x-served-by"), Some("strait"));
    // ... and onto any other header setter.
    #[derive(Default)]
    struct Log(Vec<String>);
    impl HeaderSink for Log {
        fn set(&mut self, name: &str, value: &str) {
            self.0.push(format!("set {name}={value}"));
        }
        fn remove(&mut self, name: &str) {
            self.0.push(format!("remove {name}"));
        }
    }
    let mut log = Log::default();
    decision.apply_response_headers(&mut log);
    assert_eq!(
        log.0,
        [
            "remove server",
            "remove x-cache",
            "set x-cache=route",
            "set x-served-by=strait"
        ]
    );
}

// === redirects ===

/// The redirect answer for `frame` through a one-route table.
fn redirect(route: Route, frame: &MapFrame) -> RouteTarget<'static> {
    let t = table(vec![route]);
    match t.route(None, frame).expect("routed").target {
        RouteTarget::Redirect { status, location } => RouteTarget::Redirect { status, location },
        other => panic!("not a redirect: {other:?}"),
    }
}

fn moved(status: u16, location: &str) -> RouteTarget<'static> {
    RouteTarget::Redirect {
        status,
        location: s(location),
    }
}

#[test]
fn plain_redirect_keeps_the_request_url_with_301() {
    let route = redirect_to(RouteMatch::any(), Redirect::new());
    assert_eq!(
        redirect(route.clone(), &req("/a/b", Some("x=1"))),
        moved(301, "http://example.com/a/b?x=1")
    );
    let t = table(vec![route]);
    let frame = req("/", None);
    let decision = t.route(None, &frame).expect("routed");
    assert_eq!(decision.cluster(), None);
}

#[test]
fn redirect_response_codes() {
    for code in Redirect::RESPONSE_CODES {
        let r = Redirect::new().with_response_code(code).expect("valid");
        assert_eq!(
            redirect(redirect_to(RouteMatch::any(), r), &req("/", None)),
            moved(code, "http://example.com/")
        );
    }
    for code in [200, 300, 304, 404, 0] {
        assert_eq!(
            Redirect::new().with_response_code(code),
            Err(RouteError::BadRedirectCode(code))
        );
    }
}

#[test]
fn scheme_redirect_drops_the_old_default_port_only() {
    let https = || Redirect::new().with_scheme("HTTPS").expect("valid");
    let frame = |host: &str| {
        MapFrame::new()
            .with_var("scheme", "http")
            .with_var("authority", host)
            .with_var("path", "/p")
    };
    let route = redirect_to(RouteMatch::any(), https());
    assert_eq!(
        redirect(route.clone(), &frame("example.com")),
        moved(301, "https://example.com/p")
    );
    assert_eq!(
        redirect(route.clone(), &frame("example.com:80")),
        moved(301, "https://example.com/p")
    );
    assert_eq!(
        redirect(route.clone(), &frame("example.com:8080")),
        moved(301, "https://example.com:8080/p")
    );
    assert_eq!(
        redirect(route, &frame("[::1]:80")),
        moved(301, "https://[::1]/p")
    );
    // https ▶ http drops :443; same scheme keeps any port.
    let to_http = redirect_to(
        RouteMatch::any(),
        Redirect::new().with_scheme("http").expect("valid"),
    );
    let secure = MapFrame::new()
        .with_var("scheme", "https")
        .with_var("authority", "a.com:443")
        .with_var("path", "/");
    assert_eq!(
        redirect(to_http.clone(), &secure),
        moved(301, "http://a.com/")
    );
    assert_eq!(
        redirect(to_http, &frame("a.com:80")),
        moved(301, "http://a.com:80/p")
    );
    for bad in ["", "1http", "ht tp", "http:"] {
        assert!(
            matches!(
                Redirect::new().with_scheme(bad),
                Err(RouteError::BadRedirect { part: "scheme", .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn host_and_port_redirect() {
    let frame = req("/p", Some("q=1")).with_var("authority", "example.com:8443");
    let host = Redirect::new().with_host("new.example.org").expect("valid");
    assert_eq!(
        redirect(redirect_to(RouteMatch::any(), host.clone()), &frame),
        moved(301, "http://new.example.org/p?q=1")
    );
    let host_port = host.clone().with_port(9000).expect("valid");
    assert_eq!(
        redirect(redirect_to(RouteMatch::any(), host_port), &frame),
        moved(301, "http://new.example.org:9000/p?q=1")
    );
    // A port replaces the request's port.
    let port = Redirect::new().with_port(8080).expect("valid");
    assert_eq!(
        redirect(redirect_to(RouteMatch::any(), port.clone()), &frame),
        moved(301, "http://example.com:8080/p?q=1")
    );
    // And the configured host's own port.
    let host_with_port = Redirect::new()
        .with_host("b.com:1")
        .and_then(|r| r.with_port(2))
        .expect("valid");
    assert_eq!(
        redirect(redirect_to(RouteMatch::any(), host_with_port), &frame),
        moved(301, "http://b.com:2/p?q=1")
    );
    // `host` is read when there is no `authority` variable.
    let h2 = MapFrame::new()
        .with_var("scheme", "https")
        .with_var("host", "h2.example.com")
        .with_var("path", "/x");
    assert_eq!(
        redirect(redirect_to(RouteMatch::any(), port), &h2),
        moved(301, "https://h2.example.com:8080/x")
    );
    assert!(matches!(
        Redirect::new().with_port(0),
        Err(RouteError::BadRedirect { part: "port", .. })
    ));
    for bad in ["", "a b", "a/b", "u@h", "a#b"] {
        assert!(
            matches!(
                Redirect::new().with_host(bad),
                Err(RouteError::BadRedirect { part: "host", .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn path_redirect_replaces_the_path_and_its_query_wins() {
    let path = Redirect::new().with_path("/new").expect("valid");
    assert_eq!(
        redirect(
            redirect_to(RouteMatch::any(), path),
            &req("/old", Some("a=1"))
        ),
        moved(301, "http://example.com/new?a=1")
    );
    let with_query = Redirect::new().with_path("/new?b=2").expect("valid");
    assert_eq!(
        redirect(
            redirect_to(RouteMatch::any(), with_query),
            &req("/old", Some("a=1"))
        ),
        moved(301, "http://example.com/new?b=2")
    );
    // Its own (empty) query wins even over strip_query: nothing to strip.
    let empty_query = Redirect::new()
        .with_path("/new?")
        .expect("valid")
        .with_strip_query(true);
    assert_eq!(
        redirect(
            redirect_to(RouteMatch::any(), empty_query),
            &req("/old", Some("a=1"))
        ),
        moved(301, "http://example.com/new")
    );
    for bad in ["new", "/a b", "/a#b", ""] {
        assert!(
            matches!(
                Redirect::new().with_path(bad),
                Err(RouteError::BadRedirect { part: "path", .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn redirect_prefix_rewrite_uses_the_route_prefix() {
    let r = Redirect::new().with_prefix_rewrite("/v2/").expect("valid");
    let route = redirect_to(on_path(PathMatch::prefix("/v1/")), r);
    assert_eq!(
        redirect(route.clone(), &req("/v1/users", Some("id=3"))),
        moved(301, "http://example.com/v2/users?id=3")
    );
    let exact = redirect_to(
        on_path(PathMatch::exact("/login")),
        Redirect::new()
            .with_prefix_rewrite("/auth/login")
            .expect("valid"),
    );
    assert_eq!(
        redirect(exact, &req("/login", None)),
        moved(301, "http://example.com/auth/login")
    );
    assert_eq!(
        Redirect::new()
            .with_path("/a")
            .and_then(|r| r.with_prefix_rewrite("/b")),
        Err(RouteError::PathAndPrefixRewrite)
    );
    assert_eq!(
        Redirect::new()
            .with_prefix_rewrite("/b")
            .and_then(|r| r.with_path("/a")),
        Err(RouteError::PathAndPrefixRewrite)
    );
    assert_eq!(
        Redirect::new().with_prefix_rewrite("/a?b"),
        Err(RouteError::BadPrefixRewrite(s("/a?b")))
    );
}

#[test]
fn strip_query_drops_the_request_query() {
    let r = Redirect::new().with_strip_query(true);
    assert_eq!(
        redirect(redirect_to(RouteMatch::any(), r), &req("/p", Some("a=1"))),
        moved(301, "http://example.com/p")
    );
}

#[test]
fn every_redirect_field_at_once() {
    let r = Redirect::new()
        .with_response_code(308)
        .and_then(|r| r.with_scheme("https"))
        .and_then(|r| r.with_host("api.example.org"))
        .and_then(|r| r.with_port(8443))
        .and_then(|r| r.with_prefix_rewrite("/v2"))
        .expect("valid")
        .with_strip_query(true);
    assert_eq!(r.response_code(), 308);
    assert_eq!(r.scheme(), Some("https"));
    assert_eq!(r.host(), Some("api.example.org"));
    assert_eq!(r.port(), Some(8443));
    assert_eq!(r.prefix_rewrite(), Some("/v2"));
    assert_eq!(r.path(), None);
    assert!(r.strip_query());
    let route = redirect_to(on_path(PathMatch::prefix("/v1")), r);
    assert_eq!(
        redirect(route, &req("/v1/orders/9", Some("x=1"))),
        moved(308, "https://api.example.org:8443/v2/orders/9")
    );
}

#[test]
fn redirect_without_any_host_is_relative() {
    let frame = MapFrame::new()
        .with_var("path", "/p")
        .with_var("query", "a=1");
    let r = Redirect::new().with_path("/q").expect("valid");
    assert_eq!(
        redirect(redirect_to(RouteMatch::any(), r), &frame),
        moved(301, "/q?a=1")
    );
    // An RPC frame (no variables at all) gets `/`.
    assert_eq!(
        redirect(
            redirect_to(RouteMatch::any(), Redirect::new()),
            &MapFrame::new()
        ),
        moved(301, "/")
    );
}

// === one-of and consistency rules ===

#[test]
fn prefix_rewrite_needs_a_path_or_prefix_match() {
    let regex = on_path(PathMatch::regex("/a.*").expect("valid"));
    let route = to("c", regex.clone())
        .with_prefix_rewrite("/b")
        .expect("valid");
    assert_eq!(route.check(), Err(RouteError::PrefixRewriteWithRegex));
    assert!(matches!(
        RouteTable::new(vec![VirtualHost::new("h", vec![s("*")], vec![route])]),
        Err(RouteError::PrefixRewriteWithRegex)
    ));
    let route = to("c", RouteMatch::any())
        .with_prefix_rewrite("/b")
        .expect("valid");
    assert_eq!(
        route.check(),
        Err(RouteError::PrefixRewriteWithoutPathMatch)
    );
    // The same rule for a redirect's prefix rewrite.
    let r = Redirect::new().with_prefix_rewrite("/b").expect("valid");
    assert_eq!(
        redirect_to(regex, r.clone()).check(),
        Err(RouteError::PrefixRewriteWithRegex)
    );
    assert_eq!(
        redirect_to(RouteMatch::any(), r).check(),
        Err(RouteError::PrefixRewriteWithoutPathMatch)
    );
}

#[test]
fn rewrites_need_a_forwarding_action() {
    let direct = Route::new(
        on_path(PathMatch::prefix("/")),
        RouteAction::direct(404, None),
    );
    assert_eq!(direct.clone().check(), Ok(()));
    let with_host = direct.clone().with_host_rewrite("a").expect("valid");
    assert_eq!(with_host.check(), Err(RouteError::RewriteWithoutForward));
    let with_prefix = redirect_to(on_path(PathMatch::prefix("/")), Redirect::new())
        .with_prefix_rewrite("/x")
        .expect("valid");
    assert_eq!(with_prefix.check(), Err(RouteError::RewriteWithoutForward));
}

#[test]
fn first_matching_route_wins_across_path_kinds() {
    let t = table(vec![
        to("exact", on_path(PathMatch::exact("/api/health"))),
        to(
            "regex",
            on_path(PathMatch::regex(r"/api/v\d+/.*").expect("valid")),
        ),
        to("prefix", on_path(PathMatch::prefix("/api/"))),
        redirect_to(
            on_path(PathMatch::prefix("/old/")),
            Redirect::new().with_prefix_rewrite("/new/").expect("valid"),
        ),
        Route::new(RouteMatch::any(), RouteAction::direct(404, Some(s("none")))),
    ]);
    let pick = |path: &str| t.route(None, &req(path, None)).expect("routed").target;
    assert_eq!(pick("/api/health"), RouteTarget::Cluster("exact"));
    assert_eq!(pick("/api/v1/users"), RouteTarget::Cluster("regex"));
    assert_eq!(pick("/api/users"), RouteTarget::Cluster("prefix"));
    assert_eq!(pick("/old/a"), moved(301, "http://example.com/new/a"));
    assert_eq!(
        pick("/other"),
        RouteTarget::DirectResponse {
            status: 404,
            body: Some("none")
        }
    );
}
