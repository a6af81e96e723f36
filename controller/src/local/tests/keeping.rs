//! What the source keeps across reads: a WasmPlugin that does not read
//! keeps its last version (and the index refuses the new one), a file that
//! does not read keeps what it held, and a file that vanishes keeps its
//! objects until it stays gone; Services and EndpointSlices as any other.

use std::fs;

use super::*;
use crate::index::{Authority, Index, PluginRef, WorkloadProblem, WorkloadRef};
use crate::resources::PluginPhase;
use crate::validate::RejectReason;

const AUTHZ: &str = "apiVersion: weft.io/v1alpha1
kind: WasmPlugin
metadata:
  name: authz
  namespace: default
spec:
  url: ./authz.wasm
  phase: AUTHZ
";

fn web() -> WorkloadRef {
    WorkloadRef::new("default", "web")
}

fn authz() -> PluginRef {
    PluginRef::new("default", "authz")
}

/// Pod `default/web` running `authz`, its WasmPlugin in `plugins.yaml`.
fn mesh(plugins: &str) -> TempDir {
    let dir = TempDir::new();
    dir.write(
        "pod.yaml",
        &POD.replace("weft.io/plugins: metrics", "weft.io/plugins: authz"),
    );
    dir.write("plugins.yaml", plugins);
    dir
}

fn apply(index: &mut Index, directory: Directory) {
    for event in directory.events() {
        index.apply(event);
    }
}

fn plugin_names(directory: &Directory) -> Vec<String> {
    directory
        .plugins
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect()
}

#[test]
fn a_wasm_plugin_that_does_not_read_keeps_its_last_version_and_is_refused() {
    let dir = mesh(AUTHZ);
    let mut source = DirectorySource::new(&dir.0);
    let mut index = Index::default();
    apply(&mut index, source.read().unwrap());
    let before = index.plugin_set(&web()).unwrap();
    assert_eq!(before.plugins.len(), 1);

    dir.write("plugins.yaml", &AUTHZ.replace("AUTHZ", "AUTHZZ"));
    let directory = source.read().unwrap();
    assert_eq!(plugin_names(&directory), ["authz"], "kept as last read");
    assert_eq!(directory.plugins[0].spec.phase, Some(PluginPhase::Authz));
    let [unreadable] = &directory.unreadable_plugins[..] else {
        panic!("{:?}", directory.unreadable_plugins);
    };
    assert_eq!(unreadable.plugin, authz());
    assert!(
        unreadable
            .message
            .contains("plugins.yaml: document 1 (line 1): spec.phase: unknown variant `AUTHZZ`"),
        "{}",
        unreadable.message
    );

    apply(&mut index, directory);
    let chain = index.plugin_set(&web()).unwrap();
    assert_eq!(chain.plugins, before.plugins, "authz still runs");
    assert!(
        matches!(&chain.problems[..], [WorkloadProblem::RejectedChange { plugin, .. }] if plugin == &authz()),
        "{:?}",
        chain.problems
    );
    let rejection = index.plugin(&authz()).unwrap().rejection.clone().unwrap();
    assert_eq!(rejection.reason, RejectReason::InvalidSpec);
    assert!(rejection.message.contains("spec.phase"), "{rejection}");

    // Read once with nothing to keep from, it is refused and runs nowhere.
    let mut fresh = Index::default();
    apply(&mut fresh, read_dir(&dir.0).unwrap());
    let chain = fresh.plugin_set(&web()).unwrap();
    assert_eq!(chain.plugins, []);
    assert!(matches!(
        &chain.problems[..],
        [WorkloadProblem::RejectedPlugin { .. }]
    ));

    // Fixed, it reads and is accepted again.
    dir.write("plugins.yaml", &AUTHZ.replace("AUTHZ", "AUTHN"));
    apply(&mut index, source.read().unwrap());
    let chain = index.plugin_set(&web()).unwrap();
    assert_eq!(chain.problems, []);
    assert_eq!(chain.plugins[0].phase, PluginPhase::Authn);
}

#[test]
fn a_file_that_does_not_read_keeps_what_it_held() {
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
    let dir = mesh(&format!("{namespace}---\n{AUTHZ}"));
    let mut source = DirectorySource::new(&dir.0);
    let mut index = Index::default();
    apply(&mut index, source.read().unwrap());
    let before = index.plugin_set(&web()).unwrap();

    // The second document is no longer YAML: nothing says what it holds.
    let path = dir.write(
        "plugins.yaml",
        &format!("{namespace}---\n{AUTHZ}  bad: [\n"),
    );
    let directory = source.read().unwrap();
    assert!(
        messages(&directory)[0].contains("not YAML"),
        "{:?}",
        directory.errors
    );
    assert_eq!(plugin_names(&directory), ["authz"]);
    assert_eq!(
        directory.kept,
        [KeptObjects {
            path: path.clone(),
            because: KeptBecause::Unreadable,
            objects: vec![ObjectKey {
                kind: Kind::WasmPlugin,
                namespace: "default".into(),
                name: "authz".into(),
            }],
        }]
    );
    apply(&mut index, directory);
    assert_eq!(index.plugin_set(&web()).unwrap(), before);

    // Not even text: the whole file is kept.
    fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    let directory = source.read().unwrap();
    assert_eq!(plugin_names(&directory), ["authz"]);
    assert!(
        directory
            .namespaces
            .iter()
            .any(|ns| ns.metadata.name.as_deref() == Some("shop"))
    );

    // Read whole again, what it no longer holds is gone.
    dir.write("plugins.yaml", namespace);
    let directory = source.read().unwrap();
    assert_eq!(plugin_names(&directory), Vec::<String>::new());
    assert_eq!(directory.kept, []);
}

#[test]
fn a_file_that_vanishes_keeps_its_objects_until_it_stays_gone() {
    let dir = mesh(AUTHZ);
    let mut source = DirectorySource::new(&dir.0);
    source.read().unwrap();
    assert!(!source.settling());

    // Gone for one read, then back (a delete-and-write save).
    let path = dir.0.join("plugins.yaml");
    fs::remove_file(&path).unwrap();
    let directory = source.read().unwrap();
    assert_eq!(plugin_names(&directory), ["authz"]);
    assert_eq!(directory.kept[0].because, KeptBecause::Missing { reads: 1 });
    assert!(source.settling(), "read again soon");
    dir.write("plugins.yaml", AUTHZ);
    let directory = source.read().unwrap();
    assert_eq!(plugin_names(&directory), ["authz"]);
    assert_eq!(directory.kept, []);
    assert!(!source.settling());

    // Emptied, then deleted on purpose: gone once it stays so.
    fs::write(&path, "").unwrap();
    for reads in 1..GONE_AFTER_READS {
        let directory = source.read().unwrap();
        assert_eq!(plugin_names(&directory), ["authz"], "read {reads}");
        assert_eq!(directory.kept[0].because, KeptBecause::Missing { reads });
        let _ = fs::remove_file(&path);
    }
    let directory = source.read().unwrap();
    assert_eq!(plugin_names(&directory), Vec::<String>::new());
    assert!(!source.settling());
    let mut index = Index::default();
    apply(&mut index, directory);
    assert!(matches!(
        &index.plugin_set(&web()).unwrap().problems[..],
        [WorkloadProblem::UnknownPlugin { name, .. }] if name == "authz"
    ));
}

#[test]
fn an_unreadable_directory_changes_nothing_remembered() {
    let dir = mesh(AUTHZ);
    let mut source = DirectorySource::new(&dir.0);
    source.read().unwrap();
    let moved = dir.0.with_extension("moved");
    fs::rename(&dir.0, &moved).unwrap();
    assert!(source.read().is_err());
    fs::rename(&moved, &dir.0).unwrap();
    fs::write(dir.0.join("plugins.yaml"), "kind: [").unwrap();
    assert_eq!(plugin_names(&source.read().unwrap()), ["authz"]);
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- port: 8080
endpoints:
- addresses: [10.244.1.12]
";

fn web_endpoints(index: &Index) -> Option<Vec<String>> {
    let authority = Authority::parse("web.default.svc.cluster.local", &Default::default());
    let found = index.destination(&authority.unwrap())?;
    Some(found.endpoints.iter().map(|e| e.addr.to_string()).collect())
}

#[test]
fn services_and_slices_are_kept_like_the_rest() {
    let dir = mesh(AUTHZ);
    let path = dir.write("services.yaml", SERVICE);
    let mut source = DirectorySource::new(&dir.0);
    let mut index = Index::default();
    let directory = source.read().unwrap();
    assert_eq!(directory.errors, []);
    assert_eq!(
        (directory.services.len(), directory.endpoint_slices.len()),
        (1, 1)
    );
    apply(&mut index, directory);
    assert_eq!(web_endpoints(&index).unwrap(), ["10.244.1.12:8080"]);

    // A slice whose endpoints do not read keeps its last version.
    dir.write(
        "services.yaml",
        &SERVICE.replace("- addresses: [10.244.1.12]", "- addresses: 10.244.1.13"),
    );
    let directory = source.read().unwrap();
    assert!(
        messages(&directory)[0].contains("endpoints[0].addresses"),
        "{:?}",
        directory.errors
    );
    assert_eq!(directory.kept[0].objects[0].kind, Kind::EndpointSlice);
    apply(&mut index, directory);
    assert_eq!(web_endpoints(&index).unwrap(), ["10.244.1.12:8080"]);

    // Not YAML: the file keeps the Service too.
    dir.write("services.yaml", &format!("{SERVICE}  bad: [\n"));
    apply(&mut index, source.read().unwrap());
    assert_eq!(web_endpoints(&index).unwrap(), ["10.244.1.12:8080"]);

    // Read whole again without the slice: the Service has no endpoints.
    let service_only = SERVICE.split("---").next().unwrap();
    fs::write(&path, service_only).unwrap();
    apply(&mut index, source.read().unwrap());
    assert_eq!(web_endpoints(&index), Some(vec![]));
}
