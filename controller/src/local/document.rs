//! One YAML document into Kubernetes objects. Files are split on `---`
//! lines before parsing, so a syntax error in one document cannot take the
//! others with it.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::resources::WasmPlugin;

pub(super) struct Document<'a> {
    /// 1-based, counting empty documents too, as an editor would.
    pub number: usize,
    /// 1-based line of the document's first line of content.
    pub first_line: usize,
    pub text: &'a str,
}

pub(super) enum Object {
    Namespace(Box<Namespace>),
    Pod(Box<Pod>),
    WasmPlugin(Box<WasmPlugin>),
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
pub(super) fn parse_document(document: &Document<'_>) -> Result<Vec<Object>, String> {
    // Padding with the lines before it makes the parser's line numbers the
    // file's.
    let padded = "\n".repeat(document.first_line - 1) + document.text;
    let value: Value = serde_norway::from_str(&padded).map_err(|e| format!("not YAML: {e}"))?;
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(_) => parse_object(value),
        _ => Err("expected a Kubernetes object (a mapping with apiVersion and kind)".to_string()),
    }
}

fn parse_object(value: Value) -> Result<Vec<Object>, String> {
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
        return Err("apiVersion and kind are required".to_string());
    };
    let object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => Object::Namespace(lenient(value)?),
        ("v1", "Pod") => Object::Pod(lenient(value)?),
        ("weft.io/v1alpha1", "WasmPlugin") => Object::WasmPlugin(strict(value)?),
        ("v1", "List") => return parse_list(value),
        _ => {
            return Err(format!(
                "{api_version} {kind} is not read here: the local source reads v1 Namespace, \
                 v1 Pod, weft.io/v1alpha1 WasmPlugin and v1 List"
            ));
        }
    };
    Ok(vec![object])
}

fn parse_list(mut value: Value) -> Result<Vec<Object>, String> {
    let items = match value.get_mut("items").map(Value::take) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err("items: expected a sequence".to_string()),
    };
    let mut objects = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        if item.get("kind").and_then(Value::as_str) == Some("List") {
            return Err(format!(
                "items[{index}]: a List inside a List is not supported"
            ));
        }
        let parsed = match item {
            Value::Object(_) => parse_object(item),
            _ => Err("expected a Kubernetes object".to_string()),
        };
        objects.extend(parsed.map_err(|e| format!("items[{index}]: {e}"))?);
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
