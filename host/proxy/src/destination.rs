//! Where traffic goes when it is not to a service the controller balances
//! (`discovery.rs`): outbound HTTP to the address its authority resolves to,
//! inbound traffic to the local app.
//!
//! [`Peers`] asks the controller's Destination API who receives at an
//! endpoint, so traffic to a meshed workload goes over mTLS to the identity
//! expected there.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::uri::Authority;
use rustls::pki_types::ServerName;
use tonic::transport::Channel;
use weft_api::destination::GetEndpointRequest;
use weft_api::destination::destination_client::DestinationClient;

use crate::errors::ProxyError;
use crate::lock;

/// How long an answer is used before it is asked again (in the background:
/// requests go on with the answer they have).
const FRESH_FOR: Duration = Duration::from_secs(10);
/// How long a first request waits for the controller's answer before it
/// goes out as the app sent it.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a DNS answer is used before the name is looked up again.
const DNS_FRESH_FOR: Duration = Duration::from_secs(5);
/// Endpoints (and names) remembered; past this the stalest are forgotten.
const MAX_REMEMBERED: usize = 10_000;

pub struct Destinations {
    /// Addresses that would send a request straight back into this proxy.
    own_addrs: Vec<SocketAddr>,
    /// DNS answers by `(host, port)`, so a request costs no lookup.
    dns: Mutex<HashMap<(String, u16), (SocketAddr, Instant)>>,
}

impl Destinations {
    pub fn new(own_addrs: Vec<SocketAddr>) -> Self {
        Self {
            own_addrs,
            dns: Mutex::default(),
        }
    }

    /// The endpoint for an outbound request's authority: an IP as it is, a
    /// name as DNS answers it (the answer kept for [`DNS_FRESH_FOR`]; while
    /// DNS fails, a stale answer keeps serving).
    pub async fn resolve(&self, authority: &Authority) -> Result<SocketAddr, ProxyError> {
        let port = authority.port_u16().unwrap_or(80);
        let host = authority.host();
        let ip_literal = host.trim_start_matches('[').trim_end_matches(']');
        let addr = match ip_literal.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => self.lookup(authority, host, port).await?,
        };
        self.check_loop(addr)
    }

    async fn lookup(
        &self,
        authority: &Authority,
        host: &str,
        port: u16,
    ) -> Result<SocketAddr, ProxyError> {
        let key = (host.to_ascii_lowercase(), port);
        let known = lock(&self.dns).get(&key).copied();
        if let Some((addr, asked)) = known
            && asked.elapsed() < DNS_FRESH_FOR
        {
            return Ok(addr);
        }
        let resolve_error = |source| ProxyError::Resolve {
            authority: authority.to_string(),
            source,
        };
        let answer = tokio::net::lookup_host((host, port))
            .await
            .and_then(|mut addrs| addrs.next().ok_or(std::io::ErrorKind::NotFound.into()));
        match (answer, known) {
            (Ok(addr), _) => {
                let mut dns = lock(&self.dns);
                if dns.len() >= MAX_REMEMBERED {
                    dns.retain(|_, (_, asked)| asked.elapsed() < DNS_FRESH_FOR);
                }
                if dns.len() < MAX_REMEMBERED {
                    dns.insert(key, (addr, Instant::now()));
                }
                Ok(addr)
            }
            (Err(error), Some((stale, _))) => {
                tracing::debug!(%authority, %error, "DNS failed; the last answer serves");
                Ok(stale)
            }
            (Err(error), None) => Err(resolve_error(error)),
        }
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

/// Which endpoints are meshed, and as whom, from the controller.
pub struct Peers {
    client: DestinationClient<Channel>,
    known: Mutex<HashMap<SocketAddr, Known>>,
}

#[derive(Clone)]
struct Known {
    /// `None`: not meshed.
    peer: Option<Peer>,
    asked: Instant,
    refreshing: bool,
}

/// A meshed endpoint's proxy.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    /// The identity it proves.
    pub identity: ServerName<'static>,
    /// The port it receives on itself, where opaque TCP goes with the
    /// transport header naming the port meant; `None` when not known.
    pub transport_port: Option<u16>,
}

impl Peers {
    /// Asks the controller over `controller` (connecting when first
    /// needed, and again after it was away).
    pub fn new(controller: Channel) -> Arc<Self> {
        Arc::new(Self {
            client: DestinationClient::new(controller),
            known: Mutex::default(),
        })
    }

    /// The identity the proxy at `addr` proves, or `None` for an endpoint
    /// no meshed workload receives on. Unknown endpoints wait for the
    /// controller (briefly: without an answer they go in the clear, as the
    /// app asked); known ones answer at once and are refreshed behind.
    /// While the controller is away, the last answers keep serving.
    pub async fn identity(self: &Arc<Self>, addr: SocketAddr) -> Option<ServerName<'static>> {
        self.peer(addr).await.map(|peer| peer.identity)
    }

    /// As [`Peers::identity`], with the port the peer proxy receives on.
    pub async fn peer(self: &Arc<Self>, addr: SocketAddr) -> Option<Peer> {
        let known = self.lock().get(&addr).cloned();
        match known {
            Some(known) => {
                if known.asked.elapsed() >= FRESH_FOR && !known.refreshing {
                    self.refresh_behind(addr);
                }
                known.peer
            }
            None => match tokio::time::timeout(LOOKUP_TIMEOUT, self.ask(addr)).await {
                Ok(Ok(peer)) => {
                    self.remember(addr, peer.clone());
                    peer
                }
                Ok(Err(error)) => {
                    tracing::info!(%addr, %error, "cannot learn whether the endpoint is meshed");
                    None
                }
                Err(_elapsed) => {
                    tracing::info!(%addr, "the controller did not say in time whether the endpoint is meshed");
                    None
                }
            },
        }
    }

    fn refresh_behind(self: &Arc<Self>, addr: SocketAddr) {
        if let Some(known) = self.lock().get_mut(&addr) {
            known.refreshing = true;
        }
        let peers = self.clone();
        tokio::spawn(async move {
            match peers.ask(addr).await {
                Ok(peer) => peers.remember(addr, peer),
                Err(error) => {
                    tracing::debug!(%addr, %error, "cannot refresh the endpoint; keeping what is known");
                    if let Some(known) = peers.lock().get_mut(&addr) {
                        known.refreshing = false;
                        known.asked = Instant::now();
                    }
                }
            }
        });
    }

    async fn ask(&self, addr: SocketAddr) -> Result<Option<Peer>, tonic::Status> {
        let endpoint = self
            .client
            .clone()
            .get_endpoint(GetEndpointRequest {
                address: addr.to_string(),
            })
            .await?
            .into_inner();
        if endpoint.identity.is_empty() {
            return Ok(None);
        }
        let identity = ServerName::try_from(endpoint.identity.clone()).map_err(|_| {
            tonic::Status::internal(format!(
                "the controller named {addr} as {:?}, not a DNS name",
                endpoint.identity
            ))
        })?;
        let transport_port = u16::try_from(endpoint.opaque_transport_port)
            .ok()
            .filter(|port| *port != 0);
        Ok(Some(Peer {
            identity,
            transport_port,
        }))
    }

    fn remember(&self, addr: SocketAddr, peer: Option<Peer>) {
        let mut known = self.lock();
        if known.len() >= MAX_REMEMBERED && !known.contains_key(&addr) {
            let stalest = known.iter().min_by_key(|(_, k)| k.asked).map(|(a, _)| *a);
            known.remove(&stalest.expect("the map is full"));
        }
        known.insert(
            addr,
            Known {
                peer,
                asked: Instant::now(),
                refreshing: false,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Known>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
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
