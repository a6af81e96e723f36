//! The bounded run CI does on stable: every committed corpus file through
//! its target's body. A crash the fuzzer finds is fixed, then its input is
//! added to the corpus so it stays fixed.

use std::path::Path;

/// Runs every file in `corpus/<target>/`; a corpus that went missing or
/// empty fails, since it would otherwise replay nothing and pass.
fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for file in files {
        let data = std::fs::read(&file).expect("a corpus file reads");
        // Name the input before running it, so a panic is traceable.
        eprintln!("{target}: {}", file.display());
        body(&data);
    }
}

#[test]
fn detect_corpus() {
    replay("detect", crate::detect);
}

#[test]
fn chain_spec_corpus() {
    replay("chain_spec", crate::chain_spec);
}

#[test]
fn controller_yaml_corpus() {
    replay("controller_yaml", crate::controller_yaml);
}

#[test]
fn annotations_corpus() {
    replay("annotations", crate::annotations);
}

#[test]
fn http_head_corpus() {
    replay("http_head", crate::http_head);
}

#[test]
fn plugin_config_corpus() {
    for plugin in crate::plugin_config::PLUGINS {
        weft_tests::plugins::component(plugin);
    }
    replay("plugin_config", crate::plugin_config);
}

#[test]
fn plugin_boundary_corpus() {
    weft_tests::plugins::component("scripted");
    replay("plugin_boundary", crate::plugin_boundary);
}
