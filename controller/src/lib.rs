//! Weft's control plane: the resource types (and the CRDs generated from
//! them), the index that decides which plugins each workload runs, the local
//! directory source that feeds it from YAML files, the module fetches and
//! checks, the plugin API proxies stream their chains from, and the
//! destination API they ask before connecting. The index and the sources are
//! pure; `state`, `api` and `destination` are the thin runtime around them.

pub mod api;
pub mod check;
pub mod crd;
pub mod dashboard;
pub mod destination;
pub mod fetch;
mod file_changes;
#[cfg(test)]
mod fixtures;
pub mod identity;
pub mod index;
pub mod inspect;
pub mod install;
pub mod kubernetes;
pub mod linkerd;
pub mod local;
pub mod module_source;
pub mod modules;
pub mod plugin_dev;
pub mod resources;
pub mod state;
pub mod stats;
pub mod tap;
pub mod validate;
pub mod webhook;

pub use index::{ChainForWorkload, Event, Index, PluginRef, ResolvedPlugin, WorkloadRef};
pub use resources::{WasmPlugin, WasmPluginSpec, WasmPluginStatus};
