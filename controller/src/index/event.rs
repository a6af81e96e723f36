//! What feeds the index: objects applied or deleted one at a time (a watch
//! event), or every object of a kind at once (a watch's relist, a directory
//! read again). The objects are the Kubernetes types themselves, so JSON
//! from the API server or `kubectl get -o json` deserializes straight in.

use std::fmt;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;

use crate::linkerd::{TrafficKind, TrafficObject, TrafficRef};
use crate::resources::WasmPlugin;

/// A workload: one pod, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct WorkloadRef {
    pub namespace: String,
    pub name: String,
}

/// A WasmPlugin resource, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PluginRef {
    pub namespace: String,
    pub name: String,
}

/// A Service, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
}

/// An EndpointSlice, by namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct EndpointSliceRef {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Applied(Resource),
    Deleted(ResourceKey),
    /// Every object of one kind, replacing all the index held of it.
    Reset(Objects),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    Namespace(Box<Namespace>),
    Pod(Box<Pod>),
    WasmPlugin(Box<WasmPlugin>),
    Service(Box<Service>),
    EndpointSlice(Box<EndpointSlice>),
    /// A version of a WasmPlugin that could be named but not read.
    UnreadableWasmPlugin(UnreadablePlugin),
    /// A ServiceProfile, TrafficSplit, HTTPRoute or GRPCRoute.
    Traffic(Box<TrafficObject>),
}

/// A WasmPlugin whose document is YAML with a name, but whose spec did not
/// read (an unknown field, a value of the wrong type or out of its enum:
/// the local source reads WasmPlugins strictly). The index counts it as a
/// version it refuses, so the last accepted one keeps serving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnreadablePlugin {
    pub plugin: PluginRef,
    pub generation: Option<i64>,
    /// What is wrong with it, naming the field.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceKey {
    Namespace(String),
    Pod(WorkloadRef),
    WasmPlugin(PluginRef),
    Service(ServiceRef),
    EndpointSlice(EndpointSliceRef),
    Traffic(TrafficRef),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Objects {
    Namespaces(Vec<Namespace>),
    Pods(Vec<Pod>),
    WasmPlugins(Vec<WasmPlugin>),
    Services(Vec<Service>),
    EndpointSlices(Vec<EndpointSlice>),
    /// Every object of one traffic kind.
    Traffic(TrafficKind, Vec<TrafficObject>),
}

impl WorkloadRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// `None` for a pod without a name or namespace (not yet created).
    pub fn of(pod: &Pod) -> Option<Self> {
        Some(Self::new(
            pod.metadata.namespace.clone()?,
            pod.metadata.name.clone()?,
        ))
    }
}

impl PluginRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn of(plugin: &WasmPlugin) -> Option<Self> {
        Some(Self::new(
            plugin.metadata.namespace.clone()?,
            plugin.metadata.name.clone()?,
        ))
    }
}

impl ServiceRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn of(service: &Service) -> Option<Self> {
        Some(Self::new(
            service.metadata.namespace.clone()?,
            service.metadata.name.clone()?,
        ))
    }
}

impl EndpointSliceRef {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn of(slice: &EndpointSlice) -> Option<Self> {
        Some(Self::new(
            slice.metadata.namespace.clone()?,
            slice.metadata.name.clone()?,
        ))
    }
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl fmt::Display for PluginRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl fmt::Display for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl From<Namespace> for Event {
    fn from(namespace: Namespace) -> Self {
        Event::Applied(Resource::Namespace(Box::new(namespace)))
    }
}

impl From<Pod> for Event {
    fn from(pod: Pod) -> Self {
        Event::Applied(Resource::Pod(Box::new(pod)))
    }
}

impl From<WasmPlugin> for Event {
    fn from(plugin: WasmPlugin) -> Self {
        Event::Applied(Resource::WasmPlugin(Box::new(plugin)))
    }
}

impl From<Service> for Event {
    fn from(service: Service) -> Self {
        Event::Applied(Resource::Service(Box::new(service)))
    }
}

impl From<TrafficObject> for Event {
    fn from(object: TrafficObject) -> Self {
        Event::Applied(Resource::Traffic(Box::new(object)))
    }
}

impl From<EndpointSlice> for Event {
    fn from(slice: EndpointSlice) -> Self {
        Event::Applied(Resource::EndpointSlice(Box::new(slice)))
    }
}
