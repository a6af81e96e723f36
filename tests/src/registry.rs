//! A real OCI registry on loopback: Debian's `docker-registry` (the CNCF
//! distribution registry) with its storage in a temp dir, and pushes to it
//! with oci-client, as a plugin author's tooling would push.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{PATIENCE, http1};

/// Istio's media type for a Wasm plugin image's one layer.
pub const ISTIO_WASM_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// The Wasm OCI artifact's layer and config media types.
pub const WASM_ARTIFACT_LAYER: &str = "application/wasm";
pub const WASM_ARTIFACT_CONFIG: &str = "application/vnd.wasm.config.v0+json";

const INSTALL: &str = "apt-get update && apt-get install -y docker-registry \
                       (cargo xtask test does it when run as root)";

pub struct RunningRegistry {
    pub addr: SocketAddr,
    dir: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
    _child: Child,
}

impl RunningRegistry {
    /// Starts a registry and waits until `GET /v2/` answers 200.
    pub async fn spawn() -> Self {
        let binary = ["/usr/bin/docker-registry", "/usr/local/bin/docker-registry"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .unwrap_or_else(|| panic!("docker-registry is not installed: run {INSTALL}"));
        let addr = crate::closed_port();
        let dir = std::env::temp_dir().join(format!(
            "weft-registry-{}-{}",
            std::process::id(),
            addr.port()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    \
                 rootdirectory: {}\nhttp:\n  addr: {addr}\n  secret: weft-tests\n",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting docker-registry");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[docker-registry] {line}");
                log.lock().unwrap().push(line);
            }
        });
        let registry = RunningRegistry {
            addr,
            dir,
            logs,
            _child: child,
        };
        registry.wait_ready().await;
        registry
    }

    /// The registry has no readiness line of its own: its API root
    /// answering is the signal.
    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while tokio::time::Instant::now() < deadline {
            if let Ok(stream) = tokio::net::TcpStream::connect(self.addr).await {
                drop(stream);
                let rsp = http1::get(self.addr, &self.addr.to_string(), "/v2/").await;
                assert_eq!(rsp.status, 200, "GET /v2/: {}", rsp.text());
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "docker-registry did not listen on {} within {PATIENCE:?}: {}",
            self.addr,
            self.logs.lock().unwrap().join("\n")
        );
    }

    /// Pushes `module` as a one-layer image `repository:tag` and returns
    /// the reference to pull (`127.0.0.1:PORT/repository:tag`).
    pub async fn push_module(
        &self,
        repository_and_tag: &str,
        module: &[u8],
        layer_media_type: &str,
        config_media_type: &str,
    ) -> String {
        // oci-client is built without a default TLS provider, like the
        // controller's; the push is plain HTTP but the client wants one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::try_from(ClientConfig {
            protocol: ClientProtocol::Http,
            ..ClientConfig::default()
        })
        .expect("an OCI client");
        let image = format!("{}/{repository_and_tag}", self.addr);
        let reference: Reference = image.parse().expect("an image reference");
        let layers = [ImageLayer::new(
            module.to_vec(),
            layer_media_type.to_string(),
            None,
        )];
        let config = Config::new(b"{}".to_vec(), config_media_type.to_string(), None);
        let push = client.push(&reference, &layers, config, &RegistryAuth::Anonymous, None);
        tokio::time::timeout(PATIENCE, push)
            .await
            .expect("the push finished in time")
            .unwrap_or_else(|e| panic!("pushing {image}: {e}"));
        image
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
