//! Two weft-proxies in a row, as between two meshed pods: the load enters
//! the client proxy's outbound listener with the server proxy's inbound
//! address as its authority, which is what the client routes by, and the
//! server proxy hands each request to the upstream. In plaintext, or over
//! mTLS: then weft-controller, serving a local mesh of the two pods written
//! for the run, certifies both proxies and tells the client that a meshed
//! pod receives at the server's address.

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::ensure;

use super::weft_controller::{Controller, NAMESPACE};
use super::{Peer, render};
use crate::bench::handshakes::Handshakes;
use crate::bench::measure::Endpoint;
use crate::harness::processes::{Processes, ensure_not_interrupted};
use crate::harness::weft::{self, Listeners};
use crate::harness::{self, POLL, READY_LIMIT, free_ports, loopback};

pub(super) const MESH_TEMPLATE: &str = include_str!("../../../../bench/weft-mesh.yaml");

/// One side of the pair: its pod, which is also its service account.
#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

impl Side {
    fn pod(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
        }
    }

    /// Its identity in the controller's default trust domain.
    fn identity(self) -> String {
        format!(
            "{}.{NAMESPACE}.serviceaccount.identity.weft-system.cluster.local",
            self.pod()
        )
    }
}

impl Controller {
    /// What makes a proxy `side`'s certified sidecar, keeping what it
    /// takes from the controller in `cache` (which it creates).
    fn sidecar_env(&self, side: Side, cache: PathBuf) -> Vec<(&'static str, String)> {
        let text = |path: PathBuf| path.to_string_lossy().into_owned();
        vec![
            (
                "WEFT_PROXY_CONTROLLER_ADDR",
                format!("http://{}", self.plugin_api),
            ),
            ("WEFT_PROXY_WORKLOAD", format!("{NAMESPACE}/{}", side.pod())),
            ("WEFT_PROXY_PLUGIN_CACHE_DIR", text(cache)),
            ("WEFT_PROXY_IDENTITY_LOCAL_NAME", side.identity()),
            (
                "WEFT_PROXY_IDENTITY_TOKEN_FILE",
                text(self.token(side.pod())),
            ),
            (
                "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
                text(self.state.join("identity/ca.crt")),
            ),
            ("WEFT_PROXY_IDENTITY_SVC_ADDR", self.identity.to_string()),
            // Two sidecars on one host: each its own tap port.
            ("WEFT_PROXY_TAP_LISTEN", "127.0.0.1:0".to_string()),
        ]
    }
}

impl Peer<'_> {
    pub(super) fn weft_pair(
        &self,
        processes: &mut Processes,
        mtls: bool,
    ) -> anyhow::Result<Endpoint> {
        let ports = free_ports::<6>()?.map(loopback);
        let listeners = |at: usize| Listeners {
            inbound: ports[at],
            outbound: ports[at + 1],
            admin: ports[at + 2],
        };
        let (client, server) = (listeners(0), listeners(3));
        let controller = if mtls {
            Some(self.start_pair_controller(processes, client, server)?)
        } else {
            None
        };
        let env = |side: Side| {
            let cache = self.dir.join(format!("{}-cache", side.pod()));
            controller.as_ref().map(|c| c.sidecar_env(side, cache))
        };
        let server = self.start_proxy(processes, Side::Server, server, env(Side::Server))?;
        let client = self.start_proxy(processes, Side::Client, client, env(Side::Client))?;
        let authority = server.inbound.to_string();
        let handshakes = mtls.then_some(Handshakes::Weft {
            admin: client.admin,
        });
        if let Some(handshakes) = &handshakes {
            wait_for_mtls(processes, client.outbound, &authority, handshakes)
                .map_err(|e| self.with_logs(e))?;
        }
        // One listener detects HTTP/1.1 and HTTP/2.
        Ok(Endpoint {
            pids: vec![client.pid, server.pid],
            http1: client.outbound,
            http2: client.outbound,
            authority,
            handshakes,
        })
    }

    /// weft-controller serving the pair's pods.
    fn start_pair_controller(
        &self,
        processes: &mut Processes,
        client: Listeners,
        server: Listeners,
    ) -> anyhow::Result<Controller> {
        let pods = render(
            MESH_TEMPLATE,
            &[
                ("client_inbound_port", client.inbound.port().to_string()),
                ("server_inbound_port", server.inbound.port().to_string()),
            ],
        )?;
        let sides = [Side::Client, Side::Server].map(Side::pod);
        self.start_controller(processes, &[("workloads.yaml", pods)], &sides)
    }

    fn start_proxy(
        &self,
        processes: &mut Processes,
        side: Side,
        listeners: Listeners,
        env: Option<Vec<(&'static str, String)>>,
    ) -> anyhow::Result<weft::RunningProxy> {
        let log = self.dir.join(format!("{}.log", side.pod()));
        let env = env.unwrap_or_default();
        let env: Vec<(&str, &OsStr)> = env
            .iter()
            .map(|(name, value)| (*name, OsStr::new(value)))
            .collect();
        weft::Proxy {
            bin: &self.setup.bin,
            app: self.app(),
            chain: None,
            log: &log,
        }
        .start_with(processes, listeners, &env)
    }
}

/// Sends requests through the pair until one has crossed it over mTLS. A
/// first request the controller is slow to place goes in the clear, as the
/// app sent it: the load must not.
fn wait_for_mtls(
    processes: &mut Processes,
    outbound: SocketAddr,
    authority: &str,
    handshakes: &Handshakes,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        let status = harness::http_status(outbound, authority, "/").ok();
        if status == Some(200) && handshakes.count()? > 0 {
            return Ok(());
        }
        processes.ensure_running()?;
        ensure_not_interrupted()?;
        ensure!(
            Instant::now() < deadline,
            "the client proxy made no mTLS connection to the server proxy within \
             {READY_LIMIT:?} (last answer: {status:?})"
        );
        std::thread::sleep(POLL * 2);
    }
}
