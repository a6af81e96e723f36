//! [`inject_documents`]: `weft inject` on a stream of manifests, YAML
//! (several documents) or JSON, as `kubectl get -o yaml|json` prints them.
//! Every workload's pod template is injected; every other object passes
//! through unchanged; each gets a line of report, as Linkerd's CLI prints.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::annotations::Annotations;
use crate::inject::{Injected, PodContext, inject};
use crate::owner::Owner;
use crate::yaml::to_yaml;
use crate::{Refusal, Settings};

/// The injected manifests and what happened to each object.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    /// Every document of the input, in order, as YAML documents separated
    /// by `---`.
    pub yaml: String,
    pub reports: Vec<Report>,
}

/// One object's fate, printed as `deployment "web" injected`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// As in the manifest: `Deployment`.
    pub kind: String,
    pub name: String,
    pub outcome: Outcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Injected(Injected),
    /// A workload left as it was, and why.
    Refused(Refusal),
    /// Not a kind with pods (a Service, a ConfigMap…): passed through.
    NotAWorkload,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.to_ascii_lowercase();
        write!(f, "{kind} \"{}\" ", self.name)?;
        match &self.outcome {
            Outcome::Injected(_) => f.write_str("injected"),
            Outcome::Refused(refusal) => write!(f, "skipped: {refusal}"),
            Outcome::NotAWorkload => f.write_str("skipped"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("document {document}: not YAML: {source}")]
    Yaml {
        document: usize,
        source: serde_norway::Error,
    },
    #[error("document {document}: not JSON: {source}")]
    Json {
        document: usize,
        source: serde_json::Error,
    },
}

/// Injects every workload in `input` (Pod, Deployment, StatefulSet,
/// DaemonSet, ReplicaSet, ReplicationController, Job, CronJob, and those
/// inside a `List`). Namespaces in the input lend their annotations to the
/// workloads in them. With `require_annotation`, only workloads annotated
/// `weft.io/inject: enabled` (or in such a namespace) are injected; without
/// it, every workload not annotated `disabled` is.
pub fn inject_documents(
    input: &str,
    settings: &Settings,
    require_annotation: bool,
) -> Result<Output, DocumentError> {
    let mut documents = parse(input)?;
    let mut namespaces = BTreeMap::new();
    for document in &documents {
        collect_namespaces(document, &mut namespaces);
    }
    let mut reports = Vec::new();
    let injector = Injector {
        settings,
        require_annotation,
        namespaces: &namespaces,
    };
    for document in &mut documents {
        injector.object(document, &mut reports);
    }
    let mut yaml = String::new();
    for (index, document) in documents.iter().enumerate() {
        if index > 0 {
            yaml.push_str("---\n");
        }
        yaml.push_str(&to_yaml(document));
    }
    Ok(Output { yaml, reports })
}

/// The documents of a YAML stream, or of JSON (objects one after another).
/// Empty documents are dropped.
fn parse(input: &str) -> Result<Vec<Value>, DocumentError> {
    let mut documents = Vec::new();
    if input.trim_start().starts_with(['{', '[']) {
        let stream = serde_json::Deserializer::from_str(input).into_iter::<Value>();
        for (index, document) in stream.enumerate() {
            let document = document.map_err(|source| DocumentError::Json {
                document: index + 1,
                source,
            })?;
            match document {
                Value::Array(items) => documents.extend(items),
                document => documents.push(document),
            }
        }
    } else {
        for (index, document) in serde_norway::Deserializer::from_str(input).enumerate() {
            let document = Value::deserialize(document).map_err(|source| DocumentError::Yaml {
                document: index + 1,
                source,
            })?;
            documents.push(document);
        }
    }
    documents.retain(|document| !document.is_null());
    Ok(documents)
}

fn kind(object: &Value) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or("")
}

fn metadata<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

fn list_items(object: &mut Value) -> Option<&mut Vec<Value>> {
    if !kind(object).ends_with("List") {
        return None;
    }
    object.get_mut("items")?.as_array_mut()
}

fn collect_namespaces(object: &Value, namespaces: &mut BTreeMap<String, Annotations>) {
    if kind(object) == "Namespace"
        && let Some(name) = metadata(object, "name")
    {
        let annotations = object
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .unwrap_or_default();
        namespaces.insert(name.to_string(), annotations);
    }
    if kind(object).ends_with("List")
        && let Some(items) = object.get("items").and_then(Value::as_array)
    {
        for item in items {
            collect_namespaces(item, namespaces);
        }
    }
}

struct Injector<'a> {
    settings: &'a Settings,
    require_annotation: bool,
    namespaces: &'a BTreeMap<String, Annotations>,
}

impl Injector<'_> {
    fn object(&self, object: &mut Value, reports: &mut Vec<Report>) {
        if let Some(items) = list_items(object) {
            for item in items {
                self.object(item, reports);
            }
            return;
        }
        let kind = kind(object).to_string();
        let name = metadata(object, "name")
            .or_else(|| metadata(object, "generateName"))
            .unwrap_or("")
            .to_string();
        let namespace = metadata(object, "namespace").map(String::from);
        let template_path: &[&str] = match kind.as_str() {
            "Pod" => &[],
            "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "ReplicationController"
            | "Job" => &["spec", "template"],
            "CronJob" => &["spec", "jobTemplate", "spec", "template"],
            _ => {
                reports.push(Report {
                    kind,
                    name,
                    outcome: Outcome::NotAWorkload,
                });
                return;
            }
        };
        let owner = (kind != "Pod").then(|| Owner::new(&kind, &name));
        let no_annotations = Annotations::new();
        let context = PodContext {
            owner: owner.as_ref(),
            namespace: namespace.as_deref(),
            namespace_annotations: namespace
                .as_ref()
                .and_then(|ns| self.namespaces.get(ns))
                .unwrap_or(&no_annotations),
            require_annotation: self.require_annotation,
        };
        let template = template_path
            .iter()
            .try_fold(object, |value, field| value.get_mut(*field));
        let outcome = match template {
            Some(template) => match inject(template, &context, self.settings) {
                Ok(injected) => Outcome::Injected(injected),
                Err(refusal) => Outcome::Refused(refusal),
            },
            None => Outcome::Refused(Refusal::NotAPod {
                reason: format!("no {}", template_path.join(".")),
            }),
        };
        reports.push(Report {
            kind,
            name,
            outcome,
        });
    }
}
