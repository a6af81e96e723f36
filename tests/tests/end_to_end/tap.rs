//! `weft tap` and `weft top` through real processes: a client's sidecar
//! calls `web` (a Deployment's pod) over mTLS, `web`'s sidecar serves tap to
//! the controller's identity only, and the controller relays it to the CLI.

use std::net::SocketAddr;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncReadExt;
use tonic::Code;
use weft_api::tap::ObserveRequest;
use weft_api::tap::tap_client::TapClient;
use weft_tests::controller::{RunningController, identity_name};
use weft_tests::demo::RunningDemo;
use weft_tests::mesh::Mesh;
use weft_tests::proxy::RunningProxy;
use weft_tests::{Demo, PATIENCE, Proxy, binaries, closed_port, http1};

/// `web`, its certified sidecar (tap on a port of its own), and a certified
/// client sidecar that reaches it over mTLS.
struct Tapped {
    _mesh: Mesh,
    controller: RunningController,
    _app: RunningDemo,
    web: RunningProxy,
    client: RunningProxy,
    /// Where web's sidecar receives, as the client names it.
    web_inbound: SocketAddr,
}

impl Tapped {
    async fn start(name: &str) -> Self {
        let mesh = Mesh::new(name);
        let (web_inbound, web_tap) = (closed_port(), closed_port());
        mesh.write(
            "workloads.yaml",
            &format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\n\
                 apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-7c9d8f-x\n  namespace: demo\n  \
                 labels:\n    pod-template-hash: 7c9d8f\n  ownerReferences:\n  - apiVersion: apps/v1\n    \
                 kind: ReplicaSet\n    name: web-7c9d8f\n    uid: u\n    controller: true\n\
                 spec:\n  serviceAccountName: web\n  containers:\n  - name: web\n    image: web\n  \
                 - name: weft-proxy\n    image: weft-proxy\n    ports:\n    - name: weft-inbound\n      \
                 containerPort: {}\n    - name: weft-tap\n      containerPort: {}\n\
                 status:\n  phase: Running\n  podIP: 127.0.0.1\n---\n\
                 apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\n  namespace: demo\n\
                 spec:\n  serviceAccountName: client\n  containers:\n  - name: client\n    image: client\n",
                web_inbound.port(),
                web_tap.port()
            ),
        );
        let controller = mesh.controller().await;
        let app = Demo::http("web").spawn().await;
        let sidecar = |workload: &str, account: &str, app: SocketAddr| {
            let proxy = Proxy::new()
                .env("WEFT_PROXY_CONTROLLER_ADDR", &controller.url())
                .env("WEFT_PROXY_WORKLOAD", workload)
                .env(
                    "WEFT_PROXY_PLUGIN_CACHE_DIR",
                    mesh.cache().to_str().unwrap(),
                )
                .inbound_app(app);
            controller.with_identity(proxy, workload, account)
        };
        let web = sidecar("demo/web-7c9d8f-x", "web", app.addr)
            .env("WEFT_PROXY_INBOUND_LISTEN_ADDR", &web_inbound.to_string())
            .env("WEFT_PROXY_TAP_LISTEN", &web_tap.to_string())
            .spawn()
            .await;
        assert_eq!(web.tap, Some(web_tap));
        let client = sidecar("demo/client", "client", closed_port())
            .spawn()
            .await;
        Tapped {
            _mesh: mesh,
            controller,
            _app: app,
            web,
            client,
            web_inbound,
        }
    }

    /// A request from the client's app to web, through both sidecars.
    async fn call(&self, path: &str) -> u16 {
        let authority = self.web_inbound.to_string();
        let rsp = http1::get(self.client.outbound, &authority, path);
        let rsp = tokio::time::timeout(PATIENCE, rsp).await;
        rsp.expect("the client's sidecar answers").status.as_u16()
    }

    /// Runs `weft ARGS` while calling `paths` in turn until it exits (its
    /// tap ends after `--limit` requests); its exit code and output.
    async fn while_calling(&self, args: &[&str], paths: &[&str]) -> (Option<i32>, String) {
        let mut weft = tokio::process::Command::new(binaries::path("weft"))
            .arg("--controller")
            .arg(self.controller.url())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("running weft");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        // Until the tap is open there is no sign of it but the events.
        let status = 'calling: loop {
            for path in paths {
                if let Some(status) = weft.try_wait().unwrap() {
                    break 'calling status;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "weft {args:?} did not end"
                );
                self.call(path).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let mut out = String::new();
        weft.stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        weft.stderr
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        (status.code(), out)
    }
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[tokio::test]
async fn weft_tap_shows_a_request_through_the_sidecar_with_its_status_and_client_identity() {
    let mesh = Tapped::start("tap-json").await;
    assert_eq!(mesh.call("/?page=2").await, 200);
    let args = [
        "tap",
        "deploy/web",
        "-n",
        "demo",
        "--limit",
        "1",
        "-o",
        "json",
    ];
    let (code, out) = mesh.while_calling(&args, &["/?page=2"]).await;
    assert_eq!(code, Some(0), "{out}");
    let events = json_lines(&out);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["requestInit", "responseInit", "responseEnd"],
        "{out}"
    );
    let (req, end) = (&events[0], &events[2]);
    assert_eq!(req["proxy"], "demo/web-7c9d8f-x");
    assert_eq!(req["direction"], "inbound");
    assert_eq!(
        (&req["method"], &req["path"]),
        (&"GET".into(), &"/?page=2".into())
    );
    assert_eq!(req["tls"], true, "{out}");
    assert_eq!(
        req["peerIdentity"],
        identity_name("demo", "client"),
        "{out}"
    );
    // Between proxies HTTP/1 travels as HTTP/2: the Host is the authority.
    let web = mesh.web_inbound.to_string();
    assert_eq!(req["authority"], web.as_str(), "{out}");
    let headers = req["headers"].as_array().unwrap();
    assert!(
        headers.iter().any(|h| h["name"] == "weft-orig-proto"),
        "the headers, to replay it with: {out}"
    );
    assert_eq!(end["status"], 200);
    assert!(end["responseBytes"].as_u64().unwrap() > 0, "{out}");
    assert!(events.iter().all(|e| e["id"] == req["id"]), "{out}");

    // The recording, replayed through authz as it is and with a policy
    // that would have refused it.
    let recording = mesh._mesh.dir.join("tap.jsonl");
    std::fs::write(&recording, &out).unwrap();
    let replay = |config: &str| {
        let output = std::process::Command::new(binaries::path("weft"))
            .args(["plugin", "test", "--replay"])
            .arg(&recording)
            .arg("--module")
            .arg(weft_tests::plugins::component("authz"))
            .args(["--config", config])
            .output()
            .expect("running weft plugin test");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        (output.status.code(), text)
    };
    let (code, text) = replay("{}");
    assert_eq!(code, Some(0), "{text}");
    let line = format!("same    GET {web}/?page=2: then 200, now 200");
    assert!(text.contains(&line), "{text}");
    let (code, text) = replay(
        r#"{"defaultPolicy": "all-authenticated", "rules": [{"name": "no-pages", "action": "deny", "pathPrefixes": ["/"]}]}"#,
    );
    assert_eq!(code, Some(0), "a changed answer is no failure: {text}");
    let line = format!("CHANGED GET {web}/?page=2: then 200, now 403 by the plugin");
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains("1 replayed, 1 answered differently, 0 failed"),
        "{text}"
    );

    // Lines as Linkerd prints them, and `top` over the same requests.
    let args = ["tap", "pod/web-7c9d8f-x", "-n", "demo", "--limit", "1"];
    let (code, out) = mesh.while_calling(&args, &["/"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("req id=0:"), "{out}");
    assert!(out.contains("tls=true :method=GET"), "{out}");
    assert!(out.contains(":status=200 latency="), "{out}");
    let args = ["top", "deploy/web", "-n", "demo", "--limit", "3", "--once"];
    let (code, out) = mesh.while_calling(&args, &["/"]).await;
    assert_eq!(code, Some(0), "{out}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let columns = rows.iter().find(|c| c.get(3) == Some(&"/")).expect(&out);
    assert_eq!(
        (columns[0], columns[1], columns[2], columns[4], columns[8]),
        ("client.demo", "demo/web-7c9d8f-x", "GET", "3", "100.00%"),
        "{out}"
    );
}

#[tokio::test]
async fn tap_filters_leave_out_the_requests_they_do_not_match() {
    let mesh = Tapped::start("tap-filters").await;
    let args = [
        "tap",
        "deploy/web",
        "-n",
        "demo",
        "--path",
        "/status",
        "--method",
        "GET",
        "--response-status",
        "500-599",
        "--limit",
        "2",
        "-o",
        "json",
    ];
    let paths = ["/books", "/status/200", "/status/503"];
    let (code, out) = mesh.while_calling(&args, &paths).await;
    assert_eq!(code, Some(0), "{out}");
    let events = json_lines(&out);
    let paths: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "requestInit")
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/status/503", "/status/503"], "{out}");
    assert!(
        events
            .iter()
            .filter(|e| e["type"] == "responseEnd")
            .all(|e| e["status"] == 503),
        "{out}"
    );
}

#[tokio::test]
async fn only_the_controllers_identity_may_tap_a_proxy() {
    let mesh = Tapped::start("tap-refused").await;
    let tap = mesh.web.tap.expect("a sidecar with an identity serves tap");
    let as_client = mesh.controller.credentials("demo/client", "client").await;
    let tls = weft_identity::client_config(Some(as_client), &mesh.controller.anchors(), &[b"h2"])
        .unwrap();
    let web = identity_name("demo", "web");
    let channel = weft_api::tls::channel(tap.to_string(), web.try_into().unwrap(), tls)
        .await
        .unwrap();
    let refused = TapClient::new(channel)
        .observe(ObserveRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("weft-controller"), "{refused:?}");

    // A sidecar without an identity serves no tap at all.
    let plain = Proxy::new().inbound_app(closed_port()).spawn().await;
    assert_eq!(plain.tap, None);
    assert!(plain.logs().contains("tap is off"), "{}", plain.logs());
}
