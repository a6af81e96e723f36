//! The shipped plugins' configuration parsers, through the real components:
//! the input is handed to each plugin's `init` on the proxy's own runtime,
//! as the config a WasmPlugin or a chain file gives it. Every plugin takes
//! it or refuses it with a message; a trap (a panic in the plugin), a
//! deadline or the memory limit in `init` is a bug in the plugin.

use std::path::Path;
use std::sync::OnceLock;

use weft_plugins::{ChainSpec, LoadError, Runtime};

use crate::components::component;

/// The plugins `docs/plugins.md` describes.
pub const PLUGINS: [&str; 4] = ["metrics", "retry", "authz", "split"];

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| Runtime::new().expect("the plugin runtime starts"))
}

/// The chain file entry for `plugin` with `config` as its text.
pub fn spec(plugin: &str, config: &str) -> ChainSpec {
    let entry = serde_json::json!({
        "name": plugin,
        "module": component(plugin),
        "config": config,
    });
    serde_json::from_value(serde_json::json!({ "plugins": [entry] })).expect("a chain spec")
}

pub fn plugin_config(data: &[u8]) {
    let config = String::from_utf8_lossy(data);
    for plugin in PLUGINS {
        match runtime().load(&spec(plugin, &config), Path::new("/")) {
            Ok(_) => {}
            Err(LoadError::Init(failure)) => {
                let message = failure
                    .reason
                    .strip_prefix("rejected its configuration: ")
                    .unwrap_or_else(|| panic!("{plugin}'s init failed on {config:?}: {failure}"));
                assert!(
                    !message.trim().is_empty(),
                    "{plugin} refused {config:?} silently"
                );
            }
            Err(other) => panic!("loading {plugin}: {other}"),
        }
    }
}
