use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use super::document::split_documents;
use super::*;
use crate::index::{Index, WorkloadRef};

mod keeping;

/// A directory under the system's temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "weft-controller-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const PLUGIN: &str = "apiVersion: weft.io/v1alpha1
kind: WasmPlugin
metadata:
  name: metrics
  namespace: weft-system
spec:
  url: ./modules/metrics.wasm
";

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations:
    weft.io/plugins: metrics
spec:
  containers:
  - name: web
    image: web:1
";

fn messages(directory: &Directory) -> Vec<String> {
    directory.errors.iter().map(ToString::to_string).collect()
}

#[test]
fn documents_split_on_markers_with_their_lines() {
    let text = "# header\n---\na: 1\n---\n---\nb: 2\n...\nc: 3\n--- {d: 4}\n";
    let documents = split_documents(text);
    let summary: Vec<(usize, usize, &str)> = documents
        .iter()
        .map(|d| (d.number, d.first_line, d.text))
        .collect();
    assert_eq!(
        summary,
        [
            (1, 2, "\na: 1\n"),
            (2, 4, "\n"),
            (3, 5, "\nb: 2\n"),
            (4, 8, "c: 3\n"),
            (5, 9, " {d: 4}\n"),
        ]
    );
    assert_eq!(split_documents("a: 1\n").len(), 1);
    assert_eq!(split_documents("").len(), 1);
}

#[test]
fn a_directory_becomes_index_events() {
    let dir = TempDir::new();
    dir.write("plugins.yaml", PLUGIN);
    dir.write("apps/web.yml", POD);
    dir.write("notes.txt", "not read");
    dir.write(".web.yaml.swp", "not: [read");

    let directory = read_dir(&dir.0).unwrap();
    assert_eq!(messages(&directory), Vec::<String>::new());
    assert_eq!(directory.pods.len(), 1);
    assert_eq!(directory.plugins.len(), 1);
    // Both namespaces exist, though no document declares them.
    let mut namespaces: Vec<_> = directory
        .namespaces
        .iter()
        .map(|ns| ns.metadata.name.clone().unwrap())
        .collect();
    namespaces.sort();
    assert_eq!(namespaces, ["default", "weft-system"]);
    let url = &directory.plugins[0].spec.url;
    assert_eq!(
        url,
        &format!("file://{}/modules/metrics.wasm", dir.0.display())
    );

    let mut index = Index::default();
    for event in directory.events() {
        index.apply(event);
    }
    let chain = index
        .plugin_set(&WorkloadRef::new("default", "web"))
        .unwrap();
    assert_eq!(chain.problems, []);
    let names: Vec<_> = chain.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["metrics"]);
}

#[test]
fn a_bad_document_is_reported_and_the_rest_still_load() {
    let dir = TempDir::new();
    let text = format!(
        "{POD}---\nkind: [unclosed\n---\n{}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
        PLUGIN.replace("metrics", "retry")
    );
    let path = dir.write("mesh.yaml", &text);

    let directory = read_dir(&dir.0).unwrap();
    assert_eq!(directory.pods.len(), 1);
    assert_eq!(directory.plugins.len(), 1);
    let errors = messages(&directory);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with(&format!(
            "{}: document 2 (line 11): not YAML:",
            path.display()
        )),
        "{}",
        errors[0]
    );
    assert!(
        errors[0].contains("line 12"),
        "the parser's line is the file's: {}",
        errors[0]
    );
    assert!(
        errors[1].contains("document 4 (line 21): apps/v1 Deployment is not read here"),
        "{}",
        errors[1]
    );
}

#[test]
fn wasm_plugins_refuse_unknown_fields_and_name_the_path() {
    let dir = TempDir::new();
    dir.write(
        "typo.yaml",
        &PLUGIN.replace("  url:", "  pluginconfig: {}\n  url:"),
    );
    dir.write(
        "type.yaml",
        &PLUGIN
            .replace("metrics", "retry")
            .replace("  url:", "  priority: high\n  url:"),
    );
    // A field the Pod type does not know is tolerated (newer Kubernetes).
    dir.write(
        "pod.yaml",
        &POD.replace("spec:\n", "spec:\n  fieldFromTheFuture: true\n"),
    );

    let directory = read_dir(&dir.0).unwrap();
    let errors = messages(&directory);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].contains("type.yaml: document 1 (line 1): spec.priority: invalid type"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("typo.yaml: document 1 (line 1): unknown field spec.pluginconfig"),
        "{}",
        errors[1]
    );
    assert_eq!(directory.pods.len(), 1);
}

#[test]
fn lists_missing_names_and_duplicates() {
    let dir = TempDir::new();
    let list = "apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata:
    name: shop
    annotations:
      weft.io/plugins: metrics
- apiVersion: v1
  kind: Pod
  metadata:
    namespace: shop
  spec:
    containers: []
";
    dir.write("a.yaml", list);
    dir.write(
        "b.yaml",
        &format!("{POD}---\n{POD}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"),
    );

    let directory = read_dir(&dir.0).unwrap();
    let errors = messages(&directory);
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("a.yaml: document 1 (line 1): metadata.name is missing"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("b.yaml: document 2 (line 11): Pod default/web is already defined in"),
        "{}",
        errors[1]
    );
    assert!(errors[1].ends_with("b.yaml document 1"), "{}", errors[1]);
    assert!(
        errors[2].contains("document 3 (line 22): Namespace shop is already defined in"),
        "{}",
        errors[2]
    );
    assert_eq!(directory.pods.len(), 1);
    assert_eq!(
        directory.namespaces.len(),
        2,
        "shop, and default synthesized"
    );
}

#[test]
fn non_objects_and_missing_kinds_are_errors() {
    let dir = TempDir::new();
    dir.write(
        "m.yaml",
        "- a\n- b\n---\nmetadata: {}\n---\n# only a comment\n",
    );
    let errors = messages(&read_dir(&dir.0).unwrap());
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].contains("document 1 (line 1): expected a Kubernetes object"));
    assert!(errors[1].contains("document 2 (line 3): apiVersion and kind are required"));
}

#[test]
fn an_unreadable_directory_is_an_error() {
    let err = read_dir(Path::new("/nonexistent/weft")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read directory /nonexistent/weft:"),
        "{err}"
    );
}

#[test]
fn a_watch_notices_added_changed_and_removed_files() {
    let dir = TempDir::new();
    let mut watch = DirectoryWatch::new(&dir.0);
    assert!(watch.changed(), "the first poll always reads");
    assert!(!watch.changed());

    let pod = dir.write("pod.yaml", POD);
    assert!(watch.changed(), "added");
    assert!(!watch.changed());

    fs::write(&pod, POD.replace("web", "api")).unwrap();
    assert!(watch.changed(), "rewritten");

    // Same size, new modification time.
    let file = fs::File::options().write(true).open(&pod).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    assert!(watch.changed(), "touched");

    dir.write("ignored.txt", "x");
    assert!(
        !watch.changed(),
        "files the source does not read are not changes"
    );

    dir.write("nested/plugin.yaml", PLUGIN);
    assert!(watch.changed(), "added in a subdirectory");

    fs::remove_file(&pod).unwrap();
    assert!(watch.changed(), "removed");

    fs::remove_dir_all(&dir.0).unwrap();
    assert!(watch.changed(), "the directory vanished");
    assert!(!watch.changed());
}
