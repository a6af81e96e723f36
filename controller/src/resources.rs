//! The objects Weft reads: its own `WasmPlugin` custom resource, and the
//! annotations it reads on Kubernetes' Namespaces and Pods.

mod annotations;
mod status;
mod wasm_plugin;

pub use annotations::{PLUGIN_CONFIG_PREFIX, PLUGINS, PluginAnnotations, is_resource_name};
pub use status::{ACCEPTED, Condition, WasmPluginStatus};
pub use wasm_plugin::{
    Direction, FailStrategy, ImagePullPolicy, PluginPhase, PortSelector, TrafficSelector,
    WasmPlugin, WasmPluginSpec, WorkloadMode, WorkloadSelector,
};
