//! The plugin runtime with real components built from `plugins/`: hooks
//! that edit and answer, and every way a plugin can fail — each handled as
//! its failure policy says, with a clear reason.

use std::path::Path;
use std::time::{Duration, Instant};

use weft_plugins::{
    ChainSpec, Completion, Direction, Hooks, LoadError, PluginChain, RequestOutcome, RequestView,
    ResponseOutcome, Runtime,
};
use weft_tests::plugins;

fn chain(runtime: &Runtime, plugins_json: serde_json::Value) -> Result<PluginChain, LoadError> {
    let spec: ChainSpec =
        serde_json::from_value(serde_json::json!({ "plugins": plugins_json })).unwrap();
    runtime.load(&spec, Path::new("/"))
}

fn plugin(name: &str, crate_name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = serde_json::json!({
        "name": name,
        "module": plugins::component(crate_name),
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    spec
}

fn request(path: &str) -> RequestView {
    let parts = http::Request::get(path)
        .header("host", "app.example")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    RequestView {
        parts,
        direction: Direction::Inbound,
        client_addr: "10.0.0.7:41000".parse().unwrap(),
        local_port: 8080,
        peer_identity: None,
        tls: false,
        backend: None,
        destination_labels: Default::default(),
        timeout: None,
        attempt: 1,
        replayable: true,
    }
}

#[test]
fn hooks_edit_requests_and_responses() {
    let runtime = Runtime::new().unwrap();
    let config = serde_json::json!({"config": {"name": "x-weft-example", "value": "hello"}});
    let chain = chain(
        &runtime,
        serde_json::json!([plugin("stamp", "add_header", config)]),
    )
    .unwrap();

    for _ in 0..3 {
        let (view, outcome) = chain.on_request(request("/"));
        assert!(matches!(outcome, RequestOutcome::Continue), "{outcome:?}");
        assert_eq!(view.parts.headers["x-weft-example"], "hello");

        let rsp = http::Response::new(()).into_parts().0;
        let (_, rsp, outcome) = chain.on_response(view, rsp);
        assert_eq!(outcome, ResponseOutcome::Continue);
        assert_eq!(rsp.headers["x-weft-example"], "hello");
    }
}

#[test]
fn a_plugin_can_answer_itself() {
    let runtime = Runtime::new().unwrap();
    let chain = chain(
        &runtime,
        serde_json::json!([plugin("deny", "deny_all", serde_json::json!({}))]),
    )
    .unwrap();
    let (_, outcome) = chain.on_request(request("/secret"));
    let RequestOutcome::Respond { plugin, response } = outcome else {
        panic!("expected a local response, got {outcome:?}");
    };
    assert_eq!((plugin.as_str(), response.status), ("deny", 403));
    assert_eq!(response.body, "denied by deny-all\n");
}

#[test]
fn a_trap_fails_closed_or_open_and_the_chain_recovers() {
    let runtime = Runtime::new().unwrap();
    let closed = chain(
        &runtime,
        serde_json::json!([plugin("trap", "trap", serde_json::json!({}))]),
    )
    .unwrap();
    for _ in 0..3 {
        let (_, outcome) = closed.on_request(request("/"));
        let RequestOutcome::Fail(failure) = outcome else {
            panic!("expected a failure, got {outcome:?}");
        };
        assert_eq!(failure.plugin, "trap");
        assert!(failure.reason.starts_with("trapped"), "{}", failure.reason);
    }

    let open_stamp = serde_json::json!({"config": {"name": "x-after", "value": "1"}});
    let open = chain(
        &runtime,
        serde_json::json!([
            plugin(
                "trap",
                "trap",
                serde_json::json!({"failurePolicy": "fail-open"})
            ),
            plugin("stamp", "add_header", open_stamp),
        ]),
    )
    .unwrap();
    for _ in 0..3 {
        let (view, outcome) = open.on_request(request("/"));
        assert!(matches!(outcome, RequestOutcome::Continue), "{outcome:?}");
        assert_eq!(
            view.parts.headers["x-after"], "1",
            "the next plugin still ran"
        );
    }
}

#[test]
fn an_endless_loop_is_stopped_at_its_deadline() {
    let runtime = Runtime::new().unwrap();
    let chain = chain(
        &runtime,
        serde_json::json!([plugin("spin", "spin", serde_json::json!({"timeoutMs": 20}))]),
    )
    .unwrap();
    let started = Instant::now();
    let (_, outcome) = chain.on_request(request("/"));
    let elapsed = started.elapsed();
    let RequestOutcome::Fail(failure) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(failure.reason, "did not finish within 20 ms");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}

#[test]
fn an_init_that_never_returns_is_refused_at_load() {
    let runtime = Runtime::new().unwrap();
    let spec = serde_json::json!({"config": "init", "timeoutMs": 20});
    let started = Instant::now();
    let loaded = chain(&runtime, serde_json::json!([plugin("spin", "spin", spec)]));
    let Err(LoadError::Init(failure)) = loaded else {
        panic!("expected the load to fail in init");
    };
    assert_eq!(failure.reason, "did not start within 2000 ms");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn hooks_a_configuration_makes_no_ops_are_never_entered() {
    let runtime = Runtime::new().unwrap();
    let no_routes = serde_json::json!({"config": {}});
    let split = chain(
        &runtime,
        serde_json::json!([plugin("split", "split", no_routes)]),
    );
    assert!(!split.unwrap().wants(Hooks::REQUEST));

    // A ServiceProfile's timeout: a deadline, no retries.
    let deadline = serde_json::json!({"config": {"routes": [
        {"name": "slow", "retryOn": [], "limit": 0, "timeoutMs": 500},
    ]}});
    let retry = chain(
        &runtime,
        serde_json::json!([plugin("retry", "retry", deadline)]),
    )
    .unwrap();
    assert!(retry.wants(Hooks::REQUEST));
    assert!(!retry.wants(Hooks::RESPONSE));
    let (view, _) = retry.on_request(request("/"));
    assert_eq!(view.timeout, Some(Duration::from_millis(500)));

    let retries = serde_json::json!({"config": {"routes": [{"name": "all", "retryOn": ["5xx"]}]}});
    let retry = chain(
        &runtime,
        serde_json::json!([plugin("retry", "retry", retries)]),
    )
    .unwrap();
    assert!(retry.wants(Hooks::RESPONSE));
}

#[test]
fn a_memory_hog_hits_its_limit() {
    let runtime = Runtime::new().unwrap();
    let limit = serde_json::json!({"memoryLimitBytes": 8 * 1024 * 1024, "timeoutMs": 2000});
    let chain = chain(&runtime, serde_json::json!([plugin("hog", "hog", limit)])).unwrap();
    let (_, outcome) = chain.on_request(request("/"));
    let RequestOutcome::Fail(failure) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(failure.reason, "exceeded its memory limit of 8388608 bytes");
}

#[test]
fn bad_modules_are_refused_naming_the_cause() {
    let runtime = Runtime::new().unwrap();
    let wrong = chain(
        &runtime,
        serde_json::json!([plugin("other", "wrong_world", serde_json::json!({}))]),
    );
    let Err(err @ LoadError::World { .. }) = wrong else {
        panic!("expected a world error")
    };
    assert!(err.to_string().contains("weft:plugin"), "{err}");

    let dir = std::env::temp_dir().join(format!("weft-bad-module-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"this is not wasm").unwrap();
    let spec = serde_json::json!([{"name": "junk", "module": junk}]);
    assert!(matches!(
        chain(&runtime, spec),
        Err(LoadError::Compile { .. })
    ));

    let pinned = serde_json::json!({"sha256": "00".repeat(32)});
    let err = chain(
        &runtime,
        serde_json::json!([plugin("stamp", "add_header", pinned)]),
    )
    .err()
    .unwrap();
    assert!(matches!(err, LoadError::Digest { .. }), "{err}");

    let bad_config = serde_json::json!({"config": {"name": "bad name", "value": "x"}});
    let err = chain(
        &runtime,
        serde_json::json!([plugin("stamp", "add_header", bad_config)]),
    )
    .err()
    .unwrap();
    assert!(
        err.to_string().contains("rejected its configuration"),
        "{err}"
    );

    let missing = serde_json::json!([{"name": "gone", "module": dir.join("gone.wasm")}]);
    assert!(matches!(
        chain(&runtime, missing),
        Err(LoadError::Read { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_metrics_plugin_counts_golden_metrics() {
    let runtime = Runtime::new().unwrap();
    let chain = chain(
        &runtime,
        serde_json::json!([plugin("metrics", "metrics", serde_json::json!({}))]),
    )
    .unwrap();
    for status in [200, 200, 503] {
        chain.on_complete(
            request("/"),
            Completion {
                status: Some(status),
                error: None,
                response_latency_us: 3_000,
                total_us: 4_000,
                attempts: 1,
            },
        );
    }
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(runtime.metrics()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let metrics = weft_tests::Metrics::parse(&text);
    let inbound = [("direction", "inbound"), ("authority", "app.example")];
    assert_eq!(metrics.sum("request_total", &inbound), 3.0, "{text}");
    let failures = [
        ("direction", "inbound"),
        ("classification", "failure"),
        ("status_code", "503"),
    ];
    assert_eq!(metrics.sum("response_total", &failures), 1.0, "{text}");
    assert_eq!(
        metrics.sum("response_latency_ms_count", &inbound),
        3.0,
        "{text}"
    );
}

#[test]
fn compiled_components_are_kept_on_disk_and_checked_before_use() {
    use std::os::unix::fs::MetadataExt;

    let dir = std::env::temp_dir().join(format!("weft-runtime-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cached = |runtime: &Runtime, name: &str, crate_name: &str| {
        let config = serde_json::json!({"config": {"name": "x-weft-example", "value": "cached"}});
        let spec = plugin(name, crate_name, config);
        chain(runtime, serde_json::json!([spec]))
    };
    let first = Runtime::new().unwrap().with_disk_cache(dir.clone());
    cached(&first, "stamp", "add_header").unwrap();
    let digest = weft_tests::sha256_hex(&std::fs::read(plugins::component("add_header")).unwrap());
    let entry = dir.join(format!("{digest}.cwasm"));
    let written = std::fs::metadata(&entry).unwrap().ino();

    // A second runtime (a restarted proxy) loads the cached code: compiling
    // again would have replaced the file.
    let second = Runtime::new().unwrap().with_disk_cache(dir.clone());
    let chain = cached(&second, "stamp", "add_header").unwrap();
    let (view, _) = chain.on_request(request("/"));
    assert_eq!(view.parts.headers["x-weft-example"], "cached");
    assert_eq!(std::fs::metadata(&entry).unwrap().ino(), written);

    // A whole, valid entry filed under another module's digest is refused:
    // that module is compiled again and its own code runs.
    let planted = dir.join(format!(
        "{}.cwasm",
        weft_tests::sha256_hex(&std::fs::read(plugins::component("deny_all")).unwrap())
    ));
    std::fs::copy(&entry, &planted).unwrap();
    let third = Runtime::new().unwrap().with_disk_cache(dir.clone());
    let chain = cached(&third, "deny", "deny_all").unwrap();
    let (_, outcome) = chain.on_request(request("/"));
    assert!(
        matches!(outcome, RequestOutcome::Respond { .. }),
        "deny_all's own code ran: {outcome:?}"
    );
    assert_ne!(
        std::fs::read(&planted).unwrap(),
        std::fs::read(&entry).unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
