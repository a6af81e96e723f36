//! The plugin components the plugin targets load, as `cargo build --release`
//! in `plugins/` leaves them (`cargo xtask fuzz` builds them first; the
//! replay test builds them the way the end-to-end tests do).

use std::path::PathBuf;

/// The built component of plugin crate `name`, e.g. `metrics`.
pub fn component(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip2/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the plugins (`cd plugins && cargo build --release`)",
        path.display()
    );
    path
}
