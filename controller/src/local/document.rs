//! One YAML document into Kubernetes objects. Files are split on `---`
//! lines before parsing, so a syntax error in one document cannot take the
//! others with it. A document that does not read says what it may have
//! held, so the source knows which objects to keep from its last read.

use std::fmt;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::DEFAULT_NAMESPACE;
use crate::linkerd::{TrafficKind, TrafficObject};
use crate::resources::WasmPlugin;

pub(super) struct Document<'a> {
    /// 1-based, counting empty documents too, as an editor would.
    pub number: usize,
    /// 1-based line of the document's first line of content.
    pub first_line: usize,
    pub text: &'a str,
}

#[derive(Clone, Debug)]
pub(super) enum Object {
    Namespace(Box<Namespace>),
    Pod(Box<Pod>),
    WasmPlugin(Box<WasmPlugin>),
    Service(Box<Service>),
    EndpointSlice(Box<EndpointSlice>),
    Traffic(Box<TrafficObject>),
}

/// The kinds the source reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Pod,
    WasmPlugin,
    Service,
    EndpointSlice,
    Traffic(TrafficKind),
}

/// An object by kind, namespace (empty for a Namespace) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

/// Why a document gave no objects, and what it may have held.
pub(super) struct Unreadable {
    pub message: String,
    pub held: Held,
}

/// What an unreadable document held, as far as can be told.
pub(super) enum Held {
    /// Nothing the source reads: another kind.
    Nothing,
    /// This object (its `metadata.generation`, if any), whose content did
    /// not read.
    Object {
        key: ObjectKey,
        generation: Option<i64>,
    },
    /// Cannot tell: not YAML, not an object, no kind or name, a List with
    /// a bad item.
    Unknown,
}

impl Unreadable {
    fn unknown(message: impl Into<String>) -> Self {
        Unreadable {
            message: message.into(),
            held: Held::Unknown,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::WasmPlugin => "WasmPlugin",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
            Kind::Traffic(kind) => return kind.fmt(f),
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Splits on document markers: `---` (optionally followed by content) and
/// `...` at the start of a line. Inside a block scalar such lines would be
/// indented, so a marker at column 0 always ends a document.
pub(super) fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut documents = Vec::new();
    let mut start = 0; // byte offset of the current document
    let mut first_line = 1;
    let mut offset = 0;
    let mut seen_marker = false;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_start = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let is_end = bare == "...";
        if is_start || is_end {
            // Text before a file's first `---` is a document only if it has
            // content (usually it is a comment header).
            if seen_marker || has_content(&text[start..offset]) {
                documents.push(Document {
                    number: documents.len() + 1,
                    first_line,
                    text: &text[start..offset],
                });
            }
            seen_marker = true;
            start = offset + if is_start { 3 } else { line.len() };
            first_line = index + 1 + usize::from(is_end);
        }
        offset += line.len();
    }
    if !seen_marker || has_content(&text[start..]) {
        documents.push(Document {
            number: documents.len() + 1,
            first_line,
            text: &text[start..],
        });
    }
    documents
}

fn has_content(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#')
    })
}

/// The objects in one document: none for an empty one, several for a List.
pub(super) fn parse_document(document: &Document<'_>) -> Result<Vec<Object>, Unreadable> {
    // Padding with the lines before it makes the parser's line numbers the
    // file's.
    let padded = "\n".repeat(document.first_line - 1) + document.text;
    let value: Value = serde_norway::from_str(&padded)
        .map_err(|e| Unreadable::unknown(format!("not YAML: {e}")))?;
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(_) => parse_object(value),
        _ => Err(Unreadable::unknown(
            "expected a Kubernetes object (a mapping with apiVersion and kind)",
        )),
    }
}

fn parse_object(value: Value) -> Result<Vec<Object>, Unreadable> {
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
        return Err(Unreadable::unknown("apiVersion and kind are required"));
    };
    if TrafficKind::of(&api_version, &kind).is_some() {
        // Only the envelope here: the index reads the spec, and keeps the
        // last accepted version when it refuses a new one.
        return match TrafficObject::from_value(value) {
            Some(Ok(object)) => Ok(vec![Object::Traffic(Box::new(object))]),
            Some(Err(message)) => Err(Unreadable::unknown(message)),
            None => Err(Unreadable::unknown("expected a Kubernetes object")),
        };
    }
    let object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => Object::Namespace(typed(value, Kind::Namespace, lenient)?),
        ("v1", "Pod") => Object::Pod(typed(value, Kind::Pod, lenient)?),
        ("weft.io/v1alpha1", "WasmPlugin") => {
            Object::WasmPlugin(typed(value, Kind::WasmPlugin, strict)?)
        }
        ("v1", "Service") => Object::Service(typed(value, Kind::Service, lenient)?),
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            Object::EndpointSlice(typed(value, Kind::EndpointSlice, lenient)?)
        }
        ("v1", "List") => return parse_list(value),
        _ => {
            return Err(Unreadable {
                message: format!(
                    "{api_version} {kind} is not read here: the local source reads v1 \
                     Namespace, v1 Pod, weft.io/v1alpha1 WasmPlugin, v1 Service, \
                     discovery.k8s.io/v1 EndpointSlice, v1 List, linkerd.io/v1alpha2 \
                     ServiceProfile, split.smi-spec.io/v1alpha1|v1alpha2 TrafficSplit, \
                     gateway.networking.k8s.io/v1 HTTPRoute and GRPCRoute, and \
                     policy.linkerd.io/v1beta1..3 HTTPRoute"
                ),
                held: Held::Nothing,
            });
        }
    };
    Ok(vec![object])
}

/// Reads `value` as `kind`; when it does not read, names the object it
/// was, if its metadata says.
fn typed<T>(
    value: Value,
    kind: Kind,
    read: fn(Value) -> Result<Box<T>, String>,
) -> Result<Box<T>, Unreadable> {
    let metadata = value.get("metadata").cloned().unwrap_or(Value::Null);
    read(value).map_err(|message| {
        let text = |field: &str| metadata.get(field).and_then(Value::as_str);
        let held = match text("name") {
            Some(name) if !name.is_empty() => {
                let namespace = match kind {
                    Kind::Namespace => "",
                    Kind::Pod
                    | Kind::WasmPlugin
                    | Kind::Service
                    | Kind::EndpointSlice
                    | Kind::Traffic(_) => text("namespace").unwrap_or(DEFAULT_NAMESPACE),
                };
                Held::Object {
                    key: ObjectKey {
                        kind,
                        namespace: namespace.to_string(),
                        name: name.to_string(),
                    },
                    generation: metadata.get("generation").and_then(Value::as_i64),
                }
            }
            _ => Held::Unknown,
        };
        Unreadable { message, held }
    })
}

/// A List is one document: an item that does not read makes the whole of
/// it unknown.
fn parse_list(mut value: Value) -> Result<Vec<Object>, Unreadable> {
    let items = match value.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(Unreadable::unknown("items: expected a sequence")),
    };
    let mut objects = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        if item.get("kind").and_then(Value::as_str) == Some("List") {
            return Err(Unreadable::unknown(format!(
                "items[{index}]: a List inside a List is not supported"
            )));
        }
        let parsed = match item {
            Value::Object(_) => parse_object(item),
            _ => Err(Unreadable::unknown("expected a Kubernetes object")),
        };
        let parsed =
            parsed.map_err(|e| Unreadable::unknown(format!("items[{index}]: {}", e.message)));
        objects.extend(parsed?);
    }
    Ok(objects)
}

/// Kubernetes' own kinds: fields from newer Kubernetes versions than the
/// types know are ignored, as the API server's clients do.
fn lenient<T: DeserializeOwned>(value: Value) -> Result<Box<T>, String> {
    serde_path_to_error::deserialize(value)
        .map(Box::new)
        .map_err(|e| located(e.path().to_string(), e.inner()))
}

/// Weft's own kind: a misspelt field is an error, not a silent default.
fn strict<T: DeserializeOwned>(value: Value) -> Result<Box<T>, String> {
    let mut unknown = Vec::new();
    let mut note = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let parsed: Result<T, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut note));
    let parsed = parsed.map_err(|e| located(e.path().to_string(), e.inner()))?;
    // The generated root type checks neither, so it skips them.
    unknown.retain(|path| path != "apiVersion" && path != "kind");
    if !unknown.is_empty() {
        return Err(format!("unknown field {}", unknown.join(", ")));
    }
    Ok(Box::new(parsed))
}

fn located(path: String, error: &serde_json::Error) -> String {
    if path == "." {
        error.to_string()
    } else {
        format!("{path}: {error}")
    }
}
