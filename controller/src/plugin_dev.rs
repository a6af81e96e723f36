//! `weft plugin new | build | test`: writing a filter in Rust, Python or
//! JavaScript outside this repository, and testing it on the proxy's own
//! plugin runtime without running a proxy.
//!
//! The `weft` binary carries the WIT contract (`wit/`) and the thin Python
//! and JavaScript SDKs, so a project holds only its own code: `build` hands
//! the contract to the language's toolchain and checks that what comes out
//! is a component of the `weft:plugin` world.

mod bench;
mod build;
mod new;
mod project;
mod replay;
mod test_file;
mod test_run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

pub use project::Lang;

#[derive(Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Creates a filter project: an example header filter and its test file.
    New(new::NewArgs),
    /// Builds the project's component and checks it against the
    /// `weft:plugin` world.
    Build(build::BuildArgs),
    /// Runs the component on the proxy's plugin runtime against a test file
    /// of requests and expected outcomes.
    Test(test_run::TestArgs),
    /// What the component costs the proxy: compile time, instance start,
    /// memory per instance and the request hook's time.
    Bench(bench::BenchArgs),
}

pub fn run(args: &PluginArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        PluginCommand::New(args) => new::run(args),
        PluginCommand::Build(args) => build::run(args),
        PluginCommand::Test(args) => test_run::run(args),
        PluginCommand::Bench(args) => bench::run(args),
    }
}

/// Where compiled components are kept between runs: the proxy's own
/// `WEFT_PROXY_PLUGIN_CACHE_DIR` when set, so that a local proxy starts
/// with what `weft plugin` compiled, else `default`.
fn compiled_cache(default: PathBuf) -> PathBuf {
    std::env::var_os("WEFT_PROXY_PLUGIN_CACHE_DIR")
        .filter(|dir| !dir.is_empty())
        .map_or(default, PathBuf::from)
}

/// The project directory: `--dir`, or the current one.
fn project_dir(dir: &Option<PathBuf>) -> PathBuf {
    dir.clone().unwrap_or_else(|| PathBuf::from("."))
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.to_possible_value().expect("no variant is skipped");
        f.write_str(name.get_name())
    }
}
