//! The guide's header filter in Rust, Python and JavaScript side by side:
//! module size, compile time, instance start, memory per instance and the
//! request hook's time, each from `weft plugin bench` (release build) on
//! the proxy's CPU. The Python and JavaScript components are built with
//! `weft plugin build` and the componentizers `cargo xtask test` installs.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, ensure};

use crate::harness::PROXY_CPU;
use crate::harness::processes::pinned;
use crate::workspace;

const CONFIG: &str = r#"{"name": "x-weft-example", "value": "hello"}"#;
/// Interpreters grow past the default 16 MiB under sustained calls; the
/// figures are taken with room to spare (see docs/writing-plugins.md).
const MEMORY_LIMIT_BYTES: &str = "67108864";

/// Prints the table; `components` holds the Rust plugins' builds, `scratch`
/// gets the Python and JavaScript projects.
pub fn run(components: &Path, scratch: &Path) -> anyhow::Result<()> {
    let status = workspace::cargo()
        .args([
            "build",
            "--release",
            "-p",
            "weft-controller",
            "--bin",
            "weft",
        ])
        .status()
        .context("building weft")?;
    ensure!(status.success(), "building weft failed ({status})");
    let weft = workspace::debug_dir()
        .with_file_name("release")
        .join("weft");
    let componentizers = crate::test::plugin_toolchains::install()?;
    let examples = workspace::root().join("plugins/examples");

    let mut modules = vec![("Rust", components.join("add_header.wasm"))];
    for (lang, example, source) in [
        ("Python", "add-header-python", "app.py"),
        ("JavaScript", "add-header-js", "filter.js"),
    ] {
        let project = scratch.join(example);
        std::fs::create_dir_all(&project)?;
        for file in ["weft-plugin.yaml", source] {
            std::fs::copy(examples.join(example).join(file), project.join(file))?;
        }
        let mut build = Command::new(&weft);
        build.args(["plugin", "build", "--dir"]).arg(&project);
        componentizers.pass_to(&mut build);
        let status = build.status().context("running weft plugin build")?;
        ensure!(
            status.success(),
            "weft plugin build of {example} failed ({status})"
        );
        modules.push((lang, project.join("target/add-header.wasm")));
    }

    println!(
        "\nOne header filter per language (`weft plugin bench`, release, CPU {PROXY_CPU}, \
         memoryLimitBytes {MEMORY_LIMIT_BYTES})\n"
    );
    println!(
        "| language | module KB | compile ms | instance start ms | memory per instance KB | on-request µs |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (lang, module) in modules {
        let out = pinned(PROXY_CPU, &weft)
            .args(["plugin", "bench", "--tsv", "--config", CONFIG])
            .args(["--memory-limit-bytes", MEMORY_LIMIT_BYTES, "--module"])
            .arg(&module)
            .output()
            .context("running weft plugin bench")?;
        ensure!(
            out.status.success(),
            "weft plugin bench of {} failed: {}",
            module.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let fields: Vec<&str> = text.trim().split('\t').collect();
        let [bytes, compile, start, memory, hook] = fields[..] else {
            anyhow::bail!("weft plugin bench printed {text:?}");
        };
        let kb = bytes.parse::<f64>().unwrap_or(0.0) / 1e3;
        println!("| {lang} | {kb:.0} | {compile} | {start} | {memory} | {hook} |");
    }
    Ok(())
}
