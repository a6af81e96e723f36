//! A mesh for the real controller: a directory of resources (namespace
//! `demo`, pod `app`, WasmPlugins running the `add_header` example) and a
//! proxy cache directory, removed when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::controller::RunningController;
use crate::proxy::RunningProxy;
use crate::{PATIENCE, Proxy, http1};

pub struct Mesh {
    pub dir: PathBuf,
}

impl Mesh {
    /// Pods `demo/app` and `demo/web`, whose namespace runs the plugin `stamp`.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("weft-mesh-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("resources")).unwrap();
        let mesh = Mesh { dir };
        mesh.run("stamp");
        mesh
    }

    pub fn resources(&self) -> PathBuf {
        self.dir.join("resources")
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }

    /// `demo/app`'s sidecar in front of `app`, pointed at a controller
    /// address where nothing listens (yet), with no saved chain; returned
    /// once it has tried the controller and failed, so it is waiting for
    /// its chain.
    pub async fn proxy_awaiting_its_chain(
        &self,
        controller: SocketAddr,
        app: SocketAddr,
    ) -> RunningProxy {
        let proxy = Proxy::new()
            .env(
                "WEFT_PROXY_CONTROLLER_ADDR",
                &format!("http://{controller}"),
            )
            .env("WEFT_PROXY_WORKLOAD", "demo/app")
            .env(
                "WEFT_PROXY_PLUGIN_CACHE_DIR",
                self.cache().to_str().unwrap(),
            )
            .inbound_app(app)
            .spawn_unready()
            .await;
        crate::eventually("the proxy tries the controller", || async {
            proxy.logged("plugin chain sync failed")
        })
        .await;
        proxy
    }

    /// Namespace `demo` runs `plugins` (`weft.io/plugins`, comma-separated).
    pub fn run(&self, plugins: &str) {
        self.write(
            "workloads.yaml",
            &format!(
                "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n  annotations:\n    \
                 weft.io/plugins: {plugins}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  \
                 name: app\n  namespace: demo\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  \
                 name: web\n  namespace: demo\n"
            ),
        );
    }

    /// Replaces a resource file in one rename.
    pub fn write(&self, file: &str, text: &str) {
        let tmp = self.dir.join("next.yaml");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, self.resources().join(file)).unwrap();
    }

    /// WasmPlugin `name` in `demo`: the `add_header` example from `url`
    /// setting `header: value`; `spec` adds lines to its spec (`sha256: …`).
    pub fn add_header(&self, name: &str, url: &str, header: &str, value: &str, spec: &[&str]) {
        let spec: String = spec.iter().map(|line| format!("  {line}\n")).collect();
        self.write(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: weft.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: {name}\n  \
                 namespace: demo\nspec:\n  url: {url}\n{spec}  pluginConfig:\n    \
                 name: {header}\n    value: {value}\n"
            ),
        );
    }

    /// The `stamp` WasmPlugin: `x-weft-example: value`, from file `module`.
    pub fn stamp(&self, module: &Path, value: &str, sha256: Option<&str>) {
        let sha256 = sha256.map(|s| format!("sha256: {s}"));
        let url = format!("file://{}", module.display());
        let spec: Vec<&str> = sha256.iter().map(String::as_str).collect();
        self.add_header("stamp", &url, "x-weft-example", value, &spec);
    }

    pub async fn controller(&self) -> RunningController {
        RunningController::spawn(&self.resources(), "127.0.0.1:0".parse().unwrap()).await
    }

    /// The sidecar of `demo/app`, taking its chain from `controller`.
    pub async fn proxy(&self, controller: &str, app: SocketAddr) -> RunningProxy {
        self.workload_proxy("demo/app", controller, app).await
    }

    /// The sidecar of `workload` (`namespace/pod`), in front of `app`.
    pub async fn workload_proxy(
        &self,
        workload: &str,
        controller: &str,
        app: SocketAddr,
    ) -> RunningProxy {
        Proxy::new()
            .env("WEFT_PROXY_CONTROLLER_ADDR", controller)
            .env("WEFT_PROXY_WORKLOAD", workload)
            .env(
                "WEFT_PROXY_PLUGIN_CACHE_DIR",
                self.cache().to_str().unwrap(),
            )
            .inbound_app(app)
            .spawn()
            .await
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `Ok` when a request through `proxy` comes back with `header: value`.
pub async fn stamped_with(proxy: &RunningProxy, header: &str, value: &str) -> Result<(), String> {
    let rsp = http1::get(proxy.inbound, "app", "/").await;
    match rsp.header(header) {
        Some(v) if v == value => Ok(()),
        other => Err(format!("{header}: {other:?}")),
    }
}

/// `Ok` when a request through `proxy` is stamped `x-weft-example: value`.
pub async fn stamped(proxy: &RunningProxy, value: &str) -> Result<(), String> {
    stamped_with(proxy, "x-weft-example", value).await
}

/// Runs the `weft` CLI against `controller`: its exit code, then stdout
/// and stderr.
pub async fn weft(controller: &RunningController, args: &[&str]) -> (Option<i32>, String) {
    let output = tokio::process::Command::new(crate::binaries::path("weft"))
        .arg("--controller")
        .arg(controller.url())
        .args(args)
        .output();
    let output = tokio::time::timeout(PATIENCE, output)
        .await
        .expect("weft answers in time")
        .expect("running weft");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.code(), format!("{stdout}{stderr}"))
}
