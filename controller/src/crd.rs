//! The CustomResourceDefinitions, generated from the Rust types: the chart's
//! copies are this output, never edited by hand.

use kube::CustomResourceExt;

use crate::resources::WasmPlugin;

/// Where the chart keeps the WasmPlugin CRD, relative to the repository root.
pub const WASM_PLUGIN_CRD_PATH: &str = "charts/weft-crds/templates/wasmplugins.weft.io.yaml";

/// The WasmPlugin CRD as YAML, as `weft-crds` prints it.
pub fn wasm_plugin_crd_yaml() -> String {
    let yaml = serde_norway::to_string(&WasmPlugin::crd()).expect("a CRD serializes to YAML");
    format!(
        "# Generated from controller/src/resources/wasm_plugin.rs; do not edit.\n\
         # Regenerate: cargo run -p weft-controller --bin weft-crds > {WASM_PLUGIN_CRD_PATH}\n\
         {yaml}"
    )
}
