//! `weft plugin build`: the project's language toolchain, given the WIT
//! contract this `weft` carries, then the proxy's own loader as the check
//! that the output is a component of the `weft:plugin` world.
//!
//! Rust builds with cargo for `wasm32-wasip2`; Python with componentize-py;
//! JavaScript with componentize-js. The two componentizers are found as
//! `$WEFT_COMPONENTIZE_PY` / `$WEFT_COMPONENTIZE_JS` or on `PATH`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use clap::Args;
use weft_plugins::LoadError;

use super::project::{DEFAULT_TEST_FILE, Lang, Project};
use super::test_file::TestFile;

/// The contract, as this `weft` speaks it.
pub const WIT: [(&str, &str); 2] = [
    ("host.wit", include_str!("../../../wit/host.wit")),
    ("types.wit", include_str!("../../../wit/types.wit")),
];
/// The world every plugin targets.
pub const WORLD: &str = "weft:plugin/plugin";

/// The thin SDKs, put beside the project's code at build time.
const PYTHON_SDK: &str = include_str!("../../../plugins/sdk-python/weft_plugin.py");
const JS_SDK: &str = include_str!("../../../plugins/sdk-js/weft-plugin.js");

/// The componentizers' versions this `weft` is tested with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";
pub const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.23.0";

#[derive(Args)]
pub struct BuildArgs {
    /// The project directory.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(args: &BuildArgs) -> anyhow::Result<ExitCode> {
    let project = Project::open(&super::project_dir(&args.dir))?;
    let started = Instant::now();
    build(&project)?;
    let module = project.module();
    let size = std::fs::metadata(&module)?.len();
    check(&project)?;
    println!(
        "built {} ({:.1} MB, {} component of weft:plugin) in {:.1} s",
        module.display(),
        size as f64 / 1e6,
        project.manifest.lang,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Builds `target/NAME.wasm`.
pub fn build(project: &Project) -> anyhow::Result<()> {
    let work = project.build_dir();
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let wit = work.join("wit");
    write_files(&wit, &WIT)?;
    let out = project.module();
    match project.manifest.lang {
        Lang::Rust => build_rust(project, &out),
        Lang::Python => {
            let sdk = work.join("python");
            write_files(&sdk, &[("weft_plugin.py", PYTHON_SDK)])?;
            let mut cmd = tool("WEFT_COMPONENTIZE_PY", "componentize-py");
            cmd.arg("--wit-path")
                .arg(&wit)
                .args(["--world", WORLD, "componentize"])
                .arg("--python-path")
                .arg(&project.dir)
                .arg("--python-path")
                .arg(&sdk)
                // WASI calls trap in the proxy anyway; stubbing them in
                // the component leaves only the world's imports.
                .arg("--stub-wasi")
                .arg("app")
                .arg("--output")
                .arg(&out);
            run_tool(cmd, "componentize-py", COMPONENTIZE_PY, "pip install")
        }
        Lang::Js => {
            // componentize-js takes one module; the SDK goes beside a copy
            // of the project's code so that `./weft-plugin.js` resolves.
            let src = work.join("js");
            let filter = std::fs::read_to_string(project.dir.join("filter.js"))
                .with_context(|| format!("reading {}/filter.js", project.dir.display()))?;
            write_files(
                &src,
                &[("weft-plugin.js", JS_SDK), ("filter.js", filter.as_str())],
            )?;
            let mut cmd = tool("WEFT_COMPONENTIZE_JS", "componentize-js");
            cmd.arg(src.join("filter.js"))
                .arg("--wit")
                .arg(&wit)
                .args(["--world-name", "plugin"])
                // The world has no WASI: leave out what it would import.
                .args([
                    "--disable",
                    "stdio",
                    "random",
                    "clocks",
                    "http",
                    "fetch-event",
                ])
                .arg("--out")
                .arg(&out);
            run_tool(cmd, "componentize-js", COMPONENTIZE_JS, "npm install -g")
        }
    }
}

fn build_rust(project: &Project, out: &Path) -> anyhow::Result<()> {
    let target_dir = project.dir.join("target");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()))
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .arg("--manifest-path")
        .arg(project.dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .context("running cargo (is Rust installed?)")?;
    ensure!(
        status.success(),
        "cargo build failed ({status}); `rustup target add wasm32-wasip2` if the target is missing"
    );
    let built = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", project.manifest.name.replace('-', "_")));
    std::fs::copy(&built, out)
        .with_context(|| format!("copying {} to {}", built.display(), out.display()))?;
    Ok(())
}

/// Loads the component as the proxy would, with the configuration of the
/// project's test file: a module that is not a component, or not of the
/// `weft:plugin` world, is an error that says what is wrong.
fn check(project: &Project) -> anyhow::Result<()> {
    let tests = std::fs::read_to_string(project.dir.join(DEFAULT_TEST_FILE))
        .ok()
        .and_then(|text| serde_norway::from_str::<TestFile>(&text).ok());
    let (limits, config) = tests.map_or_else(Default::default, |t| (t.limits(), t.config));
    let mut runner = super::test_run::Runner::new(
        project.manifest.name.clone(),
        project.module(),
        super::compiled_cache(project.build_dir().join("compiled")),
        limits,
    )?;
    match runner.load(&config) {
        Ok(()) => Ok(()),
        Err(LoadError::Compile { reason, .. }) => bail!(
            "{} is not a WebAssembly component: {reason}",
            project.module().display()
        ),
        Err(LoadError::World { reason, .. }) => bail!(
            "{} is not a component of the {WORLD} world: {reason}",
            project.module().display()
        ),
        Err(LoadError::Init(failure)) => {
            eprintln!(
                "warning: the component loads, but with the config of {DEFAULT_TEST_FILE}: {failure}"
            );
            Ok(())
        }
        Err(other) => Err(other.into()),
    }
}

/// The tool from `$env` if set, else `program` on PATH.
fn tool(env: &str, program: &str) -> Command {
    Command::new(std::env::var_os(env).unwrap_or_else(|| OsString::from(program)))
}

fn run_tool(mut cmd: Command, name: &str, package: &str, installer: &str) -> anyhow::Result<()> {
    let status = match cmd.status() {
        Ok(status) => status,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "{name} is not installed: `{installer} {package}`, or name it in ${}",
            if name == "componentize-py" {
                "WEFT_COMPONENTIZE_PY"
            } else {
                "WEFT_COMPONENTIZE_JS"
            }
        ),
        Err(error) => return Err(error).with_context(|| format!("running {name}")),
    };
    ensure!(status.success(), "{name} failed ({status})");
    Ok(())
}

fn write_files(dir: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
