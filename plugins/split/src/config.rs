//! The JSON configuration, checked and turned into [`Route`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv6Addr;

use serde::Deserialize;
use weft_plugin_sdk::path::PathPrefix;
use weft_plugin_sdk::route_match::{MatchConfig, RequestMatch};

use crate::route::{Backend, Route};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default = "default_cluster_domain")]
    cluster_domain: String,
    #[serde(default)]
    routes: Vec<RouteConfig>,
}

fn default_cluster_domain() -> String {
    "cluster.local".to_string()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RouteConfig {
    name: Option<String>,
    authority: Option<String>,
    path_prefix: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(rename = "match")]
    matcher: Option<MatchConfig>,
    backends: Vec<BackendConfig>,
}

/// Either `backend`, or Gateway API's `name`, `port` and `namespace`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BackendConfig {
    backend: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    port: Option<u16>,
    /// Gateway API's default weight.
    #[serde(default = "one")]
    weight: u32,
}

fn one() -> u32 {
    1
}

/// Parses and checks the configuration. Empty text means `{}`: no routes.
pub fn parse(text: &str) -> Result<Vec<Route>, String> {
    let config: Config = match text.trim() {
        "" => serde_json::from_str("{}"),
        text => serde_json::from_str(text),
    }
    .map_err(|e| format!("invalid split config: {e}"))?;
    check_domain(&config.cluster_domain).map_err(|e| format!("clusterDomain: {e}"))?;

    let mut names = BTreeSet::new();
    let mut routes = Vec::with_capacity(config.routes.len());
    for (index, route) in config.routes.into_iter().enumerate() {
        let at = match &route.name {
            Some(name) if !name.is_empty() => format!("routes[{index}] (`{name}`)"),
            _ => format!("routes[{index}]"),
        };
        let route =
            route_from(index, route, &config.cluster_domain).map_err(|e| format!("{at}: {e}"))?;
        // Names label metrics: two routes under one label would be one series.
        if !names.insert(route.name.clone()) {
            return Err(format!(
                "{at}: another route is already labelled `{}` (unnamed routes are \
                 labelled by their index)",
                route.name
            ));
        }
        routes.push(route);
    }
    Ok(routes)
}

fn route_from(index: usize, route: RouteConfig, cluster_domain: &str) -> Result<Route, String> {
    let name = match route.name {
        Some(name) if name.is_empty() => return Err("`name` must not be empty".to_string()),
        Some(name) => name,
        None => index.to_string(),
    };
    if route.authority.as_deref() == Some("") {
        return Err("`authority` must not be empty; leave it out to match any".to_string());
    }
    let path_prefix = route
        .path_prefix
        .as_deref()
        .map(PathPrefix::parse)
        .transpose()
        .map_err(|e| format!("pathPrefix: {e}"))?;
    let headers = route
        .headers
        .into_iter()
        .map(|(name, value)| match is_token(&name) {
            // Header names are case-insensitive; keep one spelling.
            true => Ok((name.to_ascii_lowercase(), value)),
            false => Err(format!("headers: `{name}` is not a header name")),
        })
        .collect::<Result<_, _>>()?;
    let matcher = match &route.matcher {
        Some(config) => RequestMatch::compile(config).map_err(|e| format!("match.{e}"))?,
        None => RequestMatch::default(),
    };

    if route.backends.is_empty() {
        return Err("`backends` is empty".to_string());
    }
    let backends = route
        .backends
        .into_iter()
        .enumerate()
        .map(|(i, backend)| {
            backend_from(backend, cluster_domain).map_err(|e| format!("backends[{i}]: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total_weight = backends
        .iter()
        .try_fold(0u32, |sum, backend| sum.checked_add(backend.weight))
        .ok_or("the weights add up to more than 4294967295")?;
    if total_weight == 0 {
        return Err("the weights add up to 0, so no backend could be chosen".to_string());
    }
    Ok(Route {
        name,
        authority: route.authority,
        path_prefix,
        headers,
        matcher,
        backends,
        total_weight,
    })
}

fn backend_from(backend: BackendConfig, cluster_domain: &str) -> Result<Backend, String> {
    let weight = backend.weight;
    let address = match backend {
        BackendConfig {
            backend: Some(address),
            name: None,
            namespace: None,
            port: None,
            ..
        } => {
            check_address(&address)?;
            address
        }
        BackendConfig {
            backend: None,
            name: Some(name),
            namespace,
            port: Some(port),
            ..
        } => {
            let namespace = namespace.unwrap_or_else(|| "default".to_string());
            check_label(&name).map_err(|e| format!("name: {e}"))?;
            check_label(&namespace).map_err(|e| format!("namespace: {e}"))?;
            check_port(port)?;
            format!("{name}.{namespace}.svc.{cluster_domain}:{port}")
        }
        BackendConfig {
            backend: Some(_), ..
        } => {
            return Err(
                "give either `backend` or `name` and `port` (with an optional `namespace`), \
                 not both"
                    .to_string(),
            );
        }
        BackendConfig { name: None, .. } => {
            return Err("needs `backend` (host:port) or `name` and `port`".to_string());
        }
        BackendConfig { port: None, .. } => return Err("`name` needs a `port`".to_string()),
    };
    Ok(Backend { address, weight })
}

/// `host:port`, with IPv6 hosts in brackets, as `set-backend` takes it.
fn check_address(address: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("backend `{address}` {why}"));
    let Some((host, port)) = address.rsplit_once(':') else {
        return bad("needs a port: host:port");
    };
    // `u16::from_str` would take a leading `+`; a port is digits.
    let port = match port.bytes().all(|b| b.is_ascii_digit()) {
        true => port.parse::<u16>().ok(),
        false => None,
    };
    let Some(port) = port else {
        return bad("has no valid port");
    };
    check_port(port).map_err(|e| format!("backend `{address}`: {e}"))?;
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ip) if ip.parse::<Ipv6Addr>().is_ok() => Ok(()),
        Some(_) => bad("has an invalid IPv6 address"),
        None if host.contains(':') => bad("needs brackets around its IPv6 address"),
        None if host.is_empty() => bad("has no host"),
        None if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') =>
        {
            bad("has an invalid host")
        }
        None => Ok(()),
    }
}

fn check_port(port: u16) -> Result<(), String> {
    match port {
        0 => Err("port 0 cannot be connected to".to_string()),
        _ => Ok(()),
    }
}

/// A Kubernetes name or namespace: a DNS label (RFC 1123).
fn check_label(label: &str) -> Result<(), String> {
    let valid = !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    match valid {
        true => Ok(()),
        false => Err(format!(
            "`{label}` is not a DNS label (lower-case letters, digits and `-`, at most 63)"
        )),
    }
}

fn check_domain(domain: &str) -> Result<(), String> {
    domain
        .split('.')
        .try_for_each(check_label)
        .map_err(|e| format!("`{domain}`: {e}"))
}

/// An RFC 9110 token, as header names are.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        parse(json).unwrap_err()
    }

    /// A route with one backend entry, for the backend checks.
    fn backend_error(backend: &str) -> String {
        error(&format!(r#"{{"routes": [{{"backends": [{backend}]}}]}}"#))
    }

    #[test]
    fn the_documented_example_is_accepted() {
        let routes = parse(
            r#"{
              "clusterDomain": "cluster.local",
              "routes": [
                {"authority": "web.default.svc.cluster.local:8080",
                 "pathPrefix": "/",
                 "headers": {"x-canary": "true"},
                 "backends": [
                   {"backend": "127.0.0.1:9001", "weight": 900},
                   {"name": "web-v2", "namespace": "default", "port": 8080, "weight": 100}
                 ]}
              ]
            }"#,
        )
        .unwrap();
        let route = &routes[0];
        assert_eq!(route.name, "0");
        assert_eq!(
            route.authority.as_deref(),
            Some("web.default.svc.cluster.local:8080")
        );
        assert_eq!(
            route.headers,
            [("x-canary".to_string(), "true".to_string())]
        );
        assert_eq!(
            route.backends,
            [
                Backend {
                    address: "127.0.0.1:9001".to_string(),
                    weight: 900
                },
                Backend {
                    address: "web-v2.default.svc.cluster.local:8080".to_string(),
                    weight: 100
                },
            ]
        );
        assert_eq!(route.total_weight, 1000);
    }

    #[test]
    fn empty_config_has_no_routes() {
        for text in ["", " ", "{}"] {
            assert!(parse(text).unwrap().is_empty());
        }
    }

    #[test]
    fn gateway_backends_default_to_the_default_namespace_and_weight_one() {
        let routes = parse(
            r#"{"clusterDomain": "example.internal", "routes": [{"name": "r",
                "headers": {"X-Canary": "true"},
                "backends": [{"name": "web", "port": 80}, {"backend": "[::1]:9001"}]}]}"#,
        )
        .unwrap();
        assert_eq!(routes[0].name, "r");
        assert_eq!(routes[0].headers[0].0, "x-canary");
        assert_eq!(
            routes[0].backends[0].address,
            "web.default.svc.example.internal:80"
        );
        assert_eq!(routes[0].backends[1].address, "[::1]:9001");
        assert_eq!(routes[0].total_weight, 2);
    }

    #[test]
    fn each_backend_takes_exactly_one_form() {
        assert_eq!(
            backend_error(r#"{"backend": "a:1", "name": "web", "port": 80}"#),
            "routes[0]: backends[0]: give either `backend` or `name` and `port` \
             (with an optional `namespace`), not both"
        );
        assert_eq!(
            backend_error(r#"{"backend": "a:1", "namespace": "prod"}"#),
            "routes[0]: backends[0]: give either `backend` or `name` and `port` \
             (with an optional `namespace`), not both"
        );
        assert_eq!(
            backend_error(r#"{"weight": 3}"#),
            "routes[0]: backends[0]: needs `backend` (host:port) or `name` and `port`"
        );
        assert_eq!(
            backend_error(r#"{"port": 80}"#),
            "routes[0]: backends[0]: needs `backend` (host:port) or `name` and `port`"
        );
        assert_eq!(
            backend_error(r#"{"name": "web"}"#),
            "routes[0]: backends[0]: `name` needs a `port`"
        );
    }

    #[test]
    fn bad_backends_are_refused() {
        for (backend, message) in [
            (
                r#"{"backend": "web"}"#,
                "backend `web` needs a port: host:port",
            ),
            (
                r#"{"backend": "web:http"}"#,
                "backend `web:http` has no valid port",
            ),
            (
                r#"{"backend": "web:70000"}"#,
                "backend `web:70000` has no valid port",
            ),
            (
                r#"{"backend": "web:0"}"#,
                "backend `web:0`: port 0 cannot be connected to",
            ),
            (r#"{"backend": ":80"}"#, "backend `:80` has no host"),
            (
                r#"{"backend": "::1:80"}"#,
                "backend `::1:80` needs brackets around its IPv6 address",
            ),
            (
                r#"{"backend": "[zz::1]:80"}"#,
                "backend `[zz::1]:80` has an invalid IPv6 address",
            ),
            (
                r#"{"backend": "web/x:80"}"#,
                "backend `web/x:80` has an invalid host",
            ),
            (
                r#"{"name": "Web", "port": 80}"#,
                "name: `Web` is not a DNS label (lower-case letters, digits and `-`, at most 63)",
            ),
            (
                r#"{"name": "web", "namespace": "a.b", "port": 80}"#,
                "namespace: `a.b` is not a DNS label (lower-case letters, digits and `-`, at most 63)",
            ),
            (
                r#"{"name": "web", "port": 0}"#,
                "port 0 cannot be connected to",
            ),
        ] {
            assert_eq!(
                backend_error(backend),
                format!("routes[0]: backends[0]: {message}"),
                "{backend}"
            );
        }
    }

    #[test]
    fn weights_must_add_up_to_something_that_fits() {
        assert_eq!(
            error(r#"{"routes": [{"name": "r", "backends": [{"backend": "a:1", "weight": 0}]}]}"#),
            "routes[0] (`r`): the weights add up to 0, so no backend could be chosen"
        );
        assert_eq!(
            error(
                r#"{"routes": [{"backends": [
                    {"backend": "a:1", "weight": 4294967295},
                    {"backend": "b:1", "weight": 1}]}]}"#
            ),
            "routes[0]: the weights add up to more than 4294967295"
        );
        assert!(
            error(r#"{"routes": [{"backends": [{"backend": "a:1", "weight": -1}]}]}"#)
                .contains("invalid value")
        );
        assert_eq!(
            error(r#"{"routes": [{"backends": []}]}"#),
            "routes[0]: `backends` is empty"
        );
        assert!(error(r#"{"routes": [{"name": "r"}]}"#).contains("missing field `backends`"));
    }

    #[test]
    fn route_matches_are_checked() {
        let with = |fields: &str| {
            error(&format!(
                r#"{{"routes": [{{{fields}, "backends": [{{"backend": "a:1"}}]}}]}}"#
            ))
        };
        assert_eq!(
            with(r#""pathPrefix": "api""#),
            "routes[0]: pathPrefix: path prefix `api` must start with `/`"
        );
        assert_eq!(
            with(r#""headers": {"x canary": "1"}"#),
            "routes[0]: headers: `x canary` is not a header name"
        );
        assert_eq!(
            with(r#""authority": """#),
            "routes[0]: `authority` must not be empty; leave it out to match any"
        );
        assert_eq!(with(r#""name": """#), "routes[0]: `name` must not be empty");
        assert_eq!(
            with(r#""match": {"all": [{"methods": ["get"]}]}"#),
            "routes[0]: match.all[0].methods: \"get\" must be uppercase (methods compare \
             case-sensitively)"
        );
        assert!(with(r#""match": {"pathRegex": "("}"#).starts_with("routes[0]: match.pathRegex: "));
        assert!(with(r#""match": {"host": "a"}"#).contains("unknown field `host`"));
    }

    #[test]
    fn route_labels_are_unique() {
        let backends = r#""backends": [{"backend": "a:1"}]"#;
        assert_eq!(
            error(&format!(
                r#"{{"routes": [{{"name": "r", {backends}}}, {{"name": "r", {backends}}}]}}"#
            )),
            "routes[1] (`r`): another route is already labelled `r` \
             (unnamed routes are labelled by their index)"
        );
        assert!(
            error(&format!(
                r#"{{"routes": [{{"name": "1", {backends}}}, {{{backends}}}]}}"#
            ))
            .contains("already labelled `1`")
        );
    }

    #[test]
    fn unknown_fields_and_bad_domains_are_refused() {
        assert!(error(r#"{"route": []}"#).contains("unknown field `route`"));
        assert!(
            error(r#"{"routes": [{"backends": [{"backend": "a:1", "wieght": 2}]}]}"#)
                .contains("unknown field `wieght`")
        );
        assert!(error("[").starts_with("invalid split config: "));
        assert_eq!(
            error(r#"{"clusterDomain": "cluster.local."}"#),
            "clusterDomain: `cluster.local.`: `` is not a DNS label \
             (lower-case letters, digits and `-`, at most 63)"
        );
    }
}
