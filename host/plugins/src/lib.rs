//! Weft's plugin runtime: WebAssembly components, written against
//! `wit/` (`weft:plugin`), run at the proxy's connection, request, response
//! and completion hooks.
//!
//! One `Runtime` per proxy owns the wasmtime `Engine` (one per process),
//! the linker with the host interfaces, compiled components by sha256, and
//! the plugins' metric families. `Runtime::load` turns a `ChainSpec` into a
//! `PluginChain`: every module read, verified, compiled, linked against the
//! `plugin` world and initialised with its configuration, or a
//! `LoadError` that names the plugin and the cause.

mod bindings;
mod chain;
mod disk_cache;
mod engine;
mod handles;
mod host;
mod metrics;
mod shared;
mod spec;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, HasSelf, Linker, ResourceType};

pub use bindings::{Completion, Connection, Direction, Hooks, LocalResponse, Method, Protocol};
pub use chain::{
    ConnectionOutcome, PluginChain, PluginFailure, RequestOutcome, ResponseOutcome,
    SlowLaneSettings,
};
pub use disk_cache::DiskCacheError;
pub use handles::{RequestView, UpstreamError};
pub use metrics::{MAX_SERIES_LABEL_BYTES, PluginMetrics};
pub use spec::{
    ChainSpec, DEFAULT_MEMORY_LIMIT_BYTES, DEFAULT_METRIC_SERIES_LIMIT, DEFAULT_TIMEOUT_MS,
    FailurePolicy, PluginSpec, SpecDirection,
};

use crate::bindings::{Plugin, PluginPre};
use crate::chain::{LoadedPlugin, SlowLane};
use crate::disk_cache::DiskCache;
use crate::host::State;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin `{plugin}`: cannot read {path}: {source}")]
    Read {
        plugin: String,
        path: String,
        source: std::io::Error,
    },
    #[error("plugin `{plugin}`: sha256 is {actual}, configuration says {expected}")]
    Digest {
        plugin: String,
        expected: String,
        actual: String,
    },
    #[error("plugin `{plugin}`: not a WebAssembly component: {reason}")]
    Compile { plugin: String, reason: String },
    #[error("plugin `{plugin}`: does not match the weft:plugin world: {reason}")]
    World { plugin: String, reason: String },
    #[error(transparent)]
    Init(#[from] PluginFailure),
    #[error("cannot start the plugin runtime: {0}")]
    Engine(String),
}

pub struct Runtime {
    engine: Engine,
    linker: Linker<State>,
    compiled: Mutex<HashMap<String, Component>>,
    disk_cache: Option<DiskCache>,
    metrics: Arc<PluginMetrics>,
    /// Where calls of demoted plugins run, for every chain loaded here.
    slow_lane: Arc<SlowLane>,
}

impl Runtime {
    pub fn new() -> Result<Self, LoadError> {
        let engine = engine::new_engine().map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        Plugin::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let metrics = Arc::new(PluginMetrics::default());
        let slow_lane = Arc::new(SlowLane::new(
            SlowLaneSettings::default(),
            metrics.slow_lane.clone(),
        ));
        Ok(Self {
            engine,
            linker,
            compiled: Mutex::default(),
            disk_cache: None,
            metrics,
            slow_lane,
        })
    }

    /// Chains loaded from now on put calls of demoted plugins in a lane with
    /// these settings (see [`SlowLaneSettings`]).
    pub fn with_slow_lane(mut self, settings: SlowLaneSettings) -> Self {
        let metrics = self.metrics.slow_lane.clone();
        self.slow_lane = Arc::new(SlowLane::new(settings, metrics));
        self
    }

    /// Keeps compiled components in `dir` too, so they survive restarts.
    /// A directory that cannot be trusted (see [`DiskCacheError`]) is not
    /// used: compiled components are then kept in memory only, with a
    /// warning, and the proxy runs as before.
    pub fn with_disk_cache(mut self, dir: PathBuf) -> Self {
        match DiskCache::open(dir, &self.engine) {
            Ok(cache) => self.disk_cache = Some(cache),
            Err(error) => {
                tracing::warn!(%error, "compiled plugins are kept in memory only");
                self.disk_cache = None;
            }
        }
        self
    }

    /// The directory compiled components are kept in, if any.
    pub fn disk_cache_dir(&self) -> Option<&Path> {
        self.disk_cache.as_ref().map(DiskCache::dir)
    }

    /// Plugin metric families, to register with the proxy's `/metrics`.
    pub fn metrics(&self) -> Arc<PluginMetrics> {
        self.metrics.clone()
    }

    pub fn empty_chain(&self) -> PluginChain {
        PluginChain::empty(self.engine.clone(), self.metrics.clone())
    }

    /// Loads a chain; relative module paths are relative to `base`. Slow
    /// (reads and compiles): call it off the request path.
    pub fn load(&self, spec: &ChainSpec, base: &Path) -> Result<PluginChain, LoadError> {
        let plugins = spec
            .plugins
            .iter()
            .map(|plugin| self.load_plugin(plugin, base))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PluginChain::new(
            self.engine.clone(),
            plugins,
            self.metrics.clone(),
            self.slow_lane.clone(),
        )?)
    }

    fn load_plugin(&self, spec: &PluginSpec, base: &Path) -> Result<LoadedPlugin, LoadError> {
        let path = base.join(&spec.module);
        let bytes = std::fs::read(&path).map_err(|source| LoadError::Read {
            plugin: spec.name.clone(),
            path: path.display().to_string(),
            source,
        })?;
        let digest = hex(&Sha256::digest(&bytes));
        if let Some(expected) = &spec.sha256
            && !expected.eq_ignore_ascii_case(&digest)
        {
            return Err(LoadError::Digest {
                plugin: spec.name.clone(),
                expected: expected.clone(),
                actual: digest,
            });
        }
        let component = self
            .compile(&digest, &bytes)
            .map_err(|e| LoadError::Compile {
                plugin: spec.name.clone(),
                reason: format!("{e:#}"),
            })?;
        let world_error = |e: wasmtime::Error| LoadError::World {
            plugin: spec.name.clone(),
            reason: format!("{e:#}"),
        };
        let mut linker = self.linker.clone();
        stub_other_imports(&mut linker, &self.engine, &component).map_err(world_error)?;
        let pre = linker.instantiate_pre(&component).map_err(world_error)?;
        let pre = PluginPre::new(pre).map_err(world_error)?;
        Ok(LoadedPlugin {
            spec: spec.clone(),
            pre,
            deadline_ticks: engine::deadline_ticks(spec.timeout()),
            init_deadline_ticks: engine::deadline_ticks(chain::init_timeout(spec)),
            hooks: Hooks::empty(),
        })
    }

    /// Compiles once per distinct module (by sha256), however many chains
    /// and reloads use it, and with a disk cache, once per machine.
    fn compile(&self, digest: &str, bytes: &[u8]) -> wasmtime::Result<Component> {
        if let Some(component) = self
            .compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
        {
            return Ok(component.clone());
        }
        let cached = self
            .disk_cache
            .as_ref()
            .and_then(|cache| cache.load(&self.engine, digest));
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(&self.engine, bytes)?;
                if let Some(cache) = &self.disk_cache {
                    cache.store(digest, &component);
                }
                component
            }
        };
        self.compiled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(digest.to_string(), component.clone());
        Ok(component)
    }
}

/// The type behind resources of imports the proxy does not provide.
struct Unprovided;

/// Plugins get no WASI: Rust's std imports some (stderr for panic messages,
/// streams, the environment) even when a plugin uses none. Those imports
/// link, but calling one traps, and the plugin's failure policy decides.
/// Resource types have no trapping stand-in, so they are defined first.
fn stub_other_imports(
    linker: &mut Linker<State>,
    engine: &Engine,
    component: &Component,
) -> wasmtime::Result<()> {
    let ty = component.component_type();
    for (name, item) in ty.imports(engine) {
        let ComponentItem::ComponentInstance(instance) = item.ty else {
            continue;
        };
        if name.starts_with("weft:plugin/") {
            continue;
        }
        let resources: Vec<String> = instance
            .exports(engine)
            .filter(|(_, item)| matches!(item.ty, ComponentItem::Resource(_)))
            .map(|(export, _)| export.to_string())
            .collect();
        if resources.is_empty() {
            continue;
        }
        let mut defined = linker.instance(name)?;
        for resource in resources {
            defined.resource(&resource, ResourceType::host::<Unprovided>(), |_, _| Ok(()))?;
        }
    }
    linker.define_unknown_imports_as_traps(component)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
