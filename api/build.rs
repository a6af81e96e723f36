//! Generates the gRPC types and stubs from `proto/`. protoc comes from the
//! `protoc-bin-vendored` crate, so building needs nothing installed first.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure().compile_with_config(
        config,
        &[
            "proto/weft/plugins/v1alpha1/plugins.proto",
            "proto/weft/inspect/v1alpha1/inspect.proto",
            "proto/weft/identity/v1alpha1/identity.proto",
            "proto/weft/destination/v1alpha1/destination.proto",
            "proto/weft/tap/v1alpha1/tap.proto",
        ],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
