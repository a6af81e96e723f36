//! The annotations that steer injection, read from the pod template and its
//! namespace. Each has a Weft name and a Linkerd name, so manifests written
//! for Linkerd inject unchanged: the pod's annotations win over the
//! namespace's, and at the same place the Weft name wins over Linkerd's.

use std::collections::BTreeMap;
use std::fmt;

use crate::Refusal;
use crate::settings::{INBOUND_POLICIES, Resources, Settings};

/// `weft.io/inject: enabled | disabled` (and `linkerd.io/inject`).
pub const INJECT: [&str; 2] = ["weft.io/inject", "linkerd.io/inject"];
pub const WEFT_CONFIG_PREFIX: &str = "config.weft.io/";
pub const LINKERD_CONFIG_PREFIX: &str = "config.linkerd.io/";

/// The names after `config.weft.io/` (or `config.linkerd.io/`) read here.
pub mod config {
    pub const PROXY_IMAGE: &str = "proxy-image";
    pub const PROXY_VERSION: &str = "proxy-version";
    pub const SKIP_INBOUND_PORTS: &str = "skip-inbound-ports";
    pub const SKIP_OUTBOUND_PORTS: &str = "skip-outbound-ports";
    pub const OPAQUE_PORTS: &str = "opaque-ports";
    pub const REQUIRE_IDENTITY: &str = "proxy-require-identity-on-inbound-ports";
    pub const CPU_REQUEST: &str = "proxy-cpu-request";
    pub const CPU_LIMIT: &str = "proxy-cpu-limit";
    pub const MEMORY_REQUEST: &str = "proxy-memory-request";
    pub const MEMORY_LIMIT: &str = "proxy-memory-limit";
    pub const LOG_LEVEL: &str = "proxy-log-level";
    pub const DEFAULT_INBOUND_POLICY: &str = "default-inbound-policy";
    /// The OTLP/gRPC collector, `host:port`, the proxy sends spans to.
    pub const TRACE_COLLECTOR: &str = "trace-collector";
    /// `true` or `false`; Linkerd names it under `config.alpha.linkerd.io/`.
    pub const NATIVE_SIDECAR: &str = "proxy-enable-native-sidecar";
}

/// Where Linkerd keeps its alpha settings (`proxy-enable-native-sidecar`).
pub const LINKERD_ALPHA_CONFIG_PREFIX: &str = "config.alpha.linkerd.io/";

/// Read only under their `config.weft.io/` names.
const WEFT_ONLY: [&str; 2] = [config::PROXY_IMAGE, config::PROXY_VERSION];

pub type Annotations = BTreeMap<String, String>;

/// Where an annotation was found, for refusal messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Pod,
    Namespace,
}

/// One annotation found, by the name it was found under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub value: String,
    pub place: Place,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let place = match self.place {
            Place::Pod => "pod",
            Place::Namespace => "namespace",
        };
        write!(f, "{place} annotation {}: {}", self.name, self.value)
    }
}

/// The pod template's and its namespace's annotations, read in order of
/// precedence.
pub struct Lookup<'a> {
    pub pod: &'a Annotations,
    pub namespace: &'a Annotations,
}

impl Lookup<'_> {
    /// The first of `names` set on the pod, else on the namespace.
    pub fn first(&self, names: &[&str]) -> Option<Found> {
        [(self.pod, Place::Pod), (self.namespace, Place::Namespace)]
            .into_iter()
            .find_map(|(annotations, place)| {
                names.iter().find_map(|name| {
                    annotations.get(*name).map(|value| Found {
                        name: name.to_string(),
                        value: value.trim().to_string(),
                        place,
                    })
                })
            })
    }

    /// `config.weft.io/<key>`, else `config.linkerd.io/<key>` — except for
    /// the image and its version, whose Linkerd names point at Linkerd's
    /// proxy, which cannot stand in for Weft's.
    pub fn config(&self, key: &str) -> Option<Found> {
        let weft = format!("{WEFT_CONFIG_PREFIX}{key}");
        if WEFT_ONLY.contains(&key) {
            return self.first(&[&weft]);
        }
        let linkerd = format!("{LINKERD_CONFIG_PREFIX}{key}");
        let linkerd_alpha = format!("{LINKERD_ALPHA_CONFIG_PREFIX}{key}");
        self.first(&[&weft, &linkerd, &linkerd_alpha])
    }
}

/// The proxy's configuration for one pod: the settings, overridden by the
/// annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodConfig {
    pub image: String,
    pub version: String,
    pub skip_inbound_ports: String,
    pub skip_outbound_ports: String,
    pub opaque_ports: String,
    pub require_identity_ports: String,
    pub log_level: String,
    pub default_inbound_policy: String,
    pub resources: Resources,
    pub native_sidecar: bool,
    /// `WEFT_PROXY_TRACE_COLLECTOR`; unset, the proxy exports no spans.
    pub trace_collector: Option<String>,
}

impl PodConfig {
    /// Reads every configuration annotation; a bad value refuses the pod
    /// rather than giving it a proxy that was not asked for.
    /// `named_ports` are the pod's container ports by name, which port
    /// lists may use.
    pub fn read(
        lookup: &Lookup<'_>,
        settings: &Settings,
        named_ports: &BTreeMap<String, u16>,
    ) -> Result<Self, Refusal> {
        use config::*;
        let text = |key: &str, default: &str| match lookup.config(key) {
            Some(found) if found.value.is_empty() || found.value.contains(char::is_whitespace) => {
                Err(bad(found, "expected a value without spaces"))
            }
            Some(found) => Ok(found.value),
            None => Ok(default.to_string()),
        };
        let ports = |key: &str, default: &str| match lookup.config(key) {
            Some(found) => port_list(&found.value, named_ports).map_err(|why| bad(found, &why)),
            None => port_list(default, named_ports).map_err(|why| Refusal::BadSetting {
                setting: key.to_string(),
                reason: why,
            }),
        };
        let quantity = |key: &str, default: &Option<String>| match lookup.config(key) {
            Some(found) if is_quantity(&found.value) => Ok(Some(found.value)),
            Some(found) => Err(bad(found, "expected a quantity like 100m, 0.5 or 64Mi")),
            None => Ok(default.clone()),
        };
        let policy = match lookup.config(DEFAULT_INBOUND_POLICY) {
            Some(found) if INBOUND_POLICIES.contains(&found.value.as_str()) => found.value,
            Some(found) => {
                let why = format!("expected one of {}", INBOUND_POLICIES.join(", "));
                return Err(bad(found, &why));
            }
            None => settings.default_inbound_policy.clone(),
        };
        let log_level = match lookup.config(LOG_LEVEL) {
            Some(found) if found.value.is_empty() => return Err(bad(found, "expected a filter")),
            Some(found) => found.value,
            None => settings.log_level.clone(),
        };
        let native_sidecar = match lookup.config(NATIVE_SIDECAR) {
            Some(found) if found.value == "true" => true,
            Some(found) if found.value == "false" => false,
            Some(found) => return Err(bad(found, "expected true or false")),
            None => settings.native_sidecar,
        };
        let trace_collector = match lookup.config(TRACE_COLLECTOR) {
            Some(found) if is_host_port(&found.value) => Some(found.value),
            Some(found) => return Err(bad(found, "expected host:port")),
            None => None,
        };
        let defaults = &settings.resources;
        Ok(Self {
            image: text(PROXY_IMAGE, &settings.proxy_image())?,
            version: text(PROXY_VERSION, &settings.proxy_version)?,
            skip_inbound_ports: ports(SKIP_INBOUND_PORTS, "")?,
            skip_outbound_ports: ports(SKIP_OUTBOUND_PORTS, "")?,
            opaque_ports: ports(OPAQUE_PORTS, &settings.opaque_ports)?,
            require_identity_ports: ports(REQUIRE_IDENTITY, "")?,
            log_level,
            default_inbound_policy: policy,
            resources: Resources {
                cpu_request: quantity(CPU_REQUEST, &defaults.cpu_request)?,
                cpu_limit: quantity(CPU_LIMIT, &defaults.cpu_limit)?,
                memory_request: quantity(MEMORY_REQUEST, &defaults.memory_request)?,
                memory_limit: quantity(MEMORY_LIMIT, &defaults.memory_limit)?,
            },
            native_sidecar,
            trace_collector,
        })
    }
}

/// `host:port`, as the proxy reads its collector: a name or an address
/// and a port, nothing else.
fn is_host_port(value: &str) -> bool {
    let Some((host, port)) = value.rsplit_once(':') else {
        return false;
    };
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

fn bad(found: Found, reason: &str) -> Refusal {
    Refusal::BadAnnotation {
        annotation: found.to_string(),
        reason: reason.to_string(),
    }
}

/// A port list as the proxy and `weft-proxy init` read it (`25,5000-5010`),
/// from ports, ranges and the names of the pod's container ports.
pub fn port_list(value: &str, named_ports: &BTreeMap<String, u16>) -> Result<String, String> {
    let port = |p: &str| match p.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("`{p}` is not a port from 1 to 65535")),
        Ok(port) => Ok(port),
    };
    let mut items = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if let Some((lo, hi)) = item.split_once('-') {
            let (lo, hi) = (port(lo)?, port(hi)?);
            if lo > hi {
                return Err(format!("`{item}` is an empty range"));
            }
            items.push(format!("{lo}-{hi}"));
        } else if item.starts_with(|c: char| c.is_ascii_digit()) {
            items.push(port(item)?.to_string());
        } else {
            let port = named_ports
                .get(item)
                .ok_or_else(|| format!("no container port is named `{item}`"))?;
            items.push(port.to_string());
        }
    }
    Ok(items.join(","))
}

/// A Kubernetes resource quantity: a decimal number and an optional
/// binary (`Ki`…`Ei`) or decimal (`n`, `u`, `m`, `k`, `M`…`E`) suffix or
/// exponent (`1e3`).
pub fn is_quantity(value: &str) -> bool {
    let unsigned = value.strip_prefix(['+', '-']).unwrap_or(value);
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return false;
    }
    const SUFFIXES: [&str; 16] = [
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    if SUFFIXES.contains(&suffix) {
        return true;
    }
    suffix
        .strip_prefix(['e', 'E'])
        .map(|exponent| exponent.strip_prefix(['+', '-']).unwrap_or(exponent))
        .is_some_and(|exponent| {
            !exponent.is_empty() && exponent.chars().all(|c| c.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests;
