//! Service discovery: for an authority that names a service (a name under
//! the cluster's service domain, or an IP that may be a Service's cluster
//! IP), the controller's Destination API streams the endpoints, and one
//! [`Balancer`] per service spreads requests among them. An authority the
//! controller knows no service by goes where DNS (or the IP) says, as the
//! app asked.
//!
//! Each service followed keeps its stream open while it is used; one idle
//! for [`IDLE_AFTER`] is forgotten. While the controller is away, the last
//! endpoints keep serving, and the stream is asked again with backoff.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use http::uri::Authority;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use rustls::pki_types::ServerName;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tonic::transport::Channel;
use weft_api::destination::destination_client::DestinationClient;
use weft_api::destination::{GetDestination, LoadBalancer, Update, update};

use crate::balance::{Balancer, DEFAULT_WEIGHT};
use crate::http::Upstream;
use crate::lock;

mod opaque;

pub use opaque::OpenConnection;
use opaque::OpenConnections;

/// How long the first request to a service waits for the controller's
/// first answer before it goes where DNS says.
const FIRST_ANSWER_WITHIN: Duration = Duration::from_secs(1);
/// A service no request used this long is forgotten (its stream closed).
pub const IDLE_AFTER: Duration = Duration::from_secs(60);
/// Services followed at once; past this the least recently used goes.
const MAX_SERVICES: usize = 1_000;
/// Backoff between attempts to follow a service while the controller is
/// away.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// What the controller said of an authority.
#[derive(Clone, Debug, Default)]
pub enum Resolved {
    /// No answer yet.
    #[default]
    Unknown,
    /// No such service: DNS decides.
    NotAService,
    Service(Arc<ServiceEndpoints>),
}

#[derive(Debug, Default)]
pub struct ServiceEndpoints {
    pub endpoints: BTreeMap<SocketAddr, EndpointMeta>,
    pub load_balancer: LoadBalancer,
}

/// What a client needs of one endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointMeta {
    /// The identity its proxy proves; `None`: unmeshed, plaintext.
    pub identity: Option<ServerName<'static>>,
    /// `dst_*` labels, the service's and the endpoint's, sorted.
    pub labels: Arc<[(String, String)]>,
    /// Its share relative to the others' ([`DEFAULT_WEIGHT`] each unless
    /// the controller says otherwise).
    pub weight: u32,
}

pub struct Discovery {
    client: DestinationClient<Channel>,
    /// Names under these domains are asked of the controller.
    suffixes: Vec<String>,
    upstream: Arc<Upstream>,
    services: Mutex<HashMap<String, Arc<Followed>>>,
}

/// A service being followed.
struct Followed {
    resolved: watch::Receiver<Resolved>,
    asked: Instant,
    used: Mutex<Instant>,
    balancer: Mutex<Option<Arc<Balancer>>>,
    /// Opaque connections open to each endpoint.
    opaque: OpenConnections,
    follow: AbortHandle,
}

impl Drop for Followed {
    fn drop(&mut self) {
        self.follow.abort();
    }
}

impl Discovery {
    /// Asks the controller about IPs and names under `suffixes` (e.g.
    /// `svc.cluster.local`); requests to services go out through
    /// `upstream`.
    pub fn new(controller: Channel, suffixes: &[String], upstream: Arc<Upstream>) -> Arc<Self> {
        let discovery = Arc::new(Self {
            client: DestinationClient::new(controller),
            suffixes: suffixes
                .iter()
                .map(|s| s.trim_matches('.').to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect(),
            upstream,
            services: Mutex::default(),
        });
        tokio::spawn(forget_idle(Arc::downgrade(&discovery)));
        discovery
    }

    /// The balancer for `authority`'s service, or `None` when it names no
    /// service (or the controller has not said in time): route by DNS.
    pub async fn balancer(&self, authority: &Authority) -> Option<Arc<Balancer>> {
        let key = self.service_key(authority)?;
        let followed = self.followed(key);
        let service = service(&followed).await?;
        let mut balancer = lock(&followed.balancer);
        let current = balancer
            .as_ref()
            .filter(|b| b.kind() == service.load_balancer);
        if let Some(current) = current {
            return Some(current.clone());
        }
        // New, or the Service asked for another algorithm: requests in
        // flight finish on the old one.
        let fresh = Arc::new(Balancer::new(
            authority.as_str().into(),
            service.load_balancer,
            followed.resolved.clone(),
            self.upstream.clone(),
        ));
        *balancer = Some(fresh.clone());
        Some(fresh)
    }

    /// Where a new opaque connection to `target` goes when the controller
    /// knows `target` as a Service (its cluster IP and port): one of its
    /// endpoints, with the connection's hold on it; `None`: to `target`.
    pub async fn opaque_endpoint(
        &self,
        target: SocketAddr,
    ) -> Option<(SocketAddr, OpenConnection)> {
        let followed = self.followed(target.to_string());
        let service = service(&followed).await?;
        let endpoints: Vec<SocketAddr> = service.endpoints.keys().copied().collect();
        followed.opaque.pick(&endpoints)
    }

    /// Every balancer in use, for the metrics.
    pub fn balancers(&self) -> Vec<Arc<Balancer>> {
        lock(&self.services)
            .values()
            .filter_map(|followed| lock(&followed.balancer).clone())
            .collect()
    }

    fn service_key(&self, authority: &Authority) -> Option<String> {
        service_key(&self.suffixes, authority)
    }
}

/// The service `followed` names, once the controller has said (waiting
/// for its first answer at most [`FIRST_ANSWER_WITHIN`]); `None` when it
/// names none, or no answer came in time.
async fn service(followed: &Followed) -> Option<Arc<ServiceEndpoints>> {
    *lock(&followed.used) = Instant::now();
    let mut resolved = followed.resolved.clone();
    let deadline = followed.asked + FIRST_ANSWER_WITHIN;
    loop {
        match &*resolved.borrow_and_update() {
            Resolved::Service(service) => return Some(service.clone()),
            Resolved::NotAService => return None,
            Resolved::Unknown => {}
        }
        match tokio::time::timeout_at(deadline, resolved.changed()).await {
            Ok(Ok(())) => continue,
            _ => return None,
        }
    }
}

/// `host:port` (lowercase, port 80 when none) for an authority the
/// controller may know as a service: an IP, or a name under one of
/// `suffixes`; `None` for any other.
fn service_key(suffixes: &[String], authority: &Authority) -> Option<String> {
    let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
    let port = authority.port_u16().unwrap_or(80);
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = ip.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port).to_string());
    }
    let under = |suffix: &String| {
        host.strip_suffix(suffix.as_str())
            .is_some_and(|name| name.ends_with('.') && name.len() > 1)
    };
    suffixes.iter().any(under).then(|| format!("{host}:{port}"))
}

impl Discovery {
    fn followed(&self, key: String) -> Arc<Followed> {
        let mut services = lock(&self.services);
        if let Some(followed) = services.get(&key) {
            return followed.clone();
        }
        if services.len() >= MAX_SERVICES {
            let least_used = services
                .iter()
                .min_by_key(|(_, f)| *lock(&f.used))
                .map(|(k, _)| k.clone());
            services.remove(&least_used.expect("the map is full"));
        }
        let (send, resolved) = watch::channel(Resolved::Unknown);
        let follow = tokio::spawn(follow(self.client.clone(), key.clone(), send));
        let now = Instant::now();
        let followed = Arc::new(Followed {
            resolved,
            asked: now,
            used: Mutex::new(now),
            balancer: Mutex::default(),
            opaque: OpenConnections::default(),
            follow: follow.abort_handle(),
        });
        services.insert(key, followed.clone());
        followed
    }
}

/// `outbound_http_balancer_endpoints{authority, endpoint_state}`: each
/// balancer's endpoints taking requests (`ready`) and ejected (`pending`),
/// read at scrape time.
#[derive(Debug)]
pub struct BalancerMetrics {
    discovery: Weak<Discovery>,
}

impl BalancerMetrics {
    pub fn new(discovery: &Arc<Discovery>) -> Self {
        Self {
            discovery: Arc::downgrade(discovery),
        }
    }
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("suffixes", &self.suffixes)
            .finish_non_exhaustive()
    }
}

impl Collector for BalancerMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(discovery) = self.discovery.upgrade() else {
            return Ok(());
        };
        let family = Family::<Vec<(&'static str, String)>, Gauge>::default();
        for balancer in discovery.balancers() {
            let (ready, pending) = balancer.endpoint_states();
            for (state, count) in [("ready", ready), ("pending", pending)] {
                let labels = vec![
                    ("authority", balancer.authority().to_string()),
                    ("endpoint_state", state.to_string()),
                ];
                family.get_or_create(&labels).set(count as i64);
            }
        }
        let descriptor = encoder.encode_descriptor(
            "outbound_http_balancer_endpoints",
            "Endpoints of each balanced service, by whether they take requests (ready) or are ejected for failing (pending)",
            None,
            family.metric_type(),
        )?;
        family.encode(descriptor)
    }
}

/// Forgets services no request used for [`IDLE_AFTER`], until the
/// discovery itself is dropped.
async fn forget_idle(discovery: Weak<Discovery>) {
    let mut every = tokio::time::interval(IDLE_AFTER / 4);
    loop {
        every.tick().await;
        let Some(discovery) = discovery.upgrade() else {
            return;
        };
        lock(&discovery.services).retain(|_, followed| lock(&followed.used).elapsed() < IDLE_AFTER);
    }
}

/// Follows `authority`'s stream, asking again with backoff when it ends or
/// fails; what was last known stays until a new answer replaces it.
async fn follow(
    client: DestinationClient<Channel>,
    authority: String,
    resolved: watch::Sender<Resolved>,
) {
    let mut backoff = RETRY_MIN;
    loop {
        let request = GetDestination {
            authority: authority.clone(),
        };
        match client.clone().get(request).await {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                let mut first = true;
                loop {
                    match stream.message().await {
                        Ok(Some(update)) => {
                            let next = apply(&resolved.borrow(), update, first);
                            resolved.send_replace(next);
                            first = false;
                            backoff = RETRY_MIN;
                        }
                        Ok(None) => break,
                        Err(status) => {
                            tracing::debug!(%authority, %status, "destination stream failed");
                            break;
                        }
                    }
                }
            }
            Err(status) => {
                tracing::info!(%authority, %status, "cannot follow the service; keeping what is known");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RETRY_MAX);
    }
}

/// The resolution after `update`. A stream's first update says everything
/// there is; later ones change what was said.
fn apply(current: &Resolved, update: Update, first: bool) -> Resolved {
    let known = match current {
        Resolved::Service(service) if !first => Some(service.as_ref()),
        _ => None,
    };
    let mut endpoints = known.map(|s| s.endpoints.clone()).unwrap_or_default();
    let mut load_balancer = known.map(|s| s.load_balancer).unwrap_or_default();
    match update.update {
        Some(update::Update::Add(set)) => {
            load_balancer = set.load_balancer();
            for addr in set.addrs {
                let Ok(socket) = addr.address.parse::<SocketAddr>() else {
                    tracing::warn!(address = %addr.address, "the controller named an endpoint that is not ip:port");
                    continue;
                };
                let identity = match addr.identity.as_str() {
                    "" => None,
                    name => ServerName::try_from(name.to_string()).ok(),
                };
                let mut labels: BTreeMap<String, String> = BTreeMap::new();
                for (key, value) in set.metric_labels.iter().chain(&addr.metric_labels) {
                    labels.insert(format!("dst_{key}"), value.clone());
                }
                let labels = labels.into_iter().collect();
                // proto3 cannot tell 0 from unset: unset is the default.
                let weight = match addr.weight {
                    0 => DEFAULT_WEIGHT,
                    weight => weight,
                };
                let meta = EndpointMeta {
                    identity,
                    labels,
                    weight,
                };
                endpoints.insert(socket, meta);
            }
        }
        Some(update::Update::Remove(set)) => {
            for addr in set.addresses {
                if let Ok(addr) = addr.parse() {
                    endpoints.remove(&addr);
                }
            }
        }
        Some(update::Update::NoEndpoints(none)) if !none.exists => return Resolved::NotAService,
        Some(update::Update::NoEndpoints(_)) => endpoints.clear(),
        None => return current.clone(),
    }
    Resolved::Service(Arc::new(ServiceEndpoints {
        endpoints,
        load_balancer,
    }))
}

#[cfg(test)]
mod tests;
