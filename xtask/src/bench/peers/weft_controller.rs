//! weft-controller for the Weft targets that need one (the mTLS pair, the
//! balanced proxy): on the load's CPU, where it is idle while the load runs
//! and not counted, serving a local mesh written for the run into the
//! target's directory, all in namespace `bench`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, ensure};

use super::Peer;
use crate::harness::processes::{Processes, ensure_not_interrupted, pinned};
use crate::harness::{CLIENT_CPU, POLL, free_ports, loopback};

/// The namespace of every pod in the meshes written for the run.
pub(super) const NAMESPACE: &str = "bench";
/// The controller checks its state and writes the pods' tokens first.
const CONTROLLER_READY_LIMIT: Duration = Duration::from_secs(60);

/// A started weft-controller: where proxies reach it and its state (the
/// trust anchors it made, the pods' tokens).
pub(super) struct Controller {
    pub plugin_api: SocketAddr,
    pub identity: SocketAddr,
    pub state: PathBuf,
}

impl Controller {
    /// Where it wrote the token of `pod` (in `bench`).
    pub fn token(&self, pod: &str) -> PathBuf {
        self.state.join("tokens").join(NAMESPACE).join(pod)
    }
}

impl Peer<'_> {
    /// Starts weft-controller serving `mesh` (file name and YAML) from a
    /// directory of its own; returned once it has written the token of
    /// every pod of `pods`, which says it has read the mesh.
    pub(super) fn start_controller(
        &self,
        processes: &mut Processes,
        mesh: &[(&str, String)],
        pods: &[&str],
    ) -> anyhow::Result<Controller> {
        let binary = self
            .setup
            .controller
            .as_ref()
            .map_err(|reason| anyhow!("{reason}"))?;
        let dir = self.dir.join("mesh");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, text) in mesh {
            let path = dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        }
        let [plugin_api, identity] = free_ports()?.map(loopback);
        let controller = Controller {
            plugin_api,
            identity,
            state: self.dir.join("controller-state"),
        };
        let mut command = pinned(CLIENT_CPU, binary);
        command
            .env("WEFT_CONTROLLER_DIR", &dir)
            .env("WEFT_CONTROLLER_LISTEN_ADDR", plugin_api.to_string())
            .env("WEFT_CONTROLLER_IDENTITY_LISTEN_ADDR", identity.to_string())
            .env("WEFT_CONTROLLER_STATE_DIR", &controller.state)
            .env("WEFT_LOG", "warn");
        self.spawn(
            processes,
            "weft-controller",
            "weft-controller",
            &mut command,
        )?;
        for pod in pods {
            wait_for_file(processes, &controller.token(pod)).map_err(|e| self.with_logs(e))?;
        }
        Ok(controller)
    }
}

/// The controller writes a pod's token once its issuer is loaded.
fn wait_for_file(processes: &mut Processes, path: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + CONTROLLER_READY_LIMIT;
    while !path.exists() {
        processes.ensure_running()?;
        ensure_not_interrupted()?;
        ensure!(
            Instant::now() < deadline,
            "weft-controller did not write {} within {CONTROLLER_READY_LIMIT:?}",
            path.display()
        );
        std::thread::sleep(POLL);
    }
    Ok(())
}
