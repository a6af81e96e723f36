//! What a hook call costs, in process: chains loaded from the real components
//! in `plugins/`, called the way the proxy calls them. Prints a table of
//! nanoseconds per call; it measures, it does not judge.
//!
//! `cargo bench -p weft-plugins --bench hooks`
//!
//! With `WEFT_BENCH_COMPONENTS=dir` it measures the components in `dir`
//! (`metrics.wasm`, ...) instead of building `plugins/`: components of an
//! older revision, measured beside the current ones on the same runtime.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::json;
use weft_plugins::{
    ChainSpec, Completion, Direction, PluginChain, RequestOutcome, RequestView, ResponseOutcome,
    Runtime,
};

/// Enough calls that a run lasts long enough to time (~0.1–1 s).
const CALLS: u32 = 200_000;
/// Fills the pool, the caches and the branch predictors first.
const WARM_UP_CALLS: u32 = 20_000;
/// The median of a few runs shrugs off one disturbed by another process.
const RUNS: usize = 5;

/// One measured case: nanoseconds per call over `RUNS` runs, sorted.
struct Row {
    case: &'static str,
    runs: Result<Vec<f64>, String>,
}

fn main() {
    let components = match std::env::var_os("WEFT_BENCH_COMPONENTS") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let plugins = plugins_dir();
            build_plugins(&plugins);
            plugins.join("target/wasm32-wasip2/release")
        }
    };
    println!("components: {}", components.display());
    let runtime = Runtime::new().expect("starting the plugin runtime");
    let head = request();

    let rows = vec![
        Row {
            case: "copy of a request head (RequestView::snapshot) *",
            runs: Ok(measure(|| {
                black_box(head.snapshot());
            })),
        },
        Row {
            case: "empty chain: on_request",
            runs: Ok(time_request_hook(&runtime.empty_chain())),
        },
        Row {
            case: "add_header: on_request (one set-header)",
            runs: load(&runtime, &components, &[add_header()]).map(|c| time_request_hook(&c)),
        },
        Row {
            case: "metrics: on_complete *",
            runs: load(&runtime, &components, &[metrics()]).map(|c| time_completion_hook(&c)),
        },
        Row {
            case: BASELINE,
            runs: Ok(time_whole_request(&runtime.empty_chain())),
        },
        whole_request(
            &runtime,
            &components,
            "metrics: whole request *",
            &[metrics()],
        ),
        whole_request(&runtime, &components, "retry: whole request *", &[retry()]),
        whole_request(&runtime, &components, "authz: whole request *", &[authz()]),
        whole_request(&runtime, &components, "split: whole request *", &[split()]),
        whole_request(
            &runtime,
            &components,
            CHAIN,
            &[metrics(), retry(), authz(), split()],
        ),
    ];
    print_table(&rows);
    print_shares(&rows);
}

/// The whole request with no plugin: what each plugin's row adds to.
const BASELINE: &str = "empty chain: whole request *";
/// Rows of one plugin each, and the chain of all of them.
const SINGLES: [&str; 4] = ["metrics", "retry", "authz", "split"];
const CHAIN: &str = "metrics+retry+authz+split: whole request *";

/// Request, response and completion hooks of a chain of `plugins`.
fn whole_request(
    runtime: &Runtime,
    components: &Path,
    case: &'static str,
    plugins: &[(&str, serde_json::Value)],
) -> Row {
    Row {
        case,
        runs: load(runtime, components, plugins).map(|c| time_whole_request(&c)),
    }
}

/// The workspace's `plugins/` folder.
fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

/// Builds the components as the tests do. A failed build (a plugin being
/// edited) is not fatal: the components already built are measured.
fn build_plugins(dir: &Path) {
    let rustup = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status();
    if !rustup.is_ok_and(|status| status.success()) {
        eprintln!("warning: `rustup target add wasm32-wasip2` failed");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--quiet", "--release"])
        .current_dir(dir)
        // plugins/ is its own workspace with its own target directory.
        .env_remove("CARGO_TARGET_DIR")
        .status();
    if !built.is_ok_and(|status| status.success()) {
        eprintln!(
            "warning: building {} failed; measuring the components already built",
            dir.display()
        );
    }
}

fn add_header() -> (&'static str, serde_json::Value) {
    (
        "add_header",
        json!({"name": "x-weft-example", "value": "hello"}),
    )
}

fn metrics() -> (&'static str, serde_json::Value) {
    ("metrics", json!({}))
}

fn retry() -> (&'static str, serde_json::Value) {
    (
        "retry",
        json!({"routes": [{"name": "all", "retryOn": ["5xx"], "limit": 1}]}),
    )
}

fn authz() -> (&'static str, serde_json::Value) {
    (
        "authz",
        json!({
            "defaultPolicy": "all-unauthenticated",
            "rules": [{"name": "local", "clientCidrs": ["10.0.0.0/8"], "pathPrefixes": ["/"]}],
        }),
    )
}

fn split() -> (&'static str, serde_json::Value) {
    (
        "split",
        json!({"routes": [{
            "name": "w",
            "authority": "app.example",
            "backends": [
                {"backend": "127.0.0.1:1", "weight": 900},
                {"backend": "127.0.0.1:2", "weight": 100},
            ],
        }]}),
    )
}

/// A chain of the named components (`<name>.wasm` in `components`), or why
/// the case is skipped: a component not built yet. Any other load error
/// is a broken benchmark and stops it.
fn load(
    runtime: &Runtime,
    components: &Path,
    plugins: &[(&str, serde_json::Value)],
) -> Result<PluginChain, String> {
    let mut entries = Vec::new();
    for (name, config) in plugins {
        let module = components.join(format!("{name}.wasm"));
        if !module.is_file() {
            return Err(format!("skipped: {} is not built", module.display()));
        }
        entries.push(json!({"name": name, "module": module, "config": config}));
    }
    let spec: ChainSpec =
        serde_json::from_value(json!({ "plugins": entries })).expect("a valid chain spec");
    let chain = runtime
        .load(&spec, Path::new("/"))
        .unwrap_or_else(|error| panic!("loading {plugins:?}: {error}"));
    Ok(chain)
}

/// An inbound request as a browser or curl sends it, from a client the
/// authz rule matches.
fn request() -> RequestView {
    let parts = http::Request::get("/")
        .header("host", "app.example")
        .header("user-agent", "curl/8.14.1")
        .header("accept", "*/*")
        .body(())
        .expect("a valid request")
        .into_parts()
        .0;
    RequestView {
        parts,
        direction: Direction::Inbound,
        client_addr: "10.0.0.7:41000".parse().expect("a socket address"),
        local_port: 8080,
        peer_identity: None,
        tls: false,
        backend: None,
        destination_labels: Default::default(),
        timeout: None,
        attempt: 1,
        replayable: false,
    }
}

fn completion() -> Completion {
    Completion {
        status: Some(200),
        error: None,
        response_latency_us: 900,
        total_us: 1_000,
        attempts: 1,
    }
}

/// The request hooks on one request view, handed back and reused, as the
/// proxy hands the request's own head to the chain without copying it.
fn time_request_hook(chain: &PluginChain) -> Vec<f64> {
    let mut view = Some(request());
    expect_continue(chain);
    measure(|| {
        let (back, outcome) = chain.on_request(view.take().expect("the view came back"));
        black_box(&outcome);
        view = Some(back);
    })
}

/// The completion hook consumes its view: each call includes a snapshot.
fn time_completion_hook(chain: &PluginChain) -> Vec<f64> {
    let view = request();
    measure(|| chain.on_complete(view.snapshot(), completion()))
}

/// Request, response and completion hooks, with the one head copy the
/// proxy makes (the request goes upstream, the view stays for later hooks).
fn time_whole_request(chain: &PluginChain) -> Vec<f64> {
    expect_continue(chain);
    let mut view = Some(request());
    measure(|| {
        let mut req = view.take().expect("the view came back");
        req.backend = None;
        let (req, outcome) = chain.on_request(req);
        black_box(&outcome);
        // The head that goes upstream; it starts the next round.
        let upstream = req.snapshot();
        let rsp = http::Response::new(()).into_parts().0;
        let (req, rsp, outcome) = chain.on_response(req, rsp);
        black_box((&rsp, &outcome));
        chain.on_complete(req, completion());
        view = Some(upstream);
    })
}

/// A chain that answers or fails instead would time a different path.
fn expect_continue(chain: &PluginChain) {
    let (req, outcome) = chain.on_request(request());
    assert!(
        matches!(outcome, RequestOutcome::Continue),
        "the request hooks should let the request through: {outcome:?}"
    );
    let rsp = http::Response::new(()).into_parts().0;
    let (_, _, outcome) = chain.on_response(req, rsp);
    assert_eq!(outcome, ResponseOutcome::Continue, "the response hooks");
}

/// Nanoseconds per call of `call`, one figure per run, sorted. The time
/// this thread spent on a CPU where the kernel reports it, so that other
/// processes sharing the CPU do not count; wall-clock time where not.
fn measure(mut call: impl FnMut()) -> Vec<f64> {
    for _ in 0..WARM_UP_CALLS {
        call();
    }
    let mut runs: Vec<f64> = (0..RUNS)
        .map(|_| {
            let (started, on_cpu) = (Instant::now(), on_cpu_ns());
            for _ in 0..CALLS {
                call();
            }
            let ns = match (on_cpu, on_cpu_ns()) {
                (Some(before), Some(after)) => (after - before) as f64,
                _ => started.elapsed().as_nanos() as f64,
            };
            ns / f64::from(CALLS)
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs
}

/// Nanoseconds this thread has run, from the scheduler's statistics.
fn on_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

fn print_table(rows: &[Row]) {
    let width = rows.iter().map(|row| row.case.len()).max().unwrap_or(0);
    println!(
        "\nHook call cost, in process: ns on CPU per call, median (min, max) of {RUNS} runs of {CALLS} calls"
    );
    println!(
        "{:<width$}  {:>8}  {:>8}  {:>8}",
        "case", "median", "min", "max"
    );
    for row in rows {
        match &row.runs {
            Ok(runs) => println!(
                "{:<width$}  {:>8.0}  {:>8.0}  {:>8.0}",
                row.case,
                runs[RUNS / 2],
                runs[0],
                runs[RUNS - 1]
            ),
            Err(skipped) => println!("{:<width$}  {skipped}", row.case),
        }
    }
    println!("* includes one copy of the request head per call (first row)\n");
}

/// Each plugin's cost over the empty chain, and its share of their sum, so
/// a regression points at its plugin; beside it, what the chain adds.
fn print_shares(rows: &[Row]) {
    let median = |case: &str| {
        rows.iter()
            .find(|row| row.case == case)
            .and_then(|row| row.runs.as_ref().ok())
            .map(|runs| runs[RUNS / 2])
    };
    let Some(baseline) = median(BASELINE) else {
        return;
    };
    let costs: Vec<(&str, f64)> = SINGLES
        .iter()
        .filter_map(|name| {
            let cost = median(&format!("{name}: whole request *"))? - baseline;
            Some((*name, cost.max(0.0)))
        })
        .collect();
    let sum: f64 = costs.iter().map(|(_, cost)| cost).sum();
    if costs.len() < SINGLES.len() || sum <= 0.0 {
        return;
    }
    println!("Each plugin's share of a whole request (its row less the empty chain's)");
    for (name, cost) in &costs {
        println!("{name:<8}  {cost:>6.0} ns  {:>3.0} %", cost / sum * 100.0);
    }
    if let Some(chain) = median(CHAIN) {
        println!(
            "{:<8}  {sum:>6.0} ns; the chain of all four adds {:.0} ns\n",
            "sum",
            chain - baseline
        );
    }
}
