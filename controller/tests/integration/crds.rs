//! The chart's CRDs are generated from the Rust types; this fails when they
//! drift apart and says how to regenerate them.

use weft_controller::crd::{WASM_PLUGIN_CRD_PATH, wasm_plugin_crd_yaml};

#[test]
fn the_chart_s_wasm_plugin_crd_matches_the_types() {
    let path = format!("{}/../{WASM_PLUGIN_CRD_PATH}", env!("CARGO_MANIFEST_DIR"));
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == wasm_plugin_crd_yaml(),
        "{WASM_PLUGIN_CRD_PATH} is out of date with controller/src/resources/. Regenerate it \
         from the repository root:\n\n    \
         cargo run -p weft-controller --bin weft-crds > {WASM_PLUGIN_CRD_PATH}\n"
    );
}

#[test]
fn the_crd_is_namespaced_with_a_status_subresource() {
    let yaml = wasm_plugin_crd_yaml();
    let crd: serde_json::Value = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(crd["metadata"]["name"], "wasmplugins.weft.io");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["required"], serde_json::json!(["url"]));
    assert_eq!(
        spec["properties"]["pluginConfig"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
}
