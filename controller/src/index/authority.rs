//! The authority a proxy asks the Destination API about, parsed: a
//! Service's cluster DNS name (`name.ns.svc.<cluster domain>`), an IP (a
//! Service's cluster IP, perhaps), or any other host name, which names no
//! Service. Only what is no authority at all is an error.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use super::ServiceRef;

/// The port of an authority that names none, as for `http://`.
pub const DEFAULT_PORT: u16 = 80;

/// The DNS suffix of the cluster's Services (`cluster.local` unless the
/// cluster says otherwise): lowercase, without a trailing dot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterDomain(String);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authority {
    /// `name.ns.svc.<cluster domain>[.][:port]`.
    Service { service: ServiceRef, port: u16 },
    /// `ip:port` (`[ip]:port` for IPv6): a Service's if it is its cluster IP.
    Ip(SocketAddr),
    /// Any other host name: no Service of this cluster.
    Other { host: String, port: u16 },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{authority:?} is not an authority (host[:port], [ipv6][:port]): {reason}")]
pub struct AuthorityError {
    pub authority: String,
    pub reason: &'static str,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cluster domain {0:?} is not a DNS name")]
pub struct ClusterDomainError(String);

impl Default for ClusterDomain {
    fn default() -> Self {
        ClusterDomain("cluster.local".to_string())
    }
}

impl FromStr for ClusterDomain {
    type Err = ClusterDomainError;

    fn from_str(domain: &str) -> Result<Self, Self::Err> {
        let name = dns_name(domain).ok_or_else(|| ClusterDomainError(domain.to_string()))?;
        Ok(ClusterDomain(name))
    }
}

impl fmt::Display for ClusterDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Authority {
    pub fn parse(authority: &str, domain: &ClusterDomain) -> Result<Self, AuthorityError> {
        let refuse = |reason| AuthorityError {
            authority: authority.to_string(),
            reason,
        };
        let (host, port) = split_port(authority).map_err(refuse)?;
        let port = match port {
            None => DEFAULT_PORT,
            Some(text) => match text.parse::<u16>() {
                Ok(port) if port != 0 && text.bytes().all(|b| b.is_ascii_digit()) => port,
                _ => return Err(refuse("the port is not a number from 1 to 65535")),
            },
        };
        if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let ip: Ipv6Addr = v6
                .parse()
                .map_err(|_| refuse("between brackets must be an IPv6 address"))?;
            return Ok(Authority::Ip(SocketAddr::new(ip.into(), port)));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Authority::Ip(SocketAddr::new(ip, port)));
        }
        let host = dns_name(host).ok_or_else(|| refuse("the host is not a DNS name"))?;
        let service = host
            .strip_suffix(domain.0.as_str())
            .and_then(|rest| rest.strip_suffix(".svc."))
            .and_then(|rest| rest.split_once('.'))
            .filter(|(_, namespace)| !namespace.contains('.'));
        Ok(match service {
            Some((name, namespace)) => Authority::Service {
                service: ServiceRef::new(namespace, name),
                port,
            },
            None => Authority::Other { host, port },
        })
    }

    pub fn port(&self) -> u16 {
        match self {
            Authority::Service { port, .. } | Authority::Other { port, .. } => *port,
            Authority::Ip(addr) => addr.port(),
        }
    }
}

/// `host` and the text after its port's `:`, if any. A bare IPv6
/// address (`fd00::1`) has no port; with one it must be bracketed.
fn split_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    if authority.is_empty() {
        return Err("it is empty");
    }
    if authority.starts_with('[') {
        let end = authority.find(']').ok_or("an unclosed [")? + 1;
        let (host, rest) = authority.split_at(end);
        return match rest {
            "" => Ok((host, None)),
            _ => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("text after ]"),
            },
        };
    }
    if authority.parse::<IpAddr>().is_ok() {
        return Ok((authority, None));
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// `name` lowercased, without one trailing dot, if it is a DNS name: labels
/// of 1–63 letters, digits and inner hyphens, 253 characters at most.
fn dns_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    (name.len() <= 253 && name.split('.').all(label_ok)).then_some(name)
}
