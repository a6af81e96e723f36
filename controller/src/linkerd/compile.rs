//! One workload's plugin configs from the accepted traffic resources: a
//! pure function, tested on manifests without a cluster.
//!
//! Which resources apply to a client in namespace `C` (Linkerd's rules):
//! - a ServiceProfile named `<svc>.<ns>.svc.<cluster domain>` in `C`, or
//!   else the one of that name in `<ns>` (the client's namespace wins);
//! - a TrafficSplit, to every client;
//! - an HTTPRoute or GRPCRoute in its parent Service's namespace (a
//!   producer route) to every client; one in another namespace (a consumer
//!   route) to clients in its own namespace, before producer routes.
//!
//! Split routes come first from routes (by parent, then Gateway API's
//! precedence: exact path, longest prefix, method, most headers, then rule
//! order), then from TrafficSplits; a request takes the first that matches.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::object::{TrafficKind, TrafficRef};
use super::read::TrafficResource;
use super::route::{BackendRef, GrpcRouteSpec, HttpRouteSpec, ParentRef, RequestMatch};
use super::service_profile::ServiceProfileSpec;
use super::traffic_split::TrafficSplitSpec;
use crate::index::{Authority, ClusterDomain, ServiceRef};

/// The shipped plugins a workload's chain may get from resources, in the
/// order of their usual places in a chain.
pub const COMPILED_PLUGINS: [&str; 3] = ["split", "retry", "metrics"];

/// Retries per request for an `isRetryable` route: the proxy's most (10
/// attempts), since Linkerd bounds these retries by the budget alone.
const PROFILE_RETRY_LIMIT: u32 = 9;

/// What the compile step asks of the cluster: a Service's ports.
pub trait ServicePorts {
    /// `None` when there is no such Service.
    fn ports(&self, service: &ServiceRef) -> Option<Vec<u16>>;
}

/// One plugin's config, and the resources it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledPlugin {
    pub name: &'static str,
    pub config: Value,
    pub from: BTreeSet<TrafficRef>,
}

/// The configs for a client in `client_namespace`, in `COMPILED_PLUGINS`
/// order; a plugin nothing applies to is left out.
pub fn compile<'a>(
    resources: &[(&'a TrafficRef, &'a TrafficResource)],
    client_namespace: &str,
    domain: &ClusterDomain,
    services: &dyn ServicePorts,
) -> Vec<CompiledPlugin> {
    let mut out = Compiler::default();
    let host =
        |service: &ServiceRef| format!("{}.{}.svc.{domain}", service.name, service.namespace);

    // Routes: consumer routes first, then producer routes.
    for consumer in [true, false] {
        for (key, resource) in resources {
            let rules = match resource {
                TrafficResource::HttpRoute(spec) => http_rules(spec),
                TrafficResource::GrpcRoute(spec) => grpc_rules(spec),
                _ => continue,
            };
            let parents = match resource {
                TrafficResource::HttpRoute(spec) => &spec.parent_refs,
                TrafficResource::GrpcRoute(spec) => &spec.parent_refs,
                _ => continue,
            };
            for parent in parents {
                let service = parent_service(key, parent);
                let is_consumer = service.namespace != key.namespace;
                if is_consumer != consumer || (is_consumer && key.namespace != client_namespace) {
                    continue;
                }
                let ports = match parent.port {
                    Some(port) => vec![port],
                    None => services.ports(&service).unwrap_or_default(),
                };
                for port in ports {
                    let authority = format!("{}:{port}", host(&service));
                    out.route_rules(key, &rules, &authority, &service, port);
                }
            }
        }
    }

    for (key, resource) in resources {
        if let TrafficResource::TrafficSplit(spec) = resource {
            out.traffic_split(key, spec, &host, services);
        }
    }

    for (key, resource) in resources {
        let TrafficResource::ServiceProfile(spec) = resource else {
            continue;
        };
        let Some(service) = profile_service(&key.name, domain) else {
            continue;
        };
        let applies = key.namespace == client_namespace
            || (key.namespace == service.namespace
                && !resources.iter().any(|(other, _)| {
                    other.kind == TrafficKind::ServiceProfile
                        && other.namespace == client_namespace
                        && other.name == key.name
                }));
        if applies {
            out.service_profile(key, spec, &service, &host(&service));
        }
    }

    out.finish(domain)
}

/// Problems that depend on the rest of the cluster: a resource whose
/// target matches nothing. Each is reported; the resource still applies
/// to what it does match.
pub fn target_problems(
    key: &TrafficRef,
    resource: &TrafficResource,
    domain: &ClusterDomain,
    services: &dyn ServicePorts,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut need =
        |service: &ServiceRef, port: Option<u16>, what: &str| match services.ports(service) {
            None => problems.push(format!("{what} {service}: no such Service")),
            Some(ports) => {
                if let Some(port) = port.filter(|port| !ports.contains(port)) {
                    problems.push(format!("{what} {service}: the Service has no port {port}"));
                }
            }
        };
    match resource {
        TrafficResource::ServiceProfile(_) => match profile_service(&key.name, domain) {
            Some(service) => need(&service, None, "the profile's service"),
            None => problems.push(format!(
                "the name is not a Service's DNS name (<service>.<namespace>.svc.{domain}): \
                 it applies to no request"
            )),
        },
        TrafficResource::TrafficSplit(spec) => {
            need(
                &ServiceRef::new(&key.namespace, &spec.service),
                None,
                "spec.service",
            );
            for backend in &spec.backends {
                need(
                    &ServiceRef::new(&key.namespace, &backend.service),
                    None,
                    "backend",
                );
            }
        }
        TrafficResource::HttpRoute(HttpRouteSpec { parent_refs, .. })
        | TrafficResource::GrpcRoute(GrpcRouteSpec { parent_refs, .. }) => {
            for parent in parent_refs {
                need(&parent_service(key, parent), parent.port, "parent");
            }
            let backends: Vec<&BackendRef> = match resource {
                TrafficResource::HttpRoute(spec) => {
                    spec.rules.iter().flat_map(|r| &r.backend_refs).collect()
                }
                TrafficResource::GrpcRoute(spec) => {
                    spec.rules.iter().flat_map(|r| &r.backend_refs).collect()
                }
                _ => Vec::new(),
            };
            for backend in backends {
                need(&backend_service(key, backend), backend.port, "backend");
            }
        }
        // Their targets are pods and each other (`authz::policy_problems`).
        TrafficResource::Server(_)
        | TrafficResource::ServerAuthorization(_)
        | TrafficResource::AuthorizationPolicy(_)
        | TrafficResource::MeshTlsAuthentication(_)
        | TrafficResource::NetworkAuthentication(_) => {}
    }
    problems
}

/// A rule as compiled: its name, matches, backends and request timeout.
struct Rule<'a> {
    index: usize,
    matches: Vec<RequestMatch>,
    backends: &'a [BackendRef],
    timeout_ms: Option<u64>,
}

fn http_rules(spec: &HttpRouteSpec) -> Vec<Rule<'_>> {
    spec.rules
        .iter()
        .enumerate()
        .map(|(index, rule)| Rule {
            index,
            matches: HttpRouteSpec::rule_matches(rule),
            backends: &rule.backend_refs,
            timeout_ms: HttpRouteSpec::request_timeout(rule),
        })
        .collect()
}

fn grpc_rules(spec: &GrpcRouteSpec) -> Vec<Rule<'_>> {
    spec.rules
        .iter()
        .enumerate()
        .map(|(index, rule)| Rule {
            index,
            matches: GrpcRouteSpec::rule_matches(rule),
            backends: &rule.backend_refs,
            timeout_ms: None,
        })
        .collect()
}

fn parent_service(key: &TrafficRef, parent: &ParentRef) -> ServiceRef {
    ServiceRef::new(
        parent.namespace.as_deref().unwrap_or(&key.namespace),
        &parent.name,
    )
}

fn backend_service(key: &TrafficRef, backend: &BackendRef) -> ServiceRef {
    ServiceRef::new(
        backend.namespace.as_deref().unwrap_or(&key.namespace),
        &backend.name,
    )
}

/// The Service a profile's name stands for.
fn profile_service(name: &str, domain: &ClusterDomain) -> Option<ServiceRef> {
    match Authority::parse(name, domain).ok()? {
        Authority::Service { service, .. } if !name.contains(':') => Some(service),
        _ => None,
    }
}

/// Gateway API's precedence between matches of one parent.
fn precedence(m: &RequestMatch) -> impl Ord {
    (
        !m.exact,
        Reverse(m.path_prefix.as_ref().map_or(0, String::len)),
        m.method.is_none(),
        Reverse(m.headers.len()),
    )
}

#[derive(Default)]
struct Compiler {
    split_routes: Vec<Value>,
    retry_routes: Vec<Value>,
    budgets: Vec<Value>,
    metrics_routes: Vec<Value>,
    metrics_names: BTreeSet<String>,
    split_from: BTreeSet<TrafficRef>,
    retry_from: BTreeSet<TrafficRef>,
    metrics_from: BTreeSet<TrafficRef>,
}

impl Compiler {
    fn route_rules(
        &mut self,
        key: &TrafficRef,
        rules: &[Rule<'_>],
        authority: &str,
        parent: &ServiceRef,
        port: u16,
    ) {
        let prefix = match key.kind {
            TrafficKind::GrpcRoute => "grpcroute",
            _ => "httproute",
        };
        let mut matches: Vec<(&Rule<'_>, usize, &RequestMatch)> = rules
            .iter()
            .flat_map(|rule| {
                rule.matches
                    .iter()
                    .enumerate()
                    .map(move |(j, m)| (rule, j, m))
            })
            .collect();
        matches.sort_by_key(|(_, _, m)| precedence(m));
        for (rule, j, matched) in matches {
            let name = format!(
                "{prefix}/{}/{}/{}.{j}:{port}",
                key.namespace, key.name, rule.index
            );
            let mut shared = Map::new();
            if let Some(regex) = &matched.path_regex {
                shared.insert("pathRegex".into(), regex.clone().into());
            }
            if let Some(method) = &matched.method {
                shared.insert("methods".into(), json!([method]));
            }
            // A rule without backends sends to its parent: still a route,
            // so a later, broader one does not take its requests.
            let backends: Vec<Value> = if rule.backends.is_empty() {
                vec![json!({"name": parent.name, "namespace": parent.namespace, "port": port})]
            } else {
                rule.backends
                    .iter()
                    .map(|backend| {
                        let service = backend_service(key, backend);
                        json!({
                            "name": service.name,
                            "namespace": service.namespace,
                            "port": backend.port,
                            "weight": backend.weight.unwrap_or(1),
                        })
                    })
                    .collect()
            };
            let mut route = Map::new();
            route.insert("name".into(), name.clone().into());
            route.insert("authority".into(), authority.into());
            if let Some(prefix) = &matched.path_prefix {
                route.insert("pathPrefix".into(), prefix.clone().into());
            }
            if !matched.headers.is_empty() {
                let headers: Map<String, Value> = matched
                    .headers
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone().into()))
                    .collect();
                route.insert("headers".into(), headers.into());
            }
            if !shared.is_empty() {
                route.insert("match".into(), shared.clone().into());
            }
            route.insert("backends".into(), backends.into());
            self.split_routes.push(route.into());
            self.split_from.insert(key.clone());

            if let Some(timeout_ms) = rule.timeout_ms {
                shared.insert("authority".into(), authority.into());
                if let Some(prefix) = &matched.path_prefix {
                    shared.insert("pathPrefix".into(), prefix.clone().into());
                }
                self.retry_routes.push(json!({
                    "name": name,
                    "match": shared,
                    "retryOn": [],
                    "limit": 0,
                    "timeoutMs": timeout_ms,
                }));
                self.retry_from.insert(key.clone());
            }
        }
    }

    fn traffic_split(
        &mut self,
        key: &TrafficRef,
        spec: &TrafficSplitSpec,
        host: &dyn Fn(&ServiceRef) -> String,
        services: &dyn ServicePorts,
    ) {
        let apex = ServiceRef::new(&key.namespace, &spec.service);
        for port in services.ports(&apex).unwrap_or_default() {
            let backends: Vec<Value> = spec
                .weights()
                .map(|(service, weight)| {
                    let backend = ServiceRef::new(&key.namespace, service);
                    // The same port, as SMI says; a backend Service with
                    // one other port is sent there.
                    let backend_port = match services.ports(&backend) {
                        Some(ports) if !ports.contains(&port) && ports.len() == 1 => ports[0],
                        _ => port,
                    };
                    json!({
                        "name": service,
                        "namespace": key.namespace,
                        "port": backend_port,
                        "weight": weight,
                    })
                })
                .collect();
            self.split_routes.push(json!({
                "name": format!("trafficsplit/{}/{}:{port}", key.namespace, key.name),
                "authority": format!("{}:{port}", host(&apex)),
                "backends": backends,
            }));
            self.split_from.insert(key.clone());
        }
    }

    fn service_profile(
        &mut self,
        key: &TrafficRef,
        spec: &ServiceProfileSpec,
        service: &ServiceRef,
        host: &str,
    ) {
        let retries = spec
            .routes
            .iter()
            .any(|route| route.is_retryable || route.timeout.is_some());
        for route in &spec.routes {
            let mut shared = route.condition.to_match();
            shared.insert("authority".into(), host.into());
            let classes: Vec<Value> = route
                .response_classes
                .iter()
                .map(|class| {
                    json!({"condition": class.condition.to_json(), "isFailure": class.is_failure})
                })
                .collect();
            // `rt_route` is the route's name, as in Linkerd; the metrics
            // plugin wants names unique, so a name another applying profile
            // took first is told apart by its service.
            let name = if self.metrics_names.insert(route.name.clone()) {
                route.name.clone()
            } else {
                format!("{} ({}.{})", route.name, service.name, service.namespace)
            };
            let mut metrics = json!({"name": name, "match": shared});
            if !classes.is_empty() {
                metrics["responseClasses"] = classes.into();
            }
            self.metrics_routes.push(metrics);
            self.metrics_from.insert(key.clone());

            // Every route of a profile with retries or timeouts, in order,
            // so a request takes the first route it matches, as in Linkerd.
            if retries {
                let mut retry = json!({
                    "name": format!("{}.{}/{}", service.name, service.namespace, route.name),
                    "match": shared,
                    "retryOn": if route.is_retryable { route.failure_ranges() } else { Vec::new() },
                    "limit": if route.is_retryable { PROFILE_RETRY_LIMIT } else { 0 },
                });
                if let Some(timeout) = &route.timeout {
                    let ms = super::duration::parse_millis(timeout).unwrap_or(0);
                    retry["timeoutMs"] = ms.into();
                }
                self.retry_routes.push(retry);
                self.retry_from.insert(key.clone());
            }
        }
        if let Some(budget) = &spec.retry_budget {
            let ttl_ms = super::duration::parse_millis(&budget.ttl).unwrap_or(10_000);
            self.budgets.push(json!({
                "authority": host,
                "retryRatio": budget.retry_ratio,
                "minRetriesPerSecond": budget.min_retries_per_second,
                "ttlSeconds": ttl_ms.div_ceil(1000),
            }));
            if retries {
                self.retry_from.insert(key.clone());
            }
        }
    }

    fn finish(self, domain: &ClusterDomain) -> Vec<CompiledPlugin> {
        let mut plugins = Vec::new();
        if !self.split_routes.is_empty() {
            plugins.push(CompiledPlugin {
                name: "split",
                config: json!({"clusterDomain": domain.to_string(), "routes": self.split_routes}),
                from: self.split_from,
            });
        }
        // The retry plugin needs a route; a budget alone changes nothing.
        if !self.retry_routes.is_empty() {
            let mut config = json!({"routes": self.retry_routes});
            if !self.budgets.is_empty() {
                config["budgets"] = self.budgets.into();
            }
            plugins.push(CompiledPlugin {
                name: "retry",
                config,
                from: self.retry_from,
            });
        }
        if !self.metrics_routes.is_empty() {
            plugins.push(CompiledPlugin {
                name: "metrics",
                config: json!({"routes": self.metrics_routes}),
                from: self.metrics_from,
            });
        }
        plugins
    }
}
