//! The plugin chain from the controller: the proxy streams its workload's
//! chain, fetches each module it does not have by sha256 (kept on disk, so a
//! restart fetches nothing), and swaps the chain in. While the controller is
//! away the proxy keeps serving its last chain and reconnects with backoff;
//! a proxy that starts while the controller is away runs the last chain it
//! saved, and one with no saved chain serves nothing until a chain arrives
//! (see [`Plugins::awaiting`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use weft_api::plugins::plugins_client::PluginsClient;
use weft_api::plugins::{self as wire, GetModuleRequest, WatchChainRequest};
use weft_plugins::{
    ChainSpec, DEFAULT_MEMORY_LIMIT_BYTES, DEFAULT_METRIC_SERIES_LIMIT, DEFAULT_TIMEOUT_MS,
    FailurePolicy, PluginSpec, SpecDirection,
};

use super::{Plugins, PluginsError};
use crate::control_plane::ControlPlane;

/// The largest module accepted from the controller.
const MAX_MODULE_BYTES: usize = 64 * 1024 * 1024;
const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(5);

/// A pod, as the controller names workloads: `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub pod: String,
}

impl std::str::FromStr for Workload {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once('/') {
            Some((namespace, pod))
                if !namespace.is_empty() && !pod.is_empty() && !pod.contains('/') =>
            {
                Ok(Workload {
                    namespace: namespace.to_string(),
                    pod: pod.to_string(),
                })
            }
            _ => Err(format!("`{text}` is not `namespace/pod`")),
        }
    }
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.pod)
    }
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("cannot reach the controller: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("the controller answered {:?}: {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    #[error("module {sha256} from the controller hashes to {actual}")]
    Digest { sha256: String, actual: String },
    #[error("module {0} from the controller is larger than {MAX_MODULE_BYTES} bytes")]
    TooLarge(String),
    #[error("cannot keep module {sha256} in {dir}: {source}")]
    Store {
        sha256: String,
        dir: String,
        source: std::io::Error,
    },
    #[error("the controller's chain did not load: {0}")]
    Load(#[from] PluginsError),
}

/// Follows the controller at `addr` for `workload`, until the process ends.
/// Modules and the last chain are kept in `dir`.
pub async fn follow(plugins: Arc<Plugins>, addr: ControlPlane, workload: Workload, dir: PathBuf) {
    addr.certified().await;
    let mut wait = FIRST_RETRY;
    loop {
        match sync(&plugins, &addr, &workload, &dir, &mut wait).await {
            Ok(()) => tracing::info!(%addr, "the controller closed the stream; reconnecting"),
            Err(error) => {
                let error = crate::errors::error_chain(&error);
                tracing::warn!(%addr, %error, retry_in = ?wait, "plugin chain sync failed; the current chain keeps serving");
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(LAST_RETRY);
    }
}

/// One stream: every chain the controller sends is fetched and installed.
async fn sync(
    plugins: &Arc<Plugins>,
    addr: &ControlPlane,
    workload: &Workload,
    dir: &Path,
    wait: &mut Duration,
) -> Result<(), SyncError> {
    let channel = addr.connect().await?;
    let mut client = PluginsClient::new(channel);
    let request = WatchChainRequest {
        namespace: workload.namespace.clone(),
        pod: workload.pod.clone(),
    };
    let mut chains = client.watch_chain(request).await?.into_inner();
    let mut running = None;
    while let Some(chain) = chains.message().await? {
        *wait = FIRST_RETRY;
        for problem in &chain.problems {
            tracing::warn!(%problem, "the controller reports a problem with this workload's plugins");
        }
        if running.as_ref() == Some(&chain.version) {
            continue;
        }
        let spec = fetch_modules(&mut client, &chain, dir).await?;
        let source = format!("controller (version {})", chain.version);
        let loaded = spec.clone();
        plugins
            .install(source, move |runtime| {
                Ok(runtime.load(&loaded, Path::new("/"))?)
            })
            .await?;
        save(&spec, &saved_chain(dir, workload));
        running = Some(chain.version);
    }
    Ok(())
}

/// The chain as the runtime reads it, every module on disk by sha256.
async fn fetch_modules(
    client: &mut PluginsClient<Channel>,
    chain: &wire::Chain,
    dir: &Path,
) -> Result<ChainSpec, SyncError> {
    let mut plugins = Vec::with_capacity(chain.plugins.len());
    for plugin in &chain.plugins {
        let sha256 = plugin.sha256.to_ascii_lowercase();
        let path = dir.join("modules").join(format!("{sha256}.wasm"));
        if !path.exists() {
            let bytes = fetch(client, &sha256).await?;
            store(&path, &bytes).map_err(|source| SyncError::Store {
                sha256: sha256.clone(),
                dir: dir.display().to_string(),
                source,
            })?;
        }
        plugins.push(spec(plugin, path, sha256));
    }
    Ok(ChainSpec { plugins })
}

async fn fetch(client: &mut PluginsClient<Channel>, sha256: &str) -> Result<Vec<u8>, SyncError> {
    let request = GetModuleRequest {
        sha256: sha256.to_string(),
    };
    let mut chunks = client.get_module(request).await?.into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.message().await? {
        if bytes.len() + chunk.data.len() > MAX_MODULE_BYTES {
            return Err(SyncError::TooLarge(sha256.to_string()));
        }
        bytes.extend_from_slice(&chunk.data);
    }
    let actual = hex(&Sha256::digest(&bytes));
    if actual != sha256 {
        return Err(SyncError::Digest {
            sha256: sha256.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

/// Written aside and renamed, so a module file is whole or absent.
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let partial = path.with_extension(format!("partial.{}", std::process::id()));
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

fn spec(plugin: &wire::Plugin, module: PathBuf, sha256: String) -> PluginSpec {
    let failure_policy = match plugin.failure_policy() {
        wire::FailurePolicy::FailOpen => FailurePolicy::FailOpen,
        wire::FailurePolicy::FailClosed => FailurePolicy::FailClosed,
    };
    let directions = plugin
        .directions()
        .filter_map(|direction| match direction {
            wire::Direction::Inbound => Some(SpecDirection::Inbound),
            wire::Direction::Outbound => Some(SpecDirection::Outbound),
            wire::Direction::Unspecified => None,
        })
        .collect();
    PluginSpec {
        name: plugin.name.clone(),
        module,
        sha256: Some(sha256),
        config: serde_json::Value::String(plugin.config.clone()),
        failure_policy,
        timeout_ms: match plugin.timeout_ms {
            0 => DEFAULT_TIMEOUT_MS,
            ms => ms.into(),
        },
        memory_limit_bytes: match usize::try_from(plugin.memory_limit_bytes) {
            Ok(0) | Err(_) => DEFAULT_MEMORY_LIMIT_BYTES,
            Ok(bytes) => bytes,
        },
        metric_series_limit: DEFAULT_METRIC_SERIES_LIMIT,
        directions,
    }
}

/// Where the workload's last chain is kept. Per workload: proxies on one
/// machine may share the directory (modules are shared by sha256; chains
/// are not).
fn saved_chain(dir: &Path, workload: &Workload) -> PathBuf {
    dir.join(format!(
        "last-chain.{}.{}.json",
        workload.namespace, workload.pod
    ))
}

/// Keeps the chain for a restart while the controller is away.
fn save(spec: &ChainSpec, path: &Path) {
    let saved = serde_json::to_vec(spec)
        .map_err(std::io::Error::other)
        .and_then(|json| store(path, &json));
    if let Err(error) = saved {
        tracing::warn!(path = %path.display(), %error, "cannot save the plugin chain");
    }
}

/// Installs `workload`'s saved chain from `dir`, if there is one and it
/// loads; otherwise the proxy waits for the controller's.
pub fn restore(plugins: &Plugins, dir: &Path, workload: &Workload) {
    let path = saved_chain(dir, workload);
    if !path.exists() {
        tracing::info!(%workload, "no saved plugin chain; waiting for the controller's");
        return;
    }
    let source = format!("{} (saved)", path.display());
    match plugins.install_now(&source, |runtime| super::file::load(runtime, &path)) {
        Ok(()) => tracing::info!("serving the last chain from the controller until it answers"),
        Err(error) => {
            let error = crate::errors::error_chain(&error);
            tracing::warn!(%error, "the saved chain did not load; waiting for the controller's");
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_are_namespace_slash_pod() {
        let workload: Workload = "shop/web-7d9f-abcde".parse().unwrap();
        assert_eq!(workload.namespace, "shop");
        assert_eq!(workload.pod, "web-7d9f-abcde");
        assert_eq!(workload.to_string(), "shop/web-7d9f-abcde");
        for bad in ["", "shop", "shop/", "/web", "a/b/c"] {
            assert!(bad.parse::<Workload>().is_err(), "{bad}");
        }
    }

    #[test]
    fn wire_plugins_become_specs_with_the_proxy_defaults() {
        let mut plugin = wire::Plugin {
            name: "retry".into(),
            sha256: "ab".into(),
            config: r#"{"routes":[]}"#.into(),
            failure_policy: wire::FailurePolicy::FailOpen.into(),
            timeout_ms: 0,
            memory_limit_bytes: 0,
            directions: vec![wire::Direction::Inbound.into()],
        };
        let spec = spec(&plugin, "/m/ab.wasm".into(), "ab".into());
        assert_eq!(spec.failure_policy, FailurePolicy::FailOpen);
        assert_eq!(spec.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(spec.memory_limit_bytes, DEFAULT_MEMORY_LIMIT_BYTES);
        assert_eq!(spec.directions, [SpecDirection::Inbound]);
        assert_eq!(spec.config_text(), r#"{"routes":[]}"#);
        plugin.timeout_ms = 7;
        assert_eq!(super::spec(&plugin, "/m".into(), "ab".into()).timeout_ms, 7);
    }
}
