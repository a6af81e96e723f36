//! The plugin API to proxies (`weft.plugins.v1alpha1`): a proxy streams its
//! workload's chain and fetches modules by sha256. Served from `State`
//! snapshots, so a stream only ever sees whole, checked states.
//!
//! Over mTLS ([`PluginApi::authenticated`]) a caller must prove an identity,
//! and may watch only the chain of a workload whose service account that
//! identity is: a proxy reads its own workload's plugins and config, not
//! its neighbours'.

use std::pin::Pin;
use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use weft_api::plugins::plugins_server::{Plugins, PluginsServer};
use weft_api::plugins::{self as wire, GetModuleRequest, ModuleChunk, WatchChainRequest};

use weft_identity::TrustDomain;

use crate::identity::ClientIdentity;
use crate::index::{ChainError, ResolvedPlugin, WorkloadRef};
use crate::resources::Direction;
use crate::state::State;
use crate::validate::FailurePolicy;

/// Module bytes go out in pieces of this size.
const CHUNK_BYTES: usize = 64 * 1024;

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[derive(Clone)]
pub struct PluginApi {
    state: watch::Receiver<Arc<State>>,
    streams: Arc<watch::Sender<usize>>,
    /// Set when served over mTLS: callers are checked against it.
    trust: Option<TrustDomain>,
}

impl PluginApi {
    pub fn new(state: watch::Receiver<Arc<State>>) -> Self {
        PluginApi {
            state,
            streams: Arc::new(watch::Sender::new(0)),
            trust: None,
        }
    }

    /// The same API for callers that prove an identity in `trust` (served
    /// over mTLS, whose connections carry a [`ClientIdentity`]).
    pub fn authenticated(mut self, trust: TrustDomain) -> Self {
        self.trust = Some(trust);
        self
    }

    /// Over mTLS: the caller's identity, which must be that of `workload`'s
    /// service account when one is named.
    fn check_caller<T>(
        &self,
        request: &Request<T>,
        workload: Option<&WorkloadRef>,
    ) -> Result<(), Status> {
        let Some(trust) = &self.trust else {
            return Ok(());
        };
        let caller = request
            .extensions()
            .get::<ClientIdentity>()
            .and_then(|identity| identity.0.clone())
            .ok_or_else(|| Status::unauthenticated("no client certificate: prove an identity"))?;
        let Some(workload) = workload else {
            return Ok(());
        };
        let expected = self
            .state
            .borrow()
            .index
            .identity(workload, trust)
            .ok_or_else(|| Status::not_found(format!("no workload {workload}")))?
            .map_err(|error| Status::failed_precondition(error.to_string()))?;
        if caller != expected {
            return Err(Status::permission_denied(format!(
                "{caller} may not watch {workload}'s chain: it runs as {expected}"
            )));
        }
        Ok(())
    }

    /// How many `WatchChain` streams are being served, updated as each one
    /// starts and ends.
    pub fn live_streams(&self) -> watch::Receiver<usize> {
        self.streams.subscribe()
    }

    pub fn into_service(self) -> PluginsServer<Self> {
        PluginsServer::new(self)
    }
}

#[tonic::async_trait]
impl Plugins for PluginApi {
    type WatchChainStream = Stream_<wire::Chain>;
    type GetModuleStream = Stream_<ModuleChunk>;

    async fn watch_chain(
        &self,
        request: Request<WatchChainRequest>,
    ) -> Result<Response<Self::WatchChainStream>, Status> {
        let workload = {
            let request = request.get_ref();
            WorkloadRef::new(&request.namespace, &request.pod)
        };
        self.check_caller(&request, Some(&workload))?;
        let mut state = self.state.clone();
        let first = chain(
            &state.borrow_and_update(),
            &workload,
            &wire::Chain::default(),
        )
        .map_err(not_found)?;
        tracing::info!(%workload, version = %first.version, "proxy connected");
        let (send, receive) = mpsc::channel(4);
        let live = LiveStream::new(self.streams.clone());
        tokio::spawn(async move {
            let _live = live;
            let mut last = first.clone();
            if send.send(Ok(first)).await.is_err() {
                return;
            }
            loop {
                // A proxy that went away ends its stream now, not at the
                // next state change, which may never come.
                tokio::select! {
                    changed = state.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = send.closed() => {
                        tracing::info!(%workload, "proxy disconnected");
                        return;
                    }
                }
                let next = chain(&state.borrow_and_update(), &workload, &last);
                let next = match next {
                    Ok(next) if next.version == last.version && next.problems == last.problems => {
                        continue;
                    }
                    Ok(next) => next,
                    Err(error) => {
                        let _ = send.send(Err(not_found(error))).await;
                        return;
                    }
                };
                last = next.clone();
                tracing::info!(%workload, version = %next.version, problems = ?next.problems, "chain changed");
                if send.send(Ok(next)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receive))))
    }

    async fn get_module(
        &self,
        request: Request<GetModuleRequest>,
    ) -> Result<Response<Self::GetModuleStream>, Status> {
        self.check_caller(&request, None)?;
        let sha256 = request.into_inner().sha256.to_ascii_lowercase();
        let bytes = self
            .state
            .borrow()
            .modules
            .bytes(&sha256)
            .ok_or_else(|| Status::not_found(format!("no checked module {sha256}")))?;
        let chunks: Vec<Result<ModuleChunk, Status>> = bytes
            .chunks(CHUNK_BYTES)
            .map(|data| {
                Ok(ModuleChunk {
                    data: data.to_vec(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
}

/// Counts one stream in a `live_streams` count while it lives.
pub(crate) struct LiveStream(Arc<watch::Sender<usize>>);

impl LiveStream {
    pub(crate) fn new(streams: Arc<watch::Sender<usize>>) -> Self {
        streams.send_modify(|n| *n += 1);
        LiveStream(streams)
    }
}

impl Drop for LiveStream {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// The workload's chain as proxies receive it. A plugin whose module or
/// config is refused keeps the module and config it had in `last` (the
/// chain this proxy was sent before), so a bad change never takes a
/// working plugin away; one never sent before is left out. Either way the
/// cause is in `problems`.
pub fn chain(
    state: &State,
    workload: &WorkloadRef,
    last: &wire::Chain,
) -> Result<wire::Chain, ChainError> {
    let resolved = state.index.plugin_set(workload)?;
    let mut problems: Vec<String> = resolved.problems.iter().map(ToString::to_string).collect();
    let mut plugins = Vec::with_capacity(resolved.plugins.len());
    for plugin in &resolved.plugins {
        match state.modules.resolve(plugin) {
            Ok(sha256) => plugins.push(wire_plugin(plugin, sha256)),
            Err(reason) => {
                let previous = last.plugins.iter().find(|p| p.name == plugin.name);
                let kept = if previous.is_some() {
                    "; its previous module and config keep serving"
                } else {
                    ""
                };
                problems.push(format!(
                    "plugin {} ({}) refused: {reason}{kept}",
                    plugin.name, plugin.resource
                ));
                plugins.extend(previous.cloned());
            }
        }
    }
    Ok(wire::Chain {
        version: version(&plugins),
        plugins,
        problems,
    })
}

/// A digest of what the proxy would run: equal versions, identical chains.
fn version(plugins: &[wire::Plugin]) -> String {
    let mut digest = Sha256::new();
    for plugin in plugins {
        digest.update(plugin.encode_to_vec());
    }
    digest
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn wire_plugin(plugin: &ResolvedPlugin, sha256: &str) -> wire::Plugin {
    let failure_policy = match plugin.failure_policy {
        FailurePolicy::FailClosed => wire::FailurePolicy::FailClosed,
        FailurePolicy::FailOpen => wire::FailurePolicy::FailOpen,
    };
    wire::Plugin {
        name: plugin.name.clone(),
        sha256: sha256.to_string(),
        config: plugin.config_text(),
        failure_policy: failure_policy.into(),
        timeout_ms: plugin.timeout_ms.unwrap_or(0),
        memory_limit_bytes: plugin.memory_limit_bytes.unwrap_or(0),
        directions: plugin
            .directions
            .iter()
            .map(|direction| match direction {
                Direction::Inbound => wire::Direction::Inbound.into(),
                Direction::Outbound => wire::Direction::Outbound.into(),
            })
            .collect(),
    }
}

fn not_found(error: ChainError) -> Status {
    Status::not_found(error.to_string())
}

#[cfg(test)]
mod tests;
