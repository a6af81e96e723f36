//! The JSON configuration, checked and turned into a [`Policy`]. Everything
//! that could make a rule silently never match is refused here, with the
//! rule's name in the message.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use weft_plugin_sdk::path::PathPrefix;

use crate::cidr::Cidr;
use crate::matchers::IdentityPattern;
use crate::policy::{Action, DefaultPolicy, Policy, Rule};

/// Linkerd's default cluster networks: the private ranges and CGNAT.
pub const DEFAULT_CLUSTER_NETWORKS: [&str; 4] = [
    "10.0.0.0/8",
    "100.64.0.0/10",
    "172.16.0.0/12",
    "192.168.0.0/16",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default)]
    default_policy: DefaultPolicy,
    /// Port (JSON keys are strings: `"8080"`) → its default policy.
    #[serde(default)]
    port_policies: BTreeMap<u16, DefaultPolicy>,
    cluster_networks: Option<Vec<String>>,
    #[serde(default)]
    rules: Vec<RuleConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RuleConfig {
    name: String,
    #[serde(default)]
    action: Action,
    identities: Option<Vec<String>>,
    client_cidrs: Option<Vec<String>>,
    client_cidrs_except: Option<Vec<String>>,
    ports: Option<Vec<u16>>,
    path_prefixes: Option<Vec<String>>,
    methods: Option<Vec<String>>,
}

/// Parses and checks the configuration. Empty text means `{}`: allow all.
pub fn parse(text: &str) -> Result<Policy, String> {
    let config: Config = match text.trim() {
        "" => serde_json::from_str("{}"),
        text => serde_json::from_str(text),
    }
    .map_err(|e| format!("invalid authz config: {e}"))?;

    let cluster_networks = match config.cluster_networks {
        Some(networks) => networks,
        None => DEFAULT_CLUSTER_NETWORKS.map(String::from).to_vec(),
    }
    .iter()
    .map(|text| text.parse().map_err(|e| format!("clusterNetworks: {e}")))
    .collect::<Result<Vec<Cidr>, String>>()?;

    if config.port_policies.contains_key(&0) {
        return Err("portPolicies: port 0 cannot be connected to".to_string());
    }

    let mut names = BTreeSet::new();
    let mut rules = Vec::with_capacity(config.rules.len());
    for (index, rule) in config.rules.into_iter().enumerate() {
        let name = rule.name.clone();
        if name.is_empty() {
            return Err(format!("rules[{index}]: `name` must not be empty"));
        }
        if !names.insert(name.clone()) {
            return Err(format!(
                "rules[{index}]: another rule is already named `{name}`"
            ));
        }
        rules.push(rule_from(rule).map_err(|(field, e)| format!("rule `{name}`: {field}: {e}"))?);
    }

    Ok(Policy {
        default: config.default_policy,
        port_policies: config.port_policies,
        cluster_networks,
        rules,
    })
}

/// One rule, or the field at fault and why.
fn rule_from(rule: RuleConfig) -> Result<Rule, (&'static str, String)> {
    Ok(Rule {
        action: rule.action,
        identities: each("identities", rule.identities, |id| {
            IdentityPattern::parse(&id)
        })?,
        client_cidrs: each("clientCidrs", rule.client_cidrs, |cidr| cidr.parse())?,
        client_cidrs_except: each("clientCidrsExcept", rule.client_cidrs_except, |cidr| {
            cidr.parse()
        })?,
        ports: each("ports", rule.ports, |port| match port {
            0 => Err("port 0 cannot be connected to".to_string()),
            port => Ok(port),
        })?,
        path_prefixes: each("pathPrefixes", rule.path_prefixes, |prefix| {
            PathPrefix::parse(&prefix)
        })?,
        methods: each("methods", rule.methods, check_method)?,
        name: rule.name,
    })
}

/// Parses each entry of an optional list. A given but empty list would make
/// the rule match nothing, which is never what was meant.
fn each<T, U>(
    field: &'static str,
    values: Option<Vec<T>>,
    parse: impl Fn(T) -> Result<U, String>,
) -> Result<Vec<U>, (&'static str, String)> {
    match values {
        None => Ok(Vec::new()),
        Some(values) if values.is_empty() => Err((
            field,
            "empty, so the rule could never match; leave the field out to match anything"
                .to_string(),
        )),
        Some(values) => values
            .into_iter()
            .map(parse)
            .collect::<Result<_, _>>()
            .map_err(|e| (field, e)),
    }
}

/// Methods are case-sensitive and the proxy reports them as sent, so `get`
/// would never match a `GET`.
fn check_method(method: String) -> Result<String, String> {
    let is_token = !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !is_token {
        return Err(format!("`{method}` is not a method name"));
    }
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(format!(
            "`{method}` must be upper case (`{}`)",
            method.to_ascii_uppercase()
        ));
    }
    Ok(method)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(json: &str) -> String {
        parse(json).unwrap_err()
    }

    #[test]
    fn the_documented_example_is_accepted() {
        let policy = parse(
            r#"{
              "defaultPolicy": "all-unauthenticated",
              "clusterNetworks": ["10.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16"],
              "rules": [
                {"name": "web-reads", "action": "allow",
                 "identities": ["web.default.serviceaccount.identity.weft.cluster.local", "*.prod.serviceaccount.identity.weft.cluster.local", "*"],
                 "clientCidrs": ["10.1.0.0/16", "127.0.0.1/32", "::1/128"],
                 "ports": [8080],
                 "pathPrefixes": ["/api"],
                 "methods": ["GET", "HEAD"]}
              ]
            }"#,
        )
        .unwrap();
        assert_eq!(policy.rules.len(), 1);
        assert_eq!(policy.rules[0].identities.len(), 3);
        assert_eq!(policy.rules[0].client_cidrs.len(), 3);
    }

    #[test]
    fn empty_config_allows_all_with_linkerds_cluster_networks() {
        for text in ["", "  \n", "{}"] {
            let policy = parse(text).unwrap();
            assert_eq!(policy.default, DefaultPolicy::AllUnauthenticated);
            assert!(policy.rules.is_empty());
            let networks: Vec<String> = policy
                .cluster_networks
                .iter()
                .map(|c| c.to_string())
                .collect();
            assert_eq!(networks, DEFAULT_CLUSTER_NETWORKS);
        }
    }

    #[test]
    fn each_default_policy_is_named_as_in_linkerd() {
        for name in [
            "all-unauthenticated",
            "all-authenticated",
            "cluster-unauthenticated",
            "cluster-authenticated",
            "deny",
            "audit",
        ] {
            let policy = parse(&format!(r#"{{"defaultPolicy": "{name}"}}"#)).unwrap();
            assert_eq!(policy.default.name(), name);
        }
        assert!(error(r#"{"defaultPolicy": "allow"}"#).contains("unknown variant `allow`"));
    }

    #[test]
    fn actions_default_to_allow() {
        let policy =
            parse(r#"{"rules": [{"name": "a"}, {"name": "b", "action": "deny"}]}"#).unwrap();
        assert_eq!(policy.rules[0].action, Action::Allow);
        assert_eq!(policy.rules[1].action, Action::Deny);
        assert!(
            error(r#"{"rules": [{"name": "a", "action": "reject"}]}"#)
                .contains("unknown variant `reject`")
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(error(r#"{"defaultPolicyy": "deny"}"#).contains("unknown field `defaultPolicyy`"));
        assert!(
            error(r#"{"rules": [{"name": "a", "port": [80]}]}"#).contains("unknown field `port`")
        );
        assert!(error("not json").starts_with("invalid authz config: "));
    }

    #[test]
    fn rules_need_unique_non_empty_names() {
        assert!(error(r#"{"rules": [{"ports": [80]}]}"#).contains("missing field `name`"));
        assert_eq!(
            error(r#"{"rules": [{"name": ""}]}"#),
            "rules[0]: `name` must not be empty"
        );
        assert_eq!(
            error(r#"{"rules": [{"name": "a"}, {"name": "a"}]}"#),
            "rules[1]: another rule is already named `a`"
        );
    }

    #[test]
    fn bad_fields_are_refused_with_the_rule_and_field() {
        for (rule, message) in [
            (
                r#""identities": []"#,
                "rule `r`: identities: empty, so the rule could never match; \
                 leave the field out to match anything",
            ),
            (
                r#""identities": ["web.*.local"]"#,
                "rule `r`: identities: identity `web.*.local`: `*` may only be \
                 the whole pattern or its first label (`*.`)",
            ),
            (
                r#""clientCidrs": ["10.0.0.0/33"]"#,
                "rule `r`: clientCidrs: `10.0.0.0/33`: an IPv4 prefix length is at most 32",
            ),
            (
                r#""clientCidrs": ["::1/129"]"#,
                "rule `r`: clientCidrs: `::1/129`: an IPv6 prefix length is at most 128",
            ),
            (
                r#""clientCidrs": ["10.0.0.1"]"#,
                "rule `r`: clientCidrs: `10.0.0.1` is not a CIDR: expected ADDRESS/PREFIX-LENGTH",
            ),
            (
                r#""ports": [0]"#,
                "rule `r`: ports: port 0 cannot be connected to",
            ),
            (
                r#""pathPrefixes": ["api"]"#,
                "rule `r`: pathPrefixes: path prefix `api` must start with `/`",
            ),
            (
                r#""methods": ["get"]"#,
                "rule `r`: methods: `get` must be upper case (`GET`)",
            ),
            (
                r#""methods": ["GET /"]"#,
                "rule `r`: methods: `GET /` is not a method name",
            ),
        ] {
            let json = format!(r#"{{"rules": [{{"name": "r", {rule}}}]}}"#);
            assert_eq!(error(&json), message, "{rule}");
        }
        assert!(error(r#"{"rules": [{"name": "r", "ports": [65536]}]}"#).contains("invalid value"));
    }

    #[test]
    fn port_policies_are_read_by_port() {
        let policy =
            parse(r#"{"defaultPolicy": "audit", "portPolicies": {"8080": "deny", "9090": "all-authenticated"}}"#)
                .unwrap();
        assert_eq!(policy.default, DefaultPolicy::Audit);
        assert_eq!(
            policy.port_policies.into_iter().collect::<Vec<_>>(),
            [
                (8080, DefaultPolicy::Deny),
                (9090, DefaultPolicy::AllAuthenticated)
            ]
        );
        assert_eq!(
            error(r#"{"portPolicies": {"0": "deny"}}"#),
            "portPolicies: port 0 cannot be connected to"
        );
        assert!(
            error(r#"{"portPolicies": {"http": "deny"}}"#)
                .contains("expected key to be a number in quotes")
        );
        assert!(error(r#"{"portPolicies": {"80": "open"}}"#).contains("unknown variant `open`"));
    }

    #[test]
    fn excepted_networks_are_checked_as_networks() {
        let policy = parse(
            r#"{"rules": [{"name": "r", "clientCidrs": ["10.0.0.0/8"], "clientCidrsExcept": ["10.1.0.0/16"]}]}"#,
        )
        .unwrap();
        assert_eq!(policy.rules[0].client_cidrs_except.len(), 1);
        assert_eq!(
            error(r#"{"rules": [{"name": "r", "clientCidrsExcept": ["10.1.0.0"]}]}"#),
            "rule `r`: clientCidrsExcept: `10.1.0.0` is not a CIDR: expected ADDRESS/PREFIX-LENGTH"
        );
        assert!(
            error(r#"{"rules": [{"name": "r", "clientCidrsExcept": []}]}"#)
                .starts_with("rule `r`: clientCidrsExcept: empty")
        );
    }

    #[test]
    fn bad_cluster_networks_are_refused() {
        assert_eq!(
            error(r#"{"clusterNetworks": ["10.0.0.0/99"]}"#),
            "clusterNetworks: `10.0.0.0/99`: an IPv4 prefix length is at most 32"
        );
    }
}
