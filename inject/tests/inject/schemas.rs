//! Every object `weft inject` writes and every pod the webhook's patch
//! makes, validated against the Kubernetes schemas (strict: unknown fields
//! fail) by the `kubernetes-validate` package, which `cargo xtask test`
//! installs. Without it this test fails: a skipped schema check would let
//! CI pass on manifests a cluster rejects.

use serde_json::Value;

use weft_tests::schemas::kubernetes_validate;

use super::*;

/// Lists' items as documents of their own: the validator has no schema for `List`.
fn flatten(document: Value, into: &mut Vec<Value>) {
    match document.get("items").and_then(Value::as_array) {
        Some(items) if document["kind"] == "List" => {
            for item in items.clone() {
                flatten(item, into);
            }
        }
        _ => into.push(document),
    }
}

#[test]
fn injected_objects_pass_the_kubernetes_schemas() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("weft-inject-schemas");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    let mut objects = 0;
    let mut write = |name: String, text: String, count: usize| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        files.push(path);
        objects += count;
    };
    for path in manifests() {
        let output = inject_fixture(&path);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let mut documents = Vec::new();
        for document in serde_norway::Deserializer::from_str(&output.yaml) {
            documents.push(serde::Deserialize::deserialize(document).unwrap());
        }
        if documents.iter().all(|d: &Value| d["kind"] != "List") {
            // Exactly what `weft inject` writes, read by a YAML 1.1 reader.
            write(format!("{name}.yaml"), output.yaml, documents.len());
            continue;
        }
        let mut flat = Vec::new();
        for document in documents {
            flatten(document, &mut flat);
        }
        for (index, object) in flat.iter().enumerate() {
            write(format!("{name}.{index}.json"), object.to_string(), 1);
        }
    }
    let mut pod = admission::patched_pod();
    // The API server names it from generateName after the webhooks ran.
    pod["metadata"]["name"] = "web-6c8d5b9f7d-x2x4q".into();
    write("admission-patched-pod.json".into(), pod.to_string(), 1);

    if let Err(refused) = kubernetes_validate(&files, objects) {
        panic!("kubernetes-validate refused an injected object: {refused}");
    }
}
