//! The inspection API for the `weft` CLI (`weft.inspect.v1alpha1`): each
//! workload's chain and every WasmPlugin's verdict, from the same snapshot
//! proxies are served from.

use std::sync::Arc;

use tokio::sync::watch;
use tonic::{Request, Response, Status};
use weft_api::inspect::inspect_server::{Inspect, InspectServer};
use weft_api::inspect::{
    ListPluginsRequest, ListWorkloadsRequest, PluginStatus, Plugins, Workload, WorkloadPlugin,
    Workloads,
};
use weft_api::plugins as wire;

use crate::index::ConfigSource;
use crate::state::State;
use crate::validate::RejectReason;

#[derive(Clone)]
pub struct InspectApi {
    state: watch::Receiver<Arc<State>>,
}

impl InspectApi {
    pub fn new(state: watch::Receiver<Arc<State>>) -> Self {
        InspectApi { state }
    }

    pub fn into_service(self) -> InspectServer<Self> {
        InspectServer::new(self)
    }
}

#[tonic::async_trait]
impl Inspect for InspectApi {
    async fn list_workloads(
        &self,
        request: Request<ListWorkloadsRequest>,
    ) -> Result<Response<Workloads>, Status> {
        let namespace = request.into_inner().namespace;
        let state = self.state.borrow().clone();
        Ok(Response::new(workloads(&state, &namespace)))
    }

    async fn list_plugins(
        &self,
        request: Request<ListPluginsRequest>,
    ) -> Result<Response<Plugins>, Status> {
        let namespace = request.into_inner().namespace;
        let state = self.state.borrow().clone();
        Ok(Response::new(plugins(&state, &namespace)))
    }
}

pub fn workloads(state: &State, namespace: &str) -> Workloads {
    let workloads = state
        .index
        .workloads()
        .filter(|w| namespace.is_empty() || w.namespace == namespace)
        .filter_map(|workload| {
            let resolved = state.index.plugin_set(workload).ok()?;
            let served = crate::api::chain(state, workload, &wire::Chain::default()).ok()?;
            let plugins = resolved
                .plugins
                .iter()
                .filter_map(|plugin| {
                    let sha256 = state.modules.resolve(plugin).ok()?;
                    Some(WorkloadPlugin {
                        name: plugin.name.clone(),
                        resource: plugin.resource.to_string(),
                        sha256: sha256.to_string(),
                        config_source: config_source(plugin.config_source).to_string(),
                    })
                })
                .collect();
            Some(Workload {
                namespace: workload.namespace.clone(),
                pod: workload.name.clone(),
                version: served.version,
                plugins,
                problems: served.problems,
                plugins_from: resolved
                    .plugins_from
                    .map_or(String::new(), |origin| origin.to_string()),
            })
        })
        .collect();
    Workloads { workloads }
}

pub fn plugins(state: &State, namespace: &str) -> Plugins {
    let plugins = state
        .index
        .plugins()
        .filter(|(plugin, _)| namespace.is_empty() || plugin.namespace == namespace)
        .map(|(plugin, known)| {
            let mut status = PluginStatus {
                namespace: plugin.namespace.clone(),
                name: plugin.name.clone(),
                ..PluginStatus::default()
            };
            match (&known.rejection, state.modules.of_resource(plugin)) {
                (Some(rejection), checked) => {
                    status.reason = rejection.reason.to_string();
                    status.message = known.rejection_message().unwrap_or_default();
                    // The module of the version still serving, if checked.
                    if known.serving.is_some()
                        && let Some(Ok(sha256)) = checked
                    {
                        status.sha256 = sha256.to_string();
                    }
                }
                (None, Some(Err(refused))) => {
                    status.reason = RejectReason::ModuleRefused.to_string();
                    status.message = refused.to_string();
                }
                (None, Some(Ok(sha256))) => {
                    status.accepted = true;
                    status.sha256 = sha256.to_string();
                }
                (None, None) => {
                    status.accepted = true;
                    status.message = "no workload runs it".to_string();
                }
            }
            status
        })
        .collect();
    Plugins { plugins }
}

fn config_source(source: ConfigSource) -> &'static str {
    match source {
        ConfigSource::PodAnnotation => "podAnnotation",
        ConfigSource::NamespaceAnnotation => "namespaceAnnotation",
        ConfigSource::WasmPlugin => "wasmPlugin",
        ConfigSource::Compiled => "compiled",
    }
}
