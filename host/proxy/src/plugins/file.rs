//! The plugin chain from a local file, reloaded when the file changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use weft_plugins::{ChainSpec, PluginChain, Runtime};

use super::{Plugins, PluginsError};

/// How often the file is checked for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Reads and loads the chain in `path`; relative module paths are relative
/// to the file.
pub fn load(runtime: &Runtime, path: &Path) -> Result<PluginChain, PluginsError> {
    let text = std::fs::read_to_string(path).map_err(|source| PluginsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let spec: ChainSpec = serde_json::from_str(&text).map_err(|source| PluginsError::Parse {
        path: path.display().to_string(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(runtime.load(&spec, base)?)
}

/// Reloads the chain whenever `path` changes, until the process ends.
pub async fn watch(plugins: Arc<Plugins>, path: PathBuf) {
    let mut seen = modified(&path);
    loop {
        tokio::time::sleep(RELOAD_INTERVAL).await;
        let now = modified(&path);
        if now == seen {
            continue;
        }
        seen = now;
        let file = path.clone();
        let source = path.display().to_string();
        if let Err(error) = plugins
            .install(source, move |runtime| load(runtime, &file))
            .await
        {
            tracing::error!(%error, "plugin configuration rejected; the previous chain keeps serving");
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
