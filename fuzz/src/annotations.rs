//! `weft.io/plugins` and `weft.io/plugin-config.<name>` annotations, as a
//! user could write them on a Namespace or Pod. The input is `key=value`
//! lines (lines without `=` are skipped), so seeds read like the YAML they
//! come from.

use std::collections::BTreeMap;

use weft_controller::resources::{
    PLUGIN_CONFIG_PREFIX, PLUGINS, PluginAnnotations, is_resource_name,
};

pub fn annotations(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let annotations: BTreeMap<String, String> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    let parsed = PluginAnnotations::parse(Some(&annotations));

    assert_eq!(parsed.plugins.is_some(), annotations.contains_key(PLUGINS));
    let names = parsed.plugins.unwrap_or_default();
    for (i, name) in names.iter().enumerate() {
        assert!(is_resource_name(name), "kept invalid name {name:?}");
        assert!(!names[..i].contains(name), "kept {name:?} twice");
    }
    for name in &parsed.invalid_names {
        assert!(!is_resource_name(name), "refused valid name {name:?}");
    }
    let config_keys = annotations
        .keys()
        .filter_map(|key| key.strip_prefix(PLUGIN_CONFIG_PREFIX));
    assert!(config_keys.eq(parsed.configs.keys().map(String::as_str)));
}
