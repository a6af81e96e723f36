//! `weft-controller` as a real process serving a directory of resources.
//! Its "listening" log line is the readiness signal and tells the address.
//! `ExampleMesh` is a copy of the example mesh to serve and edit.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::proxy::RunningProxy;
use crate::{PATIENCE, Proxy, binaries};

pub struct RunningController {
    pub addr: SocketAddr,
    /// The identity service (TLS).
    pub identity_addr: SocketAddr,
    /// Its generated trust anchors and issuer (`identity/`) and each pod's
    /// token (`tokens/<namespace>/<pod>`).
    pub state_dir: PathBuf,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl RunningController {
    /// Serves `dir` on `listen` (port 0 picks one).
    pub async fn spawn(dir: &Path, listen: SocketAddr) -> Self {
        Self::spawn_with(dir, listen, &[]).await
    }

    /// The same, with more settings (`WEFT_CONTROLLER_*`).
    pub async fn spawn_with(dir: &Path, listen: SocketAddr, env: &[(&str, &str)]) -> Self {
        let state_dir = state_dir();
        let mut child = Command::new(binaries::path("weft-controller"))
            .env_clear()
            .env("WEFT_CONTROLLER_DIR", dir)
            .env("WEFT_CONTROLLER_LISTEN_ADDR", listen.to_string())
            .env("WEFT_CONTROLLER_IDENTITY_LISTEN_ADDR", "127.0.0.1:0")
            .env("WEFT_CONTROLLER_STATS_LISTEN_ADDR", "127.0.0.1:0")
            .env("WEFT_CONTROLLER_STATE_DIR", &state_dir)
            .env("WEFT_LOG", "info")
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting weft-controller");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[weft-controller] {line}");
                if let Some(addr) = listening_addr(&line) {
                    let _ = tx.send(addr);
                }
                log.lock().unwrap().push(line);
            }
        });
        let addr = tokio::time::timeout(PATIENCE, rx.recv()).await;
        let Ok(Some(addr)) = addr else {
            panic!(
                "weft-controller did not start: {}",
                logs.lock().unwrap().join("\n")
            );
        };
        let identity_addr = logs
            .lock()
            .unwrap()
            .iter()
            .find_map(|line| logged_addr(line, " serving identity ", "identity_addr="))
            .expect("the identity service starts before the plugin API");
        Self {
            addr,
            identity_addr,
            state_dir,
            child,
            logs,
        }
    }

    /// The trust anchors proxies are given.
    pub fn trust_anchors(&self) -> PathBuf {
        self.state_dir.join("identity/ca.crt")
    }

    /// `proxy` with the settings that get it the identity of service
    /// account `account` in `workload`'s namespace from this controller.
    pub fn with_identity(&self, proxy: Proxy, workload: &str, account: &str) -> Proxy {
        let namespace = workload.split_once('/').expect("namespace/pod").0;
        proxy
            .env(
                "WEFT_PROXY_IDENTITY_LOCAL_NAME",
                &identity_name(namespace, account),
            )
            .env(
                "WEFT_PROXY_IDENTITY_TOKEN_FILE",
                self.token(workload).to_str().unwrap(),
            )
            .env(
                "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
                self.trust_anchors().to_str().unwrap(),
            )
            .env(
                "WEFT_PROXY_IDENTITY_SVC_ADDR",
                &self.identity_addr.to_string(),
            )
    }

    /// The trust anchors, parsed.
    pub fn anchors(&self) -> weft_identity::TrustAnchors {
        let pem = std::fs::read(self.trust_anchors()).unwrap();
        weft_identity::TrustAnchors::from_pem(&pem).unwrap()
    }

    /// Credentials for `workload` as `account`, from the identity service,
    /// as a proxy gets them.
    pub async fn credentials(&self, workload: &str, account: &str) -> weft_identity::Credentials {
        use weft_api::identity::CertifyRequest;
        use weft_api::identity::identity_client::IdentityClient;
        let anchors = self.anchors();
        let token_path = self.token(workload);
        crate::eventually("the controller writes the pod's token", || async {
            token_path
                .exists()
                .then_some(())
                .ok_or_else(|| token_path.display().to_string())
        })
        .await;
        let namespace = workload.split_once('/').expect("namespace/pod").0;
        let name = identity_name(namespace, account);
        let request = weft_identity::CertificateRequest::generate(&name).unwrap();
        let tls = weft_identity::client_config(None, &anchors, &[b"h2"]).unwrap();
        let controller = identity_name("weft-system", "weft-controller");
        let channel = weft_api::tls::channel(
            self.identity_addr.to_string(),
            controller.try_into().unwrap(),
            tls,
        )
        .await
        .unwrap();
        let signed = IdentityClient::new(channel)
            .certify(CertifyRequest {
                identity: name,
                token: std::fs::read(&token_path).unwrap(),
                certificate_signing_request: request.csr_der().to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        let credentials = weft_identity::Credentials::default();
        credentials.set(request.certified(&signed.into(), &anchors).unwrap());
        credentials
    }

    /// The token the controller wrote for `namespace/pod`.
    pub fn token(&self, workload: &str) -> PathBuf {
        let (namespace, pod) = workload.split_once('/').expect("namespace/pod");
        self.state_dir.join("tokens").join(namespace).join(pod)
    }

    /// The stats API's base URL (`weft stat --stats-api`).
    pub fn stats_api(&self) -> String {
        let addr = self
            .logged_addr(" serving the stats API ", "stats_addr=")
            .expect("the stats API starts before the plugin API");
        format!("http://{addr}")
    }

    /// The address proxies are given (`WEFT_PROXY_CONTROLLER_ADDR`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// The address the controller logged with `message` as `field=`, e.g.
    /// its webhook's (`" serving the admission webhook "`, `"webhook_addr="`).
    pub fn logged_addr(&self, message: &str, field: &str) -> Option<SocketAddr> {
        let logs = self.logs.lock().unwrap();
        logs.iter()
            .find_map(|line| logged_addr(line, message, field))
    }

    /// `Ok` once the controller has logged `text`, else its logs so far.
    pub fn logged(&self, text: &str) -> Result<(), String> {
        let logs = self.logs.lock().unwrap().join("\n");
        if logs.contains(text) {
            Ok(())
        } else {
            Err(logs)
        }
    }
}

/// The identity of service account `account` in `namespace`, in the
/// controller's default trust domain.
pub fn identity_name(namespace: &str, account: &str) -> String {
    format!("{account}.{namespace}.serviceaccount.identity.weft-system.cluster.local")
}

/// A state directory of its own for each controller a test starts (its
/// generated trust anchor, issuer and tokens).
fn state_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("weft-controller-state-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `... listening addr=127.0.0.1:8090 dir=...`
fn listening_addr(line: &str) -> Option<SocketAddr> {
    logged_addr(line, " listening ", "addr=")
}

fn logged_addr(line: &str, message: &str, field: &str) -> Option<SocketAddr> {
    let rest = line.split_once(message)?.1;
    let addr = rest
        .split_whitespace()
        .find_map(|f| f.strip_prefix(field))?;
    addr.parse().ok()
}

/// A copy of the example mesh (`controller/examples/mesh`) in a directory
/// of its own, its module urls pointing at the plugins built from
/// `plugins/`; removed when dropped.
pub struct ExampleMesh {
    pub dir: PathBuf,
}

impl ExampleMesh {
    pub fn copy(name: &str) -> Self {
        let release = crate::plugins::component("authz")
            .parent()
            .expect("plugins are built into a directory")
            .to_path_buf();
        let dir = std::env::temp_dir().join(format!("weft-example-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("resources")).unwrap();
        let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../controller/examples/mesh");
        for entry in std::fs::read_dir(example).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap().replace(
                "../../../plugins/target/wasm32-wasip2/release",
                &release.display().to_string(),
            );
            std::fs::write(dir.join("resources").join(path.file_name().unwrap()), text).unwrap();
        }
        ExampleMesh { dir }
    }

    pub fn resources(&self) -> PathBuf {
        self.dir.join("resources")
    }

    /// Replaces `from` with `to` in resource file `file`, in one rename as
    /// an editor saves.
    pub fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.resources().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}");
        let tmp = self.dir.join("next.yaml");
        std::fs::write(&tmp, text.replacen(from, to, 1)).unwrap();
        std::fs::rename(tmp, path).unwrap();
    }

    pub async fn controller(&self) -> RunningController {
        RunningController::spawn(&self.resources(), "127.0.0.1:0".parse().unwrap()).await
    }

    /// The sidecar of `workload` (`namespace/pod`), in front of `app`.
    pub async fn proxy(
        &self,
        controller: &RunningController,
        workload: &str,
        app: SocketAddr,
    ) -> RunningProxy {
        self.sidecar(controller, workload, app).spawn().await
    }

    /// The same sidecar, not started yet, for more settings.
    pub fn sidecar(
        &self,
        controller: &RunningController,
        workload: &str,
        app: SocketAddr,
    ) -> Proxy {
        Proxy::new()
            .env("WEFT_PROXY_CONTROLLER_ADDR", &controller.url())
            .env("WEFT_PROXY_WORKLOAD", workload)
            .env(
                "WEFT_PROXY_PLUGIN_CACHE_DIR",
                self.dir.join("cache").to_str().unwrap(),
            )
            .inbound_app(app)
    }
}

impl Drop for ExampleMesh {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
