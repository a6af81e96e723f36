//! The Python and JavaScript componentizers `weft plugin build` runs,
//! pinned, installed once into `target/tools/` (pip and npm, from the
//! machine's Python and Node) and named to the tests by
//! `WEFT_COMPONENTIZE_PY` and `WEFT_COMPONENTIZE_JS`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};

use super::on_path;
use crate::workspace;

/// The versions `weft plugin build` is tested with (see
/// `controller/src/plugin_dev/build.rs`).
const COMPONENTIZE_PY: (&str, &str) = ("componentize-py", "0.25.1");
const COMPONENTIZE_JS: (&str, &str) = ("@bytecodealliance/componentize-js", "0.23.0");

pub struct Componentizers {
    pub py: PathBuf,
    pub js: PathBuf,
}

impl Componentizers {
    pub fn pass_to(&self, cmd: &mut Command) {
        cmd.env("WEFT_COMPONENTIZE_PY", &self.py)
            .env("WEFT_COMPONENTIZE_JS", &self.js);
    }
}

pub fn install() -> anyhow::Result<Componentizers> {
    let target = workspace::debug_dir();
    let tools = target.parent().context("the target dir")?.join("tools");
    Ok(Componentizers {
        py: componentize_py(&tools)?,
        js: componentize_js(&tools)?,
    })
}

/// pip into a directory of its own, and a script that runs it from there.
fn componentize_py(tools: &Path) -> anyhow::Result<PathBuf> {
    let (package, version) = COMPONENTIZE_PY;
    let dir = tools.join(format!("{package}-{version}"));
    let script = dir.join("componentize-py");
    if script.exists() {
        return Ok(script);
    }
    println!(
        "installing {package} {version} with pip into {}",
        dir.display()
    );
    let partial = fresh(&dir.with_extension("partial"))?;
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg("--target")
        .arg(&partial)
        .arg(format!("{package}=={version}"))
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .status()
        .context("running python3 -m pip")?;
    ensure!(
        status.success(),
        "pip install {package}=={version} failed ({status})"
    );
    std::fs::rename(&partial, &dir).with_context(|| format!("moving to {}", dir.display()))?;
    let text = format!(
        "#!/bin/sh\nPYTHONPATH='{}' exec python3 -c 'import sys; from componentize_py import script; \
         sys.argv[0] = \"componentize-py\"; sys.exit(script())' \"$@\"\n",
        dir.display()
    );
    write_executable(&script, &text)?;
    Ok(script)
}

/// npm into a directory of its own; its `.bin` link is the command.
fn componentize_js(tools: &Path) -> anyhow::Result<PathBuf> {
    let (package, version) = COMPONENTIZE_JS;
    let dir = tools.join(format!("componentize-js-{version}"));
    let bin = dir.join("node_modules/.bin/componentize-js");
    if bin.exists() {
        return Ok(bin);
    }
    ensure!(
        on_path("npm") && on_path("node"),
        "the JavaScript plugin tests need Node.js and npm (Node 20 or later) on PATH"
    );
    println!(
        "installing {package} {version} with npm into {}",
        dir.display()
    );
    let partial = fresh(&dir.with_extension("partial"))?;
    let status = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(&partial)
        .arg(format!("{package}@{version}"))
        .status()
        .context("running npm")?;
    ensure!(
        status.success(),
        "npm install {package}@{version} failed ({status})"
    );
    std::fs::rename(&partial, &dir).with_context(|| format!("moving to {}", dir.display()))?;
    ensure!(bin.exists(), "npm installed no {}", bin.display());
    Ok(bin)
}

fn fresh(dir: &Path) -> anyhow::Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

fn write_executable(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}
