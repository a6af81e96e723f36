//! Components built against the first `weft:plugin@0.1.0` WIT keep loading
//! and working beside those built with today's SDK, which read a request's
//! facts in one crossing: both see the same request.

use std::path::{Path, PathBuf};
use std::process::Command;

use prometheus_client::registry::Registry;
use serde_json::json;
use weft_plugins::{
    ChainSpec, Completion, Direction, PluginChain, RequestOutcome, RequestView, Runtime,
};

const IDENTITY: &str = "web.shop.serviceaccount.identity.linkerd.cluster.local";

#[test]
fn a_first_world_plugin_and_the_sdk_see_the_same_request() {
    let runtime = Runtime::new().expect("starting the plugin runtime");
    let metrics = runtime.metrics();
    let chain = load(
        &runtime,
        &[
            ("first_world", json!({})),
            ("metrics", json!({})),
            (
                "split",
                json!({"routes": [{"name": "all", "pathPrefix": "/a",
                                   "backends": [{"backend": "10.0.0.9:8080", "weight": 1}]}]}),
            ),
        ],
    );

    for _ in 0..2 {
        let (view, outcome) = chain.on_request(request());
        assert!(matches!(outcome, RequestOutcome::Continue), "{outcome:?}");
        let seen = view
            .parts
            .headers
            .get("x-first-world")
            .expect("the first-world plugin ran")
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            seen,
            format!(
                "inbound PATCH app.example:80 /a/b?c=d 10.0.0.7:41000 8080 {IDENTITY} true  2 true"
            ),
            "what the one-fact accessors return"
        );
        // The split (SDK, facts) matched the path and chose the backend.
        assert_eq!(view.backend.as_deref(), Some("10.0.0.9:8080"));
        chain.on_complete(view, completion());
    }

    let mut registry = Registry::default();
    registry.register_collector(Box::new(metrics));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("first_world_requests_total{} 2"),
        "the first-world plugin's counter-add: {text}"
    );
    // The metrics plugin read direction, authority, TLS, identity and the
    // backend the split set through `request.facts`, and recorded all three
    // series in one `record-batch` per request.
    let labels = format!(
        "direction=\"inbound\",authority=\"app.example:80\",tls=\"true\",client_id=\"{IDENTITY}\",dst_backend=\"10.0.0.9:8080\""
    );
    for family in [
        "request_total",
        "response_total",
        "response_latency_ms_count",
    ] {
        let line = text
            .lines()
            .find(|line| line.starts_with(&format!("{family}{{{labels}")))
            .unwrap_or_else(|| panic!("no {family} with {labels}: {text}"));
        assert!(line.ends_with(" 2"), "{line}");
    }
    let sum = text
        .lines()
        .find(|line| line.starts_with(&format!("response_latency_ms_sum{{{labels}")))
        .expect("the latency sum");
    assert!(sum.ends_with(" 3.0"), "two observations of 1.5 ms: {sum}");
}

/// An inbound request over mTLS on its second attempt, with a method the
/// WIT's enum leaves to `method-name` and a query in its path.
fn request() -> RequestView {
    let parts = http::Request::patch("/a/b?c=d")
        .header("host", "app.example:80")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    RequestView {
        parts,
        direction: Direction::Inbound,
        client_addr: "10.0.0.7:41000".parse().unwrap(),
        local_port: 8080,
        peer_identity: Some(IDENTITY.to_string()),
        tls: true,
        backend: None,
        destination_labels: Default::default(),
        timeout: None,
        attempt: 2,
        replayable: true,
    }
}

fn completion() -> Completion {
    Completion {
        status: Some(200),
        error: None,
        response_latency_us: 1_500,
        total_us: 2_000,
        attempts: 2,
    }
}

fn load(runtime: &Runtime, plugins: &[(&str, serde_json::Value)]) -> PluginChain {
    let components = components();
    let entries: Vec<_> = plugins
        .iter()
        .map(|(name, config)| {
            json!({"name": name, "module": components.join(format!("{name}.wasm")), "config": config})
        })
        .collect();
    let spec: ChainSpec = serde_json::from_value(json!({ "plugins": entries })).unwrap();
    runtime
        .load(&spec, Path::new("/"))
        .unwrap_or_else(|error| panic!("loading {plugins:?}: {error}"))
}

/// `plugins/` built for wasm32-wasip2, as the end-to-end tests build it.
fn components() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let rustup = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .expect("running rustup");
    assert!(rustup.success(), "rustup target add wasm32-wasip2 failed");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--quiet", "--release"])
        .current_dir(&dir)
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("running cargo build in plugins/");
    assert!(built.success(), "building plugins/ failed");
    dir.join("target/wasm32-wasip2/release")
}
