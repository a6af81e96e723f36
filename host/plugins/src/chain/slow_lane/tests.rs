//! The slow lane with real components built from `plugins/`: `spin` (never
//! returns), `hog` (grows its memory forever) and `deny_all` (answers 403).
//! Ordering is shown with the lane held by a call the test releases, never
//! with wall-clock limits.

use std::path::{Path, PathBuf};
use std::pin::pin;
use std::process::Command;
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use prometheus_client::registry::Registry;
use serde_json::json;

use crate::{ChainSpec, Direction, PluginChain, RequestOutcome, RequestView, Runtime};

use super::SlowLaneSettings;

#[test]
fn a_spinning_plugin_is_demoted_and_its_calls_stop_holding_the_caller() {
    let runtime = Runtime::new().unwrap();
    let spinning = load(&runtime, json!([plugin("spin", json!({}))]));
    let other = load(&runtime, json!([plugin("deny_all", json!({}))]));

    // The first overrun runs where it is called, and demotes the plugin.
    let (_, outcome) = now(spinning.on_request_async(request()))
        .expect("a plugin not yet demoted is called inline");
    assert_failed(outcome, "spin", "did not finish within 50 ms");
    assert!(spinning.is_demoted("spin"));
    assert!(!other.is_demoted("deny_all"));
    let text = metrics_text(&runtime);
    assert!(
        text.contains(r#"weft_plugin_demotions_total{plugin="spin"} 1"#),
        "{text}"
    );

    // Its next call waits in the lane (held here) while another chain's
    // call completes at once on this thread.
    let release = hold_lane(&spinning);
    let mut lane_call = pin!(spinning.on_request_async(request()));
    assert!(poll(lane_call.as_mut()).is_pending());
    assert!(metrics_text(&runtime).contains("weft_plugin_slow_lane_calls 2"));
    let (_, outcome) = now(other.on_request_async(request()))
        .expect("a chain without demoted plugins is called inline");
    assert!(matches!(outcome, RequestOutcome::Respond { ref plugin, .. } if plugin == "deny_all"));
    assert!(poll(lane_call.as_mut()).is_pending());

    // In the lane its time limit and fail-closed policy still apply.
    release.send(()).unwrap();
    let (_, outcome) = block_on(lane_call);
    assert_failed(outcome, "spin", "did not finish within 50 ms");
    let text = metrics_text(&runtime);
    assert!(
        text.contains(r#"weft_plugin_demotions_total{plugin="spin"} 1"#),
        "overruns while demoted do not demote again: {text}"
    );
}

#[test]
fn a_full_lane_refuses_by_the_plugins_failure_policy() {
    let settings = SlowLaneSettings {
        capacity: 1,
        ..Default::default()
    };
    let runtime = Runtime::new().unwrap().with_slow_lane(settings);
    let closed = load(&runtime, json!([plugin("spin", json!({}))]));
    let open = load(
        &runtime,
        json!([
            plugin("spin", json!({"failurePolicy": "fail-open"})),
            plugin("deny_all", json!({})),
        ]),
    );
    for chain in [&closed, &open] {
        let _ = now(chain.on_request_async(request())).expect("inline before demotion");
        assert!(chain.is_demoted("spin"));
    }

    let release = hold_lane(&closed);
    // Fail-closed: refused at once, naming the plugin and the reason.
    let (_, outcome) = now(closed.on_request_async(request())).expect("refused at once");
    assert_failed(outcome, "spin", "slow lane full");
    // Fail-open: the demoted plugin is skipped, the rest of the chain runs.
    let (_, outcome) = now(open.on_request_async(request())).expect("run inline without spin");
    assert!(matches!(outcome, RequestOutcome::Respond { ref plugin, .. } if plugin == "deny_all"));
    release.send(()).unwrap();
}

#[test]
fn demotion_ends_and_a_repeat_lasts_twice_as_long() {
    let settings = SlowLaneSettings {
        demotion: Duration::from_millis(50),
        ..Default::default()
    };
    let runtime = Runtime::new().unwrap().with_slow_lane(settings);
    let chain = load(&runtime, json!([plugin("hog", json!({}))]));

    // Stopped at its memory limit: demoted too.
    let (_, outcome) = now(chain.on_request_async(request())).expect("inline before demotion");
    assert_failed(outcome, "hog", "exceeded its memory limit");
    assert!(chain.is_demoted("hog"));
    assert_eq!(last_demotion(&chain), Duration::from_millis(50));

    eventually(|| !chain.is_demoted("hog"));
    assert!(!chain.demotions.any(), "an ended demotion is cleared");
    let (_, outcome) =
        now(chain.on_request_async(request())).expect("inline again once the demotion ended");
    assert_failed(outcome, "hog", "exceeded its memory limit");
    assert!(chain.is_demoted("hog"));
    assert_eq!(last_demotion(&chain), Duration::from_millis(100));
}

fn last_demotion(chain: &PluginChain) -> Duration {
    let demotion = chain.demotions.plugins[0].lock().unwrap();
    demotion.last.expect("demoted").0
}

/// Takes the lane's one thread until the returned sender is used.
fn hold_lane(chain: &PluginChain) -> mpsc::Sender<()> {
    let (release, released) = mpsc::channel();
    let reservation = chain.lane.reserve().expect("room in the lane");
    reservation.spawn(move || {
        let _ = released.recv();
    });
    release
}

fn assert_failed(outcome: RequestOutcome, plugin: &str, reason: &str) {
    match outcome {
        RequestOutcome::Fail(failure) => {
            assert_eq!(failure.plugin, plugin);
            assert!(failure.reason.contains(reason), "{failure}");
        }
        other => panic!("expected {plugin} to fail with {reason:?}, got {other:?}"),
    }
}

fn poll<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// The output if `future` completes on its first poll.
fn now<F: Future>(future: F) -> Option<F::Output> {
    match poll(pin!(future)) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

fn eventually(condition: impl Fn() -> bool) {
    for _ in 0..2_000 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("condition not met after 2,000 tries");
}

fn metrics_text(runtime: &Runtime) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(runtime.metrics()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

fn request() -> RequestView {
    let parts = http::Request::get("/")
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

fn load(runtime: &Runtime, plugins: serde_json::Value) -> Arc<PluginChain> {
    let spec: ChainSpec = serde_json::from_value(json!({ "plugins": plugins })).unwrap();
    let chain = runtime.load(&spec, Path::new("/"));
    Arc::new(chain.unwrap_or_else(|error| panic!("loading {plugins}: {error}")))
}

fn plugin(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({"name": name, "module": components().join(format!("{name}.wasm"))});
    let fields = extra.as_object().unwrap().clone();
    spec.as_object_mut().unwrap().extend(fields);
    spec
}

/// `plugins/` built for wasm32-wasip2 once per test process.
fn components() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
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
        })
        .clone()
}
