//! `cargo xtask fuzz`: runs every cargo-fuzz target in `fuzz/` for a bounded
//! time, installing the nightly toolchain and cargo-fuzz first if missing,
//! and prints a table of what each run did (`--write-docs` puts it in the
//! "Fuzzing" section of `docs/reliability.md`). Only fuzzing needs nightly;
//! the corpus replay in `cargo xtask test` does not.
//!
//! The committed corpus (`fuzz/corpus/<target>/`) is read as seeds and left
//! as it is: what a run finds goes to `target/fuzz-corpus/<target>/`, so the
//! repository keeps tens of chosen inputs per target, not thousands.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail, ensure};
use clap::Args;

use crate::test::on_path;
use crate::workspace;

/// The targets in `fuzz/Cargo.toml`, in the order they run.
const TARGETS: [&str; 7] = [
    "detect",
    "http_head",
    "chain_spec",
    "controller_yaml",
    "annotations",
    "plugin_config",
    "plugin_boundary",
];
/// Targets that load the plugin components, built first.
const NEEDS_PLUGINS: [&str; 2] = ["plugin_config", "plugin_boundary"];
/// The section of docs/reliability.md that `--write-docs` rewrites.
const HEADING: &str = "## Fuzzing";

#[derive(Args)]
pub struct FuzzArgs {
    /// How long to fuzz each target.
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// Only these targets (comma-separated); all of them by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Write the table into docs/reliability.md ("Fuzzing").
    #[arg(long)]
    write_docs: bool,
}

/// What one target's run did.
struct Run {
    target: &'static str,
    executions: u64,
    exec_per_sec: u64,
    seeds: usize,
    corpus: usize,
    /// The input that crashed it, if one did.
    crash: Option<PathBuf>,
}

pub fn run(args: &FuzzArgs) -> anyhow::Result<()> {
    for only in &args.only {
        ensure!(
            TARGETS.contains(&only.as_str()),
            "no fuzz target `{only}`; there are {}",
            TARGETS.join(", ")
        );
    }
    let targets: Vec<&'static str> = TARGETS
        .into_iter()
        .filter(|t| args.only.is_empty() || args.only.iter().any(|o| o == t))
        .collect();
    install_nightly()?;
    install_cargo_fuzz()?;
    if targets.iter().any(|t| NEEDS_PLUGINS.contains(t)) {
        workspace::build_plugins()?;
    }
    let mut runs = Vec::new();
    for target in targets {
        println!("fuzzing {target} for {} s", args.seconds);
        runs.push(fuzz(target, args.seconds)?);
    }
    let table = table(&runs, args.seconds);
    println!("\n{table}");
    if args.write_docs {
        let doc = workspace::root().join("docs/reliability.md");
        write_section(&doc, &table)?;
        println!("wrote {}", doc.display());
    }
    let crashed: Vec<_> = runs.iter().filter_map(|r| r.crash.as_ref()).collect();
    if !crashed.is_empty() {
        bail!(
            "fuzzing found {} crash(es): {}",
            crashed.len(),
            crashed
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn fuzz(target: &'static str, seconds: u32) -> anyhow::Result<Run> {
    let fuzz_dir = workspace::root().join("fuzz");
    let seeds_dir = fuzz_dir.join("corpus").join(target);
    let found_dir = workspace::root().join("target/fuzz-corpus").join(target);
    std::fs::create_dir_all(&found_dir)
        .with_context(|| format!("creating {}", found_dir.display()))?;
    let artifacts = fuzz_dir.join("artifacts").join(target);
    let before = files(&artifacts);
    let output = Command::new("rustup")
        .args(["run", "nightly", "cargo", "fuzz", "run", target])
        // Safe Rust needs no AddressSanitizer; without it runs are faster.
        .args(["--sanitizer", "none", "--features", "libfuzzer"])
        // The workspace's release profile links with fat LTO, which takes each
        // fuzz binary (wasmtime, the controller and all) many minutes to link;
        // thin LTO keeps the dependencies' builds and links in one or two.
        .env("CARGO_PROFILE_RELEASE_LTO", "thin")
        .arg("--")
        .arg(&found_dir)
        .arg(&seeds_dir)
        .arg(format!("-max_total_time={seconds}"))
        // An input that takes this long is a hang to report, not a slow machine.
        .arg("-timeout=120")
        .arg("-print_final_stats=1")
        .current_dir(&fuzz_dir)
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .output()
        .context("running cargo fuzz")?;
    let log = String::from_utf8_lossy(&output.stderr);
    eprint!("{}", tail(&log, 40));
    let crash = files(&artifacts)
        .into_iter()
        .find(|file| !before.contains(file));
    ensure!(
        output.status.success() || crash.is_some(),
        "cargo fuzz {target} failed ({}) without saving an input",
        output.status
    );
    Ok(Run {
        target,
        executions: stat(&log, "number_of_executed_units"),
        exec_per_sec: stat(&log, "average_exec_per_sec"),
        seeds: files(&seeds_dir).len(),
        corpus: files(&found_dir).len(),
        crash,
    })
}

/// A number from libFuzzer's `-print_final_stats` lines (0 if absent).
fn stat(log: &str, name: &str) -> u64 {
    log.lines()
        .filter_map(|line| {
            line.strip_prefix("stat::")?
                .strip_prefix(name)?
                .strip_prefix(':')
        })
        .filter_map(|value| value.trim().parse().ok())
        .next_back()
        .unwrap_or(0)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let mut out = all[all.len().saturating_sub(lines)..].join("\n");
    out.push('\n');
    out
}

fn table(runs: &[Run], seconds: u32) -> String {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .unwrap_or_default();
    let mut text = format!(
        "{HEADING}\n\nMeasured with `cargo xtask fuzz --seconds {seconds} --write-docs` on {date} (UTC): \
         cargo-fuzz (libFuzzer, nightly, no sanitizer), one process per target in turn, on a \
         2-core machine shared with other builds, so exec/s are a floor. Seeds are the committed \
         `fuzz/corpus/<target>/`; the corpus column counts the inputs libFuzzer kept as new \
         coverage in `target/fuzz-corpus/<target>/`.\n\n\
         | target | seconds | executions | exec/s | seeds | corpus after | crashes |\n\
         |---|---|---|---|---|---|---|\n"
    );
    for run in runs {
        let crash = match &run.crash {
            None => "0".to_string(),
            Some(path) => format!(
                "1: `{}`",
                path.strip_prefix(workspace::root())
                    .unwrap_or(path)
                    .display()
            ),
        };
        text.push_str(&format!(
            "| `{}` | {seconds} | {} | {} | {} | {} | {crash} |\n",
            run.target, run.executions, run.exec_per_sec, run.seeds, run.corpus
        ));
    }
    text
}

/// Replaces the section from `## Fuzzing` to the next `## ` heading, or
/// adds it before `## Figures` (which `cargo xtask reliability` rewrites to
/// the end of the file).
fn write_section(doc: &Path, table: &str) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(doc).with_context(|| format!("reading {}", doc.display()))?;
    let new = replace_section(&old, table);
    std::fs::write(doc, new).with_context(|| format!("writing {}", doc.display()))
}

fn replace_section(old: &str, section: &str) -> String {
    let section = format!("{}\n", section.trim_end());
    if let Some(start) = old.find(&format!("\n{HEADING}\n")).map(|at| at + 1) {
        let rest = &old[start + HEADING.len()..];
        let end = rest
            .find("\n## ")
            .map_or(old.len(), |at| start + HEADING.len() + at + 1);
        let separator = if end < old.len() { "\n" } else { "" };
        return format!("{}{section}{separator}{}", &old[..start], &old[end..]);
    }
    match old.find("\n## Figures\n").map(|at| at + 1) {
        Some(at) => format!("{}{section}\n{}", &old[..at], &old[at..]),
        None => format!("{}\n\n{section}", old.trim_end()),
    }
}

fn install_nightly() -> anyhow::Result<()> {
    let present = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if present {
        return Ok(());
    }
    let status = Command::new("rustup")
        .args(["toolchain", "install", "nightly", "--profile", "minimal"])
        .status()
        .context("running rustup")?;
    ensure!(status.success(), "installing nightly failed ({status})");
    Ok(())
}

fn install_cargo_fuzz() -> anyhow::Result<()> {
    if on_path("cargo-fuzz") {
        return Ok(());
    }
    let status = workspace::cargo()
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    ensure!(status.success(), "installing cargo-fuzz failed ({status})");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_goes_before_the_figures_and_is_replaced_in_place() {
        let doc = "# Reliability\n\nprose\n\n## Figures\n\ntable\n";
        let once = replace_section(doc, "## Fuzzing\n\nfirst\n");
        assert_eq!(
            once,
            "# Reliability\n\nprose\n\n## Fuzzing\n\nfirst\n\n## Figures\n\ntable\n"
        );
        let twice = replace_section(&once, "## Fuzzing\n\nsecond\n");
        assert_eq!(
            twice,
            "# Reliability\n\nprose\n\n## Fuzzing\n\nsecond\n\n## Figures\n\ntable\n"
        );
        let last = replace_section("# R\n\n## Fuzzing\n\nold\n", "## Fuzzing\n\nnew\n");
        assert_eq!(last, "# R\n\n## Fuzzing\n\nnew\n");
    }

    #[test]
    fn final_stats_are_read() {
        let log = "#1 INITED\nstat::number_of_executed_units: 12345\n\
                   stat::average_exec_per_sec:     411\nstat::new_units_added: 3\n";
        assert_eq!(stat(log, "number_of_executed_units"), 12345);
        assert_eq!(stat(log, "average_exec_per_sec"), 411);
        assert_eq!(stat(log, "peak_rss_mb"), 0);
    }
}
