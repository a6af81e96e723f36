//! Prints Weft's CustomResourceDefinitions as YAML, for the Helm chart:
//! `cargo run -p weft-controller --bin weft-crds > charts/weft-crds/templates/wasmplugins.weft.io.yaml`

fn main() {
    print!("{}", weft_controller::crd::wasm_plugin_crd_yaml());
}
