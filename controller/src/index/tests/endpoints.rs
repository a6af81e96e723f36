//! Which meshed workload receives at an address.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::*;

/// An injected pod as the API server returns it once scheduled: the app,
/// the `weft-proxy` sidecar with its `weft-inbound` port, and a status.
fn injected_pod(name: &str, ip: &str, inbound_port: u16) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": "shop", "name": name, "labels": {"app": name}},
        "spec": {
            "serviceAccountName": name,
            "containers": [
                {"name": name, "image": "ghcr.io/shop/web:1.4",
                 "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]},
                {"name": "weft-proxy", "image": "ghcr.io/weft/proxy:0.1",
                 "ports": [{"name": "weft-inbound", "containerPort": inbound_port, "protocol": "TCP"},
                           {"name": "weft-admin", "containerPort": 4191, "protocol": "TCP"}]},
            ],
        },
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    })
}

fn pod(value: Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

fn at(addr: &str) -> SocketAddr {
    addr.parse().unwrap()
}

fn found<'a>(index: &'a Index, addr: &str) -> Option<(String, &'a str)> {
    index
        .endpoint(at(addr))
        .map(|(pod, account)| (pod.to_string(), account))
}

#[test]
fn a_pod_alone_at_its_ip_receives_on_every_port() {
    let mut dual_stack = injected_pod("web", "10.244.1.12", 4143);
    dual_stack["status"]["podIPs"] = json!([{"ip": "10.244.1.12"}, {"ip": "fd00:10:244:1::c"}]);
    let index = index_with([pod(dual_stack).into()]);

    let web = Some(("shop/web".to_string(), "web"));
    assert_eq!(found(&index, "10.244.1.12:8080"), web);
    assert_eq!(found(&index, "10.244.1.12:4143"), web);
    assert_eq!(found(&index, "[fd00:10:244:1::c]:8080"), web);
    assert_eq!(found(&index, "10.244.1.13:8080"), None);
}

#[test]
fn a_native_sidecar_in_the_init_containers_meshes_its_pod() {
    let mut native = injected_pod("backup", "10.244.1.20", 4143);
    let proxy = native["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    native["spec"]["initContainers"] = json!([proxy]);
    native["spec"]["initContainers"][0]["restartPolicy"] = "Always".into();
    let index = index_with([pod(native).into()]);
    assert_eq!(
        found(&index, "10.244.1.20:4143"),
        Some(("shop/backup".to_string(), "backup"))
    );

    let mut plain = injected_pod("plain", "10.244.1.21", 4143);
    plain["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .remove(1);
    let index = index_with([pod(plain).into()]);
    assert_eq!(found(&index, "10.244.1.21:4143"), None, "no proxy anywhere");
}

#[test]
fn pods_sharing_an_ip_are_told_apart_by_their_inbound_port() {
    let mut index = index_with([
        pod(injected_pod("app", "127.0.0.1", 4143)).into(),
        pod(injected_pod("backend", "127.0.0.1", 4243)).into(),
        pod(injected_pod("load", "127.0.0.1", 4343)).into(),
    ]);
    assert_eq!(
        found(&index, "127.0.0.1:4243"),
        Some(("shop/backend".to_string(), "backend"))
    );
    assert_eq!(
        found(&index, "127.0.0.1:4143"),
        Some(("shop/app".to_string(), "app"))
    );
    assert_eq!(found(&index, "127.0.0.1:9"), None, "no one's inbound port");

    // Two sidecars claiming one port: no guess.
    index.apply(pod(injected_pod("twin", "127.0.0.1", 4243)).into());
    assert_eq!(found(&index, "127.0.0.1:4243"), None);

    // Alone again at the address, a pod receives on every port.
    for name in ["app", "load", "twin"] {
        assert!(
            index.apply(Event::Deleted(ResourceKey::Pod(WorkloadRef::new(
                "shop", name
            ))))
        );
    }
    assert_eq!(
        found(&index, "127.0.0.1:9"),
        Some(("shop/backend".to_string(), "backend"))
    );
}

#[test]
fn a_pod_without_the_sidecar_is_not_meshed() {
    let mut plain = injected_pod("db", "10.244.2.9", 4143);
    plain["spec"]["containers"] = json!([{"name": "db", "image": "postgres:17"}]);
    let index = index_with([pod(plain).into()]);
    assert!(index.workloads().any(|w| w.name == "db"));
    assert_eq!(found(&index, "10.244.2.9:5432"), None);
}

#[test]
fn a_pod_on_the_host_network_is_not_an_endpoint() {
    let mut on_host = injected_pod("agent", "192.168.1.20", 4143);
    on_host["spec"]["hostNetwork"] = json!(true);
    let index = index_with([pod(on_host).into()]);
    assert_eq!(found(&index, "192.168.1.20:4143"), None);
}

#[test]
fn a_finished_pod_gives_its_ip_up() {
    let mut failed = injected_pod("job-1", "10.244.1.30", 4143);
    failed["status"]["phase"] = json!("Failed");
    let mut index = index_with([pod(failed.clone()).into()]);
    assert_eq!(found(&index, "10.244.1.30:8080"), None);

    // Its address given to a new pod: that one, not an ambiguity.
    index.apply(pod(injected_pod("job-2", "10.244.1.30", 4143)).into());
    assert_eq!(
        found(&index, "10.244.1.30:8080"),
        Some(("shop/job-2".to_string(), "job-2"))
    );
    failed["status"]["phase"] = json!("Succeeded");
    assert!(!index.apply(pod(failed).into()), "finished either way");
}

#[test]
fn a_status_update_moves_the_endpoint() {
    let mut pending = injected_pod("web", "10.244.1.12", 4143);
    pending["status"] = json!({"phase": "Pending"});
    let mut index = index_with([pod(pending).into()]);
    assert_eq!(found(&index, "10.244.1.12:8080"), None);

    let revision = index.revision();
    assert!(index.apply(pod(injected_pod("web", "10.244.1.12", 4143)).into()));
    assert_eq!(index.revision(), revision + 1);
    assert!(found(&index, "10.244.1.12:8080").is_some());

    // Recreated under the same name, it comes back at another address.
    assert!(index.apply(pod(injected_pod("web", "10.244.3.4", 4143)).into()));
    assert_eq!(found(&index, "10.244.1.12:8080"), None);
    assert!(found(&index, "10.244.3.4:8080").is_some());

    // Readiness churn moves nothing.
    let mut unready = injected_pod("web", "10.244.3.4", 4143);
    unready["status"]["conditions"][0]["status"] = json!("False");
    assert!(!index.apply(pod(unready).into()));
}

#[test]
fn a_relist_replaces_every_address() {
    let mut index = index_with([pod(injected_pod("web", "10.244.1.12", 4143)).into()]);
    let relist = vec![pod(injected_pod("api", "10.244.1.40", 4143))];
    assert!(index.apply(Event::Reset(Objects::Pods(relist))));
    assert_eq!(found(&index, "10.244.1.12:8080"), None);
    assert_eq!(
        found(&index, "10.244.1.40:8080"),
        Some(("shop/api".to_string(), "api"))
    );
}
