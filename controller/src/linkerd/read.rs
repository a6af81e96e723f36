//! The strict step: an object's spec into a resource Weft honours, or why
//! not. A field Weft does not know or does not support is a refusal, never
//! a silent default.

use serde::de::DeserializeOwned;

use super::object::{TrafficKind, TrafficObject};
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
    })
}

/// `spec` as `T`, every field known; errors name the field under `spec`.
fn strict<T: DeserializeOwned>(spec: &serde_json::Value) -> Result<T, String> {
    if spec.is_null() {
        return Err("spec is required".to_string());
    }
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(format!("spec.{path}"));
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
