//! IP networks in CIDR notation, parsed with `std::net` alone: the plugin
//! compares every client address against them, so they are stored as
//! integers and a mask.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A network such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cidr {
    V4 { network: u32, prefix: u8 },
    V6 { network: u128, prefix: u8 },
}

impl Cidr {
    /// Whether `ip` lies in this network. IPv4 networks never contain IPv6
    /// addresses (callers canonicalise IPv4-mapped addresses first).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (*self, ip) {
            (Cidr::V4 { network, prefix }, IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(prefix) == network
            }
            (Cidr::V6 { network, prefix }, IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(prefix) == network
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not a CIDR: expected ADDRESS/PREFIX-LENGTH"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{text}`: `{addr}` is not an IP address"))?;
        // `u8::from_str` would take a leading `+`; a prefix length is digits.
        let prefix: u8 = match prefix.bytes().all(|b| b.is_ascii_digit()) {
            true => prefix.parse().ok(),
            false => None,
        }
        .ok_or_else(|| format!("`{text}`: `{prefix}` is not a prefix length"))?;
        let (cidr, host_bits_set) = match addr {
            IpAddr::V4(ip) => {
                if prefix > 32 {
                    return Err(format!("`{text}`: an IPv4 prefix length is at most 32"));
                }
                let ip = u32::from(ip);
                let network = ip & mask_v4(prefix);
                (Cidr::V4 { network, prefix }, network != ip)
            }
            IpAddr::V6(ip) => {
                if prefix > 128 {
                    return Err(format!("`{text}`: an IPv6 prefix length is at most 128"));
                }
                let ip = u128::from(ip);
                let network = ip & mask_v6(prefix);
                (Cidr::V6 { network, prefix }, network != ip)
            }
        };
        // `10.1.2.0/8` is more likely a typo for `/24` than a way to write
        // `10.0.0.0/8`: refuse it rather than guess.
        if host_bits_set {
            return Err(format!(
                "`{text}` has bits set beyond its prefix; the network is `{cidr}`"
            ));
        }
        Ok(cidr)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Cidr::V4 { network, prefix } => {
                write!(f, "{}/{prefix}", std::net::Ipv4Addr::from(network))
            }
            Cidr::V6 { network, prefix } => {
                write!(f, "{}/{prefix}", std::net::Ipv6Addr::from(network))
            }
        }
    }
}

/// The client's IP from an `ip:port` (`[v6]:port`) address, or from a bare
/// IP. IPv4-mapped IPv6 addresses (what a dual-stack listener reports for
/// IPv4 clients) become IPv4, so IPv4 networks match them.
pub fn client_ip(addr: &str) -> Option<IpAddr> {
    let ip = match addr.parse::<std::net::SocketAddr>() {
        Ok(addr) => addr.ip(),
        Err(_) => addr.parse().ok()?,
    };
    Some(ip.to_canonical())
}

fn mask_v4(prefix: u8) -> u32 {
    // A shift by the full width overflows: /0 masks nothing.
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_networks_contain_their_addresses_only() {
        let net = cidr("10.1.0.0/16");
        assert!(net.contains(ip("10.1.0.0")));
        assert!(net.contains(ip("10.1.255.255")));
        assert!(!net.contains(ip("10.2.0.0")));
        assert!(!net.contains(ip("10.0.255.255")));
    }

    #[test]
    fn slash_zero_contains_every_address_of_its_family() {
        let all_v4 = cidr("0.0.0.0/0");
        assert!(all_v4.contains(ip("0.0.0.0")));
        assert!(all_v4.contains(ip("255.255.255.255")));
        assert!(!all_v4.contains(ip("::1")));
        let all_v6 = cidr("::/0");
        assert!(all_v6.contains(ip("::")));
        assert!(all_v6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!all_v6.contains(ip("10.0.0.1")));
    }

    #[test]
    fn host_networks_contain_one_address() {
        let v4 = cidr("127.0.0.1/32");
        assert!(v4.contains(ip("127.0.0.1")));
        assert!(!v4.contains(ip("127.0.0.2")));
        assert!(!v4.contains(ip("127.0.0.0")));
        let v6 = cidr("::1/128");
        assert!(v6.contains(ip("::1")));
        assert!(!v6.contains(ip("::2")));
        assert!(!v6.contains(ip("::")));
    }

    #[test]
    fn ipv6_prefixes_split_inside_a_group() {
        let net = cidr("fd00::/8");
        assert!(net.contains(ip("fd12:3456::1")));
        assert!(!net.contains(ip("fe80::1")));
        let net = cidr("2001:db8:abcd:1200::/56");
        assert!(net.contains(ip("2001:db8:abcd:12ff::1")));
        assert!(!net.contains(ip("2001:db8:abcd:1300::1")));
    }

    #[test]
    fn bad_networks_are_refused_with_the_reason() {
        for (text, reason) in [
            ("10.0.0.0", "expected ADDRESS/PREFIX-LENGTH"),
            ("10.0.0/8", "is not an IP address"),
            ("10.0.0.0/", "is not a prefix length"),
            ("10.0.0.0/+8", "is not a prefix length"),
            ("10.0.0.0/8/8", "is not a prefix length"),
            ("10.0.0.0/33", "at most 32"),
            ("::/129", "at most 128"),
            ("10.0.0.0/256", "is not a prefix length"),
            ("10.1.0.0/8", "the network is `10.0.0.0/8`"),
            ("fd00::1/8", "the network is `fd00::/8`"),
        ] {
            let err = text.parse::<Cidr>().unwrap_err();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn networks_display_as_written() {
        assert_eq!(cidr("100.64.0.0/10").to_string(), "100.64.0.0/10");
        assert_eq!(cidr("fd00::/8").to_string(), "fd00::/8");
    }

    #[test]
    fn client_addresses_are_ip_and_port() {
        assert_eq!(client_ip("10.1.2.3:40000"), Some(ip("10.1.2.3")));
        assert_eq!(client_ip("[::1]:40000"), Some(ip("::1")));
        assert_eq!(client_ip("[::ffff:10.1.2.3]:40000"), Some(ip("10.1.2.3")));
        assert_eq!(client_ip("10.1.2.3"), Some(ip("10.1.2.3")));
        assert_eq!(client_ip("not an address"), None);
    }
}
