//! The manifests in `tests/fixtures/linkerd/` (Linkerd's booksapp, with a
//! ServiceProfile, a TrafficSplit and an HTTPRoute as their documentation
//! writes them), read by the local source and compiled by the index: the
//! plugin configs each workload gets, and what is refused and why.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;
use crate::index::{ConfigSource, Event, Index, ResolvedPlugin, WorkloadProblem, WorkloadRef};
use crate::local::read_dir;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linkerd")
}

fn booksapp() -> Index {
    let directory = read_dir(&fixtures()).unwrap();
    assert_eq!(directory.errors, [], "the fixtures read");
    let mut index = Index::default();
    for event in directory.events() {
        index.apply(event);
    }
    index
}

fn chain(index: &Index, namespace: &str, pod: &str) -> (Vec<ResolvedPlugin>, Vec<WorkloadProblem>) {
    let chain = index.plugin_set(&WorkloadRef::new(namespace, pod)).unwrap();
    (chain.plugins, chain.problems)
}

fn config<'a>(plugins: &'a [ResolvedPlugin], name: &str) -> &'a Value {
    &plugins.iter().find(|p| p.name == name).unwrap().config
}

fn object(yaml: &str) -> TrafficObject {
    let value: Value = serde_norway::from_str(yaml).unwrap();
    TrafficObject::from_value(value).unwrap().unwrap()
}

#[test]
fn a_client_gets_split_retry_and_metrics_compiled_in_their_usual_order() {
    let index = booksapp();
    let (plugins, problems) = chain(&index, "booksapp", "webapp");
    assert_eq!(problems, []);
    let order: Vec<(&str, ConfigSource)> = plugins
        .iter()
        .map(|p| (p.name.as_str(), p.config_source))
        .collect();
    // authz and metrics are named; split and retry join from weft-system.
    assert_eq!(
        order,
        [
            ("authz", ConfigSource::WasmPlugin),
            ("split", ConfigSource::Compiled),
            ("retry", ConfigSource::Compiled),
            ("metrics", ConfigSource::Compiled),
        ]
    );
    let retry = plugins.iter().find(|p| p.name == "retry").unwrap();
    assert_eq!(retry.directions, [crate::resources::Direction::Outbound]);

    assert_eq!(
        config(&plugins, "split"),
        &json!({
            "clusterDomain": "cluster.local",
            "routes": [
                // Gateway API's precedence: the longer path prefix first.
                {
                    "name": "httproute/booksapp/authors-canary/1.0:7001",
                    "authority": "authors.booksapp.svc.cluster.local:7001",
                    "pathPrefix": "/authors",
                    "match": {"methods": ["GET"]},
                    "backends": [
                        {"name": "authors", "namespace": "booksapp", "port": 7001, "weight": 90},
                        {"name": "authors-v2", "namespace": "booksapp", "port": 7001, "weight": 10},
                    ],
                },
                {
                    "name": "httproute/booksapp/authors-canary/0.0:7001",
                    "authority": "authors.booksapp.svc.cluster.local:7001",
                    "headers": {"x-canary": "true"},
                    "backends": [
                        {"name": "authors-v2", "namespace": "booksapp", "port": 7001, "weight": 1},
                    ],
                },
                {
                    "name": "trafficsplit/booksapp/books-rollout:7002",
                    "authority": "books.booksapp.svc.cluster.local:7002",
                    "backends": [
                        {"name": "books", "namespace": "booksapp", "port": 7002, "weight": 900},
                        {"name": "books-v2", "namespace": "booksapp", "port": 7002, "weight": 100},
                    ],
                },
            ],
        })
    );

    let books = "books.booksapp.svc.cluster.local";
    assert_eq!(
        config(&plugins, "retry"),
        &json!({
            "routes": [
                {
                    "name": "httproute/booksapp/authors-canary/1.0:7001",
                    "match": {
                        "authority": "authors.booksapp.svc.cluster.local:7001",
                        "pathPrefix": "/authors",
                        "methods": ["GET"],
                    },
                    "retryOn": [], "limit": 0, "timeoutMs": 2000,
                },
                {
                    "name": "books.booksapp/GET /books/{id}.json",
                    "match": {"authority": books, "methods": ["GET"], "pathRegex": "/books/[^/]*\\.json"},
                    "retryOn": ["500-599"], "limit": 9, "timeoutMs": 300,
                },
                {
                    "name": "books.booksapp/POST /books.json",
                    "match": {"authority": books, "methods": ["POST"], "pathRegex": "/books\\.json"},
                    "retryOn": [], "limit": 0,
                },
            ],
            "budgets": [
                {"authority": books, "retryRatio": 0.2, "minRetriesPerSecond": 10, "ttlSeconds": 10},
            ],
        })
    );

    assert_eq!(
        config(&plugins, "metrics"),
        &json!({
            "routes": [
                {
                    "name": "GET /books/{id}.json",
                    "match": {"authority": books, "methods": ["GET"], "pathRegex": "/books/[^/]*\\.json"},
                },
                {
                    "name": "POST /books.json",
                    "match": {"authority": books, "methods": ["POST"], "pathRegex": "/books\\.json"},
                    "responseClasses": [
                        {"condition": {"status": {"min": 500, "max": 599}}, "isFailure": true},
                        {
                            "condition": {"all": [
                                {"status": {"min": 400, "max": 499}},
                                {"not": {"status": {"min": 404, "max": 404}}},
                            ]},
                            "isFailure": true,
                        },
                    ],
                },
            ],
        })
    );
}

#[test]
fn a_profile_in_the_clients_namespace_overrides_the_services() {
    let index = booksapp();
    let (plugins, problems) = chain(&index, "tools", "curl");
    assert_eq!(problems, []);
    let retry = config(&plugins, "retry");
    let routes: Vec<&str> = retry["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    // No booksapp profile routes, no budget: the tools profile replaces it.
    assert!(routes.contains(&"books.booksapp/everything"), "{routes:?}");
    assert!(
        !routes.iter().any(|r| r.contains("GET /books")),
        "{routes:?}"
    );
    assert_eq!(retry.get("budgets"), None);
    // The TrafficSplit and the producer HTTPRoute apply to every client.
    assert_eq!(
        config(&plugins, "split")["routes"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn failure_classes_become_retry_statuses() {
    let index = booksapp();
    let (plugins, _) = chain(&index, "booksapp", "webapp");
    assert_eq!(
        config(&plugins, "retry")["routes"][1]["retryOn"],
        json!(["500-599"])
    );
    let TrafficResource::ServiceProfile(spec) = read(&object(
        r#"
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: books.booksapp.svc.cluster.local, namespace: booksapp}
spec:
  routes:
  - name: r
    condition: {method: GET}
    isRetryable: true
    responseClasses:
    - {condition: {status: {min: 503, max: 503}}, isFailure: false}
    - {condition: {any: [{status: {min: 429, max: 429}}, {status: {min: 500}}]}, isFailure: true}
"#,
    ))
    .unwrap() else {
        panic!("a profile")
    };
    assert_eq!(
        spec.routes[0].failure_ranges(),
        ["429", "500-502", "504-599"]
    );
}

#[test]
fn what_weft_cannot_honour_is_refused_naming_the_field() {
    let refused = |yaml: &str| read(&object(yaml)).unwrap_err();
    let profile = "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {name: a.b.svc.cluster.local, namespace: b}\n";
    let regex = refused(&format!(
        "{profile}spec:\n  routes:\n  - {{name: r, condition: {{pathRegex: '/(a'}}}}\n"
    ));
    assert!(
        regex.starts_with("spec.routes[0].condition.pathRegex \"/(a\" does not compile: ")
            && regex.ends_with("unclosed group"),
        "{regex}"
    );
    assert!(
        refused(&format!(
            "{profile}spec:\n  routes: []\n  dstOverrides: [{{authority: x, weight: 1}}]\n"
        ))
        .starts_with("spec.dstOverrides is not supported")
    );
    assert_eq!(
        refused(&format!(
            "{profile}spec:\n  routes:\n  - {{name: r, condition: {{method: GET}}, isRetriable: true}}\n"
        )),
        "unsupported field spec.routes.0.isRetriable (Weft does not apply it)"
    );
    assert_eq!(
        refused(&format!(
            "{profile}spec:\n  routes:\n  - {{name: r, condition: {{}}, timeout: soon}}\n"
        )),
        "spec.routes[0].timeout: \"soon\" is not a duration (such as 300ms, 10s, 1m30s)"
    );
    let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: b}\nspec:\n";
    assert_eq!(
        refused(&format!("{route}  parentRefs: [{{name: gw}}]\n")),
        "spec.parentRefs[0]: only a core Service parent is supported, not gateway.networking.k8s.io/Gateway"
    );
    assert_eq!(
        refused(&format!(
            "{route}  parentRefs: [{{name: a, kind: Service, group: core}}]\n  rules:\n  - filters: [{{type: RequestHeaderModifier}}]\n"
        )),
        "unsupported field spec.rules.0.filters (Weft does not apply it)"
    );
    assert_eq!(
        refused(&format!(
            "{route}  parentRefs: [{{name: a, kind: Service}}]\n  rules:\n  - matches: [{{headers: [{{type: RegularExpression, name: x, value: y}}]}}]\n"
        )),
        "spec.rules[0].matches[0].headers[0].type \"RegularExpression\" is not supported (only Exact)"
    );
    let split = "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: s, namespace: b}\n";
    assert_eq!(
        refused(&format!(
            "{split}spec:\n  service: a\n  backends: [{{service: a, weight: 9Gi}}]\n"
        )),
        "spec.backends[0]: weight \"9Gi\" is not a number or a quantity such as 900m"
    );
}

#[test]
fn a_refused_version_keeps_the_last_accepted_one_applying() {
    let mut index = booksapp();
    let webapp = WorkloadRef::new("booksapp", "webapp");
    let before = index.plugin_set(&webapp).unwrap();
    let broken = object(
        r#"
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: books.booksapp.svc.cluster.local, namespace: booksapp, generation: 2}
spec:
  routes:
  - {name: r, condition: {pathRegex: "/[", method: GET}, isRetryable: true}
"#,
    );
    assert!(index.apply(Event::from(broken)));
    let after = index.plugin_set(&webapp).unwrap();
    assert_eq!(after.version, before.version, "the chain is unchanged");
    let problems = index.traffic_problems();
    let (key, message) = &problems[0];
    assert_eq!(
        key.to_string(),
        "ServiceProfile booksapp/books.booksapp.svc.cluster.local"
    );
    assert!(message.contains("does not compile"), "{message}");
    assert!(
        message.ends_with("the last accepted version keeps applying"),
        "{message}"
    );

    // A new resource that is refused applies nothing.
    let new = object(
        "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: webapp, namespace: booksapp}\nspec: {service: webapp, backends: [], matches: [{kind: HTTPRouteGroup, name: g}]}\n",
    );
    index.apply(Event::from(new));
    assert_eq!(index.plugin_set(&webapp).unwrap().version, before.version);
}

#[test]
fn targets_that_match_nothing_are_reported() {
    let mut index = booksapp();
    for yaml in [
        "apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata: {name: gone, namespace: booksapp}\nspec: {service: nothing, backends: [{service: books, weight: 1}]}\n",
        "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {name: books, namespace: booksapp}\nspec: {routes: []}\n",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: wrong-port, namespace: booksapp}\nspec: {parentRefs: [{name: books, kind: Service, port: 80}]}\n",
    ] {
        index.apply(Event::from(object(yaml)));
    }
    let problems: Vec<String> = index
        .traffic_problems()
        .iter()
        .map(|(key, problem)| format!("{key}: {problem}"))
        .collect();
    assert_eq!(
        problems,
        [
            "ServiceProfile booksapp/books: the name is not a Service's DNS name (<service>.<namespace>.svc.cluster.local): it applies to no request",
            "TrafficSplit booksapp/gone: spec.service booksapp/nothing: no such Service",
            "HTTPRoute booksapp/wrong-port: parent booksapp/books: the Service has no port 80",
        ]
    );
}

#[test]
fn an_explicit_config_wins_and_the_conflict_is_reported() {
    let mut index = booksapp();
    // webapp's own split config, by annotation.
    let mut pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "webapp", "namespace": "booksapp", "annotations": {
            "weft.io/plugins": "split,metrics",
            "weft.io/plugin-config.split": "{\"routes\": []}",
        }},
        "spec": {"containers": [{"name": "webapp", "image": "buoyantio/booksapp"}]},
    }))
    .unwrap();
    pod.metadata.labels = None;
    index.apply(Event::from(pod));
    let (plugins, problems) = chain(&index, "booksapp", "webapp");
    assert_eq!(config(&plugins, "split"), &json!({"routes": []}));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].to_string(),
        "TrafficSplit booksapp/books-rollout, HTTPRoute booksapp/authors-canary compile to plugin \"split\", \
         but the workload runs weft-system/split with its own config (pod annotation); the compiled config is not applied"
    );
}

#[test]
fn without_the_shipped_plugin_the_compiled_config_is_reported() {
    let mut index = booksapp();
    index.apply(Event::Deleted(crate::index::ResourceKey::WasmPlugin(
        crate::index::PluginRef::new("weft-system", "split"),
    )));
    let (plugins, problems) = chain(&index, "booksapp", "webapp");
    assert!(!plugins.iter().any(|p| p.name == "split"));
    assert_eq!(
        problems[0].to_string(),
        "TrafficSplit booksapp/books-rollout, HTTPRoute booksapp/authors-canary compile to plugin \"split\", \
         but there is no WasmPlugin weft-system/split to run it"
    );
}
