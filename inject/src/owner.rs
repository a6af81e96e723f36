//! Which workload a pod belongs to, recorded on the pod as
//! `weft.io/proxy-<kind>: <name>` (Linkerd's `linkerd.io/proxy-deployment`).

use serde_json::Value;

/// A workload: its kind (`Deployment`, `CronJob`, …) and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

impl Owner {
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
        }
    }

    /// The workload of a pod as the API server hands it to a webhook: its
    /// controlling ownerReference, with a ReplicaSet that a Deployment made
    /// (named `<deployment>-<pod-template-hash>`) read as that Deployment,
    /// without asking the API server. `None` for a pod nothing owns.
    pub fn of_pod(pod: &Value) -> Option<Self> {
        let metadata = pod.get("metadata")?;
        let references = metadata.get("ownerReferences")?.as_array()?;
        let owner = references
            .iter()
            .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?;
        let kind = owner.get("kind")?.as_str()?;
        let name = owner.get("name")?.as_str()?;
        let hash = metadata
            .get("labels")
            .and_then(|labels| labels.get("pod-template-hash"))
            .and_then(Value::as_str);
        if kind == "ReplicaSet"
            && let Some(deployment) = hash.and_then(|hash| name.strip_suffix(hash))
            && let Some(deployment) = deployment.strip_suffix('-')
            && !deployment.is_empty()
        {
            return Some(Self::new("Deployment", deployment));
        }
        Some(Self::new(kind, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(owner_kind: &str, owner_name: &str, hash: Option<&str>) -> Value {
        let mut pod = json!({"metadata": {
            "name": "x",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Other", "name": "not-the-controller", "uid": "1"},
                {"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name,
                 "uid": "2", "controller": true, "blockOwnerDeletion": true},
            ],
        }});
        if let Some(hash) = hash {
            pod["metadata"]["labels"] = json!({"pod-template-hash": hash});
        }
        pod
    }

    #[test]
    fn a_deployments_replica_set_is_read_as_the_deployment() {
        let pod = pod("ReplicaSet", "web-5d8f9c7b6", Some("5d8f9c7b6"));
        assert_eq!(Owner::of_pod(&pod), Some(Owner::new("Deployment", "web")));
    }

    #[test]
    fn other_owners_are_taken_as_they_are() {
        let bare = pod("ReplicaSet", "frontend", None);
        assert_eq!(
            Owner::of_pod(&bare),
            Some(Owner::new("ReplicaSet", "frontend"))
        );
        let other_hash = pod("ReplicaSet", "frontend", Some("abc"));
        assert_eq!(
            Owner::of_pod(&other_hash),
            Some(Owner::new("ReplicaSet", "frontend"))
        );
        let set = pod("StatefulSet", "db", None);
        assert_eq!(Owner::of_pod(&set), Some(Owner::new("StatefulSet", "db")));
        assert_eq!(Owner::of_pod(&json!({"metadata": {"name": "bare"}})), None);
    }
}
