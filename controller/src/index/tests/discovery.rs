//! Which endpoints are behind a Service's authority, over `discovery.yaml`:
//! real objects of one namespace, with the owner chain Deployment →
//! ReplicaSet → Pod.

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;

fn items() -> Vec<Value> {
    let list: Value = serde_norway::from_str(include_str!("discovery.yaml")).unwrap();
    list["items"].as_array().unwrap().clone()
}

fn all<T: DeserializeOwned>(kind: &str) -> Vec<T> {
    items()
        .into_iter()
        .filter(|item| item["kind"] == kind)
        .map(|item| serde_json::from_value(item).unwrap())
        .collect()
}

fn item(kind: &str, name: &str) -> Value {
    items()
        .into_iter()
        .find(|item| item["kind"] == kind && item["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in discovery.yaml"))
}

fn shop() -> Index {
    index_with([
        Event::Reset(Objects::Pods(all::<Pod>("Pod"))),
        Event::Reset(Objects::Services(all::<Service>("Service"))),
        Event::Reset(Objects::EndpointSlices(all::<EndpointSlice>(
            "EndpointSlice",
        ))),
    ])
}

fn authority(text: &str) -> Authority {
    Authority::parse(text, &ClusterDomain::default()).unwrap()
}

/// The addresses behind `text`, or `None` when it names no Service.
fn addrs(index: &Index, text: &str) -> Option<Vec<String>> {
    let found = index.destination(&authority(text))?;
    Some(found.endpoints.iter().map(|e| e.addr.to_string()).collect())
}

#[test]
fn a_service_name_gives_its_ready_endpoints_at_the_slice_port() {
    let index = shop();
    let web = index
        .destination(&authority("web.shop.svc.cluster.local:80"))
        .unwrap();
    assert_eq!(web.service, ServiceRef::new("shop", "web"));
    assert_eq!(web.load_balancer, LoadBalancer::Ewma, "the default");
    let addrs: Vec<String> = web.endpoints.iter().map(|e| e.addr.to_string()).collect();
    assert_eq!(
        addrs,
        ["10.244.1.12:8080", "10.244.2.15:8080"],
        "from both slices; 10.244.1.31 is not ready"
    );

    // The Deployment, as the ReplicaSet's owner names it.
    let replica_set = item("ReplicaSet", "web-7d4b9c6f8");
    let deployment = replica_set["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap();
    let pod = web.endpoints[0].pod.as_ref().unwrap();
    assert_eq!(
        pod,
        &EndpointPod {
            workload: WorkloadRef::new("shop", "web-7d4b9c6f8-x2k9p"),
            service_account: Some("web".into()),
            owner: Some(Owner {
                kind: OwnerKind::Deployment,
                name: deployment.into(),
            }),
            meshed: true,
        }
    );
}

#[test]
fn the_service_port_s_name_picks_the_slice_port() {
    let index = shop();
    assert_eq!(
        addrs(&index, "web.shop.svc.cluster.local:9990").unwrap(),
        ["10.244.1.12:9990", "10.244.2.15:9990"]
    );
    // An unnamed port matches the slices' unnamed one.
    assert_eq!(
        addrs(&index, "checkout.shop.svc.cluster.local:8080").unwrap(),
        ["10.244.1.14:8080"]
    );
    // A port the Service does not have, or only for UDP: it exists, empty.
    assert_eq!(addrs(&index, "web.shop.svc.cluster.local:81"), Some(vec![]));
    assert_eq!(
        addrs(&index, "web.shop.svc.cluster.local:9991"),
        Some(vec![])
    );
}

#[test]
fn a_name_may_end_with_a_dot_and_omit_port_80() {
    let index = shop();
    let expected = addrs(&index, "web.shop.svc.cluster.local:80");
    assert!(expected.as_ref().is_some_and(|a| !a.is_empty()));
    assert_eq!(addrs(&index, "web.shop.svc.cluster.local."), expected);
    assert_eq!(addrs(&index, "Web.Shop.svc.cluster.local.:80"), expected);
}

#[test]
fn a_cluster_ip_names_its_service() {
    let index = shop();
    assert_eq!(
        addrs(&index, "10.96.120.15:80").unwrap(),
        ["10.244.1.12:8080", "10.244.2.15:8080"]
    );
    assert_eq!(
        addrs(&index, "10.96.120.15"),
        addrs(&index, "10.96.120.15:80")
    );
    assert_eq!(addrs(&index, "10.96.120.16:80"), None, "no Service's IP");
    assert_eq!(addrs(&index, "10.244.1.12:8080"), None, "a pod's IP");
}

#[test]
fn a_headless_service_resolves_by_name_only() {
    let index = shop();
    let db = index
        .destination(&authority("db.shop.svc.cluster.local:5432"))
        .unwrap();
    assert_eq!(db.endpoints.len(), 1);
    assert_eq!(db.endpoints[0].addr.to_string(), "10.244.2.9:5432");
    let pod = db.endpoints[0].pod.as_ref().unwrap();
    assert!(!pod.meshed, "db-0 has no sidecar");
    assert_eq!(pod.service_account.as_deref(), Some("default"));
    assert_eq!(
        pod.owner,
        Some(Owner {
            kind: OwnerKind::StatefulSet,
            name: "db".into()
        })
    );
    assert_eq!(addrs(&index, "None:5432"), None);
}

#[test]
fn other_names_name_no_service() {
    let index = shop();
    for text in [
        "web.shop.svc.cluster.local.example.com:80",
        "web.shop.svc.other.domain:80",
        "web.shop:80",
        "web:80",
        "nope.shop.svc.cluster.local:80",
        "web.other.svc.cluster.local:80",
        "example.com",
    ] {
        assert_eq!(addrs(&index, text), None, "{text}");
    }
    let elsewhere: ClusterDomain = "corp.example.".parse().unwrap();
    let web = Authority::parse("web.shop.svc.corp.example:80", &elsewhere).unwrap();
    assert!(index.destination(&web).is_some(), "another cluster domain");
}

#[test]
fn load_balancer_annotations_weft_s_first() {
    let mut index = shop();
    let checkout = index
        .destination(&authority("checkout.shop.svc.cluster.local:8080"))
        .unwrap();
    assert_eq!(
        checkout.load_balancer,
        LoadBalancer::RoundRobin,
        "Linkerd's"
    );
    assert_eq!(index.service_problems().count(), 0);

    let mut service = item("Service", "checkout");
    service["metadata"]["annotations"]["weft.io/load-balancer"] = json!("p2c");
    index.apply(
        serde_json::from_value::<Service>(service.clone())
            .unwrap()
            .into(),
    );
    let checkout = index
        .destination(&authority("checkout.shop.svc.cluster.local:8080"))
        .unwrap();
    assert_eq!(checkout.load_balancer, LoadBalancer::P2c);

    service["metadata"]["annotations"]["weft.io/load-balancer"] = json!("fastest");
    index.apply(serde_json::from_value::<Service>(service).unwrap().into());
    let checkout = index
        .destination(&authority("checkout.shop.svc.cluster.local:8080"))
        .unwrap();
    assert_eq!(checkout.load_balancer, LoadBalancer::Ewma, "the default");
    let problems: Vec<String> = index
        .service_problems()
        .map(|(service, problem)| format!("{service}: {problem}"))
        .collect();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("shop/checkout: weft.io/load-balancer: \"fastest\""),
        "{problems:?}"
    );
}

#[test]
fn slice_churn_that_discovery_does_not_read_changes_nothing() {
    let mut index = shop();
    let revision = index.revision();
    let mut slice = item("EndpointSlice", "web-x7k2m");
    slice["metadata"]["resourceVersion"] = json!("48200");
    slice["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"] =
        json!("2025-05-02T09:25:00Z");
    slice["endpoints"][0]["conditions"]["serving"] = json!(true);
    let slice: EndpointSlice = serde_json::from_value(slice).unwrap();
    assert!(!index.apply(slice.into()));
    let mut service = item("Service", "web");
    service["metadata"]["resourceVersion"] = json!("48201");
    service["status"] = json!({"loadBalancer": {"ingress": [{"ip": "172.18.0.5"}]}});
    assert!(!index.apply(serde_json::from_value::<Service>(service).unwrap().into()));
    assert_eq!(index.revision(), revision);
}

#[test]
fn a_slice_edit_moves_the_endpoints() {
    let mut index = shop();
    let mut slice = item("EndpointSlice", "web-x7k2m");
    slice["endpoints"][1]["conditions"]["ready"] = json!(true);
    let slice: EndpointSlice = serde_json::from_value(slice).unwrap();
    assert!(index.apply(slice.into()));
    assert_eq!(
        addrs(&index, "web.shop.svc.cluster.local:80").unwrap(),
        ["10.244.1.12:8080", "10.244.1.31:8080", "10.244.2.15:8080"]
    );

    let gone = EndpointSliceRef::new("shop", "web-q9vtw");
    assert!(index.apply(Event::Deleted(ResourceKey::EndpointSlice(gone))));
    assert_eq!(
        addrs(&index, "web.shop.svc.cluster.local:80").unwrap(),
        ["10.244.1.12:8080", "10.244.1.31:8080"]
    );

    let web = ServiceRef::new("shop", "web");
    assert!(index.apply(Event::Deleted(ResourceKey::Service(web))));
    assert_eq!(addrs(&index, "web.shop.svc.cluster.local:80"), None);
    assert!(index.apply(Event::Reset(Objects::Services(Vec::new()))));
    assert_eq!(addrs(&index, "checkout.shop.svc.cluster.local:8080"), None);
}

#[test]
fn an_endpoint_of_a_pod_the_index_does_not_know_carries_its_name() {
    let index = index_with([
        Event::Reset(Objects::Services(all::<Service>("Service"))),
        Event::Reset(Objects::EndpointSlices(all::<EndpointSlice>(
            "EndpointSlice",
        ))),
    ]);
    let checkout = index
        .destination(&authority("checkout.shop.svc.cluster.local:8080"))
        .unwrap();
    let pod = checkout.endpoints[0].pod.as_ref().unwrap();
    assert_eq!(pod.workload.name, "checkout-6c9d8b7f5-mq7vz");
    assert_eq!((pod.service_account.as_ref(), pod.meshed), (None, false));
}

/// The local mesh: every pod at 127.0.0.1, one slice per replica, each at
/// its sidecar's inbound port.
#[test]
fn replicas_on_loopback_have_a_slice_each() {
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": "demo", "name": "backend"},
        "spec": {"ports": [{"name": "http", "port": 8081}]},
    }))
    .unwrap();
    let slice = |name: &str, port: u16| -> EndpointSlice {
        serde_json::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"namespace": "demo", "name": name,
                         "labels": {"kubernetes.io/service-name": "backend"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port}],
            "endpoints": [{"addresses": ["127.0.0.1"],
                           "targetRef": {"kind": "Pod", "name": name}}],
        }))
        .unwrap()
    };
    let index = index_with([
        service.into(),
        slice("backend-0", 4243).into(),
        slice("backend-1", 4244).into(),
        slice("backend-2", 4245).into(),
    ]);
    let backend = index
        .destination(&authority("backend.demo.svc.cluster.local:8081"))
        .unwrap();
    let found: Vec<(String, String)> = backend
        .endpoints
        .iter()
        .map(|e| {
            (
                e.addr.to_string(),
                e.pod.as_ref().unwrap().workload.to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("127.0.0.1:4243".to_string(), "demo/backend-0".to_string()),
            ("127.0.0.1:4244".to_string(), "demo/backend-1".to_string()),
            ("127.0.0.1:4245".to_string(), "demo/backend-2".to_string()),
        ]
    );
}

#[test]
fn owners_are_named_as_linkerd_names_them() {
    let owned = |kind: &str, name: &str, hash: Option<&str>| {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {
                "namespace": "shop", "name": "p",
                "labels": hash.map(|h| json!({"pod-template-hash": h})),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": kind, "name": name,
                                     "uid": "u", "controller": true}],
            },
        }))
        .unwrap();
        Owner::of(&pod).map(|owner| (owner.kind.label(), owner.name))
    };
    let named = |label: &'static str, name: &str| Some((label, name.to_string()));
    assert_eq!(
        owned("ReplicaSet", "web-7d4b9c6f8", Some("7d4b9c6f8")),
        named("deployment", "web")
    );
    assert_eq!(
        owned("ReplicaSet", "web-7d4b9c6f8", None),
        named("replicaset", "web-7d4b9c6f8"),
        "a ReplicaSet of its own"
    );
    assert_eq!(
        owned("ReplicaSet", "web-5f8c7d9b4", Some("7d4b9c6f8")),
        named("replicaset", "web-5f8c7d9b4")
    );
    assert_eq!(owned("StatefulSet", "db", None), named("statefulset", "db"));
    assert_eq!(
        owned("DaemonSet", "agent", None),
        named("daemonset", "agent")
    );
    assert_eq!(owned("Job", "migrate-29", None), named("job", "migrate-29"));
    assert_eq!(owned("Node", "kind-worker", None), None);
}

#[test]
fn services_sharing_a_cluster_ip_are_told_apart_by_their_port() {
    let service = |name: &str, port: u16| -> Event {
        serde_json::from_value::<Service>(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": "demo", "name": name},
            "spec": {"clusterIP": "127.0.0.1", "ports": [{"port": port}]},
        }))
        .unwrap()
        .into()
    };
    let index = index_with([service("app", 8080), service("backend", 8081)]);
    let named = |text: &str| {
        index
            .destination(&authority(text))
            .map(|found| found.service.name)
    };
    assert_eq!(named("127.0.0.1:8080").as_deref(), Some("app"));
    assert_eq!(named("127.0.0.1:8081").as_deref(), Some("backend"));
    assert_eq!(named("127.0.0.1:9"), None, "no guess");
}
