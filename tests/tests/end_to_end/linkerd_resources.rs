//! Linkerd's resources, unchanged, through the real controller and a real
//! sidecar: a ServiceProfile's timeout answers 504, its `isRetryable` route
//! retries and another does not, and an SMI TrafficSplit of 900m/100m
//! lands near its weights. The client names no plugins: the controller
//! compiles `split`, `retry` and `metrics` into its chain from the
//! shipped plugins in `weft-system`. A Server and its ServerAuthorization
//! compile into the server's `authz`: the service account they name is
//! admitted over mTLS, a plaintext client gets 403. A profile's retry budget
//! caps the retries of a route that always fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use weft_tests::controller::RunningController;
use weft_tests::demo::{Demo, RunningDemo};
use weft_tests::http1::Connection;
use weft_tests::mesh::Mesh;
use weft_tests::proxy::RunningProxy;
use weft_tests::{closed_port, eventually, http1, plugins};

const BOOKS: &str = "books.demo.svc.cluster.local:8081";

/// Services `books` and `books-v2` (each one `weft-demo http` on
/// loopback), the shipped plugins in `weft-system`, `resources` beside
/// them, and pod `demo/client`'s sidecar, ready with its compiled chain.
struct Booksapp {
    _mesh: Mesh,
    _controller: RunningController,
    _books: [RunningDemo; 2],
    client: RunningProxy,
}

impl Booksapp {
    async fn start(name: &str, resources: &str) -> Self {
        let books = [
            Demo::http("books").spawn().await,
            Demo::http("books-v2").spawn().await,
        ];
        let mesh = Mesh::new(name);
        let mut text = String::from(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\n\
             apiVersion: v1\nkind: Namespace\nmetadata:\n  name: weft-system\n---\n\
             apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\n  namespace: demo\n\
             spec:\n  containers:\n  - name: client\n    image: client\n",
        );
        for (plugin, priority) in [("split", 20), ("retry", 10), ("metrics", 0)] {
            text += &format!(
                "---\napiVersion: weft.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  \
                 name: {plugin}\n  namespace: weft-system\nspec:\n  url: file://{}\n  \
                 priority: {priority}\n",
                plugins::component(plugin).display()
            );
        }
        for (service, demo) in [("books", &books[0]), ("books-v2", &books[1])] {
            text += &service_at(service, demo.addr);
        }
        mesh.write("workloads.yaml", &text);
        mesh.write("linkerd.yaml", resources);
        let controller = mesh.controller().await;
        let client = mesh
            .workload_proxy("demo/client", &controller.url(), closed_port())
            .await;
        Booksapp {
            _mesh: mesh,
            _controller: controller,
            _books: books,
            client,
        }
    }

    async fn get(&self, path: &str) -> (u16, Option<String>) {
        let reply = Connection::open(self.client.outbound)
            .await
            .get(BOOKS, path)
            .await;
        let name = reply.header("x-demo-name").map(str::to_string);
        (reply.status.as_u16(), name)
    }
}

/// Service `name` on port 8081, its one endpoint `addr`.
fn service_at(name: &str, addr: SocketAddr) -> String {
    let port = addr.port();
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: demo\n\
         spec:\n  ports:\n  - name: http\n    port: 8081\n---\n\
         apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {name}\n  \
         namespace: demo\n  labels:\n    kubernetes.io/service-name: {name}\n\
         addressType: IPv4\nports:\n- name: http\n  port: {port}\nendpoints:\n\
         - addresses: [127.0.0.1]\n  conditions:\n    ready: true\n"
    )
}

const PROFILE: &str = r#"apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: books.demo.svc.cluster.local
  namespace: demo
spec:
  routes:
  - name: GET /delay/{ms}
    condition:
      method: GET
      pathRegex: /delay/[0-9]+
    timeout: 300ms
  - name: GET /flaky/{n}/retried
    condition:
      method: GET
      pathRegex: /flaky/[0-9]+/retried-.*
    isRetryable: true
  - name: GET /flaky/{n}/once
    condition:
      method: GET
      pathRegex: /flaky/.*
  retryBudget:
    retryRatio: 0.2
    minRetriesPerSecond: 10
    ttl: 10s
"#;

#[tokio::test]
async fn a_service_profile_times_out_and_retries_only_retryable_routes() {
    let booksapp = Booksapp::start("service-profile", PROFILE).await;

    let (status, _) = booksapp.get("/delay/5000").await;
    assert_eq!(status, 504, "the route's 300ms timeout");
    let (status, _) = booksapp.get("/delay/0").await;
    assert_eq!(status, 200);

    // Each fails its first request with 503, then answers.
    let (status, _) = booksapp.get("/flaky/1/retried-a").await;
    assert_eq!(status, 200, "isRetryable: the 503 is retried");
    let (status, _) = booksapp.get("/flaky/1/once-a").await;
    assert_eq!(status, 503, "not retryable: the 503 reaches the client");

    let metrics = booksapp.client.metrics().await;
    let route = |name| [("rt_route", name), ("direction", "outbound")];
    assert_eq!(
        metrics.sum("route_request_total", &route("GET /flaky/{n}/retried")),
        1.0,
        "one request on the route, however many attempts"
    );
    assert_eq!(
        metrics.sum(
            "route_response_total",
            &[
                ("rt_route", "GET /delay/{ms}"),
                ("classification", "failure")
            ]
        ),
        1.0,
        "the 504 is a failure"
    );
}

#[tokio::test]
async fn a_traffic_split_of_900m_and_100m_lands_near_its_weights() {
    let split = "apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata:\n  \
                 name: books-rollout\n  namespace: demo\nspec:\n  service: books\n  backends:\n  \
                 - service: books\n    weight: 900m\n  - service: books-v2\n    weight: 100m\n";
    let booksapp = Booksapp::start("traffic-split", split).await;
    // The chain is in before the proxy is ready; the split is in it.
    eventually("a request reaches books-v2", || async {
        match booksapp.get("/").await {
            (200, Some(name)) if name == "books-v2" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    const REQUESTS: usize = 2_000;
    let mut served: BTreeMap<String, usize> = BTreeMap::new();
    let mut connection = Connection::open(booksapp.client.outbound).await;
    for _ in 0..REQUESTS {
        let reply = connection.get(BOOKS, "/").await;
        assert_eq!(reply.status.as_u16(), 200);
        let name = reply.header("x-demo-name").unwrap_or("?").to_string();
        *served.entry(name).or_default() += 1;
    }
    eprintln!("answered by each backend: {served:?}");
    let v2 = served.get("books-v2").copied().unwrap_or(0) as f64 / REQUESTS as f64;
    // 10 % ± 3 points: over 2,000 requests the standard deviation is 0.67.
    assert!(
        (0.07..=0.13).contains(&v2),
        "books-v2 got {:.1} %: {served:?}",
        v2 * 100.0
    );
    assert_eq!(served.len(), 2, "{served:?}");
}

/// Pods `demo/backend` (service account `backend`, behind Service
/// `backend`) and `demo/load` (service account `load`), their sidecars
/// receiving on the ports given, and the authz plugin in `weft-system`.
fn policy_mesh(backend_inbound: u16, load_inbound: u16) -> String {
    let mut text = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\n\
         apiVersion: v1\nkind: Namespace\nmetadata:\n  name: weft-system\n---\n\
         apiVersion: weft.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: authz\n  \
         namespace: weft-system\nspec:\n  url: file://{}\n  phase: AUTHZ\n  \
         directions: [inbound]\n",
        plugins::component("authz").display()
    );
    for (pod, inbound) in [("backend", backend_inbound), ("load", load_inbound)] {
        text += &format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  namespace: demo\n  \
             labels:\n    app: {pod}\nspec:\n  serviceAccountName: {pod}\n  containers:\n  \
             - name: {pod}\n    image: {pod}\n  - name: weft-proxy\n    image: weft-proxy\n    \
             ports:\n    - name: weft-inbound\n      containerPort: {inbound}\n\
             status:\n  phase: Running\n  podIP: 127.0.0.1\n  podIPs: [{{ip: 127.0.0.1}}]\n"
        );
    }
    text + &format!(
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: backend\n  namespace: demo\n\
         spec:\n  selector:\n    app: backend\n  ports:\n  - name: http\n    port: 8081\n\
         ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  \
         name: backend\n  namespace: demo\n  labels:\n    kubernetes.io/service-name: backend\n\
         addressType: IPv4\nports:\n- name: http\n  port: {backend_inbound}\nendpoints:\n\
         - addresses: [127.0.0.1]\n  conditions:\n    ready: true\n  targetRef:\n    \
         kind: Pod\n    namespace: demo\n    name: backend\n"
    )
}

#[tokio::test]
async fn a_server_authorization_admits_its_service_account_and_403s_plaintext() {
    let app = Demo::http("backend").spawn().await;
    let mesh = Mesh::new("server-authorization");
    // As Linkerd's documentation writes them: backend's port, for load only.
    let policy = format!(
        "apiVersion: policy.linkerd.io/v1beta1\nkind: Server\nmetadata:\n  name: backend-http\n  \
         namespace: demo\nspec:\n  podSelector:\n    matchLabels:\n      app: backend\n  \
         port: {}\n  proxyProtocol: HTTP/1\n---\n\
         apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata:\n  \
         name: backend-http\n  namespace: demo\nspec:\n  server:\n    name: backend-http\n  \
         client:\n    meshTLS:\n      serviceAccounts:\n      - name: load\n",
        app.addr.port()
    );
    mesh.write(
        "workloads.yaml",
        &policy_mesh(closed_port().port(), closed_port().port()),
    );
    mesh.write("policy.yaml", &policy);
    let controller = mesh.controller().await;
    let sidecar = |workload: &str, account: &str, app| {
        let proxy = weft_tests::Proxy::new()
            .env("WEFT_PROXY_CONTROLLER_ADDR", &controller.url())
            .env("WEFT_PROXY_WORKLOAD", workload)
            .env(
                "WEFT_PROXY_PLUGIN_CACHE_DIR",
                mesh.cache().to_str().unwrap(),
            )
            .inbound_app(app);
        controller.with_identity(proxy, workload, account).spawn()
    };
    let backend = sidecar("demo/backend", "backend", app.addr).await;
    let load = sidecar("demo/load", "load", closed_port()).await;
    // The controller learns where each sidecar receives, so load's requests
    // to the Service reach backend's sidecar over mTLS as load.
    mesh.write(
        "workloads.yaml",
        &policy_mesh(backend.inbound.port(), load.inbound.port()),
    );

    // backend's chain is in before its sidecar is ready: the compiled authz
    // denies a client without load's identity.
    let plaintext = http1::get(backend.inbound, "backend", "/").await;
    assert_eq!(plaintext.status, 403, "{}", plaintext.text());
    assert_eq!(plaintext.header("x-weft-proxy-error"), Some("unauthorized"));
    assert!(
        plaintext.text().contains("default:deny"),
        "{}",
        plaintext.text()
    );

    eventually("load's meshed request is admitted", || async {
        let rsp = http1::get(load.outbound, "backend.demo.svc.cluster.local:8081", "/").await;
        match (rsp.status.as_u16(), rsp.header("x-demo-name")) {
            (200, Some("backend")) => Ok(()),
            (status, _) => Err(format!("{status}: {}", rsp.text())),
        }
    })
    .await;
    let rule = format!("serverauthorization/backend-http:{}", app.addr.port());
    let metrics = backend.metrics().await;
    let counted = |family| metrics.sum(family, &[("authz_name", rule.as_str())]);
    assert!(
        counted("inbound_http_authz_allow_total") >= 1.0,
        "{}",
        metrics.text
    );
    let denied = metrics.sum("inbound_http_authz_deny_total", &[("authz_name", "deny")]);
    assert_eq!(denied, 1.0, "the plaintext request");
}

/// A retryable route that always fails and one that is not retryable,
/// under a budget of 20 % plus 1 retry a second over 10 s. Their failures
/// are 4xx classed as failures, so that the proxy's balancer, which ejects
/// an endpoint after 7 5xx in a row, keeps sending to the one endpoint.
const BUDGETED: &str = r#"apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: books.demo.svc.cluster.local
  namespace: demo
spec:
  routes:
  - name: GET /status/429
    condition:
      method: GET
      pathRegex: /status/429
    responseClasses:
    - condition: {status: {min: 429, max: 429}}
      isFailure: true
    isRetryable: true
  - name: GET /status/409
    condition:
      method: GET
      pathRegex: /status/409
    responseClasses:
    - condition: {status: {min: 409, max: 409}}
      isFailure: true
  retryBudget:
    retryRatio: 0.2
    minRetriesPerSecond: 1
    ttl: 10s
"#;

#[tokio::test]
async fn a_service_profile_s_retry_budget_caps_retries_of_a_failing_route() {
    const REQUESTS: usize = 100;
    let booksapp = Booksapp::start("retry-budget", BUDGETED).await;
    let started = std::time::Instant::now();
    let mut connection = Connection::open(booksapp.client.outbound).await;
    for _ in 0..REQUESTS {
        let reply = connection.get(BOOKS, "/status/429").await;
        assert_eq!(reply.status.as_u16(), 429, "every attempt fails");
    }
    for _ in 0..20 {
        let reply = connection.get(BOOKS, "/status/409").await;
        assert_eq!(reply.status.as_u16(), 409);
    }
    let elapsed = started.elapsed().as_secs_f64();

    let metrics = booksapp.client.metrics().await;
    let retried = |route| metrics.sum("retry_requests_total", &[("route", route)]);
    let retries = retried("books.demo/GET /status/429");
    // The route's limit alone would allow 9 retries a request (900); the
    // budget allows 20 % of the requests, plus 1 a second over the 10 s
    // window and however long the run took beyond it.
    let allowed = 0.2 * REQUESTS as f64 + 1.0 * (10.0 + elapsed);
    eprintln!("{retries} retries of {REQUESTS} requests in {elapsed:.1} s; {allowed:.0} allowed");
    assert!(retries >= 1.0, "the retryable route is retried");
    assert!(
        retries <= allowed,
        "{retries} retries exceed the budget's {allowed:.0}"
    );
    let refused = metrics.sum(
        "retry_skipped_total",
        &[
            ("route", "books.demo/GET /status/429"),
            ("reason", "budget"),
        ],
    );
    assert!(refused >= 1.0, "the budget refused retries: {refused}");
    assert_eq!(
        retried("books.demo/GET /status/409"),
        0.0,
        "a route that is not retryable is not retried"
    );
}
