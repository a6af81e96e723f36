//! Gateway API routes attached to a Service (GAMMA): `gateway.networking.k8s.io/v1`
//! HTTPRoute and GRPCRoute, and Linkerd's `policy.linkerd.io` HTTPRoute
//! (the same fields). Each rule's matches select requests to the parent
//! Service; its weighted `backendRefs` say where they go, and HTTPRoute's
//! `timeouts.request` bounds them.

use serde::Deserialize;

use super::duration::parse_millis;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentRef>,
    /// Accepted and not used: GAMMA routes match by their parent Service.
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub rules: Vec<HttpRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteSpec {
    #[serde(default)]
    pub parent_refs: Vec<ParentRef>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub rules: Vec<GrpcRule>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: String,
    pub port: Option<u16>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRule {
    pub name: Option<String>,
    #[serde(default)]
    pub matches: Vec<HttpMatch>,
    #[serde(default)]
    pub backend_refs: Vec<BackendRef>,
    pub timeouts: Option<Timeouts>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRule {
    pub name: Option<String>,
    #[serde(default)]
    pub matches: Vec<GrpcMatch>,
    #[serde(default)]
    pub backend_refs: Vec<BackendRef>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatch {
    pub path: Option<PathMatch>,
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    pub method: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcMatch {
    pub method: Option<GrpcMethodMatch>,
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PathMatch {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct HeaderMatch {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub name: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GrpcMethodMatch {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub service: Option<String>,
    pub method: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: String,
    pub namespace: Option<String>,
    pub port: Option<u16>,
    pub weight: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Timeouts {
    pub request: Option<String>,
}

/// One match of a rule, in the terms the plugins read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestMatch {
    /// An exact path (or gRPC method), for Gateway API's precedence.
    pub exact: bool,
    pub path_prefix: Option<String>,
    /// Anchored: the whole path.
    pub path_regex: Option<String>,
    pub method: Option<String>,
    /// Exact values, by lowercase name.
    pub headers: Vec<(String, String)>,
}

/// Why a rule's match cannot be honoured, naming the field under the rule.
type Check = Result<(), String>;

fn is_core(group: &Option<String>) -> bool {
    matches!(group.as_deref(), None | Some("") | Some("core"))
}

fn check_parents(parents: &[ParentRef]) -> Check {
    if parents.is_empty() {
        return Err(
            "spec.parentRefs: a Service parent is required (Gateways are not supported)".into(),
        );
    }
    for (index, parent) in parents.iter().enumerate() {
        if !is_core(&parent.group) || parent.kind.as_deref() != Some("Service") {
            return Err(format!(
                "spec.parentRefs[{index}]: only a core Service parent is supported, not {}/{}",
                parent
                    .group
                    .as_deref()
                    .unwrap_or("gateway.networking.k8s.io"),
                parent.kind.as_deref().unwrap_or("Gateway"),
            ));
        }
    }
    Ok(())
}

fn check_backends(backends: &[BackendRef], at: &str) -> Check {
    for (index, backend) in backends.iter().enumerate() {
        let at = format!("{at}.backendRefs[{index}]");
        if !is_core(&backend.group) || backend.kind.as_deref().is_some_and(|k| k != "Service") {
            return Err(format!("{at}: only Service backends are supported"));
        }
        if backend.port.is_none() {
            return Err(format!("{at}.port is required for a Service"));
        }
    }
    Ok(())
}

fn check_headers(headers: &[HeaderMatch], at: &str) -> Check {
    for (index, header) in headers.iter().enumerate() {
        if header.type_.as_deref().is_some_and(|t| t != "Exact") {
            return Err(format!(
                "{at}.headers[{index}].type {:?} is not supported (only Exact)",
                header.type_.as_deref().unwrap_or_default()
            ));
        }
    }
    Ok(())
}

fn check_method(method: &Option<String>, at: &str) -> Check {
    match method {
        Some(m) if m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()) => {
            Err(format!("{at}.method {m:?} is not an HTTP method"))
        }
        _ => Ok(()),
    }
}

fn headers(matches: &[HeaderMatch]) -> Vec<(String, String)> {
    matches
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
        .collect()
}

impl HttpRouteSpec {
    pub fn check(&self) -> Check {
        check_parents(&self.parent_refs)?;
        for (r, rule) in self.rules.iter().enumerate() {
            let at = format!("spec.rules[{r}]");
            for (m, matched) in rule.matches.iter().enumerate() {
                let at = format!("{at}.matches[{m}]");
                if let Some(path) = &matched.path {
                    let value = path.value.as_deref().unwrap_or("/");
                    match path.type_.as_deref().unwrap_or("PathPrefix") {
                        "PathPrefix" | "Exact" if value.starts_with('/') => {}
                        "PathPrefix" | "Exact" => {
                            return Err(format!("{at}.path.value {value:?} must start with /"));
                        }
                        "RegularExpression" => {
                            regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                                format!("{at}.path.value {value:?} does not compile: {e}")
                            })?;
                        }
                        other => return Err(format!("{at}.path.type {other:?} is not supported")),
                    }
                }
                check_headers(&matched.headers, &at)?;
                check_method(&matched.method, &at)?;
                if rule.timeouts.is_some() && !matched.headers.is_empty() {
                    return Err(format!(
                        "{at}.headers: timeouts on a rule that matches headers are not supported"
                    ));
                }
            }
            check_backends(&rule.backend_refs, &at)?;
            if let Some(request) = rule.timeouts.as_ref().and_then(|t| t.request.as_ref()) {
                parse_millis(request).map_err(|e| format!("{at}.timeouts.request: {e}"))?;
            }
        }
        Ok(())
    }

    /// Each rule's matches (Gateway API's default, every request, when it
    /// lists none).
    pub fn rule_matches(rule: &HttpRule) -> Vec<RequestMatch> {
        if rule.matches.is_empty() {
            return vec![RequestMatch::default()];
        }
        rule.matches
            .iter()
            .map(|matched| {
                let mut out = RequestMatch {
                    method: matched.method.clone(),
                    headers: headers(&matched.headers),
                    ..RequestMatch::default()
                };
                if let Some(path) = &matched.path {
                    let value = path.value.clone().unwrap_or_else(|| "/".to_string());
                    match path.type_.as_deref().unwrap_or("PathPrefix") {
                        "Exact" => {
                            out.exact = true;
                            out.path_regex = Some(regex::escape(&value));
                        }
                        "RegularExpression" => out.path_regex = Some(value),
                        _ if value == "/" => {}
                        _ => out.path_prefix = Some(value),
                    }
                }
                out
            })
            .collect()
    }

    /// `timeouts.request` in milliseconds; `None` for none or `0` (none).
    pub fn request_timeout(rule: &HttpRule) -> Option<u64> {
        let text = rule.timeouts.as_ref()?.request.as_ref()?;
        parse_millis(text).ok().filter(|ms| *ms > 0)
    }
}

impl GrpcRouteSpec {
    pub fn check(&self) -> Check {
        check_parents(&self.parent_refs)?;
        for (r, rule) in self.rules.iter().enumerate() {
            let at = format!("spec.rules[{r}]");
            for (m, matched) in rule.matches.iter().enumerate() {
                let at = format!("{at}.matches[{m}]");
                if let Some(method) = &matched.method {
                    if method.type_.as_deref().is_some_and(|t| t != "Exact") {
                        return Err(format!("{at}.method.type: only Exact is supported"));
                    }
                    if method.service.is_none() && method.method.is_none() {
                        return Err(format!("{at}.method: service or method is required"));
                    }
                    let valid = |s: &Option<String>| {
                        s.as_deref()
                            .is_none_or(|s| !s.is_empty() && !s.contains('/'))
                    };
                    if !valid(&method.service) || !valid(&method.method) {
                        return Err(format!("{at}.method: names must be non-empty, without /"));
                    }
                }
                check_headers(&matched.headers, &at)?;
            }
            check_backends(&rule.backend_refs, &at)?;
        }
        Ok(())
    }

    /// A gRPC method is the path `/service/method`.
    pub fn rule_matches(rule: &GrpcRule) -> Vec<RequestMatch> {
        if rule.matches.is_empty() {
            return vec![RequestMatch::default()];
        }
        rule.matches
            .iter()
            .map(|matched| {
                let mut out = RequestMatch {
                    headers: headers(&matched.headers),
                    ..RequestMatch::default()
                };
                if let Some(method) = &matched.method {
                    match (&method.service, &method.method) {
                        (Some(service), Some(name)) => {
                            out.exact = true;
                            out.path_regex = Some(regex::escape(&format!("/{service}/{name}")));
                        }
                        (Some(service), None) => out.path_prefix = Some(format!("/{service}")),
                        (None, Some(name)) => {
                            out.path_regex = Some(format!("/[^/]+/{}", regex::escape(name)));
                        }
                        (None, None) => {}
                    }
                }
                out
            })
            .collect()
    }
}
