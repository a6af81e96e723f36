//! The local directory source, the embedded default when there is no
//! cluster: a directory of YAML (or JSON) files holding the same objects a
//! cluster would (v1 Namespace, v1 Pod, weft.io/v1alpha1 WasmPlugin, v1
//! Service, discovery.k8s.io/v1 EndpointSlice, Linkerd's and the Gateway
//! API's traffic resources (`crate::linkerd`), and v1 List of them, as
//! `kubectl get -o yaml` prints), read into index events.
//!
//! A bad document is reported with its file, number and line, and the rest
//! still load; `DirectorySource` keeps, across reads, what a file that does
//! not read (or briefly vanishes) held before. Local conveniences: a
//! namespaced object without a namespace is in `default`; a namespace that objects use but no document declares exists
//! without annotations; a WasmPlugin `url` of `./x` or `../x` is resolved
//! against its file's directory.

mod document;
mod source;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use document::{Kind, ObjectKey};
pub use source::{DirectorySource, GONE_AFTER_READS, KeptBecause, KeptObjects};
pub use watch::DirectoryWatch;

use crate::index::{Event, Objects, PluginRef, Resource, UnreadablePlugin};
use crate::linkerd::{TrafficKind, TrafficObject};
use crate::resources::WasmPlugin;
use document::{Document, Held, Object, Unreadable, parse_document, split_documents};

/// The namespace of objects that name none, as with kubectl.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Everything one read of the directory found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Directory {
    pub namespaces: Vec<Namespace>,
    pub pods: Vec<Pod>,
    pub plugins: Vec<WasmPlugin>,
    pub services: Vec<Service>,
    pub endpoint_slices: Vec<EndpointSlice>,
    /// ServiceProfiles, TrafficSplits, HTTPRoutes and GRPCRoutes, their
    /// specs not yet read (the index reads them).
    pub traffic: Vec<TrafficObject>,
    /// Documents (or files) that could not be read; the rest still were.
    pub errors: Vec<DocumentError>,
    /// WasmPlugins whose documents name them but do not read: the index
    /// refuses that version and keeps serving the last good one.
    pub unreadable_plugins: Vec<UnreadablePlugin>,
    /// Objects kept from earlier reads, and why (already in the lists).
    pub kept: Vec<KeptObjects>,
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
    /// Replaces everything the index holds with this directory's objects;
    /// a WasmPlugin that does not read counts as a version it refuses.
    pub fn events(self) -> Vec<Event> {
        let mut events = vec![
            Event::Reset(Objects::Namespaces(self.namespaces)),
            Event::Reset(Objects::WasmPlugins(self.plugins)),
        ];
        events.extend(
            self.unreadable_plugins
                .into_iter()
                .map(|plugin| Event::Applied(Resource::UnreadableWasmPlugin(plugin))),
        );
        events.push(Event::Reset(Objects::Services(self.services)));
        events.push(Event::Reset(Objects::EndpointSlices(self.endpoint_slices)));
        for kind in TrafficKind::ALL {
            let all = self.traffic.iter().filter(|o| o.kind == kind).cloned();
            events.push(Event::Reset(Objects::Traffic(kind, all.collect())));
        }
        events.push(Event::Reset(Objects::Pods(self.pods)));
        events
    }
}

/// Reads every `*.yaml`, `*.yml` and `*.json` file under `dir` (recursively,
/// in path order, skipping hidden files) once, with no earlier read to keep
/// objects from. Only an unreadable `dir` is an error; anything wrong
/// inside it lands in `Directory::errors`.
pub fn read_dir(dir: &Path) -> Result<Directory, ReadDirError> {
    DirectorySource::new(dir).read()
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

/// One read of the files, before what earlier reads kept is added.
#[derive(Default)]
struct Reader {
    /// Objects read, with their file, in path order.
    objects: Vec<(ObjectKey, PathBuf, Object)>,
    errors: Vec<DocumentError>,
    /// Where each object was first defined, to report duplicates.
    defined: BTreeMap<ObjectKey, String>,
    /// Every file listed, and those among them with no content.
    files: BTreeSet<PathBuf>,
    empty: BTreeSet<PathBuf>,
    /// Files that could not be read whole: any object they held before may
    /// still be meant.
    unknown: BTreeSet<PathBuf>,
    /// Objects named by documents that did not read.
    unreadable: BTreeSet<ObjectKey>,
    unreadable_plugins: Vec<UnreadablePlugin>,
}

impl Reader {
    fn read(dir: &Path) -> Result<Self, ReadDirError> {
        let files = resource_files(dir).map_err(|source| ReadDirError {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut reader = Reader::default();
        for path in files {
            reader.files.insert(path.clone());
            match std::fs::read_to_string(&path) {
                Ok(text) if text.trim().is_empty() => {
                    reader.empty.insert(path);
                }
                Ok(text) => reader.read_file(&path, &text),
                Err(error) => {
                    reader.errors.push(DocumentError {
                        path: path.clone(),
                        document: None,
                        line: None,
                        message: error.to_string(),
                    });
                    reader.unknown.insert(path);
                }
            }
        }
        Ok(reader)
    }

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
                        if let Err(unreadable) = self.add(object, base, path, &document) {
                            self.refuse(path, error(unreadable.message.clone()), unreadable);
                        }
                    }
                }
                Err(unreadable) => {
                    self.refuse(path, error(unreadable.message.clone()), unreadable);
                }
            }
        }
    }

    fn refuse(&mut self, path: &Path, error: DocumentError, unreadable: Unreadable) {
        match unreadable.held {
            Held::Nothing => {}
            Held::Unknown => {
                self.unknown.insert(path.to_path_buf());
            }
            Held::Object { key, generation } => {
                if key.kind == Kind::WasmPlugin {
                    self.unreadable_plugins.push(UnreadablePlugin {
                        plugin: PluginRef::new(&key.namespace, &key.name),
                        generation,
                        message: error.to_string(),
                    });
                }
                self.unreadable.insert(key);
            }
        }
        self.errors.push(error);
    }

    fn add(
        &mut self,
        object: Object,
        base: &Path,
        path: &Path,
        document: &Document<'_>,
    ) -> Result<(), Unreadable> {
        let here = format!("{} document {}", path.display(), document.number);
        let (key, object) = match object {
            Object::Namespace(namespace) => {
                let name = required_name(&namespace.metadata)?;
                (
                    key(Kind::Namespace, String::new(), name),
                    Object::Namespace(namespace),
                )
            }
            Object::Pod(mut pod) => {
                let name = required_name(&pod.metadata)?;
                let namespace = default_namespace(&mut pod.metadata);
                (key(Kind::Pod, namespace, name), Object::Pod(pod))
            }
            Object::Service(mut service) => {
                let name = required_name(&service.metadata)?;
                let namespace = default_namespace(&mut service.metadata);
                (
                    key(Kind::Service, namespace, name),
                    Object::Service(service),
                )
            }
            Object::EndpointSlice(mut slice) => {
                let name = required_name(&slice.metadata)?;
                let namespace = default_namespace(&mut slice.metadata);
                (
                    key(Kind::EndpointSlice, namespace, name),
                    Object::EndpointSlice(slice),
                )
            }
            Object::Traffic(mut object) => {
                let name = required_name(&object.metadata)?;
                let namespace = default_namespace(&mut object.metadata);
                (
                    key(Kind::Traffic(object.kind), namespace, name),
                    Object::Traffic(object),
                )
            }
            Object::WasmPlugin(mut plugin) => {
                let name = required_name(&plugin.metadata)?;
                let namespace = default_namespace(&mut plugin.metadata);
                if plugin.spec.url.starts_with("./") || plugin.spec.url.starts_with("../") {
                    let path = normalize(&base.join(&plugin.spec.url));
                    plugin.spec.url = format!("file://{}", path.display());
                }
                (
                    key(Kind::WasmPlugin, namespace, name),
                    Object::WasmPlugin(plugin),
                )
            }
        };
        if let Some(first) = self.defined.get(&key) {
            // The first definition stands: nothing is lost.
            return Err(Unreadable {
                message: format!("{key} is already defined in {first}"),
                held: Held::Nothing,
            });
        }
        self.defined.insert(key.clone(), here);
        self.objects.push((key, path.to_path_buf(), object));
        Ok(())
    }

    /// The directory as read, with `kept` objects from earlier reads.
    fn finish(self, kept: Vec<KeptObjects>, kept_objects: Vec<Object>) -> Directory {
        let mut directory = Directory {
            errors: self.errors,
            unreadable_plugins: self.unreadable_plugins,
            kept,
            ..Directory::default()
        };
        let objects = self.objects.into_iter().map(|(_, _, object)| object);
        for object in objects.chain(kept_objects) {
            match object {
                Object::Namespace(namespace) => directory.namespaces.push(*namespace),
                Object::Pod(pod) => directory.pods.push(*pod),
                Object::WasmPlugin(plugin) => directory.plugins.push(*plugin),
                Object::Service(service) => directory.services.push(*service),
                Object::EndpointSlice(slice) => directory.endpoint_slices.push(*slice),
                Object::Traffic(object) => directory.traffic.push(*object),
            }
        }
        let declared: BTreeSet<String> = directory
            .namespaces
            .iter()
            .filter_map(|ns| ns.metadata.name.clone())
            .collect();
        let used: BTreeSet<String> = directory
            .pods
            .iter()
            .map(|pod| &pod.metadata)
            .chain(directory.plugins.iter().map(|p| &p.metadata))
            .chain(directory.services.iter().map(|s| &s.metadata))
            .chain(directory.endpoint_slices.iter().map(|s| &s.metadata))
            .chain(directory.traffic.iter().map(|o| &o.metadata))
            .filter_map(|metadata| metadata.namespace.clone())
            .collect();
        for name in used.difference(&declared) {
            directory.namespaces.push(Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                ..Default::default()
            });
        }
        directory
    }
}

fn key(kind: Kind, namespace: String, name: String) -> ObjectKey {
    ObjectKey {
        kind,
        namespace,
        name,
    }
}

/// An object without a name could have been any: what its file held
/// before may still be meant.
fn required_name(metadata: &ObjectMeta) -> Result<String, Unreadable> {
    match &metadata.name {
        Some(name) if !name.is_empty() => Ok(name.clone()),
        _ => Err(Unreadable {
            message: "metadata.name is missing".to_string(),
            held: Held::Unknown,
        }),
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
