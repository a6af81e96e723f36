//! `weft plugin test`: each case of a test file goes through the plugin on
//! the proxy's own plugin runtime (`weft-plugins`: the same engine, limits
//! and host services), hook by hook as the proxy calls them, and what came
//! out is compared with what the case expects.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, ensure};
use clap::Args;
use weft_plugins::{
    ChainSpec, Completion, DEFAULT_METRIC_SERIES_LIMIT, Direction, FailurePolicy, LoadError,
    PluginChain, PluginMetrics, PluginSpec, RequestOutcome, RequestView, ResponseOutcome, Runtime,
};

use super::project::{DEFAULT_TEST_FILE, Project};
use super::replay;
use super::test_file::{Case, Expect, Limits, TestDirection, TestFile, TestRequest};

#[derive(Args)]
pub struct TestArgs {
    /// The test file; `plugin-test.yaml` in the project when none.
    file: Option<PathBuf>,
    /// The project directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Test this component instead of the project's build.
    #[arg(long, value_name = "WASM")]
    module: Option<PathBuf>,
    /// Replay requests recorded by `weft tap -o json` (one JSON line each)
    /// instead of a test file's cases.
    #[arg(long, value_name = "FILE", conflicts_with = "file")]
    replay: Option<PathBuf>,
    /// The plugin's configuration (JSON) for the replayed requests; the
    /// project test file's `config` when none.
    #[arg(long, value_name = "JSON", requires = "replay")]
    config: Option<String>,
}

pub fn run(args: &TestArgs) -> anyhow::Result<ExitCode> {
    let dir = super::project_dir(&args.dir);
    let (name, module) = match &args.module {
        Some(module) => (plugin_name(module), module.clone()),
        None => {
            let project = Project::open(&dir)?;
            let module = project.module();
            (project.manifest.name, module)
        }
    };
    ensure!(
        module.is_file(),
        "no component at {}: run `weft plugin build` first",
        module.display()
    );
    let default_file = dir.join(DEFAULT_TEST_FILE);
    if let Some(replay) = &args.replay {
        return replay_tap(
            &name,
            &module,
            replay,
            args.config.as_deref(),
            &default_file,
        );
    }
    let file = args.file.clone().unwrap_or(default_file);
    let tests = read_test_file(&file)?;
    ensure!(!tests.cases.is_empty(), "{} has no cases", file.display());
    let mut runner = Runner::new(name, module.clone(), cache_for(&module), tests.limits())?;
    let mut failed = 0;
    for case in &tests.cases {
        let config = case.config.as_ref().unwrap_or(&tests.config);
        let diffs = match runner.run(config, case) {
            Ok(outcome) => compare(&case.expect, &outcome),
            Err(error) => vec![format!("{error:#}")],
        };
        if diffs.is_empty() {
            println!("ok    {}", case.name);
        } else {
            failed += 1;
            println!("FAIL  {}", case.name);
            for diff in diffs {
                println!("      {}", diff.replace('\n', "\n      "));
            }
        }
    }
    let passed = tests.cases.len() - failed;
    println!("\n{passed} passed, {failed} failed ({})", file.display());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn read_test_file(file: &Path) -> anyhow::Result<TestFile> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("reading {}", file.display()))
}

/// Compiling a Python or JavaScript component takes seconds: the compiled
/// code is kept beside the component.
fn cache_for(module: &Path) -> PathBuf {
    super::compiled_cache(
        module
            .parent()
            .unwrap_or(Path::new("."))
            .join("weft-build/compiled"),
    )
}

/// `--replay`: every recorded request through the plugin, one line each
/// saying whether its answer changed. Fails only when the plugin fails.
fn replay_tap(
    name: &str,
    module: &Path,
    recording: &Path,
    config: Option<&str>,
    test_file: &Path,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(recording)
        .with_context(|| format!("reading {}", recording.display()))?;
    let requests =
        replay::read(&text).with_context(|| format!("reading {}", recording.display()))?;
    let project_tests = test_file
        .is_file()
        .then(|| read_test_file(test_file))
        .transpose()?;
    let config = match config {
        Some(json) => serde_json::from_str(json).context("--config is not JSON")?,
        None => project_tests
            .as_ref()
            .map_or(serde_json::Value::Null, |tests| tests.config.clone()),
    };
    let limits = project_tests.map(|t| t.limits()).unwrap_or_default();
    let mut runner = Runner::new(name.into(), module.into(), cache_for(module), limits)?;
    let (mut changed, mut failed) = (0, 0);
    for recorded in &requests {
        let outcome = runner.run(&config, &recorded.case)?;
        let (line, differs) = replay::report(recorded, &outcome);
        println!("{line}");
        changed += usize::from(differs);
        failed += usize::from(outcome.failure.is_some());
    }
    println!(
        "\n{} replayed, {changed} answered differently, {failed} failed in the plugin ({})",
        requests.len(),
        recording.display()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `target/hello-header.wasm` → `hello-header`.
pub fn plugin_name(module: &Path) -> String {
    module
        .file_stem()
        .map_or("plugin".into(), |stem| stem.to_string_lossy().into_owned())
}

/// What came out of one case.
#[derive(Debug, Default)]
pub struct Outcome {
    pub status: u16,
    pub body: Option<String>,
    pub request_headers: http::HeaderMap,
    pub response_headers: http::HeaderMap,
    pub backend: Option<String>,
    pub retry: bool,
    pub failure: Option<String>,
    /// The proxy's `/metrics` text for plugins, after the case.
    pub metrics: String,
}

/// One runtime for the file, one loaded chain per distinct configuration.
pub struct Runner {
    name: String,
    module: PathBuf,
    limits: Limits,
    runtime: Runtime,
    metrics: Arc<PluginMetrics>,
    chains: HashMap<String, PluginChain>,
}

impl Runner {
    pub fn new(
        name: String,
        module: PathBuf,
        cache: PathBuf,
        limits: Limits,
    ) -> anyhow::Result<Self> {
        // Compiling a Python or JavaScript component takes seconds: keep it.
        let runtime = Runtime::new()?.with_disk_cache(cache);
        let metrics = runtime.metrics();
        Ok(Self {
            name,
            module,
            limits,
            runtime,
            metrics,
            chains: HashMap::new(),
        })
    }

    /// Loads the chain for `config` as the proxy loads one (default
    /// limits, fail-closed), once per distinct configuration.
    pub fn load(&mut self, config: &serde_json::Value) -> Result<(), LoadError> {
        let key = config.to_string();
        if !self.chains.contains_key(&key) {
            let spec = chain_spec(&self.name, &self.module, config, self.limits);
            let chain = self.runtime.load(&spec, Path::new("."))?;
            self.chains.insert(key, chain);
        }
        Ok(())
    }

    pub fn run(&mut self, config: &serde_json::Value, case: &Case) -> anyhow::Result<Outcome> {
        match self.load(config) {
            Ok(()) => {}
            // The plugin refused its configuration: the proxy would keep
            // its previous chain; the test sees the failure.
            Err(LoadError::Init(failure)) => {
                return Ok(Outcome {
                    status: 500,
                    failure: Some(failure.to_string()),
                    ..Outcome::default()
                });
            }
            Err(error) => return Err(error.into()),
        }
        let chain = &self.chains[&config.to_string()];
        let view = request_view(&case.name, &case.request)?;
        let mut outcome = Outcome::default();
        let (view, request_outcome) = chain.on_request(view);
        outcome.request_headers = view.parts.headers.clone();
        outcome.backend = view.backend.clone();
        let completion_status = match request_outcome {
            RequestOutcome::Respond { response, .. } => {
                outcome.status = response.status;
                outcome.body = Some(response.body);
                outcome.response_headers = header_map(&response.headers)?;
                Some(outcome.status)
            }
            RequestOutcome::Fail(failure) => {
                outcome.status = 500;
                outcome.failure = Some(failure.to_string());
                None
            }
            RequestOutcome::Continue => {
                let upstream = upstream_response(case)?;
                let (_, rsp, response_outcome) = chain.on_response(view.snapshot(), upstream);
                outcome.status = rsp.status.as_u16();
                outcome.response_headers = rsp.headers;
                match response_outcome {
                    ResponseOutcome::Continue => {}
                    ResponseOutcome::Retry => outcome.retry = true,
                    ResponseOutcome::Fail(failure) => {
                        outcome.status = 500;
                        outcome.failure = Some(failure.to_string());
                    }
                }
                Some(outcome.status)
            }
        };
        chain.on_complete(
            view,
            Completion {
                status: completion_status,
                error: None,
                response_latency_us: 900,
                total_us: 1_000,
                attempts: 1,
            },
        );
        outcome.metrics = self.metrics_text()?;
        Ok(outcome)
    }

    fn metrics_text(&self) -> anyhow::Result<String> {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(SharedMetrics(self.metrics.clone())));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)?;
        Ok(text)
    }
}

/// The registry takes collectors by value; the runner keeps its own.
#[derive(Debug)]
struct SharedMetrics(Arc<PluginMetrics>);

impl prometheus_client::collector::Collector for SharedMetrics {
    fn encode(
        &self,
        encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        prometheus_client::collector::Collector::encode(&*self.0, encoder)
    }
}

/// A chain of the one plugin, as the proxy loads it with default limits
/// and fail-closed.
pub fn chain_spec(
    name: &str,
    module: &Path,
    config: &serde_json::Value,
    limits: Limits,
) -> ChainSpec {
    ChainSpec {
        plugins: vec![PluginSpec {
            name: name.to_string(),
            module: module.to_path_buf(),
            sha256: None,
            config: config.clone(),
            failure_policy: FailurePolicy::FailClosed,
            timeout_ms: limits.timeout_ms,
            memory_limit_bytes: limits.memory_limit_bytes,
            metric_series_limit: DEFAULT_METRIC_SERIES_LIMIT,
            directions: Vec::new(),
        }],
    }
}

pub fn request_view(case: &str, req: &TestRequest) -> anyhow::Result<RequestView> {
    let mut builder = http::Request::builder()
        .method(req.method.as_str())
        .uri(req.path.as_str());
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    let parts = builder
        .body(())
        .with_context(|| format!("case `{case}`: request"))?
        .into_parts()
        .0;
    Ok(RequestView {
        parts,
        direction: match req.direction {
            TestDirection::Inbound => Direction::Inbound,
            TestDirection::Outbound => Direction::Outbound,
        },
        client_addr: req
            .client_addr
            .parse()
            .with_context(|| format!("case `{case}`: clientAddr"))?,
        local_port: req.local_port,
        tls: req.peer_identity.is_some(),
        peer_identity: req.peer_identity.clone(),
        backend: None,
        destination_labels: Default::default(),
        timeout: None,
        attempt: 1,
        replayable: true,
    })
}

fn upstream_response(case: &Case) -> anyhow::Result<http::response::Parts> {
    let mut builder = http::Response::builder().status(case.response.status);
    for (name, value) in &case.response.headers {
        builder = builder.header(name, value);
    }
    Ok(builder
        .body(())
        .with_context(|| format!("case `{}`: response", case.name))?
        .into_parts()
        .0)
}

fn header_map(headers: &[(String, String)]) -> anyhow::Result<http::HeaderMap> {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        map.append(
            http::HeaderName::try_from(name.as_str())?,
            http::HeaderValue::try_from(value.as_str())?,
        );
    }
    Ok(map)
}

/// What differs between the expectation and the outcome, one readable
/// entry each; empty when the case passed.
pub fn compare(expect: &Expect, outcome: &Outcome) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |what: String, expected: String, actual: String| {
        if expected != actual {
            diffs.push(format!(
                "{what}\n  - expected {expected}\n  + got      {actual}"
            ));
        }
    };
    if let Some(status) = expect.status {
        check(
            "status".into(),
            status.to_string(),
            outcome.status.to_string(),
        );
    }
    if let Some(body) = &expect.body {
        check("body".into(), format!("{body:?}"), show(&outcome.body));
    }
    for (kind, expected, actual) in [
        ("request", &expect.request_headers, &outcome.request_headers),
        (
            "response",
            &expect.response_headers,
            &outcome.response_headers,
        ),
    ] {
        for (name, value) in expected {
            let got = actual
                .get(name.as_str())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            check(format!("{kind} header `{name}`"), show(value), show(&got));
        }
    }
    if let Some(backend) = &expect.backend {
        check("backend".into(), show(backend), show(&outcome.backend));
    }
    if let Some(retry) = expect.retry {
        check(
            "retry asked".into(),
            retry.to_string(),
            outcome.retry.to_string(),
        );
    }
    match (&expect.failure, &outcome.failure) {
        (Some(part), Some(failure)) if failure.contains(part.as_str()) => {}
        (None, None) => {}
        (None, Some(failure)) => check("failure".into(), "none".into(), failure.clone()),
        (Some(part), failure) => check(
            "failure".into(),
            format!("one mentioning {part:?}"),
            failure.clone().unwrap_or("none".into()),
        ),
    }
    let lines: BTreeMap<&str, ()> = outcome.metrics.lines().map(|l| (l.trim(), ())).collect();
    for line in &expect.metrics {
        if !lines.contains_key(line.trim()) {
            diffs.push(format!(
                "metrics: no line `{line}` in\n{}",
                plugin_lines(&outcome.metrics)
            ));
        }
    }
    diffs
}

fn show(value: &Option<String>) -> String {
    value
        .as_ref()
        .map_or("none".to_string(), |value| format!("{value:?}"))
}

/// The sample lines of the metrics text, or a note that there are none.
fn plugin_lines(text: &str) -> String {
    let samples: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    if samples.is_empty() {
        "  (no samples)".into()
    } else {
        samples
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests;
