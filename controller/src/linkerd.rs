//! Linkerd's traffic resources, and the Gateway API routes Linkerd reads,
//! compiled into the shipped plugins' configurations, so manifests written
//! for Linkerd run on Weft unchanged and policy stays a plugin:
//!
//! - `linkerd.io/v1alpha2` ServiceProfile → `retry` routes (timeouts,
//!   `isRetryable`, `retryBudget`) and `metrics` routes (`rt_route`, response
//!   classes), for clients' outbound requests to the profile's service;
//! - `split.smi-spec.io` TrafficSplit, and HTTPRoute / GRPCRoute with a
//!   Service parent → `split` routes (and `retry` timeouts for HTTPRoute's
//!   `timeouts.request`);
//! - `policy.linkerd.io` Server, ServerAuthorization, AuthorizationPolicy,
//!   MeshTLSAuthentication and NetworkAuthentication, with the workload's
//!   default inbound policy → the `authz` rules of the servers they select
//!   (`authz`).
//!
//! Sources hand the index each object as read (`TrafficObject`, its spec
//! still JSON); `read` is the strict step that accepts or refuses a spec,
//! so a spec Weft cannot honour is refused by the index, which keeps the
//! last accepted version (as for WasmPlugins); `compile` is a pure
//! function from the accepted resources to one workload's plugin configs.
//! docs/linkerd-resources.md lists every field and what becomes of it.

mod authz;
mod compile;
mod duration;
mod object;
pub mod open_api;
mod policy;
mod problems;
mod read;
mod route;
mod service_profile;
#[cfg(test)]
mod tests;
mod traffic_split;

pub use authz::{PodLabelsAndPorts, Workload, compile_authz, policy_problems};
pub use compile::{COMPILED_PLUGINS, CompiledPlugin, ServicePorts, compile, target_problems};
pub use object::{TrafficKind, TrafficObject, TrafficRef};
pub use policy::{INBOUND_POLICIES, Server, ServerAuthorizationSpec, ServerSpec};
pub use problems::{ResourceProblem, Severity, resource_problems};
pub use read::{TrafficResource, read};
pub use route::{BackendRef, GrpcRouteSpec, HttpRouteSpec, ParentRef};
pub use service_profile::ServiceProfileSpec;
pub use traffic_split::TrafficSplitSpec;
