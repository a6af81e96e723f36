//! The traffic and policy resources' kinds, keys, and objects as sources read them.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

/// The kinds compiled into plugin configs (traffic resources into
/// clients' `split`, `retry` and `metrics`; policy ones into servers'
/// `authz`). Linkerd's own HTTPRoute
/// (`policy.linkerd.io`) is a kind apart from the Gateway API's: the two
/// are different objects, which may share a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum TrafficKind {
    ServiceProfile,
    TrafficSplit,
    HttpRoute,
    LinkerdHttpRoute,
    GrpcRoute,
    Server,
    ServerAuthorization,
    AuthorizationPolicy,
    MeshTlsAuthentication,
    NetworkAuthentication,
}

/// One traffic resource, by kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TrafficRef {
    pub kind: TrafficKind,
    pub namespace: String,
    pub name: String,
}

/// An object as a source read it: apiVersion, kind and metadata known, the
/// spec not read yet, so that a spec Weft cannot honour is refused by the
/// index (which keeps the last accepted version) rather than by the source.
#[derive(Clone, Debug, PartialEq)]
pub struct TrafficObject {
    pub kind: TrafficKind,
    pub api_version: String,
    pub metadata: ObjectMeta,
    /// `spec`, as JSON (`Null` when absent).
    pub spec: Value,
    /// Top-level fields other than apiVersion, kind, metadata, spec and
    /// status: reported, since Weft would ignore them.
    pub unknown_fields: Vec<String>,
}

impl TrafficKind {
    pub const ALL: [TrafficKind; 10] = [
        TrafficKind::ServiceProfile,
        TrafficKind::TrafficSplit,
        TrafficKind::HttpRoute,
        TrafficKind::LinkerdHttpRoute,
        TrafficKind::GrpcRoute,
        TrafficKind::Server,
        TrafficKind::ServerAuthorization,
        TrafficKind::AuthorizationPolicy,
        TrafficKind::MeshTlsAuthentication,
        TrafficKind::NetworkAuthentication,
    ];

    /// The kind of an object with this `apiVersion` and `kind`, if Weft
    /// reads it.
    pub fn of(api_version: &str, kind: &str) -> Option<Self> {
        Some(match (api_version, kind) {
            ("linkerd.io/v1alpha2", "ServiceProfile") => TrafficKind::ServiceProfile,
            ("split.smi-spec.io/v1alpha1" | "split.smi-spec.io/v1alpha2", "TrafficSplit") => {
                TrafficKind::TrafficSplit
            }
            ("gateway.networking.k8s.io/v1", "HTTPRoute") => TrafficKind::HttpRoute,
            (
                "policy.linkerd.io/v1beta1"
                | "policy.linkerd.io/v1beta2"
                | "policy.linkerd.io/v1beta3",
                "HTTPRoute",
            ) => TrafficKind::LinkerdHttpRoute,
            ("gateway.networking.k8s.io/v1", "GRPCRoute") => TrafficKind::GrpcRoute,
            (
                "policy.linkerd.io/v1beta1"
                | "policy.linkerd.io/v1beta2"
                | "policy.linkerd.io/v1beta3",
                "Server",
            ) => TrafficKind::Server,
            ("policy.linkerd.io/v1beta1", "ServerAuthorization") => {
                TrafficKind::ServerAuthorization
            }
            ("policy.linkerd.io/v1alpha1", "AuthorizationPolicy") => {
                TrafficKind::AuthorizationPolicy
            }
            ("policy.linkerd.io/v1alpha1", "MeshTLSAuthentication") => {
                TrafficKind::MeshTlsAuthentication
            }
            ("policy.linkerd.io/v1alpha1", "NetworkAuthentication") => {
                TrafficKind::NetworkAuthentication
            }
            _ => return None,
        })
    }

    /// The `kind` field.
    pub fn kind(self) -> &'static str {
        match self {
            TrafficKind::ServiceProfile => "ServiceProfile",
            TrafficKind::TrafficSplit => "TrafficSplit",
            TrafficKind::HttpRoute | TrafficKind::LinkerdHttpRoute => "HTTPRoute",
            TrafficKind::GrpcRoute => "GRPCRoute",
            TrafficKind::Server => "Server",
            TrafficKind::ServerAuthorization => "ServerAuthorization",
            TrafficKind::AuthorizationPolicy => "AuthorizationPolicy",
            TrafficKind::MeshTlsAuthentication => "MeshTLSAuthentication",
            TrafficKind::NetworkAuthentication => "NetworkAuthentication",
        }
    }

    /// Linkerd's policy resources, compiled into servers' `authz`.
    pub fn is_policy(self) -> bool {
        matches!(
            self,
            TrafficKind::Server
                | TrafficKind::ServerAuthorization
                | TrafficKind::AuthorizationPolicy
                | TrafficKind::MeshTlsAuthentication
                | TrafficKind::NetworkAuthentication
        )
    }

    pub fn group(self) -> &'static str {
        match self {
            TrafficKind::ServiceProfile => "linkerd.io",
            TrafficKind::TrafficSplit => "split.smi-spec.io",
            TrafficKind::HttpRoute | TrafficKind::GrpcRoute => "gateway.networking.k8s.io",
            TrafficKind::LinkerdHttpRoute
            | TrafficKind::Server
            | TrafficKind::ServerAuthorization
            | TrafficKind::AuthorizationPolicy
            | TrafficKind::MeshTlsAuthentication
            | TrafficKind::NetworkAuthentication => "policy.linkerd.io",
        }
    }

    /// The version the Kubernetes source watches (the API server converts).
    pub fn watched_version(self) -> &'static str {
        match self {
            TrafficKind::ServiceProfile => "v1alpha2",
            TrafficKind::TrafficSplit => "v1alpha2",
            TrafficKind::HttpRoute | TrafficKind::GrpcRoute => "v1",
            TrafficKind::LinkerdHttpRoute => "v1beta3",
            // accessPolicy is v1beta3's (Linkerd 2.16 and later).
            TrafficKind::Server => "v1beta3",
            TrafficKind::ServerAuthorization => "v1beta1",
            TrafficKind::AuthorizationPolicy
            | TrafficKind::MeshTlsAuthentication
            | TrafficKind::NetworkAuthentication => "v1alpha1",
        }
    }

    /// The resource's plural name, as in RBAC rules and API paths.
    pub fn plural(self) -> &'static str {
        match self {
            TrafficKind::ServiceProfile => "serviceprofiles",
            TrafficKind::TrafficSplit => "trafficsplits",
            TrafficKind::HttpRoute | TrafficKind::LinkerdHttpRoute => "httproutes",
            TrafficKind::GrpcRoute => "grpcroutes",
            TrafficKind::Server => "servers",
            TrafficKind::ServerAuthorization => "serverauthorizations",
            TrafficKind::AuthorizationPolicy => "authorizationpolicies",
            TrafficKind::MeshTlsAuthentication => "meshtlsauthentications",
            TrafficKind::NetworkAuthentication => "networkauthentications",
        }
    }
}

impl TrafficRef {
    pub fn new(kind: TrafficKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl TrafficObject {
    /// A Kubernetes object as JSON; `None` when it is no traffic kind.
    pub fn from_value(value: Value) -> Option<Result<Self, String>> {
        let text = |field: &str| value.get(field).and_then(Value::as_str);
        let api_version = text("apiVersion")?.to_string();
        let kind = TrafficKind::of(&api_version, text("kind")?)?;
        let Value::Object(mut fields) = value else {
            return None;
        };
        let metadata = match fields.remove("metadata") {
            Some(metadata) => match serde_json::from_value::<ObjectMeta>(metadata) {
                Ok(metadata) => metadata,
                Err(error) => return Some(Err(format!("metadata: {error}"))),
            },
            None => ObjectMeta::default(),
        };
        let spec = fields.remove("spec").unwrap_or(Value::Null);
        let unknown_fields = fields
            .keys()
            .filter(|key| !matches!(key.as_str(), "apiVersion" | "kind" | "status"))
            .cloned()
            .collect();
        Some(Ok(TrafficObject {
            kind,
            api_version,
            metadata,
            spec,
            unknown_fields,
        }))
    }

    /// `None` for an object without a name or namespace.
    pub fn key(&self) -> Option<TrafficRef> {
        Some(TrafficRef::new(
            self.kind,
            self.metadata.namespace.clone()?,
            self.metadata.name.clone()?,
        ))
    }
}

impl fmt::Display for TrafficKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrafficKind::LinkerdHttpRoute => f.write_str("HTTPRoute.policy.linkerd.io"),
            other => f.write_str(other.kind()),
        }
    }
}

impl fmt::Display for TrafficRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}
