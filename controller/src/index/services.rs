//! Services and their endpoints: what the index keeps of Services and
//! EndpointSlices, and `Index::destination`, the endpoints behind an
//! authority.
//!
//! The rule: the authority names a Service (by its DNS name, or by an IP in
//! its `clusterIP(s)`; an ExternalName Service names none, DNS answers for
//! it); the Service's TCP port equal to the authority's port picks the port
//! name; the endpoints are those of the EndpointSlices labelled
//! `kubernetes.io/service-name: <service>` in its namespace, at the slice's
//! port of that name (unnamed with unnamed), each address of each endpoint
//! that is not explicitly unready. In the local mesh every pod is at
//! 127.0.0.1, so a Service there has a slice per replica, each at its own
//! port: nothing special, the rule covers it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::{Authority, EndpointSliceRef, Index, Owner, ServiceRef, WorkloadRef};

/// The Service annotation that picks a load balancer (Weft's first, then
/// Linkerd's).
pub const LOAD_BALANCER_ANNOTATIONS: [&str; 2] =
    ["weft.io/load-balancer", "linkerd.io/load-balancer"];
/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// How a client balances requests among a Service's endpoints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadBalancer {
    /// Power of two choices over peak-EWMA latency (`ewma`).
    #[default]
    Ewma,
    /// Power of two choices over requests in flight (`p2c`).
    P2c,
    /// `round-robin`.
    RoundRobin,
}

/// Something wrong with a Service that the index works around.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServiceProblem {
    #[error(
        "{annotation}: {value:?} is not a load balancer (ewma, p2c or round-robin); \
         clients balance with the default, ewma"
    )]
    UnknownLoadBalancer {
        annotation: &'static str,
        value: String,
    },
}

/// A Service's endpoints at the port an authority asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceEndpoints {
    pub service: ServiceRef,
    pub load_balancer: LoadBalancer,
    /// Sorted by address, each address once.
    pub endpoints: Vec<ServiceEndpoint>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceEndpoint {
    pub addr: SocketAddr,
    /// The pod the endpoint's `targetRef` names, if it names one.
    pub pod: Option<EndpointPod>,
}

/// The pod behind an endpoint, and what the index knows of it.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointPod {
    pub workload: WorkloadRef,
    /// `None` when the index does not know the pod (yet).
    pub service_account: Option<String>,
    pub owner: Option<Owner>,
    /// A Weft proxy receives at its addresses (the endpoint rule).
    pub meshed: bool,
}

/// What the index keeps of a Service: only what discovery reads.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ServiceEntry {
    /// `spec.clusterIPs` and `spec.clusterIP`; none when headless.
    cluster_ips: Vec<IpAddr>,
    /// `type: ExternalName`: a DNS alias, with no endpoints of its own.
    external_name: bool,
    /// TCP ports, by number, with their names (`""` when unnamed).
    ports: BTreeMap<u16, String>,
    load_balancer: LoadBalancer,
    problem: Option<ServiceProblem>,
}

/// What the index keeps of an EndpointSlice.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct SliceEntry {
    /// Its `kubernetes.io/service-name` label.
    service: Option<String>,
    /// TCP ports by name (`""` when unnamed).
    ports: BTreeMap<String, u16>,
    /// The endpoints not explicitly unready.
    endpoints: Vec<SliceEndpoint>,
}

#[derive(Clone, Debug, PartialEq)]
struct SliceEndpoint {
    addresses: Vec<IpAddr>,
    /// The `targetRef` when it is a Pod.
    pod: Option<WorkloadRef>,
}

// === impl Index ===

impl Index {
    /// A Service's TCP ports; `None` when there is no such Service.
    pub(super) fn service_ports(&self, service: &ServiceRef) -> Option<Vec<u16>> {
        let entry = self.services.get(service)?;
        Some(entry.ports.keys().copied().collect())
    }

    /// The endpoints behind `authority` (the rule in this module's doc):
    /// `None` when it names no Service; no endpoints when the Service has
    /// no such port, or nothing ready behind it.
    pub fn destination(&self, authority: &Authority) -> Option<ServiceEndpoints> {
        let (service, entry) = match authority {
            Authority::Service { service, .. } => self.services.get_key_value(service)?,
            Authority::Ip(addr) => self.service_at(*addr)?,
            Authority::Other { .. } => return None,
        };
        if entry.external_name {
            return None;
        }
        let mut endpoints = BTreeMap::new();
        if let Some(port_name) = entry.ports.get(&authority.port()) {
            for slice in self.slices_of(service) {
                let Some(&port) = slice.ports.get(port_name) else {
                    continue;
                };
                for endpoint in &slice.endpoints {
                    for ip in &endpoint.addresses {
                        endpoints
                            .entry(SocketAddr::new(*ip, port))
                            .or_insert_with(|| endpoint.pod.as_ref().map(|pod| self.pod_of(pod)));
                    }
                }
            }
        }
        Some(ServiceEndpoints {
            service: service.clone(),
            load_balancer: entry.load_balancer,
            endpoints: endpoints
                .into_iter()
                .map(|(addr, pod)| ServiceEndpoint { addr, pod })
                .collect(),
        })
    }

    /// Services the index works around a problem of.
    pub fn service_problems(&self) -> impl Iterator<Item = (&ServiceRef, &ServiceProblem)> {
        self.services
            .iter()
            .filter_map(|(service, entry)| Some((service, entry.problem.as_ref()?)))
    }

    /// The one Service with `addr`'s IP; when several share it (loopback),
    /// the one with `addr`'s port; otherwise none.
    fn service_at(&self, addr: SocketAddr) -> Option<(&ServiceRef, &ServiceEntry)> {
        let holding: Vec<_> = self
            .services
            .iter()
            .filter(|(_, entry)| entry.cluster_ips.contains(&addr.ip()))
            .collect();
        let mut found = holding
            .iter()
            .filter(|(_, entry)| holding.len() == 1 || entry.ports.contains_key(&addr.port()));
        match (found.next(), found.next()) {
            (Some(&found), None) => Some(found),
            _ => None,
        }
    }

    fn slices_of<'a>(&'a self, service: &'a ServiceRef) -> impl Iterator<Item = &'a SliceEntry> {
        let first = EndpointSliceRef::new(&service.namespace, "");
        self.slices
            .range(first..)
            .take_while(|(slice, _)| slice.namespace == service.namespace)
            .filter(|(_, slice)| slice.service.as_deref() == Some(service.name.as_str()))
            .map(|(_, slice)| slice)
    }

    fn pod_of(&self, pod: &WorkloadRef) -> EndpointPod {
        let entry = self.pods.get(pod);
        EndpointPod {
            workload: pod.clone(),
            service_account: entry.map(|entry| entry.service_account.clone()),
            owner: entry.and_then(|entry| entry.owner.clone()),
            meshed: entry.is_some_and(|entry| entry.endpoint.is_some()),
        }
    }
}

// === what the index keeps of each object ===

pub(super) fn service_entry(service: &Service) -> Option<(ServiceRef, ServiceEntry)> {
    let key = ServiceRef::of(service)?;
    let spec = service.spec.as_ref();
    let listed = spec
        .and_then(|s| s.cluster_ips.as_ref())
        .into_iter()
        .flatten();
    let primary = spec.and_then(|s| s.cluster_ip.as_ref());
    // A headless Service's `None` parses as no IP.
    let mut cluster_ips: Vec<IpAddr> = listed
        .chain(primary)
        .filter_map(|ip| ip.parse().ok())
        .collect();
    cluster_ips.sort();
    cluster_ips.dedup();
    let ports = spec
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .filter(|port| is_tcp(port.protocol.as_deref()))
        .filter_map(|port| {
            let number = u16::try_from(port.port).ok()?;
            Some((number, port.name.clone().unwrap_or_default()))
        })
        .collect();
    let (load_balancer, problem) = load_balancer(service);
    let entry = ServiceEntry {
        cluster_ips,
        external_name: spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName"),
        ports,
        load_balancer,
        problem,
    };
    Some((key, entry))
}

pub(super) fn slice_entry(slice: &EndpointSlice) -> Option<(EndpointSliceRef, SliceEntry)> {
    let key = EndpointSliceRef::of(slice)?;
    let service = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
        .cloned();
    let ports = slice
        .ports
        .iter()
        .flatten()
        .filter(|port| is_tcp(port.protocol.as_deref()))
        .filter_map(|port| {
            let number = u16::try_from(port.port?).ok()?;
            Some((port.name.clone().unwrap_or_default(), number))
        })
        .collect();
    let endpoints = slice
        .endpoints
        .iter()
        .filter(|endpoint| endpoint.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .map(|endpoint| {
            let pod = endpoint.target_ref.as_ref().and_then(|target| {
                if target.kind.as_deref() != Some("Pod") {
                    return None;
                }
                let namespace = target.namespace.as_ref().unwrap_or(&key.namespace);
                Some(WorkloadRef::new(namespace, target.name.clone()?))
            });
            SliceEndpoint {
                // An FQDN slice's addresses are names, not endpoints.
                addresses: endpoint
                    .addresses
                    .iter()
                    .filter_map(|address| address.parse().ok())
                    .collect(),
                pod,
            }
        })
        .collect();
    let entry = SliceEntry {
        service,
        ports,
        endpoints,
    };
    Some((key, entry))
}

/// The protocol defaults to TCP; UDP and SCTP ports carry no requests.
fn is_tcp(protocol: Option<&str>) -> bool {
    matches!(protocol, None | Some("TCP"))
}

/// The first load-balancer annotation the Service has; an unknown value is
/// the default, and a problem to report.
fn load_balancer(service: &Service) -> (LoadBalancer, Option<ServiceProblem>) {
    let annotations = service.metadata.annotations.as_ref();
    let found = LOAD_BALANCER_ANNOTATIONS.iter().find_map(|annotation| {
        let value = annotations?.get(*annotation)?;
        Some((*annotation, value))
    });
    let Some((annotation, value)) = found else {
        return (LoadBalancer::default(), None);
    };
    match value.trim() {
        "ewma" => (LoadBalancer::Ewma, None),
        "p2c" => (LoadBalancer::P2c, None),
        "round-robin" => (LoadBalancer::RoundRobin, None),
        _ => (
            LoadBalancer::default(),
            Some(ServiceProblem::UnknownLoadBalancer {
                annotation,
                value: value.clone(),
            }),
        ),
    }
}
