//! The proxy's plugin chain and where it comes from: a local file
//! (`WEFT_PROXY_PLUGINS_CONFIG`, reloaded when it changes) or the controller
//! (`WEFT_PROXY_CONTROLLER_ADDR`, which pushes the workload's chain). Either
//! way a new chain is compiled and instantiated off the request path and
//! swapped atomically; requests in flight finish on the chain they started
//! with, and a chain that fails to load leaves the old one serving.
//!
//! A proxy that takes its chain from the controller and has none yet (no
//! saved chain, controller unreachable) is not ready and refuses traffic in
//! both directions: serving it without the plugins would silently fail
//! authorization open.

pub mod controller;
pub mod file;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use weft_plugins::{LoadError, PluginChain, PluginMetrics, Runtime};

use crate::errors::ProxyError;

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

/// No plugin source means no runtime at all: no engine, no ticker.
pub struct Plugins {
    runtime: Option<Runtime>,
    chain: RwLock<Option<Arc<PluginChain>>>,
    /// A chain is on its way and traffic waits for it: set for the
    /// controller, whose first chain arrives after the listeners open.
    awaited: bool,
}

impl Plugins {
    pub fn none() -> Self {
        Self {
            runtime: None,
            chain: RwLock::new(None),
            awaited: false,
        }
    }

    /// A runtime with no chain yet; compiled components are kept in
    /// `cache_dir` unless it is empty.
    pub fn new(cache_dir: &Path) -> Result<Self, PluginsError> {
        let mut runtime = Runtime::new()?;
        if !cache_dir.as_os_str().is_empty() {
            runtime = runtime.with_disk_cache(cache_dir.to_path_buf());
        }
        Ok(Self {
            runtime: Some(runtime),
            chain: RwLock::new(None),
            awaited: false,
        })
    }

    /// Like [`new`](Self::new), for a chain that comes later: until one is
    /// installed the proxy is not ready and [`serving`](Self::serving)
    /// refuses.
    pub fn awaiting(cache_dir: &Path) -> Result<Self, PluginsError> {
        Ok(Self {
            awaited: true,
            ..Self::new(cache_dir)?
        })
    }

    /// The current chain; `None` when no plugins are configured.
    pub fn chain(&self) -> Option<Arc<PluginChain>> {
        self.chain.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether traffic may be served: no chain is awaited, or it has come.
    pub fn ready(&self) -> bool {
        !self.awaited || self.chain().is_some()
    }

    /// The chain to serve a request with, or the error to answer while
    /// the chain is still awaited.
    pub fn serving(&self) -> Result<Option<Arc<PluginChain>>, ProxyError> {
        match self.chain() {
            None if self.awaited => Err(ProxyError::ChainPending),
            chain => Ok(chain),
        }
    }

    pub fn metrics(&self) -> Option<Arc<PluginMetrics>> {
        self.runtime.as_ref().map(Runtime::metrics)
    }

    /// Where modules and the last chain from the controller are kept. A
    /// saved chain decides which plugins guard the workload, so it lives
    /// only where the compiled code may: inside the cache directory once
    /// that was found private. Without one (empty, or refused) it is a new
    /// directory of this process's own, so nothing saved is trusted.
    pub fn controller_dir(&self) -> std::io::Result<PathBuf> {
        let private = |dir: &Path| std::fs::DirBuilder::new().mode(0o700).create(dir);
        if let Some(cache) = self.runtime.as_ref().and_then(Runtime::disk_cache_dir) {
            let dir = cache.join("controller");
            // Only this user can write in the cache directory, so a
            // directory already there is one of its own proxies'.
            return match private(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(dir),
            };
        }
        let mut attempt = 0;
        loop {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos();
            let dir = std::env::temp_dir().join(format!(
                "weft-controller-{}-{nanos:08x}",
                std::process::id()
            ));
            // `create` fails on anything already there (a directory or a
            // link someone else planted), so the directory is ours.
            match private(&dir) {
                Ok(()) => return Ok(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Builds a chain with `load` and swaps it in, now (at startup).
    pub fn install_now(
        &self,
        source: &str,
        load: impl FnOnce(&Runtime) -> Result<PluginChain, PluginsError>,
    ) -> Result<(), PluginsError> {
        let runtime = self.runtime.as_ref().expect("installing implies a runtime");
        let chain = load(runtime)?;
        self.swap(chain, source);
        Ok(())
    }

    /// Builds a chain with `load` on a blocking thread (compiling takes
    /// milliseconds to seconds) and swaps it in; on failure the old chain
    /// keeps serving and the error is returned.
    pub async fn install(
        self: &Arc<Self>,
        source: String,
        load: impl FnOnce(&Runtime) -> Result<PluginChain, PluginsError> + Send + 'static,
    ) -> Result<(), PluginsError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.install_now(&source, load))
            .await
            .unwrap_or_else(|panicked| std::panic::resume_unwind(panicked.into_panic()))
    }

    fn swap(&self, chain: PluginChain, source: &str) {
        let names: Vec<&str> = chain.names().collect();
        tracing::info!(%source, plugins = ?names, "plugin chain loaded");
        *self.chain.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(chain));
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn the_controller_dir_is_inside_a_private_cache_and_nowhere_else_shared() {
        let base = std::env::temp_dir().join(format!("weft-controller-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();

        let private = base.join("private");
        let plugins = Plugins::awaiting(&private).unwrap();
        let dir = plugins.controller_dir().unwrap();
        assert_eq!(dir, private.join("controller"));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(
            plugins.controller_dir().unwrap(),
            dir,
            "the same on every call"
        );

        // A cache directory others may write is refused for compiled code,
        // and the controller's files stay out of it too.
        let shared = base.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        for cache in [shared.as_path(), Path::new("")] {
            let dir = Plugins::awaiting(cache).unwrap().controller_dir().unwrap();
            assert!(!dir.starts_with(&shared), "{}", dir.display());
            assert_eq!(mode(&dir), 0o700);
            std::fs::remove_dir(&dir).unwrap();
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
