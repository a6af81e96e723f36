use std::collections::HashMap;

use weft_api::destination::{AddrSet, NoEndpoints, WeightedAddr, WeightedAddrSet};

use super::*;

fn key(authority: &str) -> Option<String> {
    let suffixes = ["svc.cluster.local".to_string()];
    service_key(&suffixes, &authority.parse().unwrap())
}

#[test]
fn names_under_the_service_domain_and_ips_are_asked_of_the_controller() {
    assert_eq!(
        key("Backend.Demo.svc.cluster.local.:8081").as_deref(),
        Some("backend.demo.svc.cluster.local:8081")
    );
    assert_eq!(
        key("backend.demo.svc.cluster.local").as_deref(),
        Some("backend.demo.svc.cluster.local:80")
    );
    assert_eq!(key("10.96.0.10:53").as_deref(), Some("10.96.0.10:53"));
    assert_eq!(key("[fd00::1]:8080").as_deref(), Some("[fd00::1]:8080"));
    for elsewhere in [
        "example.com:443",
        "svc.cluster.local:80",
        "backendsvc.cluster.local",
    ] {
        assert_eq!(key(elsewhere), None, "{elsewhere}");
    }
}

fn add(addrs: &[(&str, &str)], lb: LoadBalancer) -> Update {
    Update {
        update: Some(update::Update::Add(WeightedAddrSet {
            addrs: addrs
                .iter()
                .map(|(address, pod)| WeightedAddr {
                    address: address.to_string(),
                    weight: 10_000,
                    identity: format!(
                        "{pod}.demo.serviceaccount.identity.weft-system.cluster.local"
                    ),
                    protocol_hint: 1,
                    metric_labels: HashMap::from([("pod".to_string(), pod.to_string())]),
                })
                .collect(),
            metric_labels: HashMap::from([("service".to_string(), "backend".to_string())]),
            load_balancer: lb.into(),
        })),
    }
}

fn addrs(resolved: &Resolved) -> Vec<String> {
    match resolved {
        Resolved::Service(service) => service.endpoints.keys().map(|a| a.to_string()).collect(),
        other => panic!("not a service: {other:?}"),
    }
}

#[test]
fn updates_add_and_remove_endpoints_and_a_first_update_replaces_all() {
    let first = add(
        &[("10.0.0.1:80", "a"), ("10.0.0.2:80", "b")],
        LoadBalancer::P2c,
    );
    let resolved = apply(&Resolved::Unknown, first, true);
    assert_eq!(addrs(&resolved), ["10.0.0.1:80", "10.0.0.2:80"]);
    let Resolved::Service(service) = &resolved else {
        unreachable!()
    };
    assert_eq!(service.load_balancer, LoadBalancer::P2c);
    let meta = &service.endpoints[&"10.0.0.1:80".parse().unwrap()];
    assert_eq!(
        meta.identity.as_ref().map(|i| i.to_str().into_owned()),
        Some("a.demo.serviceaccount.identity.weft-system.cluster.local".to_string())
    );
    let labels: Vec<_> = meta
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(labels, ["dst_pod=a", "dst_service=backend"]);

    let more = add(&[("10.0.0.3:80", "c")], LoadBalancer::P2c);
    let resolved = apply(&resolved, more, false);
    assert_eq!(
        addrs(&resolved),
        ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"]
    );
    let remove = Update {
        update: Some(update::Update::Remove(AddrSet {
            addresses: vec!["10.0.0.1:80".into()],
        })),
    };
    let resolved = apply(&resolved, remove, false);
    assert_eq!(addrs(&resolved), ["10.0.0.2:80", "10.0.0.3:80"]);

    // After a reconnection, the first update is the whole truth.
    let again = add(&[("10.0.0.9:80", "z")], LoadBalancer::Ewma);
    let resolved = apply(&resolved, again, true);
    assert_eq!(addrs(&resolved), ["10.0.0.9:80"]);
}

#[test]
fn no_endpoints_empties_the_service_and_no_service_routes_by_dns() {
    let resolved = apply(
        &Resolved::Unknown,
        add(&[("10.0.0.1:80", "a")], LoadBalancer::Ewma),
        true,
    );
    let none = |exists| Update {
        update: Some(update::Update::NoEndpoints(NoEndpoints { exists })),
    };
    let empty = apply(&resolved, none(true), false);
    assert!(addrs(&empty).is_empty());
    assert!(matches!(
        apply(&resolved, none(false), false),
        Resolved::NotAService
    ));
}
