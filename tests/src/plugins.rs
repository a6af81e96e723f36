//! Real plugin components, built from `plugins/` once per test process (the
//! wasm32-wasip2 target is installed first if missing).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The workspace's `plugins/` folder.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

/// The built component of a plugin crate, e.g. `add_header`.
pub fn component(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let rustup = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .status()
            .expect("running rustup");
        assert!(rustup.success(), "rustup target add wasm32-wasip2 failed");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--release"])
            .current_dir(dir())
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("running cargo build in plugins/");
        assert!(status.success(), "building plugins/ failed");
    });
    let path = dir().join(format!("target/wasm32-wasip2/release/{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}
