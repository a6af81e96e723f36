//! `weft check --proxy`: the meshed pods' proxies.

use super::*;

#[test]
fn a_proxy_at_another_version_warns_naming_its_pod() {
    let mut pods: Vec<Pod> = items("meshed-pods.json");
    let annotations = pods[1].metadata.annotations.as_mut().unwrap();
    annotations.insert("weft.io/proxy-version".into(), "0.0.9".into());
    let snapshot = Snapshot {
        data_plane_pods: Ok(pods),
        ..healthy()
    };
    let (line, error, passed) = only_problem(&snapshot, &with_proxy());
    assert_eq!(line, "‼ data plane and control plane versions match");
    assert_eq!(
        error,
        "some proxies are not running the control plane's version 0.1.0:\n\
         pod shop/orders-7b6c5d4e8-m2n3p runs proxy 0.0.9"
    );
    assert!(passed);
}

#[test]
fn a_proxy_not_ready_fails() {
    let mut pods: Vec<Pod> = items("meshed-pods.json");
    let statuses = pods[0].status.as_mut().unwrap().container_statuses.as_mut();
    statuses.unwrap()[0].ready = false;
    let snapshot = Snapshot {
        data_plane_pods: Ok(pods),
        ..healthy()
    };
    let (line, error, passed) = only_problem(&snapshot, &with_proxy());
    assert_eq!(line, "× data plane proxies are ready");
    assert_eq!(
        error,
        "pod shop/web-5d8f7c6b9-q4w7e: container weft-proxy is not ready"
    );
    assert!(!passed);
}

#[test]
fn no_meshed_pods_warns() {
    let snapshot = Snapshot {
        data_plane_pods: Ok(Vec::new()),
        ..healthy()
    };
    let options = Options {
        namespace: Some("shop".into()),
        ..with_proxy()
    };
    let snapshot = Snapshot {
        data_plane_namespace: Ok(Some(Namespace::default())),
        ..snapshot
    };
    let (line, error, passed) = only_problem(&snapshot, &options);
    assert_eq!(line, "‼ data plane proxies are ready");
    assert_eq!(error, "no meshed pods in namespace shop");
    assert!(passed);
}

#[test]
fn a_proxy_as_a_native_sidecar_counts_as_meshed() {
    let mut pods: Vec<Pod> = items("meshed-pods.json");
    let pod = &mut pods[0];
    let spec = pod.spec.as_mut().unwrap();
    let proxy = spec.containers.remove(0);
    spec.init_containers.get_or_insert_default().push(proxy);
    let status = pod.status.as_mut().unwrap();
    let proxy_status = status.container_statuses.as_mut().unwrap().remove(0);
    let mut unready = proxy_status.clone();
    status
        .init_container_statuses
        .get_or_insert_default()
        .push(proxy_status);
    let snapshot = Snapshot {
        data_plane_pods: Ok(pods.clone()),
        ..healthy()
    };
    let categories = checks(&snapshot, &with_proxy(), now());
    assert_eq!(problems(&categories), Vec::<String>::new());
    unready.ready = false;
    let statuses = pods[0]
        .status
        .as_mut()
        .unwrap()
        .init_container_statuses
        .as_mut();
    *statuses.unwrap().last_mut().unwrap() = unready;
    let snapshot = Snapshot {
        data_plane_pods: Ok(pods),
        ..healthy()
    };
    let (line, _, _) = only_problem(&snapshot, &with_proxy());
    assert_eq!(line, "× data plane proxies are ready");
}
