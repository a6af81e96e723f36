//! Where traffic goes. Outbound HTTP is routed by the request's authority,
//! inbound traffic to the local app. This is the seam where service
//! discovery and load balancing plug in: `resolve` becomes "pick an endpoint
//! of this service" without the callers changing.

use std::net::{IpAddr, SocketAddr};

use http::uri::Authority;

use crate::errors::ProxyError;

pub struct Destinations {
    /// Addresses that would send a request straight back into this proxy.
    own_addrs: Vec<SocketAddr>,
}

impl Destinations {
    pub fn new(own_addrs: Vec<SocketAddr>) -> Self {
        Self { own_addrs }
    }

    /// The endpoint for an outbound request's authority.
    pub async fn resolve(&self, authority: &Authority) -> Result<SocketAddr, ProxyError> {
        let port = authority.port_u16().unwrap_or(80);
        let host = authority.host();
        let ip_literal = host.trim_start_matches('[').trim_end_matches(']');
        let addr = match ip_literal.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => {
                let resolve_error = |source| ProxyError::Resolve {
                    authority: authority.to_string(),
                    source,
                };
                tokio::net::lookup_host((host, port))
                    .await
                    .map_err(resolve_error)?
                    .next()
                    .ok_or_else(|| resolve_error(std::io::ErrorKind::NotFound.into()))?
            }
        };
        self.check_loop(addr)
    }

    fn check_loop(&self, addr: SocketAddr) -> Result<SocketAddr, ProxyError> {
        let loops = self.own_addrs.iter().any(|own| {
            own.port() == addr.port()
                && (own.ip() == addr.ip() || (own.ip().is_unspecified() && addr.ip().is_loopback()))
        });
        if loops {
            return Err(ProxyError::Loop { addr });
        }
        Ok(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destinations() -> Destinations {
        Destinations::new(vec![
            "127.0.0.1:4140".parse().unwrap(),
            "0.0.0.0:4143".parse().unwrap(),
        ])
    }

    #[tokio::test]
    async fn ip_authorities_resolve_without_lookup() {
        let addr = destinations()
            .resolve(&"10.1.2.3:8080".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(addr, "10.1.2.3:8080".parse().unwrap());
        let addr = destinations()
            .resolve(&"[::1]".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(addr, "[::1]:80".parse().unwrap());
    }

    #[tokio::test]
    async fn names_resolve_through_the_system_resolver() {
        let addr = destinations()
            .resolve(&"localhost:81".parse().unwrap())
            .await
            .unwrap();
        assert!(addr.ip().is_loopback() && addr.port() == 81, "{addr}");
    }

    #[tokio::test]
    async fn requests_back_into_the_proxy_are_refused() {
        for authority in ["127.0.0.1:4140", "127.0.0.1:4143"] {
            let err = destinations()
                .resolve(&authority.parse().unwrap())
                .await
                .unwrap_err();
            assert!(matches!(err, ProxyError::Loop { .. }), "{authority}: {err}");
        }
    }
}
