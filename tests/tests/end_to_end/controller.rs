//! Plugins distributed by the real controller from a directory of
//! resources: a changed config or module reaches every proxy within 2 s
//! under steady load with no failed request, a bad module is refused and the
//! old plugin keeps serving, a refused edit of a WasmPlugin keeps its last
//! good version serving, and proxies ride out a controller outage.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use weft_tests::controller::{ExampleMesh, RunningController};
use weft_tests::http1::{self, Connection};
use weft_tests::mesh::{Mesh, stamped, weft};
use weft_tests::{Demo, eventually, plugins};

/// Keep-alive clients sending until stopped, each bounded in requests; a
/// failed request panics its task and so fails the test at `stop`.
struct SteadyLoad {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<BTreeSet<String>>>,
}

impl SteadyLoad {
    fn start(addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..2)
            .map(|_| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    let mut conn = Connection::open(addr).await;
                    let mut seen = BTreeSet::new();
                    for _ in 0..200_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let rsp = conn.get("app", "/").await;
                        assert_eq!(rsp.status, 200, "{}", rsp.text());
                        seen.insert(rsp.header("x-weft-example").unwrap_or("-").to_string());
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    seen
                })
            })
            .collect();
        SteadyLoad { stop, clients }
    }

    /// Every stamp value the clients saw.
    async fn stop(self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::Relaxed);
        let mut seen = BTreeSet::new();
        for client in self.clients {
            seen.extend(client.await.expect("a client saw a failed request"));
        }
        seen
    }
}

/// `module` with a custom section appended: another module (another
/// sha256) that behaves the same.
fn variant_of(module: &Path, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(module).unwrap();
    let (name, payload) = (b"weft-test", b"variant");
    bytes.extend([0, (1 + name.len() + payload.len()) as u8, name.len() as u8]);
    bytes.extend(name);
    bytes.extend(payload);
    let variant = dir.join("variant.wasm");
    std::fs::write(&variant, bytes).unwrap();
    variant
}

#[tokio::test]
async fn changes_reach_every_proxy_within_2s_and_bad_modules_are_refused() {
    let add_header = plugins::component("add_header");
    let app = Demo::http("app").spawn().await;
    let mesh = Mesh::new("changes");
    mesh.stamp(&add_header, "one", None);
    let controller = mesh.controller().await;
    let proxies = [
        mesh.workload_proxy("demo/app", &controller.url(), app.addr)
            .await,
        mesh.workload_proxy("demo/web", &controller.url(), app.addr)
            .await,
    ];
    for proxy in &proxies {
        eventually("the first chain arrives", || stamped(proxy, "one")).await;
    }
    let loads = proxies.each_ref().map(|p| SteadyLoad::start(p.inbound));

    // A new config, then a new module: each reaches both proxies in time.
    let variant = variant_of(&add_header, &mesh.dir);
    for (module, value) in [(&add_header, "two"), (&variant, "three")] {
        let changed = Instant::now();
        mesh.stamp(module, value, None);
        for proxy in &proxies {
            eventually("the change arrives", || stamped(proxy, value)).await;
        }
        let propagation = changed.elapsed();
        eprintln!("{value}: a WasmPlugin change reached both proxies in {propagation:?}");
        assert!(propagation < Duration::from_secs(2), "{propagation:?}");
    }
    let variant_sha256 = weft_tests::sha256_hex(&std::fs::read(&variant).unwrap());
    let (_, workloads) = weft(&controller, &["workloads"]).await;
    assert!(
        workloads.contains(&format!("stamp@{}", &variant_sha256[..12])),
        "the controller serves the new module: {workloads}"
    );
    let proxy = &proxies[0];

    // Not wasm, the wrong world, the wrong sha256: each is refused with its
    // cause, and the proxy keeps running the last good module and config.
    let junk = mesh.dir.join("junk.wasm");
    std::fs::write(&junk, b"not a module").unwrap();
    let wrong_world = plugins::component("wrong_world");
    let bad = [
        (junk.as_path(), None, "not a WebAssembly component"),
        (
            wrong_world.as_path(),
            None,
            "does not match the weft:plugin world",
        ),
        (
            add_header.as_path(),
            Some("00".repeat(32)),
            "the WasmPlugin says",
        ),
    ];
    for (module, sha256, cause) in bad {
        mesh.stamp(module, "four", sha256.as_deref());
        eventually("the proxy reports the refusal", || async {
            proxy.logged(cause)
        })
        .await;
        assert_eq!(stamped(proxy, "three").await, Ok(()), "{cause}");
    }
    for load in loads {
        let seen = load.stop().await;
        assert_eq!(
            seen,
            BTreeSet::from(["one", "two", "three"].map(String::from)),
            "every response went through a chain, and no refused one ran"
        );
    }
    drop(controller);
}

#[tokio::test]
async fn the_proxy_keeps_serving_through_a_controller_outage() {
    let add_header = plugins::component("add_header");
    let app = Demo::http("app").spawn().await;
    let mesh = Mesh::new("outage");
    mesh.stamp(&add_header, "one", None);
    let controller = mesh.controller().await;
    let addr = controller.addr;
    let url = controller.url();
    let proxy = mesh.proxy(&url, app.addr).await;
    eventually("the first chain arrives", || stamped(&proxy, "one")).await;

    let load = SteadyLoad::start(proxy.inbound);
    controller.kill().await;
    eventually("the proxy notices", || async {
        proxy.logged("plugin chain sync failed")
    })
    .await;
    // A proxy that starts while the controller is away runs the chain the
    // last one saved.
    let restarted = mesh.proxy(&url, app.addr).await;
    eventually("the saved chain serves", || stamped(&restarted, "one")).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(stamped(&proxy, "one").await, Ok(()));

    mesh.stamp(&add_header, "two", None);
    let controller = RunningController::spawn(&mesh.resources(), addr).await;
    let back = Instant::now();
    eventually("the proxy resyncs", || stamped(&proxy, "two")).await;
    eventually("the restarted proxy resyncs", || stamped(&restarted, "two")).await;
    eprintln!(
        "resynced {:?} after the controller returned",
        back.elapsed()
    );
    let seen = load.stop().await;
    assert!(
        !seen.contains("-"),
        "no response went without the chain: {seen:?}"
    );
    drop(controller);
}

#[tokio::test]
async fn the_cli_lists_workloads_and_says_why_a_plugin_was_rejected() {
    let add_header = plugins::component("add_header");
    let mesh = Mesh::new("cli");
    mesh.stamp(&add_header, "one", None);
    mesh.run("stamp,broken");
    mesh.write(
        "broken.yaml",
        &format!(
            "apiVersion: weft.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: broken\n  \
             namespace: demo\nspec:\n  url: file://{}\n  sha256: not-hex\n",
            add_header.display()
        ),
    );
    let controller = mesh.controller().await;
    let sha256 = weft_tests::sha256_hex(&std::fs::read(&add_header).unwrap());

    let (code, workloads) = weft(&controller, &["workloads"]).await;
    assert_eq!(code, Some(0), "{workloads}");
    let app = workloads
        .lines()
        .find(|line| line.starts_with("demo/app "))
        .unwrap_or_else(|| panic!("no demo/app line:\n{workloads}"));
    assert!(
        app.contains(&format!("stamp@{}", &sha256[..12])),
        "{workloads}"
    );
    assert!(
        workloads.contains("problem:") && workloads.contains("broken"),
        "{workloads}"
    );

    let (code, plugins) = weft(&controller, &["plugins", "--namespace", "demo"]).await;
    assert_eq!(
        code,
        Some(2),
        "a rejected plugin makes `weft plugins` exit 2: {plugins}"
    );
    let line = |name: &str| {
        plugins
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line:\n{plugins}"))
            .to_string()
    };
    assert!(
        line("demo/stamp ").contains(&format!("accepted  sha256 {sha256}")),
        "{plugins}"
    );
    assert!(
        line("demo/broken ").contains("rejected  InvalidSha256"),
        "{plugins}"
    );
}

#[tokio::test]
async fn a_rejected_edit_keeps_the_last_good_plugin_serving() {
    let mesh = ExampleMesh::copy("rejected-edit");
    let app = Demo::http("app").spawn().await;
    let controller = mesh.controller().await;
    let proxy = mesh.proxy(&controller, "demo/app", app.addr).await;
    let admin = || async {
        match http1::get(proxy.inbound, "app", "/admin")
            .await
            .status
            .as_u16()
        {
            403 => Ok(()),
            status => Err(format!("GET /admin answered {status}")),
        }
    };
    eventually("authz denies /admin", admin).await;

    // A typo in authz's phase: the edit is refused, saying which field.
    mesh.edit("plugins.yaml", "phase: AUTHZ", "phase: AUTHZZ");
    let authz_line = |plugins: &str| {
        plugins
            .lines()
            .find(|line| line.starts_with("weft-system/authz "))
            .map(str::to_string)
    };
    eventually("weft plugins reports the refusal", || async {
        let (code, plugins) = weft(&controller, &["plugins"]).await;
        match authz_line(&plugins) {
            Some(line) if code == Some(2) && line.contains("rejected") => Ok(()),
            _ => Err(format!("exit {code:?}:\n{plugins}")),
        }
    })
    .await;
    let (_, plugins) = weft(&controller, &["plugins"]).await;
    let line = authz_line(&plugins).unwrap();
    assert!(
        line.contains("InvalidSpec") && line.contains("spec.phase: unknown variant `AUTHZZ`"),
        "{plugins}"
    );
    assert!(line.contains("keeps serving"), "{plugins}");

    // The proxy heard of it, and authz still runs there.
    eventually("the proxy hears of the refusal", || async {
        proxy.logged("latest version is rejected")
    })
    .await;
    assert_eq!(admin().await, Ok(()));

    // Another plugin's change in the same file still goes through, with
    // authz's last good version beside it.
    let before = app_version(&controller).await.unwrap();
    mesh.edit("plugins.yaml", "limit: 2", "limit: 3");
    eventually("the new chain is loaded", || async {
        let version = app_version(&controller).await?;
        if version == before {
            return Err(format!("still version {version}"));
        }
        proxy.logged(&format!(
            "controller (version {version}) plugins=[\"authz\""
        ))
    })
    .await;
    assert_eq!(admin().await, Ok(()));
    assert!(
        authz_line(&weft(&controller, &["plugins"]).await.1)
            .is_some_and(|line| line.contains("rejected")),
        "still refused"
    );

    // Fixed, it is accepted again.
    mesh.edit("plugins.yaml", "phase: AUTHZZ", "phase: AUTHZ");
    eventually("authz is accepted again", || async {
        match weft(&controller, &["plugins"]).await {
            (Some(0), _) => Ok(()),
            (code, plugins) => Err(format!("exit {code:?}:\n{plugins}")),
        }
    })
    .await;
    assert_eq!(admin().await, Ok(()));
}

#[tokio::test]
async fn a_proxy_serves_nothing_until_its_chain_arrives_and_keeps_it_across_restarts() {
    let authz = plugins::component("authz");
    let app = Demo::http("app").spawn().await;
    let mesh = Mesh::new("no-chain-yet");
    mesh.run("authz");
    mesh.write(
        "authz.yaml",
        &format!(
            "apiVersion: weft.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: authz\n  \
             namespace: demo\nspec:\n  url: file://{}\n  phase: AUTHZ\n  pluginConfig:\n    \
             defaultPolicy: all-unauthenticated\n    rules:\n    - name: no-admin\n      \
             action: deny\n      pathPrefixes: [/admin]\n",
            authz.display()
        ),
    );
    let get_admin = |proxy: &weft_tests::proxy::RunningProxy| {
        let inbound = proxy.inbound;
        async move { weft_tests::http1::get(inbound, "app", "/admin").await }
    };

    // The controller is not there yet, and nothing is saved.
    let addr = weft_tests::closed_port();
    let url = format!("http://{addr}");
    let proxy = mesh.proxy_awaiting_its_chain(addr, app.addr).await;
    assert!(proxy.ready().await.is_err(), "ready without its chain");
    let refused = get_admin(&proxy).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(
        refused.header("x-weft-proxy-error"),
        Some("plugin chain pending")
    );

    // The controller comes: the chain arrives, then authz answers.
    let controller = RunningController::spawn(&mesh.resources(), addr).await;
    eventually("the proxy becomes ready", || proxy.ready()).await;
    assert_eq!(get_admin(&proxy).await.status, 403);
    assert_eq!(
        weft_tests::http1::get(proxy.inbound, "app", "/")
            .await
            .status,
        200
    );

    // Restarted while the controller is away, it is ready with its saved
    // chain, authz included, from the start.
    controller.kill().await;
    drop(proxy);
    let restarted = mesh.proxy(&url, app.addr).await;
    assert_eq!(restarted.logged("(saved)"), Ok(()));
    assert_eq!(get_admin(&restarted).await.status, 403);
    assert_eq!(
        weft_tests::http1::get(restarted.inbound, "app", "/")
            .await
            .status,
        200
    );
}

/// The chain version `weft workloads` shows for `demo/app`.
async fn app_version(controller: &RunningController) -> Result<String, String> {
    let (_, workloads) = weft(controller, &["workloads", "-n", "demo"]).await;
    workloads
        .lines()
        .find(|line| line.starts_with("demo/app "))
        .and_then(|line| line.split_whitespace().nth(1))
        .map(str::to_string)
        .ok_or(workloads)
}

/// `weft inject` on a file and on standard input writes what the injector's
/// golden file holds, and reports each workload on stderr.
#[tokio::test]
async fn weft_inject_adds_the_sidecar_to_manifests_from_a_file_or_standard_input() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../inject/tests/fixtures");
    let manifest = fixtures.join("config-annotations.yaml");
    let golden = std::fs::read_to_string(fixtures.join("config-annotations.golden.yaml")).unwrap();
    let (reports, expected): (Vec<&str>, Vec<&str>) =
        golden.lines().partition(|line| line.starts_with('#'));
    let expected = expected.join("\n") + "\n";
    let reports: Vec<&str> = reports[1..]
        .iter()
        .map(|r| r.trim_start_matches("#   "))
        .collect();

    let run = |args: &[&str], stdin: Option<Vec<u8>>| {
        let mut command = std::process::Command::new(weft_tests::binaries::path("weft"));
        command
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("running weft");
        let mut input = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut input, &stdin.unwrap_or_default()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    };
    let from_file = run(&["inject", manifest.to_str().unwrap()], None);
    let from_stdin = run(&["inject", "-"], Some(std::fs::read(&manifest).unwrap()));
    for output in [from_file, from_stdin] {
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout), expected);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().collect::<Vec<_>>(), reports);
    }
}

/// An empty directory of this test process's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `weft inject --config` injects with the control plane's settings (the
/// webhook's `inject.yaml`), and a config with a typo is refused by name.
#[test]
fn weft_inject_takes_the_control_planes_inject_config() {
    let dir = scratch("weft-inject-config");
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../inject/tests/fixtures/namespace-annotated.yaml");
    let config = dir.join("inject.yaml");
    std::fs::write(
        &config,
        "registry: registry.example/weft\nproxyVersion: \"9.9.9\"\n",
    )
    .unwrap();
    let weft = |args: &[&str]| {
        std::process::Command::new(weft_tests::binaries::path("weft"))
            .args(args)
            .output()
            .expect("running weft")
    };
    let injected = weft(&[
        "inject",
        "--config",
        config.to_str().unwrap(),
        manifest.to_str().unwrap(),
    ]);
    assert!(injected.status.success(), "{injected:?}");
    let yaml = String::from_utf8_lossy(&injected.stdout);
    assert!(
        yaml.contains("image: registry.example/weft/weft-proxy:9.9.9"),
        "{yaml}"
    );
    assert!(!yaml.contains("localhost:5000"), "{yaml}");

    std::fs::write(
        &config,
        "registry: registry.example/weft\nproxyVersoin: \"9.9.9\"\n",
    )
    .unwrap();
    let refused = weft(&[
        "inject",
        "--config",
        config.to_str().unwrap(),
        manifest.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("proxyVersoin"), "{stderr}");
    assert!(refused.stdout.is_empty());
}

/// `weft identity` writes the anchor and issuer Helm's `--set-file` lines
/// read; `weft install` takes the same files and puts them in the control
/// plane's ConfigMap and Secret; an existing file is never overwritten.
#[test]
fn weft_identity_writes_files_that_weft_install_and_helm_take() {
    let out = scratch("weft-identity").join("identity");
    let weft = |args: &[&str]| {
        std::process::Command::new(weft_tests::binaries::path("weft"))
            .args(args)
            .output()
            .expect("running weft")
    };
    let made = weft(&["identity", "--out", out.to_str().unwrap()]);
    assert!(made.status.success(), "{made:?}");
    let hint = String::from_utf8_lossy(&made.stdout);
    assert!(
        hint.contains("--set-file identityTrustAnchorsPEM="),
        "{hint}"
    );
    let anchors = std::fs::read_to_string(out.join("ca.crt")).unwrap();
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out.join("issuer.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);

    let file = |name: &str| out.join(name).to_str().unwrap().to_string();
    let installed = weft(&[
        "install",
        "--identity-trust-anchors-file",
        &file("ca.crt"),
        "--identity-issuer-certificate-file",
        &file("issuer.crt"),
        "--identity-issuer-key-file",
        &file("issuer.key"),
    ]);
    assert!(installed.status.success(), "{installed:?}");
    let objects: Vec<serde_json::Value> =
        serde_norway::Deserializer::from_str(&String::from_utf8_lossy(&installed.stdout))
            .map(|document| serde::Deserialize::deserialize(document).unwrap())
            .collect();
    let roots = objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == "weft-identity-trust-roots")
        .expect("the trust roots ConfigMap");
    assert_eq!(
        roots["data"]["ca-bundle.crt"].as_str().unwrap().trim(),
        anchors.trim()
    );
    // Nothing generated: no notice about a new anchor.
    assert!(
        installed.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&installed.stderr)
    );

    let again = weft(&["identity", "--out", out.to_str().unwrap()]);
    assert!(!again.status.success());
    assert_eq!(
        std::fs::read_to_string(out.join("ca.crt")).unwrap(),
        anchors
    );
}

/// The admission webhook over HTTPS, as the API server calls it: a pod
/// created in a namespace annotated `weft.io/inject: enabled` gets a patch
/// that adds the proxy (with the inject config's registry) and passes the
/// Kubernetes schemas; elsewhere it is allowed untouched with the reason;
/// garbage is a bad request; and a rotated certificate is served without a
/// restart.
#[tokio::test]
async fn the_webhook_injects_pods_of_annotated_namespaces_over_https() {
    use base64::Engine;
    use serde_json::{Value, json};
    use weft_tests::schemas::kubernetes_validate;
    use weft_tests::webhook::WebhookCa;

    let dir = std::env::temp_dir().join(format!("weft-webhook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("resources")).unwrap();
    std::fs::write(
        dir.join("resources/namespaces.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: emojivoto\n  annotations:\n    \
         weft.io/inject: enabled\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: plain\n",
    )
    .unwrap();
    let inject_config = dir.join("inject.yaml");
    std::fs::write(
        &inject_config,
        "registry: registry.example/weft\nproxyVersion: \"0.1.0\"\n",
    )
    .unwrap();
    let ca = WebhookCa::new(&dir);
    let controller = RunningController::spawn_with(
        &dir.join("resources"),
        "127.0.0.1:0".parse().unwrap(),
        &[
            ("WEFT_CONTROLLER_WEBHOOK_LISTEN_ADDR", "127.0.0.1:0"),
            (
                "WEFT_CONTROLLER_WEBHOOK_CERTIFICATE",
                ca.certificate.to_str().unwrap(),
            ),
            ("WEFT_CONTROLLER_WEBHOOK_KEY", ca.key.to_str().unwrap()),
            (
                "WEFT_CONTROLLER_INJECT_CONFIG",
                inject_config.to_str().unwrap(),
            ),
        ],
    )
    .await;
    let webhook = controller
        .logged_addr(" serving the admission webhook ", "webhook_addr=")
        .expect("the webhook starts before the plugin API");

    let ready = ca.request(webhook, "GET", "/ready", Vec::new()).await;
    assert_eq!(ready.status, 200, "the directory is read before serving");

    // A ReplicaSet's pod in emojivoto, as the API server sends it.
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../inject/tests/fixtures/admission-review.json");
    let review: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    let answer = ca
        .request(
            webhook,
            "POST",
            "/inject",
            serde_json::to_vec(&review).unwrap(),
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer: Value = serde_json::from_slice(&answer.body).unwrap();
    let response = &answer["response"];
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("a base64 patch"))
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).expect("an RFC 6902 patch");
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch).expect("the patch applies");
    let proxy = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "weft-proxy")
        .expect("a weft-proxy container");
    assert_eq!(proxy["image"], "registry.example/weft/weft-proxy:0.1.0");
    assert_eq!(
        pod["metadata"]["annotations"]["weft.io/proxy-version"],
        "0.1.0"
    );
    // The API server names it from generateName after the webhooks ran.
    pod["metadata"]["name"] = json!("web-6c8d5b9f7d-x2x4q");
    let patched = dir.join("patched-pod.json");
    std::fs::write(&patched, pod.to_string()).unwrap();
    if let Err(refused) = kubernetes_validate(&[patched], 1) {
        panic!("the patched pod fails the Kubernetes schemas: {refused}");
    }

    // The same pod in a namespace nobody annotated.
    let mut plain = review.clone();
    plain["request"]["namespace"] = json!("plain");
    plain["request"]["object"]["metadata"]["namespace"] = json!("plain");
    let answer = ca
        .request(
            webhook,
            "POST",
            "/inject",
            serde_json::to_vec(&plain).unwrap(),
        )
        .await;
    assert_eq!(answer.status, 200);
    let answer: Value = serde_json::from_slice(&answer.body).unwrap();
    let response = &answer["response"];
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none() && response.get("patchType").is_none());
    assert_eq!(
        response["status"]["message"],
        "weft: not injected: neither the pod nor its namespace is annotated weft.io/inject: enabled"
    );

    let garbage = ca
        .request(webhook, "POST", "/inject", b"<html>".to_vec())
        .await;
    assert_eq!(garbage.status, 400);
    assert!(
        String::from_utf8_lossy(&garbage.body).starts_with("not JSON: "),
        "{:?}",
        garbage.body
    );
    assert_eq!(
        ca.request(webhook, "GET", "/nope", Vec::new()).await.status,
        404
    );

    // The Secret rotates: new connections get the new certificate.
    let before = ca.request(webhook, "GET", "/live", Vec::new()).await;
    let rotated = ca.rotate();
    assert_ne!(before.certificate, rotated);
    let (ca, rotated) = (&ca, &rotated);
    eventually("the rotated certificate is served", || async move {
        let answer = ca.request(webhook, "GET", "/live", Vec::new()).await;
        match (answer.status, answer.certificate == *rotated) {
            (200, true) => Ok(()),
            (status, _) => Err(format!("{status}, the old certificate")),
        }
    })
    .await;
    controller.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}
