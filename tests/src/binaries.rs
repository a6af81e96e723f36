//! Finds the binaries under test, building them once per test process so a
//! plain `cargo test` never runs a stale proxy.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The path of a workspace binary (`weft-proxy`, `weft-demo`,
/// `weft-controller`), built first.
pub fn path(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut build = cargo();
        build.args([
            "build",
            "--quiet",
            "-p",
            "weft-proxy",
            "-p",
            "weft-demo",
            "-p",
            "weft-controller",
            "--bins",
        ]);
        if profile_dir().ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "building the workspace binaries failed");
    });
    let path = profile_dir().join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// `target/<profile>`: the test executable lives in `target/<profile>/deps`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test executable is in target/<profile>/deps")
        .to_path_buf()
}

/// Cargo, to build from a test. Cargo gives a test process its package's
/// `CARGO_PKG_*`, `CARGO_MANIFEST_*` and the like; build scripts (ring's,
/// cc's) rerun when those change, so passing them on would rebuild the TLS
/// stack whenever tests of another package ran in between.
pub(crate) fn cargo() -> Command {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in std::env::vars().filter(|(k, _)| set_for_the_test(k)) {
        cargo.env_remove(key);
    }
    cargo
}

/// Variables Cargo sets for the crate being tested, not for Cargo itself.
fn set_for_the_test(key: &str) -> bool {
    const PREFIXES: [&str; 4] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
        "CARGO_CRATE_",
    ];
    const NAMES: [&str; 4] = [
        "OUT_DIR",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p)) || NAMES.contains(&key)
}
