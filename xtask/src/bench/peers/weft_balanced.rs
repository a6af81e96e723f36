//! Weft balancing three upstream instances as a meshed client's sidecar
//! does: the load enters weft-proxy's outbound listener for the Service
//! `backend.bench.svc.cluster.local:8081`, whose endpoints the proxy follows
//! on weft-controller's Destination API and balances by peak-EWMA latency.
//! The controller serves a local mesh written for the run
//! (`bench/weft-balanced-mesh.yaml`): the client pod, the Service and one
//! EndpointSlice per instance.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::time::Instant;

use anyhow::ensure;

use super::balanced::{SERVICE_AUTHORITY, named};
use super::weft_controller::NAMESPACE;
use super::{Peer, render};
use crate::bench::handshakes;
use crate::bench::measure::Endpoint;
use crate::bench::upstreams::BALANCED_INSTANCES;
use crate::harness::processes::{Processes, ensure_not_interrupted};
use crate::harness::weft::{self, Listeners};
use crate::harness::{self, POLL, READY_LIMIT};

pub(super) const MESH_TEMPLATE: &str = include_str!("../../../../bench/weft-balanced-mesh.yaml");
/// The pod whose sidecar the proxy is.
const POD: &str = "client";

impl Peer<'_> {
    pub(super) fn weft_balanced(&self, processes: &mut Processes) -> anyhow::Result<Endpoint> {
        let mesh = render(MESH_TEMPLATE, &named(&self.instance_ports()?))?;
        let controller = self.start_controller(processes, &[("mesh.yaml", mesh)], &[POD])?;
        let cache = self.dir.join("proxy-cache");
        let env = [
            (
                "WEFT_PROXY_CONTROLLER_ADDR",
                format!("http://{}", controller.plugin_api),
            ),
            ("WEFT_PROXY_WORKLOAD", format!("{NAMESPACE}/{POD}")),
            (
                "WEFT_PROXY_PLUGIN_CACHE_DIR",
                cache.to_string_lossy().into_owned(),
            ),
        ];
        let env: Vec<(&str, &OsStr)> = env
            .iter()
            .map(|(name, value)| (*name, OsStr::new(value)))
            .collect();
        let log = self.dir.join("weft-proxy.log");
        let proxy = weft::Proxy {
            bin: &self.setup.bin,
            app: self.app(),
            chain: None,
            log: &log,
        }
        .start_with(processes, Listeners::free()?, &env)?;
        wait_for_endpoints(processes, proxy.outbound, proxy.admin)
            .map_err(|e| self.with_logs(e))?;
        // One listener detects HTTP/1.1 and HTTP/2.
        Ok(Endpoint {
            pids: vec![proxy.pid],
            http1: proxy.outbound,
            http2: proxy.outbound,
            authority: SERVICE_AUTHORITY.into(),
            handshakes: None,
        })
    }
}

/// Sends requests for the Service until the proxy's balancer holds every
/// instance as a ready endpoint: a first request the controller is slow to
/// answer goes where DNS says, and the load must not.
fn wait_for_endpoints(
    processes: &mut Processes,
    outbound: SocketAddr,
    admin: SocketAddr,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        let status = harness::http_status(outbound, SERVICE_AUTHORITY, "/").ok();
        let metrics = handshakes::get(admin, "/metrics")?;
        let ready = ready_endpoints(&metrics, SERVICE_AUTHORITY);
        if status == Some(200) && ready == Some(BALANCED_INSTANCES as u64) {
            return Ok(());
        }
        processes.ensure_running()?;
        ensure_not_interrupted()?;
        ensure!(
            Instant::now() < deadline,
            "weft-proxy's balancer for {SERVICE_AUTHORITY} did not hold \
             {BALANCED_INSTANCES} ready endpoints within {READY_LIMIT:?} \
             (ready: {ready:?}, last answer: {status:?})"
        );
        std::thread::sleep(POLL * 2);
    }
}

/// `outbound_http_balancer_endpoints{authority, endpoint_state="ready"}`
/// for `authority`, from the proxy's Prometheus exposition.
fn ready_endpoints(metrics: &str, authority: &str) -> Option<u64> {
    let authority = format!(r#"authority="{authority}""#);
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix("outbound_http_balancer_endpoints{"))
        .filter_map(|rest| rest.split_once("} "))
        .find(|(labels, _)| {
            labels.contains(&authority) && labels.contains(r#"endpoint_state="ready""#)
        })
        .and_then(|(_, value)| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ready_endpoints_of_one_service() {
        let metrics = "\
# TYPE outbound_http_balancer_endpoints gauge
outbound_http_balancer_endpoints{authority=\"other.bench.svc.cluster.local:80\",endpoint_state=\"ready\"} 1
outbound_http_balancer_endpoints{authority=\"backend.bench.svc.cluster.local:8081\",endpoint_state=\"ready\"} 3
outbound_http_balancer_endpoints{authority=\"backend.bench.svc.cluster.local:8081\",endpoint_state=\"pending\"} 0
";
        assert_eq!(ready_endpoints(metrics, SERVICE_AUTHORITY), Some(3));
        assert_eq!(ready_endpoints("", SERVICE_AUTHORITY), None);
    }
}
