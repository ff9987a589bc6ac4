use super::*;

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
    assert_eq!(config.clusters[0].max_connections_per_host, 2);
    assert_eq!(config.dump["clusters"][0]["name"], "test");
}

#[test]
fn unknown_key_names_line_and_key() {
    let e = error(&GOOD.replace("    lb_policy: round_robin", "    lb_polcy: round_robin"));
    assert_eq!((e.file.as_str(), e.line), ("strait.yaml", 22), "{e}");
    assert_eq!(e.key, "lb_polcy", "{e}");
    assert!(
        e.to_string()
            .starts_with("strait.yaml:22:5: lb_polcy: unknown field"),
        "{e}"
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
