//! Module bytes the controller has checked, by sha256. A module reaches a
//! proxy only after it was read, matched its declared sha256, compiled,
//! matched the `weft:plugin` world and accepted its WasmPlugin's config —
//! the same load the proxy does, run here first. Modules from http(s) and
//! OCI are fetched again only as their WasmPlugin's pull policy says.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use weft_plugins::{ChainSpec, FailurePolicy as ProxyPolicy, PluginSpec, Runtime};

use crate::fetch::Fetcher;
use crate::index::{PluginRef, ResolvedPlugin};
use crate::module_source::{ModuleSource, PullPolicy};

/// Checked modules, and why the others were refused.
#[derive(Clone, Debug, Default)]
pub struct Modules {
    /// sha256 → bytes.
    bytes: HashMap<String, Arc<Vec<u8>>>,
    /// Per plugin (by resource and source): its module's sha256 or why not.
    checked: BTreeMap<ModuleKey, Result<String, String>>,
    /// The last check of each WasmPlugin's module, for status and the CLI.
    by_resource: BTreeMap<PluginRef, Result<String, String>>,
}

/// What decides a module check: the source, the declared digest, and the
/// config `init` was given.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct ModuleKey {
    source: String,
    /// Fetched over the network (http(s) or OCI).
    remote: bool,
    sha256: Option<String>,
    config: String,
}

impl ModuleKey {
    fn of(plugin: &ResolvedPlugin) -> Self {
        ModuleKey {
            source: format!("{:?}", plugin.module),
            remote: !matches!(plugin.module, ModuleSource::File(_)),
            sha256: plugin.sha256.clone(),
            config: plugin.config_text(),
        }
    }
}

impl Modules {
    /// The module's sha256 for `plugin`, or why it cannot be served.
    pub fn resolve(&self, plugin: &ResolvedPlugin) -> Result<&str, &str> {
        match self.checked.get(&ModuleKey::of(plugin)) {
            Some(Ok(sha256)) => Ok(sha256),
            Some(Err(reason)) => Err(reason),
            None => Err("module not checked yet"),
        }
    }

    /// The last check of `plugin`'s module; `None` if no workload runs it.
    pub fn of_resource(&self, plugin: &PluginRef) -> Option<Result<&str, &str>> {
        self.by_resource
            .get(plugin)
            .map(|checked| checked.as_deref().map_err(String::as_str))
    }

    pub fn bytes(&self, sha256: &str) -> Option<Arc<Vec<u8>>> {
        self.bytes.get(sha256).cloned()
    }

    /// Whether checking `plugins` would check exactly what `self` holds: the
    /// same modules (source, digest, config) for the same WasmPlugins. Then
    /// a new state keeps these checks instead of reading and compiling
    /// again (a pod coming or going rarely changes which modules run).
    pub fn is_current_for<'a>(
        &self,
        plugins: impl IntoIterator<Item = &'a ResolvedPlugin>,
    ) -> bool {
        let mut keys = BTreeSet::new();
        let mut resources = BTreeSet::new();
        for plugin in plugins {
            keys.insert(ModuleKey::of(plugin));
            resources.insert(&plugin.resource);
        }
        keys.iter().eq(self.checked.keys()) && resources.into_iter().eq(self.by_resource.keys())
    }

    /// Whether a module from the network was refused: its server may
    /// answer on a later try.
    pub fn any_remote_refused(&self) -> bool {
        self.checked
            .iter()
            .any(|(key, checked)| key.remote && checked.is_err())
    }

    /// Checks every plugin in `plugins`, reusing what `previous` checked:
    /// an unchanged module is not compiled twice, and one from the network
    /// with pull policy `IfNotPresent` is not fetched twice.
    pub fn check<'a>(
        runtime: &Runtime,
        fetcher: &Fetcher,
        plugins: impl IntoIterator<Item = &'a ResolvedPlugin>,
        previous: &Modules,
    ) -> Modules {
        let mut modules = Modules::default();
        for plugin in plugins {
            let key = ModuleKey::of(plugin);
            if modules.checked.contains_key(&key) {
                continue;
            }
            let result = check(runtime, fetcher, plugin, previous).map(|(sha256, bytes)| {
                modules.bytes.insert(sha256.clone(), bytes);
                sha256
            });
            if let Err(reason) = &result {
                tracing::warn!(plugin = %plugin.resource, %reason, "module refused");
            }
            modules
                .by_resource
                .insert(plugin.resource.clone(), result.clone());
            modules.checked.insert(key, result);
        }
        modules
    }
}

fn check(
    runtime: &Runtime,
    fetcher: &Fetcher,
    plugin: &ResolvedPlugin,
    previous: &Modules,
) -> Result<(String, Arc<Vec<u8>>), String> {
    let key = ModuleKey::of(plugin);
    let known = match previous.checked.get(&key) {
        Some(Ok(sha256)) => previous.bytes(sha256).map(|bytes| (sha256.clone(), bytes)),
        _ => None,
    };
    if key.remote
        && plugin.pull_policy == PullPolicy::IfNotPresent
        && let Some(known) = known
    {
        return Ok(known);
    }
    let bytes = match &plugin.module {
        ModuleSource::File(path) => {
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
        }
        ModuleSource::Http(url) => fetcher.http(url)?,
        ModuleSource::Oci(image) => fetcher.oci(image, plugin.image_pull_secret.as_deref())?,
    };
    let sha256 = hex(&Sha256::digest(&bytes));
    if let Some(declared) = &plugin.sha256
        && !declared.eq_ignore_ascii_case(&sha256)
    {
        return Err(format!(
            "sha256 mismatch: the module's sha256 is {sha256}, the WasmPlugin says {declared}"
        ));
    }
    if let Some((known_sha256, bytes)) = known
        && known_sha256 == sha256
    {
        return Ok((sha256, bytes));
    }
    match &plugin.module {
        ModuleSource::File(path) => load(runtime, plugin, path, &sha256)?,
        ModuleSource::Http(_) | ModuleSource::Oci(_) => {
            load_fetched(runtime, plugin, &bytes, &sha256)?;
        }
    }
    Ok((sha256, Arc::new(bytes)))
}

/// The runtime loads modules from files, as the proxy does: a fetched one
/// is checked from a temporary file.
fn load_fetched(
    runtime: &Runtime,
    plugin: &ResolvedPlugin,
    bytes: &[u8],
    sha256: &str,
) -> Result<(), String> {
    let path = std::env::temp_dir().join(format!(
        "weft-controller-{}-{sha256}.wasm",
        std::process::id()
    ));
    std::fs::write(&path, bytes)
        .map_err(|e| format!("cannot write {} to check it: {e}", path.display()))?;
    let loaded = load(runtime, plugin, &path, sha256);
    let _ = std::fs::remove_file(&path);
    loaded
}

/// The proxy's own load: compile, link against the world, run `init`.
fn load(
    runtime: &Runtime,
    plugin: &ResolvedPlugin,
    path: &Path,
    sha256: &str,
) -> Result<(), String> {
    let spec = ChainSpec {
        plugins: vec![PluginSpec {
            name: plugin.name.clone(),
            module: PathBuf::from(path),
            sha256: Some(sha256.to_string()),
            config: serde_json::Value::String(plugin.config_text()),
            failure_policy: ProxyPolicy::FailClosed,
            timeout_ms: plugin
                .timeout_ms
                .map_or(weft_plugins::DEFAULT_TIMEOUT_MS, u64::from),
            memory_limit_bytes: plugin
                .memory_limit_bytes
                .and_then(|b| usize::try_from(b).ok())
                .unwrap_or(weft_plugins::DEFAULT_MEMORY_LIMIT_BYTES),
            metric_series_limit: weft_plugins::DEFAULT_METRIC_SERIES_LIMIT,
            directions: Vec::new(),
        }],
    };
    runtime
        .load(&spec, Path::new("/"))
        .map(drop)
        .map_err(|e| e.to_string())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
