use super::*;
use std::time::Duration;

const GOOD: &str = r#"admin: { address: 127.0.0.1:9901 }
listeners:
  - name: rpc
    address: 127.0.0.1:12200
    protocol: bolt
    route_config: rpc
route_configs:
  - name: rpc
    virtual_hosts:
      - name: default
        domains: ["*"]
        routes:
          - match:
              variables: [{ name: service, exact: "com.alipay.test.TestService:1.0" }]
              headers: [{ name: sofa_head_method_name, prefix: "say" }]
            route: { cluster: test, timeout: 3s }
          - match: { variables: [{ name: service, regex: "^com\\.example\\..*" }] }
            route: { weighted_clusters: [{ name: a, weight: 90 }, { name: b, weight: 10 }] }
clusters:
  - name: test
    protocol: bolt
    lb_policy: round_robin
    connect_timeout: 1s
    max_connections_per_host: 2
    endpoints: [{ address: 127.0.0.1:12201, weight: 1 }]
  - { name: a, protocol: bolt, endpoints: [{ address: 127.0.0.1:12202 }] }
  - { name: b, protocol: bolt, endpoints: [{ address: 127.0.0.1:12203 }] }
"#;

fn check(text: &str) -> Result<Config, ConfigError> {
    parse("strait.yaml", text, &crate::builtin_registry())
}

fn error(text: &str) -> ConfigError {
    match check(text) {
        Ok(_) => panic!("config should be rejected"),
        Err(e) => e,
    }
}

#[test]
fn the_issue_example_is_valid() {
    let config = check(GOOD).unwrap();
    assert_eq!(config.listeners.len(), 1);
    assert_eq!(config.clusters.len(), 3);
    assert_eq!(config.clusters[0].options.max_connections_per_host, 2);
    assert_eq!(config.dump["clusters"][0]["name"], "test");
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = error(&GOOD.replace("    lb_policy: round_robin", "    lb_polcy: round_robin"));
    assert_eq!((e.file.as_str(), e.line), ("strait.yaml", 22), "{e}");
    assert_eq!(e.key, "clusters[0].lb_polcy", "{e}");
    assert_eq!(
        e.to_string(),
        "strait.yaml:22:5: clusters[0].lb_polcy: unknown key \"lb_polcy\"; the keys valid \
         here are: name, protocol, lb_policy, hash_key, connect_timeout, max_connections_per_host, \
         preconnect, max_requests, max_frame_size, heartbeat, http, health_check, \
         outlier_detection, circuit_breakers, slow_start, panic_threshold, type, dns_refresh_rate, endpoints, tls"
    );
}

#[test]
fn unknown_cluster_names_the_reference() {
    let e = error(&GOOD.replace("cluster: test, timeout", "cluster: tset, timeout"));
    assert_eq!(e.line, 16, "{e}");
    assert_eq!(
        e.key,
        "route_configs[0].virtual_hosts[0].routes[0].route.cluster"
    );
    assert!(e.message.contains("\"tset\""), "{e}");
}

#[test]
fn bad_duration_and_unknown_protocol_and_policy() {
    let e = error(&GOOD.replace("timeout: 3s", "timeout: 3x"));
    assert_eq!(
        (e.line, e.key.as_str()),
        (
            16,
            "route_configs[0].virtual_hosts[0].routes[0].route.timeout"
        )
    );
    let e = error(&GOOD.replace(
        "    protocol: bolt\n    route_config",
        "    protocol: bolty\n    route_config",
    ));
    assert_eq!(
        (e.line, e.key.as_str()),
        (5, "listeners[0].protocol"),
        "{e}"
    );
    let e = error(&GOOD.replace("lb_policy: round_robin", "lb_policy: fastest"));
    assert_eq!(
        (e.line, e.key.as_str()),
        (22, "clusters[0].lb_policy"),
        "{e}"
    );
}

#[test]
fn bad_regex_address_and_matcher_shape() {
    let e = error(&GOOD.replace("regex: \"^com", "regex: \"(^com"));
    assert_eq!(e.line, 17, "{e}");
    assert!(e.key.ends_with("match.variables[0].regex"), "{e}");
    let e = error(&GOOD.replace("127.0.0.1:12201", "localhost"));
    assert_eq!(
        (e.line, e.key.as_str()),
        (25, "clusters[0].endpoints[0].address"),
        "{e}"
    );
    let e = error(&GOOD.replace("prefix: \"say\" }", "prefix: \"say\", exact: \"x\" }"));
    assert_eq!(e.line, 15, "{e}");
}

#[test]
fn duplicates_and_dangling_route_config_are_errors() {
    let e = error(&GOOD.replace(
        "  - { name: b, protocol: bolt",
        "  - { name: a, protocol: bolt",
    ));
    assert!(e.message.contains("duplicate cluster"), "{e}");
    let e = error(&GOOD.replace("    route_config: rpc", "    route_config: rcp"));
    assert_eq!(
        (e.line, e.key.as_str()),
        (6, "listeners[0].route_config"),
        "{e}"
    );
}

#[test]
fn syntax_errors_have_a_location() {
    let e = error("listeners: [\n  - name: x\n");
    assert!(e.line > 0, "{e}");
}

#[test]
fn readme_example_and_quickstart_are_valid() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("A full example:")
        .expect("README has the full example");
    let block = &readme[start..];
    let yaml = block
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block");
    let config = check(yaml).unwrap_or_else(|e| panic!("README example: {e}"));
    assert_eq!(config.clusters.len(), 3);
    check(include_str!("../../../examples/quickstart.yaml")).unwrap();
}

#[test]
fn a_fixed_listener_cannot_route_to_a_cluster_of_another_protocol() {
    let mut registry = crate::builtin_registry();
    registry.register(other_protocol()).unwrap();
    let text = GOOD.replace(
        "  - { name: b, protocol: bolt",
        "  - { name: b, protocol: other",
    );
    let e = parse("strait.yaml", &text, &registry)
        .err()
        .expect("rejected");
    assert_eq!(
        (e.line, e.key.as_str()),
        (6, "listeners[0].route_config"),
        "{e}"
    );
    assert!(
        e.message.contains("cluster \"b\", which speaks other"),
        "{e}"
    );
}

/// A second protocol name, enough for configuration checks.
fn other_protocol() -> std::sync::Arc<dyn strait_codec_framework::Protocol> {
    struct Other;
    impl strait_codec_framework::Protocol for Other {
        fn name(&self) -> &'static str {
            "other"
        }
        fn detect(&self, _: &[u8]) -> strait_codec_framework::Detect {
            strait_codec_framework::Detect::NoMatch
        }
        fn new_codec(
            &self,
            limits: strait_codec_framework::Limits,
        ) -> Box<dyn strait_codec_framework::Codec> {
            crate::builtin_registry()
                .get("bolt")
                .unwrap()
                .new_codec(limits)
        }
        fn id_width(&self) -> strait_codec_framework::IdWidth {
            strait_codec_framework::IdWidth::U32
        }
        fn pool_mode(&self) -> strait_codec_framework::PoolMode {
            strait_codec_framework::PoolMode::Multiplex
        }
        fn heartbeat_reply(
            &self,
            _: &dyn strait_codec_framework::Frame,
        ) -> Option<Box<dyn strait_codec_framework::Frame>> {
            None
        }
        fn classify(
            &self,
            _: &dyn strait_codec_framework::Frame,
        ) -> strait_codec_framework::ResponseClass {
            strait_codec_framework::ResponseClass::Success
        }
        fn error_response(
            &self,
            _: &dyn strait_codec_framework::Frame,
            _: strait_codec_framework::ProxyFailure,
        ) -> Option<Box<dyn strait_codec_framework::Frame>> {
            None
        }
    }
    std::sync::Arc::new(Other)
}

// === the HTTP route language ===

const HTTP: &str = r#"listeners:
  - name: web
    address: 127.0.0.1:8080
    protocol: http
    route_config: web
route_configs:
  - name: web
    virtual_hosts:
      - name: site
        domains: ["example.com", "*.example.com"]
        routes:
          - match: { path: /health }
            direct_response: { status: 200, body: ok }
          - match: { prefix: /api/, query_parameters: [{ name: v, exact: "2" }] }
            route: { cluster: api, prefix_rewrite: /v2/, host_rewrite: api.internal, timeout: 2s }
            request_headers_to_add: [{ name: x-env, value: prod }]
            response_headers_to_add: [{ name: x-served-by, value: strait }]
            response_headers_to_remove: [server]
          - match: { regex: "/users/[0-9]+", headers: [{ name: x-canary, present: true }] }
            route: { cluster: api }
          - match: { prefix: /OLD/, case_sensitive: false }
            redirect: { prefix_rewrite: /new/, response_code: 308 }
          - match: { prefix: / }
            redirect: { scheme_redirect: https, port_redirect: 8443, strip_query: true }
clusters:
  - { name: api, protocol: http1, endpoints: [{ address: 127.0.0.1:8081 }] }
"#;

/// The full error text for `HTTP` with `from` replaced by `to` (which must occur).
fn http_error(from: &str, to: &str) -> String {
    assert!(HTTP.contains(from), "{from:?} is not in the HTTP example");
    error(&HTTP.replace(from, to)).to_string()
}

#[test]
fn the_http_example_is_valid_and_dumped() {
    let config = check(HTTP).unwrap();
    let routes = &config.dump["route_configs"][0]["virtual_hosts"][0]["routes"];
    assert_eq!(routes[1]["match"]["prefix"], "/api/");
    assert_eq!(routes[1]["match"]["query_parameters"][0]["name"], "v");
    assert_eq!(routes[1]["route"]["prefix_rewrite"], "/v2/");
    assert_eq!(routes[1]["route"]["host_rewrite"], "api.internal");
    assert_eq!(routes[1]["response_headers_to_add"][0]["value"], "strait");
    assert_eq!(routes[1]["response_headers_to_remove"][0], "server");
    assert_eq!(routes[3]["match"]["case_sensitive"], false);
    assert_eq!(routes[3]["redirect"]["response_code"], 308);
    assert_eq!(routes[4]["redirect"]["response_code"], 301);
    assert_eq!(routes[4]["redirect"]["port_redirect"], 8443);
    let table = &config.listeners[0].routes;
    let route = &table.virtual_hosts()[0].routes[1];
    assert_eq!(route.prefix_rewrite.as_deref(), Some("/v2/"));
    assert_eq!(route.host_rewrite.as_deref(), Some("api.internal"));
    assert_eq!(route.matcher.query_parameters.len(), 1);
    assert!(
        !table.virtual_hosts()[0].routes[3]
            .matcher
            .path
            .as_ref()
            .expect("a prefix")
            .is_case_sensitive()
    );
}

/// `(from, to, the whole error)`: `HTTP` with `from` replaced by `to` fails with exactly
/// that text.
fn assert_http_errors(cases: &[(&str, &str, &str)]) {
    for (from, to, expected) in cases {
        assert_eq!(&http_error(from, to), expected, "{from:?} -> {to:?}");
    }
}

const R0: &str = "route_configs[0].virtual_hosts[0].routes[0]";
const R1: &str = "route_configs[0].virtual_hosts[0].routes[1]";
const R2: &str = "route_configs[0].virtual_hosts[0].routes[2]";
const R3: &str = "route_configs[0].virtual_hosts[0].routes[3]";
const R4: &str = "route_configs[0].virtual_hosts[0].routes[4]";

#[test]
fn path_specifiers_are_exclusive_and_regexes_compile() {
    assert_http_errors(&[
        (
            "{ path: /health }",
            "{ path: /health, prefix: /h }",
            &format!(
                "strait.yaml:12:45: {R0}.match.prefix: set at most one of path, prefix, regex"
            ),
        ),
        (
            "{ path: /health }",
            "{ regex: /h, path: /health }",
            &format!("strait.yaml:12:39: {R0}.match.path: set at most one of path, prefix, regex"),
        ),
        (
            "regex: \"/users/[0-9]+\"",
            "regex: \"/users/(\"",
            &format!(
                "strait.yaml:19:29: {R2}.match.regex: bad regex \"/users/(\": regex parse error:\n    ^(?:/users/()$\n     ^\nerror: unclosed group"
            ),
        ),
    ]);
}

#[test]
fn query_parameter_matchers_are_checked_like_headers() {
    assert_http_errors(&[
        (
            "[{ name: v, exact: \"2\" }]",
            "[{ name: v, exact: \"2\", prefix: \"2\" }]",
            &format!(
                "strait.yaml:14:56: {R1}.match.query_parameters[0]: set exactly one of exact, prefix, suffix, contains, regex, present"
            ),
        ),
        (
            "[{ name: v, exact: \"2\" }]",
            "[{ name: v, regex: \"(\" }]",
            &format!(
                "strait.yaml:14:56: {R1}.match.query_parameters[0].regex: bad regex \"(\": regex parse error:\n    ^(?:()$\n     ^\nerror: unclosed group"
            ),
        ),
        (
            "[{ name: v, exact: \"2\" }]",
            "[{ name: \"\", exact: \"2\" }]",
            &format!(
                "strait.yaml:14:56: {R1}.match.query_parameters[0]: a matcher has an empty header or variable name"
            ),
        ),
    ]);
}

#[test]
fn a_route_has_exactly_one_action() {
    assert_http_errors(&[
        (
            "            direct_response: { status: 200, body: ok }",
            "            direct_response: { status: 200, body: ok }\n            route: { cluster: api }",
            &format!(
                "strait.yaml:14:20: {R0}.route: set exactly one of route, redirect, direct_response"
            ),
        ),
        (
            "            direct_response: { status: 200, body: ok }",
            "            redirect: { path_redirect: /up }\n            direct_response: { status: 200, body: ok }",
            &format!(
                "strait.yaml:14:30: {R0}.direct_response: set exactly one of route, redirect, direct_response"
            ),
        ),
        (
            "            direct_response: { status: 200, body: ok }\n",
            "",
            &format!(
                "strait.yaml:12:13: {R0}: set exactly one of route, redirect, direct_response"
            ),
        ),
    ]);
}

#[test]
fn redirect_fields_are_checked() {
    assert_http_errors(&[
        (
            "response_code: 308",
            "response_code: 200",
            &format!(
                "strait.yaml:22:63: {R3}.redirect.response_code: 200 is not one of 301, 302, 303, 307, 308"
            ),
        ),
        (
            "response_code: 308",
            "response_code: 70000",
            &format!(
                "strait.yaml:22:63: {R3}.redirect.response_code: 70000 is not one of 301, 302, 303, 307, 308"
            ),
        ),
        (
            "{ prefix_rewrite: /new/,",
            "{ path_redirect: /n, prefix_rewrite: /new/,",
            &format!(
                "strait.yaml:22:60: {R3}.redirect.prefix_rewrite: a redirect sets only one of path_redirect, prefix_rewrite"
            ),
        ),
        (
            "scheme_redirect: https",
            "scheme_redirect: \"ht tp\"",
            &format!(
                "strait.yaml:24:42: {R4}.redirect.scheme_redirect: invalid redirect scheme \"ht tp\""
            ),
        ),
        (
            "port_redirect: 8443",
            "port_redirect: 0",
            &format!("strait.yaml:24:64: {R4}.redirect.port_redirect: 0 is not a port (1-65535)"),
        ),
        (
            "port_redirect: 8443",
            "port_redirect: 65536",
            &format!(
                "strait.yaml:24:64: {R4}.redirect.port_redirect: 65536 is not a port (1-65535)"
            ),
        ),
        (
            "scheme_redirect: https,",
            "host_redirect: \"a b\",",
            &format!(
                "strait.yaml:24:40: {R4}.redirect.host_redirect: invalid redirect host \"a b\""
            ),
        ),
        (
            "scheme_redirect: https,",
            "path_redirect: new,",
            &format!(
                "strait.yaml:24:40: {R4}.redirect.path_redirect: invalid redirect path \"new\""
            ),
        ),
        (
            "strip_query: true",
            "strip_query: true, https_redirect: true",
            "strait.yaml:24:89: route_configs[0].virtual_hosts[0].routes[4].redirect.https_redirect: unknown key \"https_redirect\"; the keys valid here are: scheme_redirect, host_redirect, port_redirect, path_redirect, prefix_rewrite, response_code, strip_query",
        ),
    ]);
}

#[test]
fn rewrites_are_checked() {
    assert_http_errors(&[
        (
            "route: { cluster: api }",
            "route: { cluster: api, prefix_rewrite: /x }",
            &format!(
                "strait.yaml:20:52: {R2}.route.prefix_rewrite: prefix_rewrite needs a path or prefix match, not regex"
            ),
        ),
        (
            "{ prefix: /api/, query_parameters",
            "{ query_parameters",
            &format!(
                "strait.yaml:15:52: {R1}.route.prefix_rewrite: prefix_rewrite needs a path or prefix match"
            ),
        ),
        (
            "{ prefix: /OLD/, case_sensitive: false }",
            "{ regex: /OLD/.* }",
            &format!(
                "strait.yaml:22:41: {R3}.redirect.prefix_rewrite: prefix_rewrite needs a path or prefix match, not regex"
            ),
        ),
        (
            "prefix_rewrite: /v2/",
            "prefix_rewrite: \"/v2?x\"",
            &format!(
                "strait.yaml:15:52: {R1}.route.prefix_rewrite: invalid prefix_rewrite \"/v2?x\""
            ),
        ),
        (
            "host_rewrite: api.internal",
            "host_rewrite: \"a/b\"",
            &format!("strait.yaml:15:72: {R1}.route.host_rewrite: invalid host_rewrite \"a/b\""),
        ),
    ]);
}

#[test]
fn http_header_names_values_and_statuses_are_checked() {
    let pseudo = "is a pseudo-header, not a header (use path, prefix, regex, host_rewrite, prefix_rewrite or the variables path, authority, http_method, scheme)";
    assert_http_errors(&[
        (
            "{ name: x-served-by,",
            "{ name: x served,",
            &format!(
                "strait.yaml:17:47: {R1}.response_headers_to_add[0].name: \"x served\" is not a valid HTTP header name"
            ),
        ),
        (
            "value: strait }",
            "value: \"a\\nb\" }",
            &format!(
                "strait.yaml:17:67: {R1}.response_headers_to_add[0].value: a header value cannot hold control characters (CR, LF, NUL...)"
            ),
        ),
        (
            "[server]",
            "[\":status\"]",
            &format!("strait.yaml:18:42: {R1}.response_headers_to_remove[0]: \":status\" {pseudo}"),
        ),
        (
            "{ name: x-env,",
            "{ name: \"x(env)\",",
            &format!(
                "strait.yaml:16:46: {R1}.request_headers_to_add[0].name: \"x(env)\" is not a valid HTTP header name"
            ),
        ),
        (
            "value: prod }",
            "value: \"a\\rb\" }",
            &format!(
                "strait.yaml:16:60: {R1}.request_headers_to_add[0].value: a header value cannot hold control characters (CR, LF, NUL...)"
            ),
        ),
        (
            "            response_headers_to_remove: [server]",
            "            request_headers_to_remove: [\"\"]",
            &format!(
                "strait.yaml:18:41: {R1}.request_headers_to_remove[0]: \"\" is not a valid HTTP header name"
            ),
        ),
        (
            "{ name: x-canary,",
            "{ name: \":method\",",
            &format!("strait.yaml:19:64: {R2}.match.headers[0].name: \":method\" {pseudo}"),
        ),
        (
            "status: 200",
            "status: 4",
            &format!(
                "strait.yaml:13:30: {R0}.direct_response.status: 4 is not an HTTP status (200-599), and route config \"web\" is used by HTTP listener \"web\""
            ),
        ),
    ]);
}

#[test]
fn http_only_keys_are_errors_on_a_framed_listener() {
    let only = "HTTP only, but route config \"rpc\" is used by listener \"rpc\" (protocol bolt)";
    let route = "route: { cluster: test, timeout: 3s }";
    let cases = [
        (
            route.to_string(),
            "redirect: { path_redirect: /x }".to_string(),
            format!("strait.yaml:16:23: {R0}.redirect: {only}"),
        ),
        (
            route.to_string(),
            "route: { cluster: test, host_rewrite: h }".to_string(),
            format!("strait.yaml:16:51: {R0}.route.host_rewrite: {only}"),
        ),
        (
            route.to_string(),
            format!("{route}\n            response_headers_to_add: [{{ name: a, value: b }}]"),
            format!("strait.yaml:17:47: {R0}.response_headers_to_add: {only}"),
        ),
        (
            route.to_string(),
            format!("{route}\n            response_headers_to_remove: [a]"),
            format!("strait.yaml:17:42: {R0}.response_headers_to_remove: {only}"),
        ),
    ];
    for (from, to, expected) in cases {
        assert_eq!(
            error(&GOOD.replace(&from, &to)).to_string(),
            expected,
            "{to}"
        );
    }
    // Bolt header-map keys are not HTTP header names: not checked as such.
    check(&GOOD.replace("name: sofa_head_method_name", "name: \"odd key\"")).unwrap();
    // An `auto` listener is not checked (its framed requests find a redirect unrouted).
    let auto = GOOD
        .replace(
            "    protocol: bolt\n    route_config",
            "    protocol: auto\n    route_config",
        )
        .replace(route, "redirect: { path_redirect: /x }");
    check(&auto).unwrap();
}

#[test]
fn readme_http_example_is_valid() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("An HTTP example:")
        .expect("README has the HTTP example");
    let yaml = readme[start..]
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block");
    let config = check(yaml).unwrap_or_else(|e| panic!("README HTTP example: {e}"));
    let routes = &config.listeners[0].routes.virtual_hosts()[0].routes;
    assert_eq!(routes.len(), 6);
    assert_eq!(routes[1].prefix_rewrite.as_deref(), Some("/v1/"));
}

#[test]
fn readme_dubbo_example_is_valid() {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("Dubbo routes read the same way")
        .expect("README has the Dubbo example");
    let yaml = readme[start..]
        .split("```yaml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block");
    let config = check(yaml).unwrap_or_else(|e| panic!("README Dubbo example: {e}"));
    assert_eq!(config.clusters.len(), 2);
    assert!(
        config
            .clusters
            .iter()
            .all(|c| c.options.transport.name() == "dubbo")
    );
}

// === HTTP server and client limits ===

#[test]
fn http_limits_are_configured_and_dumped() {
    let yaml = HTTP
        .replace(
            "    route_config: web\n",
            "    route_config: web
    http:
      header_read_timeout: 5s
      idle_timeout: 0s
      max_header_size: 16384
      max_headers: 50
      h2c_upgrade: false
      http2: { max_concurrent_streams: 64, initial_stream_window_size: 131072, max_frame_size: 32768, keepalive_interval: 10s }
",
        )
        .replace(
            "  - { name: api, protocol: http1, endpoints: [{ address: 127.0.0.1:8081 }] }",
            "  - { name: api, protocol: http1, http: { max_header_size: 8192, max_headers: 20 }, endpoints: [{ address: 127.0.0.1:8081 }] }
  - name: grpc
    protocol: http2
    http: { http2: { initial_connection_window_size: 2097152, max_frame_size: 65536 } }
    endpoints: [{ address: 127.0.0.1:8082 }]",
        );
    let config = check(&yaml).unwrap();
    let server = &config.listeners[0].http;
    assert_eq!(
        server.header_read_timeout,
        Some(std::time::Duration::from_secs(5))
    );
    assert_eq!(server.idle_timeout, None, "0s turns the idle timeout off");
    assert_eq!(server.max_header_bytes, 16384);
    assert_eq!(server.max_headers, 50);
    assert!(!server.h2c_upgrade);
    assert_eq!(server.h2_max_concurrent_streams, 64);
    assert_eq!(server.h2_initial_stream_window, 131072);
    assert_eq!(
        server.h2_initial_connection_window,
        1024 * 1024,
        "default kept"
    );
    assert_eq!(server.h2_max_frame_size, 32768);
    assert_eq!(
        server.h2_keepalive_interval,
        Some(std::time::Duration::from_secs(10))
    );
    let api = config.clusters[0].http.as_ref().unwrap();
    assert_eq!((api.max_header_bytes, api.max_headers), (8192, 20));
    let grpc = config.clusters[1].http.as_ref().unwrap();
    assert_eq!(grpc.h2_initial_connection_window, 2097152);
    assert_eq!(grpc.h2_max_frame_size, 65536);

    let dump = &config.dump;
    assert_eq!(dump["listeners"][0]["http"]["max_header_size"], 16384);
    assert_eq!(dump["listeners"][0]["http"]["idle_timeout"], "0s");
    assert_eq!(
        dump["listeners"][0]["http"]["http2"]["max_concurrent_streams"],
        64
    );
    assert!(
        dump["listeners"][0]["max_frame_size"].is_null(),
        "not an http listener key"
    );
    assert_eq!(dump["clusters"][0]["http"]["max_headers"], 20);
    assert!(
        dump["clusters"][0]["http"]["http2"].is_null(),
        "http1 cluster"
    );
    assert_eq!(
        dump["clusters"][1]["http"]["http2"]["max_frame_size"],
        65536
    );
    assert!(dump["clusters"][1]["max_frame_size"].is_null());
}

#[test]
fn the_defaults_are_todays_values() {
    let config = check(HTTP).unwrap();
    let server = &config.listeners[0].http;
    let default = strait_stream::http::ServerOptions::default();
    assert_eq!(server.max_header_bytes, default.max_header_bytes);
    assert_eq!(server.h2_max_concurrent_streams, 256);
    assert_eq!(
        server.header_read_timeout,
        Some(std::time::Duration::from_secs(30))
    );
    assert_eq!(
        config.dump["listeners"][0]["http"]["http2"]["max_concurrent_streams"],
        256
    );
}

#[test]
fn keys_a_listener_or_cluster_kind_would_ignore_are_errors() {
    let listener = "    route_config: web\n";
    let cluster = "  - { name: api, protocol: http1, endpoints: [{ address: 127.0.0.1:8081 }] }";
    assert_http_errors(&[
        (
            listener,
            "    route_config: web\n    max_requests_per_connection: 10\n",
            "strait.yaml:6:34: listeners[0].max_requests_per_connection: bounds framed RPC connections; an http listener takes http.http2.max_concurrent_streams (HTTP/1.1 serves one request at a time)",
        ),
        (
            listener,
            "    route_config: web\n    max_frame_size: 1000\n",
            "strait.yaml:6:21: listeners[0].max_frame_size: bounds framed RPC frames; an http listener takes http.max_header_size and http.http2.max_frame_size",
        ),
        (
            cluster,
            "  - { name: api, protocol: http1, max_frame_size: 9, endpoints: [{ address: 127.0.0.1:8081 }] }",
            "strait.yaml:26:51: clusters[0].max_frame_size: bounds framed RPC frames; an http1 cluster takes http.max_header_size",
        ),
        (
            cluster,
            "  - { name: api, protocol: http1, http: { http2: { max_frame_size: 20000 } }, endpoints: [{ address: 127.0.0.1:8081 }] }",
            "strait.yaml:26:50: clusters[0].http.http2: only valid on http2 clusters",
        ),
        (
            cluster,
            "  - { name: api, protocol: http2, http: { http2: { max_concurrent_streams: 9 } }, endpoints: [{ address: 127.0.0.1:8081 }] }",
            "strait.yaml:26:76: clusters[0].http.http2.max_concurrent_streams: the upstream's own SETTINGS bound its streams; cap connections with max_connections_per_host and requests with max_requests",
        ),
        (
            listener,
            "    route_config: web\n    http: { http2: { max_frame_size: 1000 } }\n",
            "strait.yaml:6:38: listeners[0].http.http2.max_frame_size: must be between 16384 and 16777215",
        ),
        (
            listener,
            "    route_config: web\n    http: { http2: { initial_stream_window_size: 4294967296 } }\n",
            "strait.yaml:6:50: listeners[0].http.http2.initial_stream_window_size: must be between 65535 and 2147483647",
        ),
        (
            listener,
            "    route_config: web\n    http: { max_header_size: 10 }\n",
            "strait.yaml:6:30: listeners[0].http.max_header_size: must be between 1024 and 16777216",
        ),
        (
            listener,
            "    route_config: web\n    http: { idle_timeout: soon }\n",
            "strait.yaml:6:27: listeners[0].http.idle_timeout: \"soon\" is not a number followed by a unit",
        ),
        (
            listener,
            "    route_config: web\n    http: { max_heders: 10 }\n",
            "strait.yaml:6:13: listeners[0].http.max_heders: unknown key \"max_heders\"; the keys valid here are: header_read_timeout, idle_timeout, max_header_size, max_headers, h2c_upgrade, half_close, http2",
        ),
    ]);
    // `http:` on a framed listener or cluster.
    let framed = error(&GOOD.replace(
        "    route_config: rpc\n",
        "    route_config: rpc\n    http: { max_headers: 5 }\n",
    ));
    assert_eq!(framed.key, "listeners[0].http");
    assert_eq!(
        framed.message,
        "only valid on http and auto listeners, not bolt"
    );
    let framed = error(&GOOD.replace(
        "  - { name: a, protocol: bolt, endpoints",
        "  - { name: a, protocol: bolt, http: { max_headers: 5 }, endpoints",
    ));
    assert_eq!(framed.key, "clusters[1].http");
    // An `auto` listener takes both: framed limits for framed connections, `http:` for HTTP.
    let auto = GOOD.replace(
        "    protocol: bolt\n    route_config: rpc\n",
        "    protocol: auto\n    route_config: rpc\n    max_requests_per_connection: 10\n    http: { max_headers: 5 }\n",
    );
    let config = check(&auto).unwrap();
    assert_eq!(config.listeners[0].max_requests_per_connection, 10);
    assert_eq!(config.listeners[0].http.max_headers, 5);
}

/// Every configuration this repository ships: the README's YAML blocks that are whole
/// configurations, the examples and the bench configs.
fn shipped_configs() -> Vec<(String, String)> {
    let mut configs = Vec::new();
    let readme = include_str!("../../../README.md");
    for (i, block) in readme.split("```yaml\n").skip(1).enumerate() {
        let text = block.split("```").next().unwrap_or_default();
        if text.contains("listeners:") && text.contains("clusters:") {
            configs.push((format!("README.md yaml block {}", i + 1), text.to_string()));
        }
    }
    for (name, text) in [
        (
            "examples/quickstart.yaml",
            include_str!("../../../examples/quickstart.yaml"),
        ),
        (
            "examples/lenproto/strait.yaml",
            include_str!("../../../examples/lenproto/strait.yaml"),
        ),
        (
            "bench/strait-bolt.yaml",
            include_str!("../../../bench/strait-bolt.yaml"),
        ),
        (
            "bench/strait-dubbo.yaml",
            include_str!("../../../bench/strait-dubbo.yaml"),
        ),
        (
            "bench/http/strait-http.yaml",
            include_str!("../../../bench/http/strait-http.yaml"),
        ),
    ] {
        // The bench script fills in its loopback addresses.
        let text = text
            .replace("@LISTEN@", "127.0.0.1:19000")
            .replace("@BACKEND@", "127.0.0.1:19001");
        configs.push((name.to_string(), text));
    }
    configs
}

/// `/config_dump` is the configuration in its own syntax: read back, it is valid and
/// dumps to the same text (durations, names and defaults as the file writes them).
#[test]
fn config_dump_round_trips_for_every_shipped_config() {
    let mut registry = crate::builtin_registry();
    registry
        .register(strait_example_lenproto::protocol())
        .unwrap();
    let configs = shipped_configs();
    assert!(
        configs.len() >= 8,
        "README blocks and files: {}",
        configs.len()
    );
    for (name, text) in configs {
        let config = parse(&name, &text, &registry).unwrap_or_else(|e| panic!("{name}: {e}"));
        let dumped = serde_saphyr::to_string(&config.dump).expect("a YAML form");
        let again = parse("dump.yaml", &dumped, &registry)
            .unwrap_or_else(|e| panic!("{name}'s dump does not read back: {e}\n{dumped}"));
        assert_eq!(
            again.dump, config.dump,
            "{name}: the dump of the dump differs"
        );
        assert!(
            !dumped.contains("null") && !dumped.contains("_ms"),
            "{name}:\n{dumped}"
        );
    }
}

#[test]
fn config_dump_writes_keys_as_the_file_does() {
    let config = check(GOOD).unwrap();
    let dump = &config.dump;
    assert_eq!(dump["drain_timeout"], "15s");
    assert_eq!(dump["clusters"][0]["lb_policy"], "round_robin");
    assert_eq!(dump["clusters"][0]["connect_timeout"], "1s");
    assert_eq!(
        dump["clusters"][1]["lb_policy"], "round_robin",
        "the default, filled in"
    );
    assert_eq!(dump["listeners"][0]["protocol"], "bolt");
    let auto = check(&GOOD.replace(
        "protocol: bolt\n    route_config",
        "protocol: auto\n    route_config",
    ))
    .unwrap();
    assert_eq!(auto.dump["listeners"][0]["protocol"], "auto");
    assert_eq!(auto.dump["listeners"][0]["detect_timeout"], "3s");
    assert_eq!(auto.dump["listeners"][0]["http"]["idle_timeout"], "300s");
    let first_key = serde_saphyr::to_string(&dump["clusters"][0]).unwrap();
    assert!(
        first_key.starts_with("name: test\n"),
        "keys in the file's order:\n{first_key}"
    );
}

/// Broken configurations and the exact error each gives: what a newcomer trips on.
#[test]
fn broken_configs_get_one_clear_error_each() {
    let quickstart = include_str!("../../../examples/quickstart.yaml");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "an unknown key: its path and the keys valid there",
            quickstart.replace("    lb_policy: round_robin", "    lb_polcy: round_robin"),
            "strait.yaml:26:5: clusters[0].lb_polcy: unknown key \"lb_polcy\"; the keys valid here \
             are: name, protocol, lb_policy, hash_key, connect_timeout, max_connections_per_host, preconnect, \
             max_requests, max_frame_size, heartbeat, http, health_check, outlier_detection, \
             circuit_breakers, slow_start, panic_threshold, type, dns_refresh_rate, endpoints, tls",
        ),
        (
            "a key set twice: both lines, no library hint",
            quickstart.replace(
                "    connect_timeout: 1s\n    max",
                "    connect_timeout: 1s\n    connect_timeout: 2s\n    max",
            ),
            "strait.yaml:28:5: clusters[0].connect_timeout: key \"connect_timeout\" is already set on line 27",
        ),
        (
            "a top-level key set twice",
            format!("{quickstart}drain_timeout: 3s\ndrain_timeout: 4s\n"),
            "strait.yaml:35:1: drain_timeout: key \"drain_timeout\" is already set on line 34",
        ),
        (
            "a key set twice in a flow mapping",
            quickstart.replace(
                "{ address: 127.0.0.1:9901 }",
                "{ address: 127.0.0.1:9901, address: 127.0.0.1:9902 }",
            ),
            "strait.yaml:3:35: admin.address: key \"address\" is written twice in this mapping on this line",
        ),
        (
            "an empty file",
            "# nothing yet\n".to_string(),
            "strait.yaml: the file is empty: a configuration needs at least one listener",
        ),
        (
            "no listener",
            "admin: { address: 127.0.0.1:9901 }\n".to_string(),
            "strait.yaml:1:1: listeners: no listeners: a configuration needs at least one to serve traffic",
        ),
        (
            "a line indented too far",
            quickstart.replace("\n    protocol: bolt", "\n      protocol: bolt"),
            "strait.yaml:25:7: clusters[0]: mapping values are not allowed in this context: check the \
             indentation of line 25: its key starts at column 7, line 24's at column 5",
        ),
    ];
    for (what, text, expected) in cases {
        let got = check(&text).err().map(|e| e.to_string());
        assert_eq!(got.as_deref(), Some(expected), "{what}");
    }
    let missing = load(
        std::path::Path::new("no/such/strait.yaml"),
        &crate::builtin_registry(),
    );
    assert_eq!(
        missing.err().map(|e| e.to_string()).as_deref(),
        Some("no/such/strait.yaml: no such file")
    );
}

/// The resilience keys reach the cluster's options, with defaults for what is left
/// out, and come back out of the dump in the same keys.
#[test]
fn resilience_keys_build_the_cluster_and_dump_back() {
    let text = GOOD.replace(
        "    max_connections_per_host: 2\n",
        "    max_connections_per_host: 2
    health_check: { type: bolt, interval: 2s, interval_jitter: 0s, timeout: 500ms, unhealthy_threshold: 2, healthy_threshold: 1 }
    outlier_detection: { consecutive_errors: 3, interval: 1s, base_ejection_time: 5s, max_ejection_percent: 50, success_rate_stdev_factor: 1.5 }
    circuit_breakers: { max_connections: 8, max_pending_requests: 4, max_requests: 10, max_retries: 0 }
    slow_start: { window: 30s }
    panic_threshold: 0
",
    );
    let config = check(&text).unwrap();
    let c = &config.clusters[0].options;
    let hc = c.health_check.as_ref().unwrap();
    assert_eq!(
        hc.kind,
        strait_upstream::CheckKind::Protocol,
        "bolt names the protocol's own check"
    );
    assert_eq!(hc.interval, Duration::from_secs(2));
    assert_eq!(hc.interval_jitter, Duration::ZERO);
    assert_eq!(hc.timeout, Duration::from_millis(500));
    assert_eq!((hc.unhealthy_threshold, hc.healthy_threshold), (2, 1));
    let o = c.outlier_detection.as_ref().unwrap();
    assert_eq!(o.consecutive_errors, 3);
    assert_eq!(o.base_ejection_time, Duration::from_secs(5));
    assert_eq!(o.max_ejection_percent, 50);
    assert_eq!(o.success_rate_stdev_factor, 1.5);
    assert_eq!(o.success_rate_minimum_hosts, 5, "Envoy's default");
    let b = c.circuit_breakers;
    assert_eq!(
        (
            b.max_connections,
            b.max_pending_requests,
            b.max_requests,
            b.max_retries
        ),
        (8, 4, 10, 0)
    );
    assert_eq!(c.slow_start, Some(Duration::from_secs(30)));
    assert_eq!(c.panic_threshold, 0);
    // Clusters without the keys: no checks, Strait's breaker defaults, panic at 50%.
    let plain = &config.clusters[1].options;
    assert!(plain.health_check.is_none() && plain.outlier_detection.is_none());
    assert_eq!(plain.circuit_breakers.max_requests, DEFAULT_MAX_REQUESTS);
    assert_eq!(plain.panic_threshold, 50);

    let dump = &config.dump["clusters"][0];
    assert_eq!(dump["health_check"]["type"], "protocol");
    assert_eq!(dump["health_check"]["timeout"], "500ms");
    assert_eq!(dump["outlier_detection"]["max_ejection_time"], "300s");
    assert_eq!(dump["circuit_breakers"]["max_requests"], 10);
    assert_eq!(dump["slow_start"]["window"], "30s");
    let again = serde_saphyr::to_string(&config.dump).unwrap();
    let reparsed = check(&again).unwrap_or_else(|e| panic!("{e}\n{again}"));
    assert_eq!(
        reparsed.dump, config.dump,
        "the dump is the same configuration"
    );
}

#[test]
fn resilience_keys_that_cannot_work_are_errors() {
    let http = |cluster: &str| {
        format!(
            "listeners: [{{ name: web, address: 127.0.0.1:18080, protocol: http, route_config: web }}]
route_configs: [{{ name: web, virtual_hosts: [{{ name: all, domains: ['*'], routes: [{{ match: {{ prefix: / }}, route: {{ cluster: c }} }}] }}] }}]
clusters:
  - {{ name: c, endpoints: [{{ address: 127.0.0.1:18081 }}], {cluster} }}
"
        )
    };
    let cases = [
        (
            GOOD.replace(
                "    max_connections_per_host: 2\n",
                "    max_connections_per_host: 2\n    health_check: { type: http, path: /h }\n",
            ),
            "clusters[0].health_check.type: an http check needs an http1 or http2 cluster, not bolt; use tcp or protocol",
        ),
        (
            GOOD.replace(
                "    max_connections_per_host: 2\n",
                "    max_connections_per_host: 2\n    health_check: { type: dubbo }\n",
            ),
            "clusters[0].health_check.type: unknown check \"dubbo\" (tcp, protocol (or bolt))",
        ),
        (
            http("protocol: http1, health_check: { type: http }"),
            "clusters[0].health_check.path: an http check needs a path (path: /healthz)",
        ),
        (
            http("protocol: http1, health_check: { type: grpc }"),
            "clusters[0].health_check.type: a grpc check needs an http2 cluster, not http1",
        ),
        (
            http("protocol: http2, health_check: { type: grpc, path: /x }"),
            "clusters[0].health_check.path: not used by a grpc check",
        ),
        (
            http(
                "protocol: http1, health_check: { type: http, path: /h, expected_statuses: [200, \"300-200\"] }",
            ),
            "clusters[0].health_check.expected_statuses[1]: expected a status (200) or a range (\"200-299\") within 100-599",
        ),
        (
            http("protocol: http1, health_check: { type: protocol }"),
            "clusters[0].health_check.type: http1 clusters take an http or grpc check",
        ),
        (
            http("protocol: http1, max_requests: 5, circuit_breakers: { max_requests: 6 }"),
            "clusters[0].max_requests: set once: circuit_breakers.max_requests is the same bound",
        ),
        (
            http("protocol: http1, lb_policy: maglev"),
            "clusters[0].hash_key: maglev needs a hash_key: { header: NAME } or { variable: NAME }",
        ),
        (
            http("protocol: http1, hash_key: { header: x-user }"),
            "clusters[0].hash_key: only ring_hash and maglev hash requests, not round_robin",
        ),
        (
            http(
                "protocol: http1, lb_policy: ring_hash, hash_key: { header: x-user, variable: path }",
            ),
            "clusters[0].hash_key: set one of header or variable",
        ),
        (
            http(
                "protocol: http1, circuit_breakers: { max_retries: 2, retry_budget: { budget_percent: 10 } }",
            ),
            "clusters[0].circuit_breakers.max_retries: a retry_budget replaces max_retries: set one",
        ),
        (
            http("protocol: http1, type: logical_dns"),
            "clusters[0].type: unknown cluster type \"logical_dns\" (static, strict_dns)",
        ),
        (
            http("protocol: http1, type: strict_dns").replace("127.0.0.1:18081", "backend"),
            "clusters[0].endpoints[0].address: \"backend\" is not a host:port address",
        ),
        (
            http("protocol: http1, dns_refresh_rate: 1s"),
            "clusters[0].dns_refresh_rate: only read by strict_dns clusters",
        ),
        (
            http("protocol: http1, panic_threshold: 101"),
            "clusters[0].panic_threshold: must be between 0 and 100",
        ),
        (
            http("protocol: http1, outlier_detection: { base_ejection_time: 0s }"),
            "clusters[0].outlier_detection.base_ejection_time: must be longer than 0s",
        ),
        (
            http("protocol: http1, health_check: { type: tcp, timeout: 0s }"),
            "clusters[0].health_check.timeout: must be longer than 0s",
        ),
    ];
    for (text, expected) in cases {
        let e = error(&text);
        assert_eq!(format!("{}: {}", e.key, e.message), expected, "{text}");
    }
    let ok = check(&http(
        "protocol: http2, lb_policy: ring_hash, hash_key: { header: x-user }, health_check: { type: http, path: /healthz, expected_statuses: [204, \"200-299\"] }",
    ))
    .unwrap();
    assert_eq!(
        ok.clusters[0].options.hash_key,
        Some(strait_upstream::HashKey::Header("x-user".into()))
    );
    assert_eq!(ok.dump["clusters"][0]["hash_key"]["header"], "x-user");
    assert_eq!(ok.dump["clusters"][0]["lb_policy"], "ring_hash");
    assert_eq!(
        ok.clusters[0].options.health_check.as_ref().unwrap().kind,
        strait_upstream::CheckKind::Http {
            path: "/healthz".into(),
            expected_statuses: vec![204..=204, 200..=299],
        }
    );
}

/// A route's `retry_policy` reaches the route table, with Envoy's back-off defaults,
/// and comes back out of the dump; mistakes in it name their key.
#[test]
fn retry_policy_builds_and_dumps_and_its_mistakes_are_named() {
    let with = |policy: &str| {
        GOOD.replace(
            "route: { cluster: test, timeout: 3s }",
            &format!("route: {{ cluster: test, timeout: 3s, retry_policy: {policy} }}"),
        )
    };
    let text = with(
        "{ retry_on: [reset, 5xx, retriable-status-codes], retriable_status_codes: [4], num_retries: 2, per_try_timeout: 1s }",
    )
    .replace(
        "    max_connections_per_host: 2\n",
        "    max_connections_per_host: 2\n    circuit_breakers: { retry_budget: { budget_percent: 25 } }\n",
    );
    let config = check(&text).unwrap();
    let routes = &config.listeners[0].routes;
    let (_, route) = routes.route_at(0).unwrap();
    let policy = route.retry_policy.as_ref().expect("a policy");
    assert_eq!(
        policy.retry_on.names(),
        ["reset", "5xx", "retriable-status-codes"]
    );
    assert_eq!(policy.retriable_status_codes, [4]);
    assert_eq!(policy.num_retries, 2);
    assert_eq!(policy.per_try_timeout, Some(Duration::from_secs(1)));
    assert_eq!(policy.base_interval, Duration::from_millis(25));
    let budget = config.clusters[0]
        .options
        .circuit_breakers
        .retry_budget
        .unwrap();
    assert_eq!(
        (budget.budget_percent, budget.min_retry_concurrency),
        (25.0, 3)
    );
    let dumped =
        &config.dump["route_configs"][0]["virtual_hosts"][0]["routes"][0]["route"]["retry_policy"];
    assert_eq!(dumped["retry_back_off"]["max_interval"], "250ms");
    assert_eq!(
        config.dump["clusters"][0]["circuit_breakers"]["retry_budget"]["budget_percent"],
        25.0
    );
    let again = serde_saphyr::to_string(&config.dump).unwrap();
    assert_eq!(
        check(&again)
            .unwrap_or_else(|e| panic!("{e}\n{again}"))
            .dump,
        config.dump
    );

    for (policy, expected) in [
        (
            "{ retry_on: [resets] }",
            "route_configs[0].virtual_hosts[0].routes[0].route.retry_policy.retry_on[0]: unknown condition \"resets\" (connect-failure, reset, timeout, gateway-error, 5xx, retriable-status-codes)",
        ),
        (
            "{ retry_on: [retriable-status-codes] }",
            "route_configs[0].virtual_hosts[0].routes[0].route.retry_policy.retriable_status_codes: retry_on lists retriable-status-codes: list the statuses",
        ),
        (
            "{ retry_on: [reset], per_try_timeout: 0s }",
            "route_configs[0].virtual_hosts[0].routes[0].route.retry_policy.per_try_timeout: must be longer than 0s",
        ),
        (
            "{ retry_on: [reset], retry_back_off: { base_interval: 100ms, max_interval: 10ms } }",
            "route_configs[0].virtual_hosts[0].routes[0].route.retry_policy.retry_back_off.max_interval: shorter than base_interval",
        ),
    ] {
        let e = error(&with(policy));
        assert_eq!(format!("{}: {}", e.key, e.message), expected);
    }
}

#[test]
fn access_logs_are_checked_and_dumped() {
    let with = |log: &str| {
        GOOD.replace(
            "    route_config: rpc\n",
            &format!("    route_config: rpc\n    access_log: {log}\n"),
        )
    };
    let config = check(&with("{ path: stdout }")).unwrap();
    let dump = &config.dump["listeners"][0]["access_log"];
    assert_eq!(dump["path"], "stdout");
    assert_eq!(
        dump["format"],
        strait_telemetry::access_log::DEFAULT_FORMAT,
        "the default format is written out"
    );
    let config = check(&with("{ path: /var/log/strait.json, format: json }")).unwrap();
    assert_eq!(config.dump["listeners"][0]["access_log"]["format"], "json");

    let e = error(&with("{ path: stdout, format: \"%START_TIME% %STAUTS%\" }"));
    assert_eq!(
        (e.line, e.key.as_str()),
        (7, "listeners[0].access_log.format"),
        "{e}"
    );
    assert!(
        e.message.contains("%STAUTS%") && e.message.contains("%STATUS%"),
        "{e}"
    );
    let e = error(&with("{ path: \"\" }"));
    assert_eq!(e.key, "listeners[0].access_log.path", "{e}");
    let e = error(&with("{ format: json }"));
    assert!(e.message.contains("path"), "{e}");
}

#[test]
fn listeners_on_port_zero_do_not_collide() {
    let text = GOOD.replace("127.0.0.1:12200", "127.0.0.1:0").replace(
        "route_configs:",
        "  - { name: two, address: 127.0.0.1:0, protocol: bolt, route_config: rpc }\nroute_configs:",
    );
    assert_eq!(check(&text).unwrap().listeners.len(), 2);
    let text = GOOD.replace(
        "route_configs:",
        "  - { name: two, address: 127.0.0.1:12200, protocol: bolt, route_config: rpc }\nroute_configs:",
    );
    assert!(error(&text).message.contains("used by another listener"));
}

#[test]
fn tracing_is_checked_and_dumped() {
    let with =
        |tracing: &str| GOOD.replace("listeners:", &format!("tracing: {tracing}\nlisteners:"));
    let config = check(&with(
        "{ provider: opentelemetry, endpoint: \"http://127.0.0.1:4317\" }",
    ))
    .unwrap();
    let t = config.tracing.as_ref().unwrap();
    assert_eq!((t.service_name.as_str(), t.sampling_ratio), ("strait", 1.0));
    assert_eq!(config.dump["tracing"]["provider"], "opentelemetry");
    assert_eq!(config.dump["tracing"]["service_name"], "strait");

    for (tracing, key, says) in [
        (
            "{ provider: zipkin, endpoint: \"http://a:1\" }",
            "tracing.provider",
            "zipkin",
        ),
        (
            "{ provider: opentelemetry, endpoint: \"127.0.0.1:4317\" }",
            "tracing.endpoint",
            "http://host:port",
        ),
        (
            "{ provider: opentelemetry, endpoint: \"https://a:4317\" }",
            "tracing.endpoint",
            "http://host:port",
        ),
        (
            "{ provider: opentelemetry, endpoint: \"http://a:1\", sampling_ratio: 1.5 }",
            "tracing.sampling_ratio",
            "between 0 and 1",
        ),
    ] {
        let e = error(&with(tracing));
        assert_eq!((e.line, e.key.as_str()), (2, key), "{e}");
        assert!(e.message.contains(says), "{e}");
    }
}

/// A directory with a CA, a server certificate and a client certificate made now.
fn tls_files() -> tempfile::TempDir {
    use strait_tls::test_certs::{Authority, Usage};
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::new("test CA");
    ca.write(dir.path(), "ca");
    ca.issue(&["localhost"], Usage::Server, false)
        .write(dir.path(), "server");
    ca.issue(&["spiffe://t/a"], Usage::Client, false)
        .write(dir.path(), "client");
    std::fs::write(dir.path().join("junk.pem"), "not a certificate").unwrap();
    dir
}

fn tls_config(dir: &std::path::Path, listener_tls: &str, cluster_tls: &str) -> String {
    let d = dir.display();
    GOOD.replace(
        "    route_config: rpc\n",
        &format!(
            "    route_config: rpc\n    tls: {}\n",
            listener_tls.replace("DIR", &d.to_string())
        ),
    )
    .replace(
        "    max_connections_per_host: 2\n",
        &format!(
            "    max_connections_per_host: 2\n    tls: {}\n",
            cluster_tls.replace("DIR", &d.to_string())
        ),
    )
}

const LISTENER_TLS: &str = "{ certificates: [{ cert_file: DIR/server.pem, key_file: DIR/server-key.pem }], client_ca_file: DIR/ca.pem, require_client_certificate: true, allowed_sans: [\"spiffe://t/a\"] }";
const CLUSTER_TLS: &str = "{ server_name: localhost, ca_file: DIR/ca.pem, cert_file: DIR/client.pem, key_file: DIR/client-key.pem }";

#[test]
fn tls_keys_load_their_files_and_the_dump_reads_back() {
    let dir = tls_files();
    let text = format!(
        "watch: true\n{}",
        tls_config(dir.path(), LISTENER_TLS, CLUSTER_TLS)
    );
    let config = check(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(config.watch);
    let tls = config.listeners[0].tls.as_ref().expect("listener TLS");
    assert!(tls.settings().require_client_certificate);
    assert_eq!(
        tls.settings().alpn,
        Vec::<String>::new(),
        "a bolt listener offers no ALPN"
    );
    let client = config.clusters[0]
        .options
        .tls
        .as_ref()
        .expect("cluster TLS");
    assert_eq!(client.settings().server_name.as_deref(), Some("localhost"));
    assert_eq!(config.dump["listeners"][0]["tls"]["min_version"], "1.2");
    assert_eq!(
        config.dump["listeners"][0]["tls"]["handshake_timeout"],
        "10s"
    );
    assert_eq!(config.dump["watch"], true);
    let dumped = serde_saphyr::to_string(&config.dump).unwrap();
    let again = check(&dumped).unwrap_or_else(|e| panic!("{e}\n{dumped}"));
    assert_eq!(again.dump, config.dump);
}

#[test]
fn tls_mistakes_name_their_key() {
    let dir = tls_files();
    let listener = |tls: &str| tls_config(dir.path(), tls, CLUSTER_TLS);
    let cluster = |tls: &str| tls_config(dir.path(), LISTENER_TLS, tls);
    for (text, key, says) in [
        (
            listener(
                "{ certificates: [{ cert_file: DIR/missing.pem, key_file: DIR/server-key.pem }] }",
            ),
            "listeners[0].tls",
            "missing.pem",
        ),
        (
            listener(
                "{ certificates: [{ cert_file: DIR/junk.pem, key_file: DIR/server-key.pem }] }",
            ),
            "listeners[0].tls",
            "junk.pem",
        ),
        (
            listener(
                "{ certificates: [{ cert_file: DIR/server.pem, key_file: DIR/client-key.pem }] }",
            ),
            "listeners[0].tls",
            "does not match",
        ),
        (
            listener("{ certificates: [] }"),
            "listeners[0].tls.certificates",
            "at least one",
        ),
        (
            listener(
                "{ certificates: [{ cert_file: DIR/server.pem, key_file: DIR/server-key.pem }], require_client_certificate: true }",
            ),
            "listeners[0].tls.require_client_certificate",
            "client_ca_file",
        ),
        (
            listener(
                "{ certificates: [{ cert_file: DIR/server.pem, key_file: DIR/server-key.pem }], min_version: \"1.1\" }",
            ),
            "listeners[0].tls.min_version",
            "1.3",
        ),
        (
            cluster("{ server_name: localhost }"),
            "clusters[0].tls.ca_file",
            "insecure_skip_verify",
        ),
        (
            cluster("{ ca_file: DIR/ca.pem, insecure_skip_verify: true }"),
            "clusters[0].tls.insecure_skip_verify",
            "contradicts",
        ),
        (
            cluster("{ ca_file: DIR/ca.pem, cert_file: DIR/client.pem }"),
            "clusters[0].tls.key_file",
            "key_file",
        ),
    ] {
        let e = error(&text);
        assert_eq!(e.key, key, "{e}");
        assert!(e.to_string().contains(says), "{e}");
        assert!(e.line > 0, "{e}");
    }
    // Spelled out, skipping verification is accepted (and logged loudly).
    check(&cluster("{ insecure_skip_verify: true }")).unwrap();
}
