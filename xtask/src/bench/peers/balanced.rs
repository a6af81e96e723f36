//! HAProxy and Envoy balancing three upstream instances, the peers of
//! Weft's balanced proxy (`weft_balanced`): each alone on the proxy CPU with
//! one worker, HAProxy with `balance leastconn`, Envoy with
//! `LEAST_REQUEST`, the instances in a static list. All three balanced
//! targets take the same load, addressed to the Service Weft resolves.

use anyhow::ensure;

use super::Peer;
use crate::bench::measure::Endpoint;
use crate::bench::upstreams::BALANCED_INSTANCES;
use crate::harness::processes::Processes;

pub(super) const HAPROXY_TEMPLATE: &str = include_str!("../../../../bench/haproxy-balanced.cfg");
pub(super) const ENVOY_TEMPLATE: &str = include_str!("../../../../bench/envoy-balanced.yaml");
/// What every request to a balanced target is for: the Service whose
/// endpoints Weft takes from the controller (the others ignore it).
pub(super) const SERVICE_AUTHORITY: &str = "backend.bench.svc.cluster.local:8081";

impl Peer<'_> {
    /// `port_1` to `port_3`, the instances' ports, for the templates.
    pub(super) fn instance_ports(&self) -> anyhow::Result<Vec<(String, String)>> {
        ensure!(
            self.upstreams.len() == BALANCED_INSTANCES,
            "a balanced target needs {BALANCED_INSTANCES} upstream instances, not {}",
            self.upstreams.len()
        );
        Ok(self
            .upstreams
            .iter()
            .zip(1..)
            .map(|(addr, at)| (format!("port_{at}"), addr.port().to_string()))
            .collect())
    }

    pub(super) fn haproxy_balanced(&self, processes: &mut Processes) -> anyhow::Result<Endpoint> {
        let instances = self.instance_ports()?;
        self.haproxy_with(
            processes,
            HAPROXY_TEMPLATE,
            &named(&instances),
            SERVICE_AUTHORITY,
        )
    }

    pub(super) fn envoy_balanced(&self, processes: &mut Processes) -> anyhow::Result<Endpoint> {
        let instances = self.instance_ports()?;
        // Started twice for one target (the slow round): no shared memory
        // to collide with the previous one, or another Envoy.
        let no_hot_restart = ["--disable-hot-restart".to_string()];
        self.envoy_with(
            processes,
            ENVOY_TEMPLATE,
            &named(&instances),
            &no_hot_restart,
            "envoy",
            SERVICE_AUTHORITY,
        )
    }
}

/// `values` as `render` takes them.
pub(super) fn named(values: &[(String, String)]) -> Vec<(&str, String)> {
    values
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect()
}
