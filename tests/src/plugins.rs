//! Real plugin components, built from `plugins/` once per test process (the
//! wasm32-wasip2 target is installed first if missing).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

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
        let status = crate::binaries::cargo()
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

/// A plugin chain file (`WEFT_PROXY_PLUGINS_CONFIG`) in its own directory,
/// removed when dropped.
pub struct ChainFile {
    dir: PathBuf,
}

impl ChainFile {
    pub fn new(plugins: serde_json::Value) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "weft-plugins-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = Self { dir };
        file.write(plugins);
        file
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("plugins.json")
    }

    /// Replaces the file in one rename, as a config-map update does.
    pub fn write(&self, plugins: serde_json::Value) {
        let tmp = self.dir.join("plugins.json.tmp");
        std::fs::write(&tmp, serde_json::json!({ "plugins": plugins }).to_string()).unwrap();
        std::fs::rename(tmp, self.path()).unwrap();
    }

    /// A proxy that runs this chain.
    pub fn proxy(&self) -> crate::Proxy {
        crate::Proxy::new().env("WEFT_PROXY_PLUGINS_CONFIG", self.path().to_str().unwrap())
    }
}

impl Drop for ChainFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One entry of a chain: plugin crate `component` (e.g. `add_header`) named
/// `name`, with `config`.
pub fn entry(name: &str, component: &str, config: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"name": name, "module": self::component(component), "config": config})
}
