//! Service discovery and balancing through real processes: the controller
//! reads a Service and its EndpointSlices from its directory, a client's
//! sidecar follows them over the Destination API, and replicas of
//! `weft-demo http` on loopback receive the requests. Each replica names
//! itself in `x-demo-name`, so the test sees where each request went.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use weft_tests::controller::RunningController;
use weft_tests::demo::{Demo, RunningDemo};
use weft_tests::http1::Connection;
use weft_tests::mesh::Mesh;
use weft_tests::proxy::RunningProxy;
use weft_tests::{closed_port, eventually};

const SERVICE: &str = "backend.demo.svc.cluster.local:8081";

/// A Service `backend` in namespace `demo` and a client pod whose sidecar
/// sends to it.
struct Backend {
    mesh: Mesh,
    controller: RunningController,
    client: RunningProxy,
}

impl Backend {
    async fn start(name: &str, replicas: &[&RunningDemo], balancer: &str) -> Self {
        let mesh = Mesh::new(name);
        mesh.write(
            "workloads.yaml",
            &format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\n\
                 apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\n  namespace: demo\n\
                 spec:\n  containers:\n  - name: client\n    image: client\n---\n\
                 apiVersion: v1\nkind: Service\nmetadata:\n  name: backend\n  namespace: demo\n  \
                 annotations:\n    weft.io/load-balancer: {balancer}\n\
                 spec:\n  clusterIP: 10.96.0.81\n  ports:\n  - name: http\n    port: 8081\n    \
                 targetPort: 8080\n"
            ),
        );
        serve_from(&mesh, replicas);
        let controller = mesh.controller().await;
        let client = mesh
            .workload_proxy("demo/client", &controller.url(), closed_port())
            .await;
        Backend {
            mesh,
            controller,
            client,
        }
    }

    fn serve_from(&self, replicas: &[&RunningDemo]) {
        serve_from(&self.mesh, replicas);
    }
}

/// The Service's endpoints become `replicas`: one EndpointSlice each, since
/// on loopback they differ by port.
fn serve_from(mesh: &Mesh, replicas: &[&RunningDemo]) {
    let slices: Vec<String> = replicas
        .iter()
        .map(|replica| {
            let port = replica.addr.port();
            format!(
                "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  \
                     name: backend-{port}\n  namespace: demo\n  labels:\n    \
                     kubernetes.io/service-name: backend\naddressType: IPv4\nports:\n\
                     - name: http\n  port: {port}\nendpoints:\n- addresses: [127.0.0.1]\n  \
                     conditions:\n    ready: true\n"
            )
        })
        .collect();
    mesh.write("endpoints.yaml", &slices.join("---\n"));
}

/// `requests` GETs of `path` to the service through the client's sidecar,
/// over `connections` kept-alive connections at once: how many each replica
/// answered (by `x-demo-name`), and the statuses of the failed ones.
async fn spread(
    outbound: SocketAddr,
    requests: usize,
    connections: usize,
    path: &str,
) -> (BTreeMap<String, usize>, Vec<String>) {
    let path = path.to_string();
    let senders: Vec<_> = (0..connections)
        .map(|_| {
            let path = path.clone();
            tokio::spawn(async move {
                let mut connection = Connection::open(outbound).await;
                let mut answers = Vec::new();
                for _ in 0..requests / connections {
                    let reply = connection.get(SERVICE, &path).await;
                    answers.push(match reply.status.as_u16() {
                        200 => Ok(reply.header("x-demo-name").unwrap_or("?").to_string()),
                        status => Err(format!(
                            "{status} {}",
                            reply.header("x-weft-proxy-error").unwrap_or("")
                        )),
                    });
                }
                answers
            })
        })
        .collect();
    let mut served = BTreeMap::new();
    let mut failed = Vec::new();
    for sender in senders {
        for answer in sender.await.unwrap() {
            match answer {
                Ok(name) => *served.entry(name).or_default() += 1,
                Err(status) => failed.push(status),
            }
        }
    }
    (served, failed)
}

#[tokio::test]
async fn a_slow_replica_receives_little_of_the_load() {
    let fast_a = Demo::http("a").spawn().await;
    let fast_b = Demo::http("b").spawn().await;
    let slow = Demo::slow_http("slow", 50).spawn().await;
    let backend = Backend::start("slow-replica", &[&fast_a, &fast_b, &slow], "ewma").await;

    // Every replica answers: all three are in the balancer.
    let (served, failed) = spread(backend.client.outbound, 60, 3, "/").await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(served.len(), 3, "{served:?}");

    let (served, failed) = spread(backend.client.outbound, 600, 4, "/").await;
    assert!(failed.is_empty(), "{failed:?}");
    let slow_share = served.get("slow").copied().unwrap_or(0) as f64 / 600.0;
    eprintln!("answered by each replica: {served:?}");
    assert!(
        slow_share < 0.10,
        "the replica 50 ms slower got {:.1} % of requests: {served:?}",
        slow_share * 100.0
    );
}

#[tokio::test]
async fn round_robin_gives_every_replica_the_same_share() {
    let replicas = [
        Demo::http("a").spawn().await,
        Demo::http("b").spawn().await,
        Demo::slow_http("slow", 20).spawn().await,
    ];
    let refs: Vec<&RunningDemo> = replicas.iter().collect();
    let backend = Backend::start("round-robin", &refs, "round-robin").await;
    let (served, failed) = spread(backend.client.outbound, 90, 1, "/").await;
    assert!(failed.is_empty(), "{failed:?}");
    let shares: Vec<usize> = served.values().copied().collect();
    assert_eq!(shares, [30, 30, 30], "{served:?}");
}

#[tokio::test]
async fn a_replica_that_dies_is_ejected_and_then_no_request_fails() {
    let a = Demo::http("a").spawn().await;
    let b = Demo::http("b").spawn().await;
    let doomed = Demo::http("doomed").spawn().await;
    let backend = Backend::start("dying-replica", &[&a, &b, &doomed], "ewma").await;
    let (served, failed) = spread(backend.client.outbound, 60, 3, "/").await;
    assert!(
        failed.is_empty() && served.len() == 3,
        "{served:?} {failed:?}"
    );

    drop(doomed);
    // While its death is detected, a request may go out on a kept-alive
    // connection to it that the proxy has not yet seen close, and fail: at
    // most one per such connection, and there are at most as many as the
    // requests that were in flight at once. A request that finds no
    // connection goes to another replica.
    let (_, failed) = spread(backend.client.outbound, 60, 3, "/").await;
    eprintln!("failed while the replica's death was detected: {failed:?}");
    assert!(failed.len() <= 3, "{failed:?}");
    // Then none fails, and none goes to it.
    let (served, failed) = spread(backend.client.outbound, 300, 3, "/").await;
    assert!(
        failed.is_empty(),
        "failed after the replica died: {failed:?}"
    );
    assert!(!served.contains_key("doomed"), "{served:?}");
    let metrics = backend.client.metrics().await;
    let labels = |state| [("authority", SERVICE), ("endpoint_state", state)];
    let count = |state| metrics.sum("outbound_http_balancer_endpoints", &labels(state));
    assert_eq!(
        (count("ready"), count("pending")),
        (2.0, 1.0),
        "the dead replica is counted as ejected"
    );
}

#[tokio::test]
async fn replicas_come_and_go_under_load_without_a_failed_request() {
    let a = Demo::http("a").spawn().await;
    let b = Demo::http("b").spawn().await;
    let c = Demo::http("c").spawn().await;
    let backend = Backend::start("churn", &[&a, &b], "ewma").await;
    let load = {
        let client = backend.client.outbound;
        tokio::spawn(async move { spread(client, 1200, 4, "/delay/1").await })
    };
    // c joins, then a leaves (its process still running, as a terminating
    // pod leaves its Service before it stops).
    backend.serve_from(&[&a, &b, &c]);
    eventually("c receives requests", || async {
        let reply = Connection::open(backend.client.outbound)
            .await
            .get(SERVICE, "/")
            .await;
        (reply.header("x-demo-name") == Some("c"))
            .then_some(())
            .ok_or_else(|| format!("{:?}", reply.header("x-demo-name")))
    })
    .await;
    backend.serve_from(&[&b, &c]);
    let (served, failed) = load.await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(served.contains_key("c"), "{served:?}");
    // Once a's removal is seen, nothing more goes to it.
    let (served, _) = spread(backend.client.outbound, 60, 2, "/").await;
    assert!(!served.contains_key("a"), "{served:?}");
}

#[tokio::test]
async fn with_no_endpoints_requests_fail_fast_with_503_and_the_last_endpoints_outlive_the_controller()
 {
    let a = Demo::http("a").spawn().await;
    let backend = Backend::start("no-endpoints", &[&a], "ewma").await;
    let (served, _) = spread(backend.client.outbound, 4, 1, "/").await;
    assert_eq!(served.get("a"), Some(&4));

    backend.serve_from(&[]);
    eventually("the service has no endpoints", || async {
        let reply = Connection::open(backend.client.outbound)
            .await
            .get(SERVICE, "/")
            .await;
        match (reply.status.as_u16(), reply.header("x-weft-proxy-error")) {
            (503, Some("no ready endpoint")) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Endpoints again, then the controller goes away: they keep serving.
    backend.serve_from(&[&a]);
    eventually("a serves again", || async {
        let reply = Connection::open(backend.client.outbound)
            .await
            .get(SERVICE, "/")
            .await;
        (reply.status == 200)
            .then_some(())
            .ok_or(format!("{}", reply.status))
    })
    .await;
    let Backend {
        controller, client, ..
    } = backend;
    controller.kill().await;
    let (served, failed) = spread(client.outbound, 20, 2, "/").await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(served.get("a"), Some(&20));
}

#[tokio::test]
async fn a_name_the_controller_does_not_know_goes_where_dns_says() {
    let a = Demo::http("a").spawn().await;
    let backend = Backend::start("not-a-service", &[&a], "ewma").await;
    let elsewhere = Demo::http("elsewhere").spawn().await;
    // `localhost` is under no service domain; its port is the app's.
    let host = format!("localhost:{}", elsewhere.addr.port());
    let reply = Connection::open(backend.client.outbound)
        .await
        .get(&host, "/")
        .await;
    assert_eq!(reply.header("x-demo-name"), Some("elsewhere"));
}
