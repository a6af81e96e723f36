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
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
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
