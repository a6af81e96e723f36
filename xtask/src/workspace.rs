//! Where the workspace and its build output are, and the cargo that runs us,
//! so chores build with the same toolchain the user invoked.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, ensure};

/// The workspace root: xtask lives one directory below it.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
}

/// `cargo`, run from the workspace root.
pub fn cargo() -> Command {
    // `cargo xtask` sets CARGO at run time; the build-time value covers
    // running the binary directly.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from(env!("CARGO")));
    let mut command = Command::new(cargo);
    command.current_dir(root());
    command
}

/// Where a dev build puts binaries. A relative CARGO_TARGET_DIR is resolved
/// against the root, because that is where `cargo()` runs.
pub fn debug_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), |dir| root().join(dir));
    target.join("debug")
}

/// Builds the plugin components in `plugins/` (its own workspace, for
/// `wasm32-wasip2`, installing the target first) and returns their directory.
pub fn build_plugins() -> anyhow::Result<PathBuf> {
    let rustup = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .context("running rustup")?;
    ensure!(
        rustup.success(),
        "rustup target add wasm32-wasip2 failed ({rustup})"
    );
    let plugins = root().join("plugins");
    let built = cargo()
        .args(["build", "--release"])
        .current_dir(&plugins)
        // plugins/ has its own target directory.
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .context("running cargo build in plugins/")?;
    ensure!(built.success(), "building plugins/ failed ({built})");
    Ok(plugins.join("target/wasm32-wasip2/release"))
}
