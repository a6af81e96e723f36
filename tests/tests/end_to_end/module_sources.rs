//! Modules the controller fetches itself: over HTTP from a server in the
//! test, and from a real OCI registry (`docker-registry`) the test pushes
//! to. Each reaches a proxy through the controller and acts on traffic; a
//! wrong digest, an unreachable server, a missing file or image are refused
//! naming the cause, while the rest of the mesh keeps serving.

use weft_tests::controller::RunningController;
use weft_tests::mesh::{Mesh, stamped, stamped_with, weft};
use weft_tests::module_server::ModuleServer;
use weft_tests::registry::{
    ISTIO_WASM_LAYER, RunningRegistry, WASM_ARTIFACT_CONFIG, WASM_ARTIFACT_LAYER,
};
use weft_tests::{Demo, closed_port, eventually, plugins, sha256_hex};

/// Istio's config media type for a Wasm plugin image.
const ISTIO_WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";

#[tokio::test]
async fn a_module_over_http_reaches_the_proxy_and_is_fetched_as_its_pull_policy_says() {
    let module = std::fs::read(plugins::component("add_header")).unwrap();
    let sha256 = format!("sha256: {}", sha256_hex(&module));
    let server = ModuleServer::start().await;
    server.publish("add_header.wasm", module);
    let url = server.url("add_header.wasm");
    let app = Demo::http("app").spawn().await;
    let mesh = Mesh::new("http");
    mesh.add_header("stamp", &url, "x-weft-example", "one", &[&sha256]);
    let controller = mesh.controller().await;
    let proxy = mesh.proxy(&controller.url(), app.addr).await;
    eventually("the fetched module acts on traffic", || {
        stamped(&proxy, "one")
    })
    .await;
    assert_eq!(server.requests("add_header.wasm"), 1);

    // IfNotPresent, the default: a new state keeps the bytes it has.
    add_pod(&mesh, &controller, "second").await;
    assert_eq!(
        server.requests("add_header.wasm"),
        1,
        "IfNotPresent fetched the module again"
    );

    // Always: every new state fetches it again.
    mesh.add_header(
        "stamp",
        &url,
        "x-weft-example",
        "one",
        &[&sha256, "imagePullPolicy: Always"],
    );
    add_pod(&mesh, &controller, "third").await;
    let fetched = server.requests("add_header.wasm");
    assert!(fetched >= 2, "Always did not fetch again: {fetched}");
    add_pod(&mesh, &controller, "fourth").await;
    assert!(
        server.requests("add_header.wasm") > fetched,
        "Always did not fetch again on the next state"
    );
    assert_eq!(stamped(&proxy, "one").await, Ok(()));
}

#[tokio::test]
async fn modules_that_cannot_be_fetched_are_refused_naming_the_cause() {
    let module = std::fs::read(plugins::component("add_header")).unwrap();
    let sha256 = format!("sha256: {}", sha256_hex(&module));
    let server = ModuleServer::start().await;
    server.publish("add_header.wasm", module);
    let url = server.url("add_header.wasm");
    let unreachable = format!("http://{}/add_header.wasm", closed_port());
    let app = Demo::http("app").spawn().await;
    let mesh = Mesh::new("http-refused");
    mesh.run("stamp,wrong-digest,unreachable");
    mesh.add_header("stamp", &url, "x-weft-example", "one", &[&sha256]);
    let wrong = format!("sha256: {}", "0".repeat(64));
    mesh.add_header("wrong-digest", &url, "x-wrong", "1", &[&wrong]);
    mesh.add_header(
        "unreachable",
        &unreachable,
        "x-unreachable",
        "1",
        &[&sha256],
    );
    let controller = mesh.controller().await;
    let proxy = mesh.proxy(&controller.url(), app.addr).await;
    eventually("the fetchable module acts on traffic", || {
        stamped(&proxy, "one")
    })
    .await;
    let rsp = weft_tests::http1::get(proxy.inbound, "app", "/").await;
    assert_eq!(rsp.header("x-wrong"), None, "a refused module ran");
    assert_eq!(rsp.header("x-unreachable"), None, "a refused module ran");

    let (code, plugins) = weft(&controller, &["plugins", "--namespace", "demo"]).await;
    assert_eq!(code, Some(2), "{plugins}");
    let refused = |name: &str, causes: &[&str]| {
        let line = plugins
            .lines()
            .find(|line| line.starts_with(&format!("demo/{name} ")))
            .unwrap_or_else(|| panic!("no demo/{name} line:\n{plugins}"));
        assert!(line.contains("rejected  ModuleRefused: "), "{line}");
        for cause in causes {
            assert!(
                line.contains(cause),
                "{name} does not say {cause:?}: {line}"
            );
        }
    };
    refused(
        "wrong-digest",
        &[
            "sha256 mismatch",
            &format!("the WasmPlugin says {}", "0".repeat(64)),
        ],
    );
    refused(
        "unreachable",
        &[&format!("fetching {unreachable}"), "Connection refused"],
    );

    // A refused change keeps the last good module serving.
    mesh.add_header(
        "stamp",
        &server.url("gone.wasm"),
        "x-weft-example",
        "two",
        &[&sha256],
    );
    eventually("the proxy hears of the refusal", || async {
        proxy.logged("gone.wasm: the server answered 404 Not Found")
    })
    .await;
    assert_eq!(stamped(&proxy, "one").await, Ok(()));
}

#[tokio::test]
async fn a_module_pushed_to_an_oci_registry_reaches_the_proxy() {
    let registry = RunningRegistry::spawn().await;
    let module = std::fs::read(plugins::component("add_header")).unwrap();
    let sha256 = sha256_hex(&module);
    let istio = registry
        .push_module(
            "weft/add-header:v1",
            &module,
            ISTIO_WASM_LAYER,
            ISTIO_WASM_CONFIG,
        )
        .await;
    let artifact = registry
        .push_module(
            "weft/add-header-artifact:v1",
            &module,
            WASM_ARTIFACT_LAYER,
            WASM_ARTIFACT_CONFIG,
        )
        .await;
    let app = Demo::http("app").spawn().await;
    let mesh = Mesh::new("oci");
    mesh.run("stamp,artifact,missing,secret");
    mesh.add_header(
        "stamp",
        &format!("oci://{istio}"),
        "x-weft-example",
        "one",
        &[],
    );
    mesh.add_header(
        "artifact",
        &format!("oci://{artifact}"),
        "x-artifact",
        "two",
        &[],
    );
    let missing = format!("oci://{}/weft/add-header:v404", registry.addr);
    mesh.add_header("missing", &missing, "x-missing", "1", &[]);
    mesh.add_header(
        "secret",
        &format!("oci://{istio}"),
        "x-secret",
        "1",
        &["imagePullSecret: regcred"],
    );
    let controller = mesh.controller().await;
    let proxy = mesh.proxy(&controller.url(), app.addr).await;
    eventually("the pulled modules act on traffic", || async {
        stamped(&proxy, "one").await?;
        stamped_with(&proxy, "x-artifact", "two").await
    })
    .await;

    let (code, plugins) = weft(&controller, &["plugins", "--namespace", "demo"]).await;
    assert_eq!(code, Some(2), "{plugins}");
    let line = |name: &str| {
        plugins
            .lines()
            .find(|line| line.starts_with(&format!("demo/{name} ")))
            .unwrap_or_else(|| panic!("no demo/{name} line:\n{plugins}"))
            .to_string()
    };
    for name in ["stamp", "artifact"] {
        assert!(
            line(name).contains(&format!("accepted  sha256 {sha256}")),
            "{plugins}"
        );
    }
    let missing_line = line("missing");
    assert!(
        missing_line.contains(&format!("ModuleRefused: pulling {missing}"))
            && missing_line.to_lowercase().contains("manifest unknown"),
        "{plugins}"
    );
    assert!(
        line("secret").contains("imagePullSecret \"regcred\" is not supported yet"),
        "{plugins}"
    );
}

/// Adds pod `demo/name` and waits until the controller serves it: a new
/// state, with every module checked again as its pull policy says.
async fn add_pod(mesh: &Mesh, controller: &RunningController, name: &str) {
    mesh.write(
        &format!("pod-{name}.yaml"),
        &format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: demo\n"),
    );
    eventually("the controller serves the new pod", || async {
        let (_, workloads) = weft(controller, &["workloads"]).await;
        if workloads
            .lines()
            .any(|l| l.starts_with(&format!("demo/{name} ")))
        {
            Ok(())
        } else {
            Err(workloads)
        }
    })
    .await;
}
