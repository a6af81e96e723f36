//! Matching a request's authority as Linkerd names a destination: a host
//! alone takes every port of it, `host:port` only that port, and DNS names
//! compare case-insensitively.

/// A configured authority: a host, and a port when one was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityMatch {
    /// Lower case; IPv6 addresses keep their brackets.
    host: String,
    port: Option<u16>,
}

impl AuthorityMatch {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("must not be empty (leave it out to match any)".to_string());
        }
        let (host, port) = split(text);
        if host.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        if !host.starts_with('[') && host.contains(':') {
            return Err(format!(
                "`{text}` is not host or host:port (an IPv6 address needs brackets)"
            ));
        }
        let valid_byte = |b: u8| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b);
        if !host.bytes().all(valid_byte) {
            return Err(format!("`{text}` has an invalid host"));
        }
        let port = match port {
            // `u16::from_str` would take a leading `+`; a port is digits.
            Some(port) => Some(
                Some(port)
                    .filter(|port| port.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|port| port.parse::<u16>().ok())
                    .filter(|&port| port != 0)
                    .ok_or_else(|| format!("`{text}` has no valid port"))?,
            ),
            None => None,
        };
        Ok(AuthorityMatch {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether a request's authority is this one.
    pub fn matches(&self, authority: &str) -> bool {
        let (host, port) = split(authority);
        host.eq_ignore_ascii_case(&self.host)
            && self
                .port
                .is_none_or(|want| port.and_then(|p| p.parse::<u16>().ok()) == Some(want))
    }
}

/// `host` and the text after its port's colon, if any. The colon of a port
/// is the last one outside an IPv6 address's brackets.
fn split(authority: &str) -> (&str, Option<&str>) {
    let host_end = match authority.strip_prefix('[') {
        Some(rest) => rest.find(']').map_or(authority.len(), |i| i + 2),
        None => authority.rfind(':').unwrap_or(authority.len()),
    };
    let (host, rest) = authority.split_at(host_end);
    match rest.strip_prefix(':') {
        Some(port) => (host, Some(port)),
        None if rest.is_empty() => (host, None),
        // `[::1]x`: not an authority; no port will match it.
        None => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(text: &str) -> AuthorityMatch {
        AuthorityMatch::parse(text).unwrap()
    }

    #[test]
    fn a_host_alone_takes_every_port() {
        let books = authority("books.ns.svc.cluster.local");
        for request in [
            "books.ns.svc.cluster.local",
            "books.ns.svc.cluster.local:8080",
            "books.ns.svc.cluster.local:80",
            "Books.NS.svc.cluster.local:8080",
        ] {
            assert!(books.matches(request), "{request}");
        }
        for request in [
            "books.ns.svc.cluster",
            "books.ns.svc.cluster.local.evil:80",
            "authors.ns.svc.cluster.local:8080",
            "",
        ] {
            assert!(!books.matches(request), "{request}");
        }
    }

    #[test]
    fn a_port_must_be_that_port() {
        let books = authority("Books.ns:8080");
        assert!(books.matches("books.ns:8080"));
        assert!(books.matches("BOOKS.NS:8080"));
        assert!(!books.matches("books.ns:80"));
        assert!(!books.matches("books.ns"));
        assert!(!books.matches("books.ns:08080x"));
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let any_port = authority("[::1]");
        assert!(any_port.matches("[::1]:8080"));
        assert!(any_port.matches("[::1]"));
        assert!(!any_port.matches("[::2]:8080"));
        let one_port = authority("[::1]:8080");
        assert!(one_port.matches("[::1]:8080"));
        assert!(!one_port.matches("[::1]:80"));
        assert!(!one_port.matches("[::1]"));
    }

    #[test]
    fn bad_authorities_are_refused() {
        for (text, error) in [
            ("", "must not be empty (leave it out to match any)"),
            (":80", "`:80` has no host"),
            ("web:", "`web:` has no valid port"),
            ("web:http", "`web:http` has no valid port"),
            ("web:0", "`web:0` has no valid port"),
            ("web:+80", "`web:+80` has no valid port"),
            ("web:70000", "`web:70000` has no valid port"),
            (
                "::1:80",
                "`::1:80` is not host or host:port (an IPv6 address needs brackets)",
            ),
            ("web/x", "`web/x` has an invalid host"),
        ] {
            assert_eq!(AuthorityMatch::parse(text).unwrap_err(), error, "{text}");
        }
    }
}
