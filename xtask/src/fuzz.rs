//! `cargo xtask fuzz`: runs every cargo-fuzz target in `fuzz/` for a bounded
//! time, installing the nightly toolchain and cargo-fuzz first if missing.
//! Only fuzzing needs nightly; the corpus replay in `cargo xtask test` does not.

use std::process::Command;

use anyhow::{Context, ensure};
use clap::Args;

use crate::test::on_path;
use crate::workspace;

/// The targets in `fuzz/Cargo.toml`, in the order they run.
const TARGETS: [&str; 4] = ["detect", "chain_spec", "controller_yaml", "annotations"];

#[derive(Args)]
pub struct FuzzArgs {
    /// How long to fuzz each target.
    #[arg(long, default_value_t = 60)]
    seconds: u32,
    /// Only these targets (comma-separated); all of them by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

pub fn run(args: &FuzzArgs) -> anyhow::Result<()> {
    install_nightly()?;
    install_cargo_fuzz()?;
    for target in TARGETS
        .iter()
        .filter(|t| args.only.is_empty() || args.only.iter().any(|o| o == *t))
    {
        println!("fuzzing {target} for {} s", args.seconds);
        let status = Command::new("rustup")
            .args(["run", "nightly", "cargo", "fuzz", "run", target])
            // Safe Rust needs no AddressSanitizer; without it runs are faster.
            .args(["--sanitizer", "none", "--features", "libfuzzer", "--"])
            .arg(format!("-max_total_time={}", args.seconds))
            .current_dir(workspace::root().join("fuzz"))
            .status()
            .context("running cargo fuzz")?;
        ensure!(
            status.success(),
            "fuzz target {target} failed ({status}); the input is in fuzz/artifacts/{target}/"
        );
    }
    Ok(())
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
