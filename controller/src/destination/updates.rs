//! A Service's endpoints as `Get` streams them: the wire form of the
//! index's answer (`endpoint_set`), and the updates that bring a client
//! from what it was last told to what is true now (`Told::update`).

use std::collections::{BTreeMap, HashMap};

use weft_api::destination::update::Update as Kind;
use weft_api::destination::{
    self as wire, AddrSet, NoEndpoints, ProtocolHint, Update, WeightedAddr, WeightedAddrSet,
};
use weft_identity::TrustDomain;

use crate::index::{Authority, EndpointPod, Index, LoadBalancer, ServiceEndpoint};

pub use weft_api::destination::DEFAULT_WEIGHT;

/// A Service's endpoints at one port, as a client is told them.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointSet {
    /// `namespace` and `service`.
    pub metric_labels: HashMap<String, String>,
    pub load_balancer: wire::LoadBalancer,
    /// By `ip:port`.
    pub addrs: BTreeMap<String, WeightedAddr>,
}

/// What a client was last told of its authority.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Told {
    #[default]
    Nothing,
    NoService,
    Endpoints(EndpointSet),
}

/// The endpoints behind `authority`; `None` when it names no Service.
pub fn endpoint_set(
    index: &Index,
    trust: &TrustDomain,
    authority: &Authority,
) -> Option<EndpointSet> {
    let found = index.destination(authority)?;
    let load_balancer = match found.load_balancer {
        LoadBalancer::Ewma => wire::LoadBalancer::Ewma,
        LoadBalancer::P2c => wire::LoadBalancer::P2c,
        LoadBalancer::RoundRobin => wire::LoadBalancer::RoundRobin,
    };
    Some(EndpointSet {
        metric_labels: HashMap::from([
            ("namespace".to_string(), found.service.namespace.clone()),
            ("service".to_string(), found.service.name.clone()),
        ]),
        load_balancer,
        addrs: found
            .endpoints
            .iter()
            .map(|endpoint| {
                let addr = weighted_addr(index, trust, endpoint);
                (addr.address.clone(), addr)
            })
            .collect(),
    })
}

fn weighted_addr(index: &Index, trust: &TrustDomain, endpoint: &ServiceEndpoint) -> WeightedAddr {
    let mut addr = WeightedAddr {
        address: endpoint.addr.to_string(),
        weight: DEFAULT_WEIGHT,
        ..WeightedAddr::default()
    };
    let Some(pod) = &endpoint.pod else {
        return addr;
    };
    addr.metric_labels = pod_labels(pod);
    // Only a meshed pod's proxy proves the identity; one whose service
    // account cannot be certified proves none.
    if pod.meshed
        && let Some(Ok(identity)) = index.identity(&pod.workload, trust)
    {
        addr.identity = identity;
        addr.protocol_hint = ProtocolHint::H2.into();
    }
    addr
}

/// `pod`, and when the index knows the pod, `serviceaccount` and its owner.
fn pod_labels(pod: &EndpointPod) -> HashMap<String, String> {
    let mut labels = HashMap::from([("pod".to_string(), pod.workload.name.clone())]);
    if let Some(account) = &pod.service_account {
        labels.insert("serviceaccount".to_string(), account.clone());
    }
    if let Some(owner) = &pod.owner {
        labels.insert(owner.kind.label().to_string(), owner.name.clone());
    }
    labels
}

impl Told {
    /// The updates that bring the client from what it was told to `now`
    /// (none when nothing it was told changed), and `now` remembered. The
    /// first call always gives one update.
    pub fn update(&mut self, now: Option<EndpointSet>) -> Vec<Update> {
        let updates = match (&*self, &now) {
            (Told::NoService, None) => vec![],
            (_, None) => vec![no_endpoints(false)],
            (Told::Endpoints(last), Some(set)) if set.addrs.is_empty() => {
                if last.addrs.is_empty() {
                    vec![]
                } else {
                    vec![no_endpoints(true)]
                }
            }
            (_, Some(set)) if set.addrs.is_empty() => vec![no_endpoints(true)],
            (Told::Endpoints(last), Some(set)) if !last.addrs.is_empty() => changes(last, set),
            (_, Some(set)) => vec![add(set, set.addrs.values().cloned().collect())],
        };
        *self = match now {
            Some(set) => Told::Endpoints(set),
            None => Told::NoService,
        };
        updates
    }
}

/// Between two non-empty sets: new or changed addresses added (all of them
/// when the set's labels or balancer changed), then gone ones removed, so
/// the client never has none in between.
fn changes(last: &EndpointSet, now: &EndpointSet) -> Vec<Update> {
    let whole = last.metric_labels != now.metric_labels || last.load_balancer != now.load_balancer;
    let added: Vec<WeightedAddr> = now
        .addrs
        .iter()
        .filter(|(address, addr)| whole || last.addrs.get(*address) != Some(*addr))
        .map(|(_, addr)| addr.clone())
        .collect();
    let removed: Vec<String> = last
        .addrs
        .keys()
        .filter(|address| !now.addrs.contains_key(*address))
        .cloned()
        .collect();
    let mut updates = Vec::new();
    if !added.is_empty() {
        updates.push(add(now, added));
    }
    if !removed.is_empty() {
        updates.push(Update {
            update: Some(Kind::Remove(AddrSet { addresses: removed })),
        });
    }
    updates
}

fn add(set: &EndpointSet, addrs: Vec<WeightedAddr>) -> Update {
    Update {
        update: Some(Kind::Add(WeightedAddrSet {
            addrs,
            metric_labels: set.metric_labels.clone(),
            load_balancer: set.load_balancer.into(),
        })),
    }
}

fn no_endpoints(exists: bool) -> Update {
    Update {
        update: Some(Kind::NoEndpoints(NoEndpoints { exists })),
    }
}
