//! Which proxies a tap request names: `deploy/NAME`, `pod/NAME` or
//! `ns/NAME` (and kubectl's other spellings), read from the index. Pure.

use std::net::SocketAddr;

use weft_identity::TrustDomain;

use crate::index::{Index, OwnerKind, WorkloadRef};

/// A proxy to tap: where, and the identity it must prove there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub pod: WorkloadRef,
    pub addr: SocketAddr,
    pub identity: String,
}

/// What a tap names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    Deployment { namespace: String, name: String },
    Pod { namespace: String, name: String },
    Namespace(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResourceError {
    #[error("`{0}` is not deploy/NAME, pod/NAME or ns/NAME")]
    Malformed(String),
    #[error("`{0}`: tap takes deployments, pods and namespaces")]
    Kind(String),
}

impl Resource {
    /// `deploy/web` in `namespace` (empty: `default`).
    pub fn parse(resource: &str, namespace: &str) -> Result<Self, ResourceError> {
        let (kind, name) = resource
            .split_once('/')
            .filter(|(kind, name)| !kind.is_empty() && !name.is_empty() && !name.contains('/'))
            .ok_or_else(|| ResourceError::Malformed(resource.to_string()))?;
        let namespace = match namespace {
            "" => "default",
            namespace => namespace,
        }
        .to_string();
        let name = name.to_string();
        match kind.to_ascii_lowercase().as_str() {
            "deploy" | "deployment" | "deployments" => Ok(Resource::Deployment { namespace, name }),
            "po" | "pod" | "pods" => Ok(Resource::Pod { namespace, name }),
            "ns" | "namespace" | "namespaces" => Ok(Resource::Namespace(name)),
            _ => Err(ResourceError::Kind(resource.to_string())),
        }
    }

    fn contains(&self, index: &Index, pod: &WorkloadRef) -> bool {
        match self {
            Resource::Namespace(namespace) => pod.namespace == *namespace,
            Resource::Pod { namespace, name } => pod.namespace == *namespace && pod.name == *name,
            Resource::Deployment { namespace, name } => {
                pod.namespace == *namespace
                    && index
                        .owner(pod)
                        .is_some_and(|o| o.kind == OwnerKind::Deployment && o.name == *name)
            }
        }
    }
}

/// The meshed pods of `resource` with an address and an identity, in the
/// index's order.
pub fn targets(index: &Index, resource: &Resource, trust: &TrustDomain) -> Vec<Target> {
    index
        .workloads()
        .filter(|pod| resource.contains(index, pod))
        .filter_map(|pod| {
            Some(Target {
                pod: pod.clone(),
                addr: index.tap_addr(pod)?,
                identity: index.identity(pod, trust)?.ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;

    use super::*;
    use crate::index::{Event, Objects};

    fn pod(name: &str, owner: Option<&str>, tap_port: Option<u16>) -> Pod {
        let owners = owner.map(|rs| {
            serde_json::json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                "uid": "u", "controller": true}])
        });
        let ports = match tap_port {
            Some(port) => serde_json::json!([{"name": "weft-tap", "containerPort": port}]),
            None => serde_json::json!([]),
        };
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "shop", "ownerReferences": owners,
                         "labels": {"pod-template-hash": "5d9f"}},
            "spec": {"serviceAccountName": "web", "containers": [
                {"name": "web", "image": "web"},
                {"name": "weft-proxy", "image": "weft-proxy", "ports": ports}]},
            "status": {"phase": "Running", "podIP": "10.0.0.7"}
        }))
        .unwrap()
    }

    fn index() -> Index {
        let mut index = Index::default();
        let pods = vec![
            pod("web-5d9f-a", Some("web-5d9f"), None),
            pod("web-5d9f-b", Some("web-5d9f"), Some(5190)),
            pod("db-0", None, None),
        ];
        index.apply(Event::Reset(Objects::Pods(pods)));
        index
    }

    fn names(targets: &[Target]) -> Vec<&str> {
        targets.iter().map(|t| t.pod.name.as_str()).collect()
    }

    #[test]
    fn a_deployment_names_its_pods_at_their_tap_ports() {
        let trust = TrustDomain::default();
        let web = Resource::parse("deploy/web", "shop").unwrap();
        let found = targets(&index(), &web, &trust);
        assert_eq!(names(&found), ["web-5d9f-a", "web-5d9f-b"]);
        assert_eq!(found[0].addr, "10.0.0.7:4190".parse().unwrap());
        assert_eq!(found[1].addr, "10.0.0.7:5190".parse().unwrap());
        assert_eq!(
            found[0].identity,
            "web.shop.serviceaccount.identity.weft-system.cluster.local"
        );
        let all = targets(&index(), &Resource::parse("ns/shop", "").unwrap(), &trust);
        assert_eq!(all.len(), 3);
        let one = targets(
            &index(),
            &Resource::parse("po/db-0", "shop").unwrap(),
            &trust,
        );
        assert_eq!(names(&one), ["db-0"]);
        let elsewhere = Resource::parse("deploy/web", "").unwrap();
        assert!(targets(&index(), &elsewhere, &trust).is_empty());
    }

    #[test]
    fn resources_are_kind_slash_name() {
        assert_eq!(
            Resource::parse("deployment/web", ""),
            Ok(Resource::Deployment {
                namespace: "default".into(),
                name: "web".into()
            })
        );
        assert!(matches!(
            Resource::parse("web", "shop"),
            Err(ResourceError::Malformed(_))
        ));
        assert!(matches!(
            Resource::parse("svc/web", "shop"),
            Err(ResourceError::Kind(_))
        ));
    }
}
