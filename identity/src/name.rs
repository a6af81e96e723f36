//! Identity names. A workload's identity is its Kubernetes service account,
//! written as Linkerd writes it so that policies naming Linkerd identities
//! read the same here:
//! `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<trust-domain>`,
//! plus the SPIFFE ID `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`.

use std::fmt;

/// A Kubernetes service account, the unit of identity.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
}

/// Where identities are issued: the control plane's namespace and the
/// trust domain (`cluster.local` unless the cluster says otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustDomain {
    control_plane_namespace: String,
    domain: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("{what} {value:?} is not a DNS label (lowercase letters, digits and '-', at most 63)")]
    NotALabel { what: &'static str, value: String },
    #[error("trust domain {0:?} is not a DNS name")]
    BadDomain(String),
    #[error("{name:?} is not an identity of trust domain {domain} (want <sa>.<ns>.{suffix})")]
    Foreign {
        name: String,
        domain: String,
        suffix: String,
    },
}

impl ServiceAccount {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Result<Self, NameError> {
        let sa = Self {
            namespace: namespace.into(),
            name: name.into(),
        };
        check_label("namespace", &sa.namespace)?;
        check_label("service account", &sa.name)?;
        Ok(sa)
    }

    /// The name Kubernetes authenticates a service account's token as.
    pub fn username(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.name)
    }

    /// Parses `system:serviceaccount:NS:SA`.
    pub fn from_username(username: &str) -> Option<Self> {
        let rest = username.strip_prefix("system:serviceaccount:")?;
        let (namespace, name) = rest.split_once(':')?;
        Self::new(namespace, name).ok()
    }
}

impl fmt::Display for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl Default for TrustDomain {
    fn default() -> Self {
        Self {
            control_plane_namespace: "weft-system".into(),
            domain: "cluster.local".into(),
        }
    }
}

impl TrustDomain {
    pub fn new(
        control_plane_namespace: impl Into<String>,
        domain: impl Into<String>,
    ) -> Result<Self, NameError> {
        let trust = Self {
            control_plane_namespace: control_plane_namespace.into(),
            domain: domain.into(),
        };
        check_label("control-plane namespace", &trust.control_plane_namespace)?;
        if trust.domain.is_empty()
            || trust
                .domain
                .split('.')
                .any(|label| check_label("domain", label).is_err())
        {
            return Err(NameError::BadDomain(trust.domain));
        }
        Ok(trust)
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The common suffix of every identity: `serviceaccount.identity.<ns>.<domain>`.
    pub fn suffix(&self) -> String {
        format!(
            "serviceaccount.identity.{}.{}",
            self.control_plane_namespace, self.domain
        )
    }

    /// The DNS name of a service account's identity (the certificate's DNS
    /// SAN and the SNI a client asks for).
    pub fn identity(&self, sa: &ServiceAccount) -> String {
        format!("{}.{}.{}", sa.name, sa.namespace, self.suffix())
    }

    pub fn spiffe_id(&self, sa: &ServiceAccount) -> String {
        format!(
            "spiffe://{}/ns/{}/sa/{}",
            self.domain, sa.namespace, sa.name
        )
    }

    /// The service account an identity name stands for.
    pub fn service_account(&self, name: &str) -> Result<ServiceAccount, NameError> {
        let foreign = || NameError::Foreign {
            name: name.to_string(),
            domain: self.domain.clone(),
            suffix: self.suffix(),
        };
        let head = name
            .strip_suffix(&self.suffix())
            .and_then(|head| head.strip_suffix('.'))
            .ok_or_else(foreign)?;
        let (sa, namespace) = head.split_once('.').ok_or_else(foreign)?;
        ServiceAccount::new(namespace, sa).map_err(|_| foreign())
    }
}

fn check_label(what: &'static str, value: &str) -> Result<(), NameError> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(NameError::NotALabel {
            what,
            value: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_linkerd_writes_them() {
        let trust = TrustDomain::default();
        let sa = ServiceAccount::new("emojivoto", "web").unwrap();
        let name = trust.identity(&sa);
        assert_eq!(
            name,
            "web.emojivoto.serviceaccount.identity.weft-system.cluster.local"
        );
        assert_eq!(
            trust.spiffe_id(&sa),
            "spiffe://cluster.local/ns/emojivoto/sa/web"
        );
        assert_eq!(trust.service_account(&name).unwrap(), sa);
    }

    #[test]
    fn foreign_and_malformed_names_are_refused() {
        let trust = TrustDomain::default();
        for name in [
            "web.emojivoto.serviceaccount.identity.linkerd.cluster.local",
            "web.serviceaccount.identity.weft-system.cluster.local",
            "a.b.c.serviceaccount.identity.weft-system.cluster.local",
            "Web.ns.serviceaccount.identity.weft-system.cluster.local",
            "xserviceaccount.identity.weft-system.cluster.local",
        ] {
            assert!(trust.service_account(name).is_err(), "{name}");
        }
    }

    #[test]
    fn usernames_are_kubernetes_service_account_usernames() {
        let sa = ServiceAccount::from_username("system:serviceaccount:demo:app").unwrap();
        assert_eq!(sa, ServiceAccount::new("demo", "app").unwrap());
        assert_eq!(sa.username(), "system:serviceaccount:demo:app");
        assert!(ServiceAccount::from_username("system:node:worker-1").is_none());
        assert!(ServiceAccount::from_username("system:serviceaccount:demo").is_none());
    }

    #[test]
    fn trust_domains_are_dns_names() {
        assert!(TrustDomain::new("weft-system", "example.org").is_ok());
        assert!(TrustDomain::new("weft-system", "").is_err());
        assert!(TrustDomain::new("weft-system", "a..b").is_err());
        assert!(TrustDomain::new("Weft", "cluster.local").is_err());
    }
}
