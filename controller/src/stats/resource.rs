//! The kinds of resource `weft stat` reports on, as kubectl and Linkerd
//! spell them, and the labels that name each in the proxies' metrics.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Namespace,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Pod,
    Service,
}

impl ResourceKind {
    /// The label naming a resource of this kind on the series of the pods
    /// it has (for a Service, on the outbound series of its clients, with
    /// the `dst_` prefix: a Service has no proxy of its own).
    pub fn label(self) -> &'static str {
        match self {
            ResourceKind::Namespace => "namespace",
            ResourceKind::Deployment => "deployment",
            ResourceKind::StatefulSet => "statefulset",
            ResourceKind::DaemonSet => "daemonset",
            ResourceKind::Job => "job",
            ResourceKind::Pod => "pod",
            ResourceKind::Service => "service",
        }
    }

    /// The labels a row of this kind is grouped by: the namespace and the
    /// name (just the namespace for a namespace).
    pub fn group_labels(self, prefix: &str) -> Vec<String> {
        let namespace = format!("{prefix}namespace");
        match self {
            ResourceKind::Namespace => vec![namespace],
            kind => vec![namespace, format!("{prefix}{}", kind.label())],
        }
    }

    /// The owner kinds of the index that are rows of this kind.
    pub fn owner_label(self) -> Option<&'static str> {
        match self {
            ResourceKind::Deployment
            | ResourceKind::StatefulSet
            | ResourceKind::DaemonSet
            | ResourceKind::Job => Some(self.label()),
            _ => None,
        }
    }
}

impl FromStr for ResourceKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text.to_ascii_lowercase().as_str() {
            "ns" | "namespace" | "namespaces" => ResourceKind::Namespace,
            "deploy" | "deployment" | "deployments" => ResourceKind::Deployment,
            "sts" | "statefulset" | "statefulsets" => ResourceKind::StatefulSet,
            "ds" | "daemonset" | "daemonsets" => ResourceKind::DaemonSet,
            "job" | "jobs" => ResourceKind::Job,
            "po" | "pod" | "pods" => ResourceKind::Pod,
            "svc" | "service" | "services" => ResourceKind::Service,
            _ => {
                return Err(format!(
                    "`{text}` is not a resource kind: ns, deploy, sts, ds, job, pod or svc"
                ));
            }
        })
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// `kind/name`, e.g. `deploy/backend` (`--from`, `--to`, `weft routes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub kind: ResourceKind,
    pub name: String,
}

impl FromStr for Resource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (kind, name) = text
            .split_once('/')
            .filter(|(_, name)| !name.is_empty())
            .ok_or_else(|| format!("`{text}` is not kind/name, e.g. deploy/backend"))?;
        Ok(Resource {
            kind: kind.parse()?,
            name: name.to_string(),
        })
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}
