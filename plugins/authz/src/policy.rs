//! The authorization decision, apart from the proxy: rules in order, the
//! first that matches decides, else the default policy. Everything here is
//! plain data, so it is tested natively.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use weft_plugin_sdk::path::PathPrefix;

use crate::cidr::Cidr;
use crate::matchers::IdentityPattern;

/// What happens to traffic no rule matches; Linkerd's default policies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DefaultPolicy {
    #[default]
    AllUnauthenticated,
    AllAuthenticated,
    ClusterUnauthenticated,
    ClusterAuthenticated,
    Deny,
    /// Allow, but log and count the traffic as audited.
    Audit,
}

impl DefaultPolicy {
    /// The name as configured, e.g. `all-unauthenticated`.
    pub fn name(self) -> &'static str {
        match self {
            DefaultPolicy::AllUnauthenticated => "all-unauthenticated",
            DefaultPolicy::AllAuthenticated => "all-authenticated",
            DefaultPolicy::ClusterUnauthenticated => "cluster-unauthenticated",
            DefaultPolicy::ClusterAuthenticated => "cluster-authenticated",
            DefaultPolicy::Deny => "deny",
            DefaultPolicy::Audit => "audit",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Allow,
    Deny,
}

/// One rule. An empty list stands for a field the rule does not give, which
/// matches anything (the config refuses empty lists, so this is unambiguous).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    pub identities: Vec<IdentityPattern>,
    pub client_cidrs: Vec<Cidr>,
    /// Networks inside `client_cidrs` the rule leaves out (Linkerd's
    /// `except`).
    pub client_cidrs_except: Vec<Cidr>,
    pub ports: Vec<u16>,
    pub path_prefixes: Vec<PathPrefix>,
    pub methods: Vec<String>,
}

impl Rule {
    /// Rules about paths or methods cannot match opaque TCP.
    pub fn is_http_only(&self) -> bool {
        !self.path_prefixes.is_empty() || !self.methods.is_empty()
    }

    fn matches(&self, attrs: &Attributes<'_>) -> bool {
        let identity = attrs.identity();
        any_or_unset(&self.identities, |p| {
            identity.is_some_and(|id| p.matches(id))
        }) && any_or_unset(&self.client_cidrs, |c| {
            attrs.client_ip.is_some_and(|ip| c.contains(ip))
        }) && self.not_excepted(attrs.client_ip)
            && any_or_unset(&self.ports, |&port| port == attrs.local_port)
            && match &attrs.http {
                Some(http) => {
                    any_or_unset(&self.path_prefixes, |p| p.matches(http.path))
                        && any_or_unset(&self.methods, |m| m == http.method)
                }
                None => !self.is_http_only(),
            }
    }
}

impl Rule {
    /// An address that cannot be read cannot be shown to be outside the
    /// excepted networks, so it never matches a rule that has some.
    fn not_excepted(&self, client_ip: Option<IpAddr>) -> bool {
        self.client_cidrs_except.is_empty()
            || client_ip.is_some_and(|ip| !self.client_cidrs_except.iter().any(|c| c.contains(ip)))
    }
}

/// Whether a field matches: an empty list is a field the rule does not
/// give, which matches anything.
fn any_or_unset<T>(values: &[T], matches: impl FnMut(&T) -> bool) -> bool {
    values.is_empty() || values.iter().any(matches)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub default: DefaultPolicy,
    /// The default policy of these ports, in place of `default` (Linkerd's
    /// Servers, each with its own default).
    pub port_policies: BTreeMap<u16, DefaultPolicy>,
    pub cluster_networks: Vec<Cidr>,
    pub rules: Vec<Rule>,
}

/// What the decision looks at, for a request or an opaque connection.
#[derive(Clone, Debug, Default)]
pub struct Attributes<'a> {
    /// None when the proxy's address could not be parsed: no network
    /// matches it.
    pub client_ip: Option<IpAddr>,
    pub local_port: u16,
    pub identity: Option<&'a str>,
    /// None for opaque TCP.
    pub http: Option<HttpAttributes<'a>>,
}

impl Attributes<'_> {
    /// An empty identity is no identity: it cannot have come from mTLS.
    fn identity(&self) -> Option<&str> {
        self.identity.filter(|id| !id.is_empty())
    }
}

#[derive(Clone, Debug, Default)]
pub struct HttpAttributes<'a> {
    /// Upper case, as sent: `GET`, `PROPFIND`.
    pub method: &'a str,
    /// Path and query.
    pub path: &'a str,
}

/// Who decided: what the metrics' `authz_kind` and `authz_name` say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Authz {
    /// The rule at this index.
    Rule(usize),
    /// This default policy (the port's, else the policy's).
    Default(DefaultPolicy),
    /// The `audit` default policy, which lets everything through.
    Audit,
}

impl Authz {
    /// The `authz_kind` label: `rule`, `default` or `audit`.
    pub fn kind(self) -> &'static str {
        match self {
            Authz::Rule(_) => "rule",
            Authz::Default(_) => "default",
            Authz::Audit => "audit",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub authz: Authz,
}

impl Policy {
    pub fn decide(&self, attrs: &Attributes<'_>) -> Decision {
        if let Some((index, rule)) = self
            .rules
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.matches(attrs))
        {
            return Decision {
                allowed: rule.action == Action::Allow,
                authz: Authz::Rule(index),
            };
        }
        let in_cluster = || {
            attrs
                .client_ip
                .is_some_and(|ip| self.cluster_networks.iter().any(|c| c.contains(ip)))
        };
        let authenticated = attrs.identity().is_some();
        let default = self.default_for(attrs.local_port);
        let allowed = match default {
            DefaultPolicy::AllUnauthenticated | DefaultPolicy::Audit => true,
            DefaultPolicy::AllAuthenticated => authenticated,
            DefaultPolicy::ClusterUnauthenticated => in_cluster(),
            DefaultPolicy::ClusterAuthenticated => authenticated && in_cluster(),
            DefaultPolicy::Deny => false,
        };
        let authz = match default {
            DefaultPolicy::Audit => Authz::Audit,
            policy => Authz::Default(policy),
        };
        Decision { allowed, authz }
    }

    /// The default policy of traffic to `port`.
    pub fn default_for(&self, port: u16) -> DefaultPolicy {
        self.port_policies
            .get(&port)
            .copied()
            .unwrap_or(self.default)
    }

    /// The `authz_name` label: the rule's name or the default policy's.
    pub fn name(&self, authz: Authz) -> &str {
        match authz {
            Authz::Rule(index) => &self.rules[index].name,
            Authz::Default(policy) => policy.name(),
            Authz::Audit => DefaultPolicy::Audit.name(),
        }
    }

    /// How a denial names its cause to the client and in logs: the rule's
    /// name, or `default:<policy>`.
    pub fn describe(&self, authz: Authz) -> String {
        match authz {
            Authz::Rule(index) => self.rules[index].name.clone(),
            Authz::Default(_) | Authz::Audit => format!("default:{}", self.name(authz)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    const WEB: &str = "web.default.serviceaccount.identity.weft.cluster.local";

    fn policy(json: &str) -> Policy {
        config::parse(json).unwrap()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    fn tcp<'a>(client: &str, port: u16, identity: Option<&'a str>) -> Attributes<'a> {
        Attributes {
            client_ip: ip(client),
            local_port: port,
            identity,
            http: None,
        }
    }

    fn http<'a>(
        client: &str,
        identity: Option<&'a str>,
        method: &'a str,
        path: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            http: Some(HttpAttributes { method, path }),
            ..tcp(client, 8080, identity)
        }
    }

    fn allowed(policy: &Policy, attrs: &Attributes<'_>) -> bool {
        policy.decide(attrs).allowed
    }

    #[test]
    fn all_unauthenticated_is_the_default_and_allows_everyone() {
        let policy = policy("{}");
        assert_eq!(policy.default, DefaultPolicy::AllUnauthenticated);
        let decision = policy.decide(&tcp("203.0.113.9", 80, None));
        assert_eq!(
            decision,
            Decision {
                allowed: true,
                authz: Authz::Default(DefaultPolicy::AllUnauthenticated)
            }
        );
        assert_eq!(decision.authz.kind(), "default");
        assert_eq!(policy.name(decision.authz), "all-unauthenticated");
    }

    #[test]
    fn all_authenticated_needs_an_identity() {
        let policy = policy(r#"{"defaultPolicy": "all-authenticated"}"#);
        assert!(allowed(&policy, &tcp("203.0.113.9", 80, Some(WEB))));
        assert!(!allowed(&policy, &tcp("10.0.0.1", 80, None)));
        assert!(!allowed(&policy, &tcp("10.0.0.1", 80, Some(""))));
    }

    #[test]
    fn cluster_unauthenticated_needs_a_cluster_address() {
        let policy = policy(r#"{"defaultPolicy": "cluster-unauthenticated"}"#);
        for client in ["10.0.0.1", "100.64.0.1", "172.31.255.255", "192.168.1.1"] {
            assert!(allowed(&policy, &tcp(client, 80, None)), "{client}");
        }
        for client in ["203.0.113.9", "100.128.0.1", "172.32.0.1", "::1"] {
            assert!(!allowed(&policy, &tcp(client, 80, Some(WEB))), "{client}");
        }
        let unknown = Attributes {
            client_ip: None,
            ..tcp("10.0.0.1", 80, None)
        };
        assert!(!allowed(&policy, &unknown));
    }

    #[test]
    fn cluster_authenticated_needs_both() {
        let policy = policy(r#"{"defaultPolicy": "cluster-authenticated"}"#);
        assert!(allowed(&policy, &tcp("10.0.0.1", 80, Some(WEB))));
        assert!(!allowed(&policy, &tcp("10.0.0.1", 80, None)));
        assert!(!allowed(&policy, &tcp("203.0.113.9", 80, Some(WEB))));
    }

    #[test]
    fn cluster_networks_can_be_replaced() {
        let policy = policy(
            r#"{"defaultPolicy": "cluster-unauthenticated", "clusterNetworks": ["fd00::/8"]}"#,
        );
        assert!(allowed(&policy, &tcp("fd00::1", 80, None)));
        assert!(!allowed(&policy, &tcp("10.0.0.1", 80, None)));
    }

    #[test]
    fn deny_denies_and_names_the_default() {
        let policy = policy(r#"{"defaultPolicy": "deny"}"#);
        let decision = policy.decide(&tcp("10.0.0.1", 80, Some(WEB)));
        assert!(!decision.allowed);
        assert_eq!(policy.name(decision.authz), "deny");
        assert_eq!(policy.describe(decision.authz), "default:deny");
    }

    #[test]
    fn audit_allows_and_says_so() {
        let policy = policy(r#"{"defaultPolicy": "audit"}"#);
        let decision = policy.decide(&tcp("203.0.113.9", 80, None));
        assert_eq!(
            decision,
            Decision {
                allowed: true,
                authz: Authz::Audit
            }
        );
        assert_eq!(decision.authz.kind(), "audit");
        assert_eq!(policy.name(decision.authz), "audit");
    }

    #[test]
    fn rules_decide_before_the_default() {
        let policy = policy(
            r#"{"defaultPolicy": "audit", "rules": [
                {"name": "no-ssh", "action": "deny", "ports": [22]}
            ]}"#,
        );
        let decision = policy.decide(&tcp("10.0.0.1", 22, Some(WEB)));
        assert_eq!(
            decision,
            Decision {
                allowed: false,
                authz: Authz::Rule(0)
            }
        );
        assert_eq!(decision.authz.kind(), "rule");
        assert_eq!(policy.name(decision.authz), "no-ssh");
        assert_eq!(policy.describe(decision.authz), "no-ssh");
        assert_eq!(
            policy.decide(&tcp("10.0.0.1", 2222, None)).authz,
            Authz::Audit
        );
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let policy = policy(
            r#"{"defaultPolicy": "deny", "rules": [
                {"name": "block-admin", "action": "deny", "pathPrefixes": ["/admin"]},
                {"name": "mesh", "identities": ["*"]},
                {"name": "admin-for-ops", "identities": ["ops.default.serviceaccount.identity.weft.cluster.local"], "pathPrefixes": ["/admin"]}
            ]}"#,
        );
        let ops = "ops.default.serviceaccount.identity.weft.cluster.local";
        // The later, more specific allow never gets a say.
        let decision = policy.decide(&http("10.0.0.1", Some(ops), "GET", "/admin/users"));
        assert_eq!(
            decision,
            Decision {
                allowed: false,
                authz: Authz::Rule(0)
            }
        );
        assert_eq!(
            policy.decide(&http("10.0.0.1", Some(ops), "GET", "/")),
            Decision {
                allowed: true,
                authz: Authz::Rule(1)
            }
        );
        assert_eq!(
            policy.decide(&http("10.0.0.1", None, "GET", "/")),
            Decision {
                allowed: false,
                authz: Authz::Default(DefaultPolicy::Deny)
            }
        );
    }

    #[test]
    fn every_given_field_must_match() {
        let policy = policy(
            r#"{"defaultPolicy": "deny", "rules": [{"name": "web-reads",
                "identities": ["*.prod.serviceaccount.identity.weft.cluster.local"],
                "clientCidrs": ["10.1.0.0/16", "::1/128"],
                "ports": [8080],
                "pathPrefixes": ["/api"],
                "methods": ["GET", "HEAD"]}]}"#,
        );
        let prod = "web.prod.serviceaccount.identity.weft.cluster.local";
        assert!(allowed(
            &policy,
            &http("10.1.2.3", Some(prod), "GET", "/api/x")
        ));
        assert!(allowed(&policy, &http("::1", Some(prod), "HEAD", "/api?q")));
        for (attrs, why) in [
            (http("10.1.2.3", Some(WEB), "GET", "/api"), "identity"),
            (http("10.1.2.3", None, "GET", "/api"), "no identity"),
            (http("10.2.0.1", Some(prod), "GET", "/api"), "client"),
            (http("::2", Some(prod), "GET", "/api"), "v6 client"),
            (http("10.1.2.3", Some(prod), "POST", "/api"), "method"),
            (http("10.1.2.3", Some(prod), "get", "/api"), "method case"),
            (http("10.1.2.3", Some(prod), "GET", "/apix"), "path"),
            (
                Attributes {
                    local_port: 9090,
                    ..http("10.1.2.3", Some(prod), "GET", "/api")
                },
                "port",
            ),
        ] {
            assert!(!allowed(&policy, &attrs), "{why}");
        }
    }

    #[test]
    fn a_rule_with_no_fields_matches_everything() {
        let policy = policy(r#"{"rules": [{"name": "closed", "action": "deny"}]}"#);
        assert!(!allowed(&policy, &tcp("10.0.0.1", 80, Some(WEB))));
        assert!(!allowed(&policy, &http("10.0.0.1", None, "GET", "/")));
    }

    #[test]
    fn tcp_skips_rules_about_paths_and_methods() {
        let policy = policy(
            r#"{"defaultPolicy": "deny", "rules": [
                {"name": "deny-posts", "action": "deny", "methods": ["POST"]},
                {"name": "api-only", "pathPrefixes": ["/api"]},
                {"name": "port-5432", "ports": [5432]}
            ]}"#,
        );
        assert_eq!(
            policy.decide(&tcp("10.0.0.1", 5432, None)),
            Decision {
                allowed: true,
                authz: Authz::Rule(2)
            }
        );
        assert_eq!(
            policy.decide(&tcp("10.0.0.1", 80, None)),
            Decision {
                allowed: false,
                authz: Authz::Default(DefaultPolicy::Deny)
            }
        );
        assert_eq!(
            policy.decide(&http("10.0.0.1", None, "POST", "/api")).authz,
            Authz::Rule(0)
        );
    }

    #[test]
    fn a_port_policy_decides_its_port_in_place_of_the_default() {
        let policy = policy(&format!(
            r#"{{"defaultPolicy": "all-unauthenticated",
                "portPolicies": {{"8080": "deny", "9090": "all-authenticated"}},
                "rules": [{{"name": "load", "identities": ["{WEB}"], "ports": [8080]}}]}}"#
        ));
        let on = |port, identity| Attributes {
            local_port: port,
            ..tcp("10.0.0.1", 80, identity)
        };
        assert_eq!(
            policy.decide(&on(8080, None)),
            Decision {
                allowed: false,
                authz: Authz::Default(DefaultPolicy::Deny)
            }
        );
        assert_eq!(
            policy.describe(Authz::Default(DefaultPolicy::Deny)),
            "default:deny"
        );
        assert_eq!(policy.decide(&on(8080, Some(WEB))).authz, Authz::Rule(0));
        let other = "db.default.serviceaccount.identity.weft.cluster.local";
        assert!(!allowed(&policy, &on(8080, Some(other))));
        assert!(allowed(&policy, &on(9090, Some(other))));
        assert!(!allowed(&policy, &on(9090, None)));
        assert_eq!(
            policy.decide(&on(7070, None)),
            Decision {
                allowed: true,
                authz: Authz::Default(DefaultPolicy::AllUnauthenticated)
            }
        );
        let name = policy.name(policy.decide(&on(9090, None)).authz);
        assert_eq!(name, "all-authenticated");
    }

    #[test]
    fn excepted_networks_are_left_out_of_the_rule() {
        let policy = policy(
            r#"{"defaultPolicy": "deny", "rules": [
                {"name": "pods", "clientCidrs": ["10.0.0.0/8", "fd00::/8"], "clientCidrsExcept": ["10.1.0.0/16", "fd00::1/128"]},
                {"name": "anywhere-but", "clientCidrsExcept": ["192.168.0.0/16"]}
            ]}"#,
        );
        assert_eq!(
            policy.decide(&tcp("10.2.0.1", 80, None)).authz,
            Authz::Rule(0)
        );
        assert_eq!(
            policy.decide(&tcp("fd00::2", 80, None)).authz,
            Authz::Rule(0)
        );
        // Excepted from the first, so the second decides.
        assert_eq!(
            policy.decide(&tcp("10.1.0.1", 80, None)).authz,
            Authz::Rule(1)
        );
        assert_eq!(
            policy.decide(&tcp("fd00::1", 80, None)).authz,
            Authz::Rule(1)
        );
        assert_eq!(
            policy.decide(&tcp("192.168.1.1", 80, None)).authz,
            Authz::Default(DefaultPolicy::Deny)
        );
        let unknown = Attributes {
            client_ip: None,
            ..tcp("10.0.0.1", 80, None)
        };
        assert!(
            !allowed(&policy, &unknown),
            "an unknown address is not shown outside"
        );
    }
}
