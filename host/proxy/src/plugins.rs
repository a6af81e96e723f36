//! The proxy's plugin chain: loaded from the file named by
//! `WEFT_PROXY_PLUGINS_CONFIG` at start, reloaded when the file changes.
//! A reload compiles and instantiates off the request path and swaps the
//! chain atomically; requests in flight finish on the chain they started
//! with, and a chain that fails to load leaves the old one serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use weft_plugins::{ChainSpec, LoadError, PluginChain, PluginMetrics, Runtime};

/// How often the configuration file is checked for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum PluginsError {
    #[error("cannot read plugin configuration {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("plugin configuration {path} is not valid: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// No configuration file means no runtime at all: no engine, no ticker.
pub struct Plugins {
    runtime: Option<Runtime>,
    chain: RwLock<Option<Arc<PluginChain>>>,
}

impl Plugins {
    pub fn none() -> Self {
        Self {
            runtime: None,
            chain: RwLock::new(None),
        }
    }

    pub fn load(path: &Path, cache_dir: &Path) -> Result<Self, PluginsError> {
        let mut runtime = Runtime::new()?;
        if !cache_dir.as_os_str().is_empty() {
            runtime = runtime.with_disk_cache(cache_dir.to_path_buf());
        }
        let chain = load_chain(&runtime, path)?;
        log_chain(&chain, path);
        Ok(Self {
            runtime: Some(runtime),
            chain: RwLock::new(Some(Arc::new(chain))),
        })
    }

    /// The current chain; `None` when no plugins are configured.
    pub fn chain(&self) -> Option<Arc<PluginChain>> {
        self.chain.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn metrics(&self) -> Option<Arc<PluginMetrics>> {
        self.runtime.as_ref().map(Runtime::metrics)
    }

    /// Reloads the chain whenever `path` changes, until the process ends.
    pub async fn watch(self: Arc<Self>, path: PathBuf) {
        let mut seen = modified(&path);
        loop {
            tokio::time::sleep(RELOAD_INTERVAL).await;
            let now = modified(&path);
            if now == seen {
                continue;
            }
            seen = now;
            let this = self.clone();
            let file = path.clone();
            let loaded = tokio::task::spawn_blocking(move || {
                let runtime = this.runtime.as_ref().expect("watching implies a runtime");
                load_chain(runtime, &file).map(|chain| (this, chain))
            })
            .await;
            match loaded {
                Ok(Ok((this, chain))) => {
                    log_chain(&chain, &path);
                    *this.chain.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(chain));
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "plugin configuration rejected; the previous chain keeps serving")
                }
                Err(error) => tracing::error!(%error, "plugin reload panicked"),
            }
        }
    }
}

fn load_chain(runtime: &Runtime, path: &Path) -> Result<PluginChain, PluginsError> {
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

fn log_chain(chain: &PluginChain, path: &Path) {
    let names: Vec<&str> = chain.names().collect();
    tracing::info!(config = %path.display(), plugins = ?names, "plugin chain loaded");
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
