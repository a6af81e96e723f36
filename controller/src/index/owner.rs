//! The workload that owns a pod, named as Linkerd names it in metric labels
//! (`dst_deployment`, `dst_statefulset`…), so dashboards written for Linkerd
//! read Weft's metrics the same. Read from the pod alone: a ReplicaSet whose
//! name is a Deployment's plus `-<pod-template-hash>` stands for that
//! Deployment, without looking the ReplicaSet up.

use k8s_openapi::api::core::v1::Pod;

/// The label a Deployment puts on its ReplicaSets' pods, and appends to the
/// ReplicaSets' names.
const POD_TEMPLATE_HASH: &str = "pod-template-hash";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OwnerKind {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
}

/// A pod's owning workload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    pub kind: OwnerKind,
    pub name: String,
}

impl OwnerKind {
    /// The metric label's name (the proxy prefixes `dst_`).
    pub fn label(self) -> &'static str {
        match self {
            OwnerKind::Deployment => "deployment",
            OwnerKind::ReplicaSet => "replicaset",
            OwnerKind::StatefulSet => "statefulset",
            OwnerKind::DaemonSet => "daemonset",
            OwnerKind::Job => "job",
        }
    }
}

impl Owner {
    /// The pod's controller (else its first owner), if it is of a kind
    /// metrics name; `None` for a bare pod or another kind of owner.
    pub fn of(pod: &Pod) -> Option<Self> {
        let owners = pod.metadata.owner_references.as_deref()?;
        let owner = owners
            .iter()
            .find(|owner| owner.controller == Some(true))
            .or_else(|| owners.first())?;
        let kind = match owner.kind.as_str() {
            "ReplicaSet" => {
                let hash = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get(POD_TEMPLATE_HASH))
                    .filter(|hash| !hash.is_empty());
                let deployment = hash.and_then(|hash| {
                    owner
                        .name
                        .strip_suffix(hash.as_str())?
                        .strip_suffix('-')
                        .filter(|name| !name.is_empty())
                });
                if let Some(deployment) = deployment {
                    return Some(Owner {
                        kind: OwnerKind::Deployment,
                        name: deployment.to_string(),
                    });
                }
                OwnerKind::ReplicaSet
            }
            "StatefulSet" => OwnerKind::StatefulSet,
            "DaemonSet" => OwnerKind::DaemonSet,
            "Job" => OwnerKind::Job,
            _ => return None,
        };
        Some(Owner {
            kind,
            name: owner.name.clone(),
        })
    }
}
