//! `weft-linkerd-resources` on the booksapp fixtures
//! (`tests/fixtures/linkerd/`, real objects as a cluster holds them), each
//! problem made by adding or changing one object.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::*;
use crate::check::MeshObjects;
use crate::linkerd::TrafficObject;

/// Every object in the YAML files of `dir`, `List`s unpacked, sorted by kind.
fn objects(dir: &Path) -> MeshObjects {
    let mut mesh = MeshObjects::default();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).unwrap();
            add(&mut mesh, value);
        }
    }
    mesh
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

fn add(mesh: &mut MeshObjects, value: Value) {
    match value["kind"].as_str().unwrap() {
        "List" => {
            for item in value["items"].as_array().unwrap().clone() {
                add(mesh, item);
            }
        }
        "Namespace" => mesh.namespaces.push(from(value)),
        "Pod" => mesh.pods.push(from(value)),
        "Service" => mesh.services.push(from(value)),
        "WasmPlugin" => mesh.plugins.push(from(value)),
        _ => mesh
            .traffic
            .push(TrafficObject::from_value(value).unwrap().unwrap()),
    }
}

fn yaml(text: &str) -> Value {
    serde_norway::from_str(text).unwrap()
}

fn booksapp() -> MeshObjects {
    objects(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linkerd"))
}

fn category(mesh: MeshObjects) -> Category {
    let snapshot = Snapshot {
        mesh: Ok(mesh),
        ..healthy()
    };
    let categories = checks(&snapshot, &options(), now());
    categories.last().unwrap().clone()
}

/// Each check as `mark description: error`.
fn lines(category: &Category) -> Vec<String> {
    category
        .checks
        .iter()
        .map(|c| {
            let mark = match c.result {
                Outcome::Success => '✓',
                Outcome::Warning => '‼',
                Outcome::Error => '×',
            };
            match c.error.is_empty() {
                true => format!("{mark} {}", c.description),
                false => format!("{mark} {}: {}", c.description, c.error),
            }
        })
        .collect()
}

#[test]
fn resources_the_controller_applies_whole_pass() {
    let category = category(booksapp());
    assert_eq!(category.category_name, "weft-linkerd-resources");
    assert_eq!(
        lines(&category),
        ["✓ Linkerd and Gateway API resources are all applied (4)"]
    );
}

#[test]
fn each_problem_is_one_check_naming_the_resource_and_why() {
    let mut mesh = booksapp();
    // A typo Linkerd's CRD would take and Weft refuses.
    let profile = mesh
        .traffic
        .iter_mut()
        .find(|o| {
            o.metadata.namespace.as_deref() == Some("booksapp")
                && o.kind == crate::linkerd::TrafficKind::ServiceProfile
        })
        .unwrap();
    profile.spec["routes"][0]["isRetriable"] = Value::Bool(true);
    for text in [
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: wrong-port, namespace: booksapp}\nspec: {parentRefs: [{name: books, kind: Service, port: 80}]}\n",
        "apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata: {name: orphan, namespace: booksapp}\nspec: {server: {name: nowhere}, client: {unauthenticated: true}}\n",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: webapp-2\n  namespace: booksapp\n  labels: {app: webapp}\n  annotations: {weft.io/plugins: split, weft.io/plugin-config.split: '{\"routes\": []}'}\nspec: {containers: [{name: webapp, image: buoyantio/booksapp}]}\n",
    ] {
        add(&mut mesh, yaml(text));
    }
    let found = category(mesh.clone());
    assert_eq!(
        lines(&found),
        [
            "× ServiceProfile/booksapp/books.booksapp.svc.cluster.local: unsupported field spec.routes.0.isRetriable (Weft does not apply it)",
            "‼ TrafficSplit/booksapp/books-rollout: compiles to plugin \"split\", but WasmPlugin weft-system/split runs with the workload's own config (pod annotation), which wins: not applied to pod booksapp/webapp-2",
            "‼ HTTPRoute/booksapp/authors-canary: compiles to plugin \"split\", but WasmPlugin weft-system/split runs with the workload's own config (pod annotation), which wins: not applied to pod booksapp/webapp-2",
            "‼ HTTPRoute/booksapp/wrong-port: parent booksapp/books: the Service has no port 80",
            "‼ ServerAuthorization/booksapp/orphan: spec.server.name: no Server booksapp/nowhere: the authorization applies to nothing",
        ]
    );
    let hint = &found.checks[0].hint;
    assert!(
        hint.starts_with(
            "kubectl -n booksapp get serviceprofiles books.booksapp.svc.cluster.local -o yaml"
        ),
        "{hint}"
    );
    assert!(!success(&[found]), "a refused resource fails the run");

    // Without the shipped split plugin, nothing runs the compiled split.
    mesh.plugins
        .retain(|p| p.metadata.name.as_deref() != Some("split"));
    let found = category(mesh);
    assert!(
        lines(&found).contains(&"× TrafficSplit/booksapp/books-rollout: compiles to plugin \"split\", but there is no WasmPlugin weft-system/split to run it: not applied to pod booksapp/books, pod booksapp/webapp, pod booksapp/webapp-2, 1 more".to_string()),
        "{:#?}",
        lines(&found)
    );
}

#[test]
fn the_controllers_cluster_domain_decides_what_a_profile_names() {
    let mut snapshot = Snapshot {
        mesh: Ok(booksapp()),
        ..healthy()
    };
    let deployments = snapshot.deployments.as_mut().unwrap();
    let controller = deployments
        .iter_mut()
        .find(|d| d.metadata.name.as_deref() == Some("weft-controller"))
        .unwrap();
    let spec = controller
        .spec
        .as_mut()
        .unwrap()
        .template
        .spec
        .as_mut()
        .unwrap();
    spec.containers[0]
        .args
        .get_or_insert_default()
        .push("--cluster-domain=example.org".into());
    let categories = checks(&snapshot, &options(), now());
    let lines = lines(categories.last().unwrap());
    assert!(
        lines.iter().any(|l| l.starts_with("‼ ServiceProfile/booksapp/books.booksapp.svc.cluster.local: the name is not a Service's DNS name (<service>.<namespace>.svc.example.org)")),
        "{lines:#?}"
    );
}

#[test]
fn a_refused_list_is_an_error() {
    let snapshot = Snapshot {
        mesh: Err("serviceprofiles.linkerd.io is forbidden".into()),
        ..healthy()
    };
    let categories = checks(&snapshot, &options(), now());
    assert_eq!(
        lines(categories.last().unwrap()),
        [
            "× Linkerd and Gateway API resources can be read: cannot list them: serviceprofiles.linkerd.io is forbidden"
        ]
    );
}
