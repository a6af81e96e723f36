//! The fuzz targets' bodies. Each takes the fuzzer's bytes, drives one of
//! Weft's parsers of untrusted input and asserts what must hold whatever the
//! input: no panic, and the invariants listed with each body. The cargo-fuzz
//! binaries call these; so does the stable replay of `corpus/<target>/`.
#![forbid(unsafe_code)]

mod annotations;
mod chain_spec;
mod components;
mod controller_yaml;
mod detect;
mod http_head;
mod plugin_boundary;
mod plugin_config;

pub use annotations::annotations;
pub use chain_spec::chain_spec;
pub use controller_yaml::controller_yaml;
pub use detect::detect;
pub use http_head::http_head;
pub use plugin_boundary::plugin_boundary;
pub use plugin_config::plugin_config;

#[cfg(test)]
mod replay;
