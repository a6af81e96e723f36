//! `stat` and `edges` over the embedded source, fed real scrapes of the
//! demo's backend and load sidecars taken 10 s apart (load sent backend 25
//! requests and app 5 in between, over mTLS).

use std::time::{Duration, Instant};

use super::super::embedded::{Embedded, pod_labels};
use super::super::scrape::parse;
use super::super::window::Window;
use super::super::{EdgesQuery, ResourceKind, StatQuery, edges, stat};
use super::Meshed;
use crate::index::{Owner, OwnerKind, PodSummary, WorkloadRef};

fn pod(name: &str, account: &str, deployment: Option<&str>, meshed: bool) -> PodSummary {
    PodSummary {
        pod: WorkloadRef {
            namespace: "demo".into(),
            name: name.into(),
        },
        owner: deployment.map(|name| Owner {
            kind: OwnerKind::Deployment,
            name: name.into(),
        }),
        service_account: account.into(),
        admin: None,
        meshed,
    }
}

fn pods() -> Vec<PodSummary> {
    vec![
        pod("backend", "backend", Some("backend"), true),
        pod("backend-1", "backend", Some("backend"), true),
        pod("backend-2", "backend", Some("backend"), false),
        pod("load", "load", None, true),
    ]
}

/// backend's and load's sidecars, scraped 10 s ago and now.
fn source() -> Embedded {
    let now = Instant::now();
    let mut window = Window::new(Duration::from_secs(300));
    let [backend, _, _, load] = &pods()[..] else {
        unreachable!()
    };
    let scrapes = [
        (
            backend,
            include_str!("../fixtures/backend-1.txt"),
            include_str!("../fixtures/backend-2.txt"),
        ),
        (
            load,
            include_str!("../fixtures/load-1.txt"),
            include_str!("../fixtures/load-2.txt"),
        ),
    ];
    for (pod, before, after) in scrapes {
        let target = pod.pod.name.clone();
        window.record(
            &target,
            pod_labels(pod),
            now - Duration::from_secs(10),
            parse(before),
        );
        window.record(&target, pod_labels(pod), now, parse(after));
    }
    Embedded::with_window(window)
}

fn query(kind: ResourceKind) -> StatQuery {
    StatQuery {
        kind,
        name: None,
        namespace: Some("demo".into()),
        window: Duration::from_secs(60),
        from: None,
        to: None,
    }
}

#[tokio::test]
async fn a_deployment_s_row_has_its_meshed_pods_success_rate_rps_and_latency() {
    let pods = pods();
    let rows = stat(&source(), Some(&pods), &query(ResourceKind::Deployment))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "only backend is a deployment: {rows:?}");
    let backend = &rows[0];
    assert_eq!(
        (backend.namespace.as_str(), backend.name.as_str()),
        ("demo", "backend")
    );
    assert_eq!(
        backend.meshed,
        Some(Meshed {
            meshed: 2,
            total: 3
        })
    );
    assert_eq!(backend.success_rate, Some(1.0));
    assert_eq!(backend.rps, 2.5);
    let near =
        |value: Option<f64>, expected: f64| value.is_some_and(|v| (v - expected).abs() < 1e-9);
    assert!(near(backend.latency_ms_p50, 12.5 / 23.0), "{backend:?}");
    assert!(near(backend.latency_ms_p99, 8.75), "{backend:?}");
    assert_eq!(backend.tcp_connections, Some(1.0));
}

#[tokio::test]
async fn pods_without_traffic_are_rows_too_and_without_inventory_only_scraped_pods_count() {
    let pods = pods();
    let rows = stat(&source(), Some(&pods), &query(ResourceKind::Pod))
        .await
        .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["backend", "backend-1", "backend-2", "load"]);
    assert_eq!((rows[1].rps, rows[1].success_rate), (0.0, None));

    let rows = stat(&source(), None, &query(ResourceKind::Pod))
        .await
        .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["backend", "load"]);
    assert_eq!(
        rows[0].meshed,
        Some(Meshed {
            meshed: 1,
            total: 1
        })
    );
}

#[tokio::test]
async fn a_service_s_figures_are_its_clients_and_from_names_the_sender() {
    let rows = stat(&source(), None, &query(ResourceKind::Service))
        .await
        .unwrap();
    let by_name: Vec<(&str, f64)> = rows.iter().map(|r| (r.name.as_str(), r.rps)).collect();
    assert_eq!(by_name, [("app", 0.5), ("backend", 2.5)]);
    assert_eq!(rows[1].meshed, None);

    let mut from_load = query(ResourceKind::Pod);
    from_load.from = Some("pod/load".parse().unwrap());
    let rows = stat(&source(), None, &from_load).await.unwrap();
    let by_name: Vec<(&str, f64)> = rows.iter().map(|r| (r.name.as_str(), r.rps)).collect();
    assert_eq!(by_name, [("app", 0.5), ("backend", 2.5)]);
}

#[tokio::test]
async fn an_edge_is_secured_when_the_server_saw_the_client_s_identity() {
    let query = EdgesQuery {
        kind: ResourceKind::Pod,
        namespace: Some("demo".into()),
        window: Duration::from_secs(60),
    };
    let edges = edges(&source(), &query).await.unwrap();
    assert_eq!(edges.len(), 2, "{edges:?}");
    let (to_app, to_backend) = (&edges[0], &edges[1]);
    assert_eq!(
        (to_backend.src.as_str(), to_backend.dst.as_str()),
        ("load", "backend")
    );
    assert!(to_backend.secured);
    assert_eq!(
        to_backend.client_id,
        "load.demo.serviceaccount.identity.weft-system.cluster.local"
    );
    assert_eq!(
        to_backend.server_id,
        "backend.demo.serviceaccount.identity.weft-system.cluster.local"
    );
    assert_eq!(to_backend.rps, 2.5);
    // app's proxy was not scraped: nothing shows what it saw.
    assert_eq!((to_app.dst.as_str(), to_app.secured), ("app", false));
    assert_eq!(to_app.client_id, "");
}

#[tokio::test]
async fn routes_show_how_a_split_shared_its_requests_for_the_pod_and_for_the_service() {
    use super::super::{RoutesQuery, routes};
    let query = |target: &str| RoutesQuery {
        target: target.parse().unwrap(),
        namespace: "demo".into(),
        window: Duration::from_secs(60),
        to: None,
    };
    for target in ["pod/load", "svc/backend"] {
        let rows = routes(&source(), &query(target)).await.unwrap();
        assert_eq!(rows.len(), 1, "{target}: {rows:?}");
        let split = &rows[0];
        assert_eq!(
            (split.route.as_str(), split.direction.as_str()),
            ("backend", "outbound")
        );
        let shares: Vec<(&str, f64)> = split
            .backends
            .iter()
            .map(|(b, r)| (b.as_str(), *r))
            .collect();
        assert_eq!(
            shares,
            [
                ("app.demo.svc.cluster.local:8080", 0.5),
                ("backend.demo.svc.cluster.local:8081", 2.5)
            ],
            "{target}"
        );
    }
    let rows = routes(&source(), &query("svc/web")).await.unwrap();
    assert!(rows.is_empty(), "no split sends to web: {rows:?}");

    // `--to`: the workload's routes that send to that Service only.
    let to = |service: &str| RoutesQuery {
        to: Some(super::super::ServiceRef {
            name: service.into(),
            namespace: "demo".into(),
        }),
        ..query("pod/load")
    };
    let rows = routes(&source(), &to("backend")).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].route, "backend");
    let rows = routes(&source(), &to("web")).await.unwrap();
    assert!(rows.is_empty(), "load sends nothing to web: {rows:?}");
}

#[test]
fn routes_to_takes_a_service_from_a_workload() {
    use super::super::http::routes_query;
    let params = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<std::collections::HashMap<_, _>>()
    };
    let query = routes_query(&params(&[
        ("target", "deploy/web"),
        ("namespace", "demo"),
        ("to", "svc/books"),
        ("to_namespace", "shop"),
    ]))
    .unwrap();
    let to = query.to.unwrap();
    assert_eq!((to.name.as_str(), to.namespace.as_str()), ("books", "shop"));
    let error = routes_query(&params(&[("target", "svc/web"), ("to", "svc/books")])).unwrap_err();
    assert!(error.contains("give a workload"), "{error}");
    let error =
        routes_query(&params(&[("target", "deploy/web"), ("to", "deploy/books")])).unwrap_err();
    assert!(error.contains("to a Service"), "{error}");
}
