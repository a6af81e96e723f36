//! The annotations that select plugins, on a Namespace (the default for its
//! pods) or a Pod (which overrides its namespace's):
//!
//! - `weft.io/plugins: metrics,retry,authz` names WasmPlugin resources; an
//!   empty value names none.
//! - `weft.io/plugin-config.<name>: <json>` replaces that plugin's
//!   `pluginConfig`.

use std::collections::BTreeMap;

pub const PLUGINS: &str = "weft.io/plugins";
pub const PLUGIN_CONFIG_PREFIX: &str = "weft.io/plugin-config.";

/// What one object's annotations ask for, parsed once when the object
/// arrives. Bad parts are kept so they can be reported per workload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PluginAnnotations {
    /// `weft.io/plugins`, when present: its valid names, first occurrence
    /// first, without duplicates.
    pub plugins: Option<Vec<String>>,
    /// Entries of `weft.io/plugins` that cannot name a resource.
    pub invalid_names: Vec<String>,
    /// `weft.io/plugin-config.<name>` by name: the JSON, or why it is not.
    pub configs: BTreeMap<String, Result<serde_json::Value, String>>,
}

impl PluginAnnotations {
    pub fn parse(annotations: Option<&BTreeMap<String, String>>) -> Self {
        let mut parsed = PluginAnnotations::default();
        let Some(annotations) = annotations else {
            return parsed;
        };
        if let Some(list) = annotations.get(PLUGINS) {
            let mut names: Vec<String> = Vec::new();
            for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                if !is_resource_name(entry) {
                    parsed.invalid_names.push(entry.to_string());
                } else if !names.iter().any(|n| n == entry) {
                    names.push(entry.to_string());
                }
            }
            parsed.plugins = Some(names);
        }
        for (key, value) in annotations {
            if let Some(name) = key.strip_prefix(PLUGIN_CONFIG_PREFIX) {
                let config = serde_json::from_str(value).map_err(|e| e.to_string());
                parsed.configs.insert(name.to_string(), config);
            }
        }
        parsed
    }
}

/// A Kubernetes object name (RFC 1123 subdomain): what `weft.io/plugins`
/// entries must be, since they name WasmPlugin resources.
pub fn is_resource_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(pairs: &[(&str, &str)]) -> PluginAnnotations {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PluginAnnotations::parse(Some(&map))
    }

    #[test]
    fn a_list_is_trimmed_and_deduplicated() {
        let parsed = parse(&[(PLUGINS, " metrics, retry,,metrics ,authz ")]);
        assert_eq!(
            parsed.plugins,
            Some(vec!["metrics".into(), "retry".into(), "authz".into()])
        );
        assert!(parsed.invalid_names.is_empty());
    }

    #[test]
    fn an_empty_list_is_present_and_names_nothing() {
        assert_eq!(parse(&[(PLUGINS, "")]).plugins, Some(vec![]));
        assert_eq!(parse(&[]).plugins, None);
        assert_eq!(PluginAnnotations::parse(None), PluginAnnotations::default());
    }

    #[test]
    fn names_that_cannot_be_resources_are_kept_aside() {
        let parsed = parse(&[(PLUGINS, "metrics,Retry,auth z,-x")]);
        assert_eq!(parsed.plugins, Some(vec!["metrics".into()]));
        assert_eq!(parsed.invalid_names, ["Retry", "auth z", "-x"]);
    }

    #[test]
    fn config_overrides_are_json_or_say_why_not() {
        let parsed = parse(&[
            ("weft.io/plugin-config.retry", r#"{"routes": []}"#),
            ("weft.io/plugin-config.hello", r#""hi""#),
            ("weft.io/plugin-config.authz", "{not json"),
            ("other.io/plugin-config.x", "1"),
        ]);
        assert_eq!(parsed.configs["retry"], Ok(json!({"routes": []})));
        assert_eq!(parsed.configs["hello"], Ok(json!("hi")));
        assert!(
            parsed.configs["authz"]
                .as_ref()
                .unwrap_err()
                .contains("key must be a string")
        );
        assert_eq!(parsed.configs.len(), 3);
    }

    #[test]
    fn resource_names_follow_rfc_1123() {
        for good in ["a", "metrics", "my-plugin.v2", "0abc"] {
            assert!(is_resource_name(good), "{good}");
        }
        for bad in ["", "A", "a_b", "a..b", "-a", "a-", ".a", &"a".repeat(254)] {
            assert!(!is_resource_name(bad), "{bad}");
        }
    }
}
