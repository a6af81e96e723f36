//! Where meshed pods receive: what the index keeps of a pod's addresses and
//! sidecar, the map from addresses to pods that `Index::endpoint` answers
//! from, and the pod events that keep that map in step with the pods.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Pod;

use super::{Index, PodEntry, WorkloadRef, pod_entry, replace};

/// The sidecar container the injector adds; a pod with one is meshed.
pub const PROXY_CONTAINER: &str = "weft-proxy";
/// The sidecar's port where it receives the pod's inbound traffic.
pub const INBOUND_PORT_NAME: &str = "weft-inbound";
/// The sidecar's admin port (`/metrics`), scraped by the stats API.
pub const ADMIN_PORT_NAME: &str = "weft-admin";
/// The admin port the injector gives the sidecar, when a pod names none.
pub const DEFAULT_ADMIN_PORT: u16 = 4191;
/// The sidecar's tap port (`weft tap`), and the injector's.
pub const TAP_PORT_NAME: &str = "weft-tap";
pub const DEFAULT_TAP_PORT: u16 = 4190;

/// Where a meshed pod's proxy receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEndpoint {
    /// `status.podIPs` and `status.podIP`, sorted, without duplicates.
    addresses: Vec<IpAddr>,
    /// The sidecar's `weft-inbound` port, if it names one.
    inbound_port: Option<u16>,
    /// The sidecar's `weft-admin` port, if it names one.
    admin_port: Option<u16>,
    /// The sidecar's `weft-tap` port, if it names one.
    tap_port: Option<u16>,
}

impl PodEndpoint {
    /// `None` for a pod no client should expect a proxy at: one without the
    /// sidecar; one on the host's network, whose address is the node's and
    /// shared with everything else there; one that has finished, whose
    /// address Kubernetes may already have given to another pod.
    pub fn of(pod: &Pod) -> Option<Self> {
        let spec = pod.spec.as_ref()?;
        // In the containers, or an init container when a native sidecar.
        let sidecar = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == PROXY_CONTAINER)?;
        if spec.host_network == Some(true) {
            return None;
        }
        let status = pod.status.as_ref();
        if let Some("Succeeded" | "Failed") = status.and_then(|s| s.phase.as_deref()) {
            return None;
        }
        let listed = status
            .and_then(|s| s.pod_ips.as_ref())
            .into_iter()
            .flatten()
            .map(|ip| ip.ip.as_str());
        let primary = status.and_then(|s| s.pod_ip.as_deref());
        let mut addresses: Vec<IpAddr> = listed
            .chain(primary)
            .filter_map(|ip| ip.parse().ok())
            .collect();
        addresses.sort();
        addresses.dedup();
        let named = |name: &str| {
            sidecar
                .ports
                .iter()
                .flatten()
                .find(|port| port.name.as_deref() == Some(name))
                .and_then(|port| u16::try_from(port.container_port).ok())
        };
        Some(PodEndpoint {
            addresses,
            inbound_port: named(INBOUND_PORT_NAME),
            admin_port: named(ADMIN_PORT_NAME),
            tap_port: named(TAP_PORT_NAME),
        })
    }

    /// Where the sidecar's admin server (`/metrics`) listens: the pod's
    /// first address at its `weft-admin` port, else the injector's 4191.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        let ip = *self.addresses.first()?;
        Some(SocketAddr::new(
            ip,
            self.admin_port.unwrap_or(DEFAULT_ADMIN_PORT),
        ))
    }

    /// Where the sidecar serves tap: the pod's first address at its
    /// `weft-tap` port, else the injector's 4190.
    pub fn tap_addr(&self) -> Option<SocketAddr> {
        let ip = *self.addresses.first()?;
        Some(SocketAddr::new(
            ip,
            self.tap_port.unwrap_or(DEFAULT_TAP_PORT),
        ))
    }
}

/// Meshed pods by address, each with its inbound port.
#[derive(Clone, Debug, Default)]
pub struct Receivers(BTreeMap<IpAddr, BTreeMap<WorkloadRef, Option<u16>>>);

impl Receivers {
    pub fn of<'a>(pods: impl Iterator<Item = (&'a WorkloadRef, &'a PodEndpoint)>) -> Self {
        let mut receivers = Self::default();
        for (pod, endpoint) in pods {
            receivers.add(pod, endpoint);
        }
        receivers
    }

    pub fn add(&mut self, pod: &WorkloadRef, endpoint: &PodEndpoint) {
        for ip in &endpoint.addresses {
            self.0
                .entry(*ip)
                .or_default()
                .insert(pod.clone(), endpoint.inbound_port);
        }
    }

    pub fn remove(&mut self, pod: &WorkloadRef, endpoint: &PodEndpoint) {
        for ip in &endpoint.addresses {
            if let Some(pods) = self.0.get_mut(ip) {
                pods.remove(pod);
                if pods.is_empty() {
                    self.0.remove(ip);
                }
            }
        }
    }

    /// The one pod at `addr.ip()`, whatever the port; when several share
    /// the address, the one whose inbound port is `addr.port()`; otherwise
    /// none, rather than a guess.
    pub fn find(&self, addr: SocketAddr) -> Option<&WorkloadRef> {
        let pods = self.0.get(&addr.ip())?;
        let shared = pods.len() > 1;
        let mut matching = pods
            .iter()
            .filter(|(_, port)| !shared || **port == Some(addr.port()));
        match (matching.next(), matching.next()) {
            (Some((pod, _)), None) => Some(pod),
            _ => None,
        }
    }
}

/// A pod as the stats API sees it: its workload and whether (and where) a
/// proxy serves metrics for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSummary {
    pub pod: WorkloadRef,
    pub owner: Option<super::Owner>,
    pub service_account: String,
    /// The sidecar's admin address; `None` for a pod that is not meshed
    /// (or has no address yet).
    pub admin: Option<SocketAddr>,
    pub meshed: bool,
}

// === impl Index ===

impl Index {
    /// Every pod, meshed or not, with its owner and its sidecar's admin
    /// address.
    pub fn pod_summaries(&self) -> impl Iterator<Item = PodSummary> + '_ {
        self.pods.iter().map(|(pod, entry)| PodSummary {
            pod: pod.clone(),
            owner: entry.owner.clone(),
            service_account: entry.service_account.clone(),
            admin: entry.endpoint.as_ref().and_then(PodEndpoint::admin_addr),
            meshed: entry.endpoint.is_some(),
        })
    }

    /// Where `workload`'s proxy serves tap, if the pod is meshed and has an
    /// address.
    pub fn tap_addr(&self, workload: &WorkloadRef) -> Option<SocketAddr> {
        self.pods.get(workload)?.endpoint.as_ref()?.tap_addr()
    }

    /// The port `workload`'s proxy receives on itself, if its sidecar
    /// names its `weft-inbound` port.
    pub fn inbound_port(&self, workload: &WorkloadRef) -> Option<u16> {
        self.pods.get(workload)?.endpoint.as_ref()?.inbound_port
    }

    /// The workload that owns the pod (a Deployment for a ReplicaSet's pod).
    pub fn owner(&self, workload: &WorkloadRef) -> Option<&super::Owner> {
        self.pods.get(workload)?.owner.as_ref()
    }

    /// The meshed workload that receives at `addr`, and its service
    /// account (the endpoint rule in the module doc of `index`).
    pub fn endpoint(&self, addr: SocketAddr) -> Option<(&WorkloadRef, &str)> {
        let (pod, entry) = self.pods.get_key_value(self.receivers.find(addr)?)?;
        Some((pod, entry.service_account.as_str()))
    }

    pub(super) fn upsert_pod(&mut self, key: WorkloadRef, entry: PodEntry) -> bool {
        let old = self.pods.get(&key);
        if old == Some(&entry) {
            return false;
        }
        if let Some(endpoint) = old.and_then(|old| old.endpoint.as_ref()) {
            self.receivers.remove(&key, endpoint);
        }
        if let Some(endpoint) = &entry.endpoint {
            self.receivers.add(&key, endpoint);
        }
        self.pods.insert(key, entry);
        true
    }

    pub(super) fn remove_pod(&mut self, key: &WorkloadRef) -> bool {
        let Some(old) = self.pods.remove(key) else {
            return false;
        };
        if let Some(endpoint) = &old.endpoint {
            self.receivers.remove(key, endpoint);
        }
        true
    }

    pub(super) fn reset_pods(&mut self, all: &[Pod]) -> bool {
        let changed = replace(&mut self.pods, all.iter().filter_map(pod_entry));
        if changed {
            let endpoints = self
                .pods
                .iter()
                .filter_map(|(pod, entry)| Some((pod, entry.endpoint.as_ref()?)));
            self.receivers = Receivers::of(endpoints);
        }
        changed
    }
}
