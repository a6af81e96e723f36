//! The strict step: an object's spec into a resource Weft honours, or why
//! not. A field Weft does not know or does not support is a refusal, never
//! a silent default.

use serde::de::DeserializeOwned;

use super::object::{TrafficKind, TrafficObject};
use super::policy::{
    AuthorizationPolicySpec, MeshTlsAuthenticationSpec, NetworkAuthenticationSpec, Server,
    ServerAuthorizationSpec, ServerSpec,
};
use super::route::{GrpcRouteSpec, HttpRouteSpec};
use super::service_profile::ServiceProfileSpec;
use super::traffic_split::TrafficSplitSpec;

/// A traffic resource's spec, read and checked.
#[derive(Clone, Debug, PartialEq)]
pub enum TrafficResource {
    ServiceProfile(ServiceProfileSpec),
    TrafficSplit(TrafficSplitSpec),
    /// Either group's HTTPRoute.
    HttpRoute(HttpRouteSpec),
    GrpcRoute(GrpcRouteSpec),
    Server(Server),
    ServerAuthorization(ServerAuthorizationSpec),
    AuthorizationPolicy(AuthorizationPolicySpec),
    MeshTlsAuthentication(MeshTlsAuthenticationSpec),
    NetworkAuthentication(NetworkAuthenticationSpec),
}

/// Reads and checks `object`'s spec.
pub fn read(object: &TrafficObject) -> Result<TrafficResource, String> {
    if let Some(field) = object.unknown_fields.first() {
        return Err(format!("unknown field {field}"));
    }
    Ok(match object.kind {
        TrafficKind::ServiceProfile => {
            let spec: ServiceProfileSpec = strict(&object.spec)?;
            spec.check()?;
            TrafficResource::ServiceProfile(spec)
        }
        TrafficKind::TrafficSplit => {
            let spec: TrafficSplitSpec = strict(&object.spec)?;
            spec.check()?;
            TrafficResource::TrafficSplit(spec)
        }
        TrafficKind::HttpRoute | TrafficKind::LinkerdHttpRoute => {
            let spec: HttpRouteSpec = strict(&object.spec)?;
            spec.check()?;
            TrafficResource::HttpRoute(spec)
        }
        TrafficKind::GrpcRoute => {
            let spec: GrpcRouteSpec = strict(&object.spec)?;
            spec.check()?;
            TrafficResource::GrpcRoute(spec)
        }
        TrafficKind::Server => {
            let spec: ServerSpec = strict(&object.spec)?;
            spec.check()?;
            let labels = object.metadata.labels.clone().unwrap_or_default();
            TrafficResource::Server(Server { spec, labels })
        }
        TrafficKind::ServerAuthorization => {
            let spec: ServerAuthorizationSpec = strict(&object.spec)?;
            spec.check()?;
            TrafficResource::ServerAuthorization(spec)
        }
        TrafficKind::AuthorizationPolicy => {
            let spec: AuthorizationPolicySpec = strict(&object.spec)?;
            spec.check(object.metadata.namespace.as_deref().unwrap_or_default())?;
            TrafficResource::AuthorizationPolicy(spec)
        }
        TrafficKind::MeshTlsAuthentication => {
            let spec: MeshTlsAuthenticationSpec = strict(&object.spec)?;
            spec.check()?;
            TrafficResource::MeshTlsAuthentication(spec)
        }
        TrafficKind::NetworkAuthentication => {
            let spec: NetworkAuthenticationSpec = strict(&object.spec)?;
            spec.check()?;
            TrafficResource::NetworkAuthentication(spec)
        }
    })
}

/// `spec` as `T`, every field known; errors name the field under `spec`.
fn strict<T: DeserializeOwned>(spec: &serde_json::Value) -> Result<T, String> {
    if spec.is_null() {
        return Err("spec is required".to_string());
    }
    let mut unknown = Vec::new();
    // `?` is serde_ignored's step into an optional field: not part of
    // the field's name as written.
    let mut note = |path: serde_ignored::Path<'_>| {
        let path = path.to_string().replace(".?", "");
        unknown.push(format!("spec.{path}"));
    };
    let parsed: Result<T, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(spec, &mut note));
    let parsed = parsed.map_err(|e| match e.path().to_string().as_str() {
        "." => format!("spec: {}", e.inner()),
        path => format!("spec.{path}: {}", e.inner()),
    })?;
    if !unknown.is_empty() {
        return Err(format!(
            "unsupported field {} (Weft does not apply it)",
            unknown.join(", ")
        ));
    }
    Ok(parsed)
}
