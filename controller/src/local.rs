//! The local directory source, the embedded default when there is no
//! cluster: a directory of YAML (or JSON) files holding the same objects a
//! cluster would (v1 Namespace, v1 Pod, weft.io/v1alpha1 WasmPlugin, and v1
//! List of them, as `kubectl get -o yaml` prints), read into index events.
//!
//! A bad document is reported with its file, number and line, and the rest
//! still load. Local conveniences: a Pod or WasmPlugin without a namespace is
//! in `default`; a namespace that objects use but no document declares exists
//! without annotations; a WasmPlugin `url` of `./x` or `../x` is resolved
//! against its file's directory.

mod document;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use watch::DirectoryWatch;

use crate::index::{Event, Objects};
use crate::resources::WasmPlugin;
use document::{Document, Object, parse_document, split_documents};

/// The namespace of objects that name none, as with kubectl.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Everything one read of the directory found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Directory {
    pub namespaces: Vec<Namespace>,
    pub pods: Vec<Pod>,
    pub plugins: Vec<WasmPlugin>,
    /// Documents (or files) that could not be read; the rest still were.
    pub errors: Vec<DocumentError>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read directory {}: {source}", path.display())]
pub struct ReadDirError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// One file or document that could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct DocumentError {
    pub path: PathBuf,
    /// 1-based; `None` when the whole file failed.
    pub document: Option<usize>,
    /// The document's first line, 1-based.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(document) = self.document {
            write!(f, ": document {document}")?;
        }
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Directory {
    /// Replaces everything the index holds with this directory's objects.
    pub fn events(self) -> Vec<Event> {
        vec![
            Event::Reset(Objects::Namespaces(self.namespaces)),
            Event::Reset(Objects::WasmPlugins(self.plugins)),
            Event::Reset(Objects::Pods(self.pods)),
        ]
    }
}

/// Reads every `*.yaml`, `*.yml` and `*.json` file under `dir` (recursively,
/// in path order, skipping hidden files). Only an unreadable `dir` is an
/// error; anything wrong inside it lands in `Directory::errors`.
pub fn read_dir(dir: &Path) -> Result<Directory, ReadDirError> {
    let files = resource_files(dir).map_err(|source| ReadDirError {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut reader = Reader::default();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => reader.read_file(&path, &text),
            Err(error) => reader.directory.errors.push(DocumentError {
                path,
                document: None,
                line: None,
                message: error.to_string(),
            }),
        }
    }
    Ok(reader.finish())
}

/// The files a read looks at, sorted; the watcher stats the same list.
pub(crate) fn resource_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if hidden {
                continue;
            }
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

#[derive(Default)]
struct Reader {
    directory: Directory,
    /// Where each object was first defined, to report duplicates.
    defined: BTreeMap<(&'static str, String, String), String>,
}

impl Reader {
    fn read_file(&mut self, path: &Path, text: &str) {
        let base = path.parent().unwrap_or(Path::new("."));
        for document in split_documents(text) {
            let error = |message: String| DocumentError {
                path: path.to_path_buf(),
                document: Some(document.number),
                line: Some(document.first_line),
                message,
            };
            match parse_document(&document) {
                Ok(objects) => {
                    for object in objects {
                        if let Err(message) = self.add(object, base, path, &document) {
                            self.directory.errors.push(error(message));
                        }
                    }
                }
                Err(message) => self.directory.errors.push(error(message)),
            }
        }
    }

    fn add(
        &mut self,
        object: Object,
        base: &Path,
        path: &Path,
        document: &Document<'_>,
    ) -> Result<(), String> {
        let here = format!("{} document {}", path.display(), document.number);
        match object {
            Object::Namespace(namespace) => {
                let name = required_name(&namespace.metadata)?;
                self.define("Namespace", String::new(), name, here)?;
                self.directory.namespaces.push(*namespace);
            }
            Object::Pod(mut pod) => {
                let name = required_name(&pod.metadata)?;
                let namespace = default_namespace(&mut pod.metadata);
                self.define("Pod", namespace, name, here)?;
                self.directory.pods.push(*pod);
            }
            Object::WasmPlugin(mut plugin) => {
                let name = required_name(&plugin.metadata)?;
                let namespace = default_namespace(&mut plugin.metadata);
                self.define("WasmPlugin", namespace, name, here)?;
                if plugin.spec.url.starts_with("./") || plugin.spec.url.starts_with("../") {
                    let path = normalize(&base.join(&plugin.spec.url));
                    plugin.spec.url = format!("file://{}", path.display());
                }
                self.directory.plugins.push(*plugin);
            }
        }
        Ok(())
    }

    fn define(
        &mut self,
        kind: &'static str,
        namespace: String,
        name: String,
        here: String,
    ) -> Result<(), String> {
        let shown = if namespace.is_empty() {
            name.clone()
        } else {
            format!("{namespace}/{name}")
        };
        match self.defined.get(&(kind, namespace.clone(), name.clone())) {
            Some(first) => Err(format!("{kind} {shown} is already defined in {first}")),
            None => {
                self.defined.insert((kind, namespace, name), here);
                Ok(())
            }
        }
    }

    fn finish(mut self) -> Directory {
        let declared: BTreeSet<String> = self
            .directory
            .namespaces
            .iter()
            .filter_map(|ns| ns.metadata.name.clone())
            .collect();
        let used: BTreeSet<String> = self
            .directory
            .pods
            .iter()
            .map(|pod| &pod.metadata)
            .chain(self.directory.plugins.iter().map(|p| &p.metadata))
            .filter_map(|metadata| metadata.namespace.clone())
            .collect();
        for name in used.difference(&declared) {
            self.directory.namespaces.push(Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                ..Default::default()
            });
        }
        self.directory
    }
}

fn required_name(metadata: &ObjectMeta) -> Result<String, String> {
    match &metadata.name {
        Some(name) if !name.is_empty() => Ok(name.clone()),
        _ => Err("metadata.name is missing".to_string()),
    }
}

fn default_namespace(metadata: &mut ObjectMeta) -> String {
    metadata
        .namespace
        .get_or_insert_with(|| DEFAULT_NAMESPACE.to_string())
        .clone()
}

/// `a/b/../c` → `a/c`, without touching the filesystem: the module may not
/// be built yet.
fn normalize(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut normal = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

#[cfg(test)]
mod tests;
