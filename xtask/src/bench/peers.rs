//! Starting each target in front of the upstream, pinned to the proxy CPU,
//! from the configuration templates in `bench/`, with its files and logs
//! in a directory of its own. The meshed pairs and the balanced targets
//! are in `peers/`.

mod balanced;
mod envoy_pair;
mod weft_balanced;
mod weft_controller;
mod weft_pair;

use std::ffi::OsStr;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, anyhow, bail};

use super::Target;
use super::measure::Endpoint;
use super::setup::Setup;
use crate::harness::processes::{Processes, pinned};
use crate::harness::weft::{self, AUTHORITY, SHIPPED_PLUGINS};
use crate::harness::{self, PROXY_CPU, free_ports, loopback, wait_for_200};

const ENVOY_TEMPLATE: &str = include_str!("../../../bench/envoy.yaml");
const ENVOY_WASM_FILTER: &str = include_str!("../../../bench/envoy-wasm-filter.yaml");
const NGINX_TEMPLATE: &str = include_str!("../../../bench/nginx.conf");
const HAPROXY_TEMPLATE: &str = include_str!("../../../bench/haproxy.cfg");

/// What every target is started with.
pub struct Peer<'a> {
    pub setup: &'a Setup,
    /// The upstream instances: one, or a balanced target's three.
    pub upstreams: &'a [SocketAddr],
    /// This target's configuration and log.
    pub dir: &'a Path,
    /// The target's position in the run, to keep Envoys apart.
    pub index: usize,
}

impl Peer<'_> {
    /// The upstream of a target that proxies to one instance.
    fn app(&self) -> SocketAddr {
        self.upstreams[0]
    }

    pub fn start(&self, target: Target, processes: &mut Processes) -> anyhow::Result<Endpoint> {
        match target {
            Target::Direct => Ok(Endpoint {
                pids: Vec::new(),
                http1: self.app(),
                http2: self.app(),
                authority: AUTHORITY.into(),
                handshakes: None,
            }),
            Target::Weft => self.weft(processes, None),
            Target::WeftPlugins => {
                let chain = self.dir.join("plugins.json");
                let components = &self.setup.components;
                weft::write_chain_file(&chain, components, &SHIPPED_PLUGINS, self.app())?;
                self.weft(processes, Some(&chain))
            }
            Target::WeftTraced => self.weft_traced(processes),
            Target::Envoy => self.envoy(processes, None),
            Target::EnvoyWasm => {
                let filter = self
                    .setup
                    .envoy_filter
                    .as_ref()
                    .map_err(|reason| anyhow!("{reason}"))?;
                self.envoy(processes, Some(filter))
            }
            Target::Nginx => self.nginx(processes),
            Target::Haproxy => self.haproxy(processes),
            Target::WeftPair => self.weft_pair(processes, false),
            Target::WeftMtlsPair => self.weft_pair(processes, true),
            Target::EnvoyMtlsPair => self.envoy_pair(processes),
            Target::WeftBalanced => self.weft_balanced(processes),
            Target::HaproxyBalanced => self.haproxy_balanced(processes),
            Target::EnvoyBalanced => self.envoy_balanced(processes),
        }
    }

    /// `error`, then the end of every log in the target's directory: the
    /// cause stays on the first line, which the tables quote.
    pub fn with_logs(&self, error: anyhow::Error) -> anyhow::Error {
        anyhow!("{error:#}\n{}", self.log_tail())
    }

    fn log_tail(&self) -> String {
        let mut logs: Vec<PathBuf> = std::fs::read_dir(self.dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
            .collect();
        logs.sort();
        let tails: Vec<String> = logs
            .iter()
            .map(|log| format!("{}:\n{}", log.display(), harness::tail(log)))
            .collect();
        tails.join("\n")
    }

    fn weft(&self, processes: &mut Processes, chain: Option<&Path>) -> anyhow::Result<Endpoint> {
        let log = self.dir.join("weft-proxy.log");
        let proxy = weft::Proxy {
            bin: &self.setup.bin,
            app: self.app(),
            chain,
            log: &log,
        }
        .start(processes)?;
        // One listener detects HTTP/1.1 and HTTP/2.
        Ok(Endpoint {
            pids: vec![proxy.pid],
            http1: proxy.inbound,
            http2: proxy.inbound,
            authority: AUTHORITY.into(),
            handshakes: None,
        })
    }

    /// Weft with a trace collector set. No request carries a sampled trace
    /// context, so no span is made and the collector is never sent one: a
    /// port nothing listens on will do.
    fn weft_traced(&self, processes: &mut Processes) -> anyhow::Result<Endpoint> {
        let [collector] = free_ports()?.map(loopback);
        let collector = collector.to_string();
        let log = self.dir.join("weft-proxy.log");
        let proxy = weft::Proxy {
            bin: &self.setup.bin,
            app: self.app(),
            chain: None,
            log: &log,
        }
        .start_with(
            processes,
            weft::Listeners::free()?,
            &[("WEFT_PROXY_TRACE_COLLECTOR", OsStr::new(&collector))],
        )?;
        Ok(Endpoint {
            pids: vec![proxy.pid],
            http1: proxy.inbound,
            http2: proxy.inbound,
            authority: AUTHORITY.into(),
            handshakes: None,
        })
    }

    fn envoy(&self, processes: &mut Processes, filter: Option<&Path>) -> anyhow::Result<Endpoint> {
        let wasm_filter = match filter {
            Some(path) => render(ENVOY_WASM_FILTER, &[("filter_path", path_text(path)?)])?,
            None => String::new(),
        };
        let values = [
            ("upstream_port", self.app().port().to_string()),
            ("wasm_filter", wasm_filter.trim_end().to_string()),
        ];
        let target = if filter.is_some() {
            Target::EnvoyWasm
        } else {
            Target::Envoy
        };
        // Envoys sharing a base id share memory for hot restarts.
        let base_id = ["--base-id".to_string(), self.envoy_base_id(0).to_string()];
        self.envoy_with(
            processes,
            ENVOY_TEMPLATE,
            &values,
            &base_id,
            target.name(),
            AUTHORITY,
        )
    }

    /// Envoy from `template`, `values` and its listen and admin ports
    /// filled in, with `args` besides; ready once its admin `/ready` answers.
    fn envoy_with(
        &self,
        processes: &mut Processes,
        template: &str,
        values: &[(&str, String)],
        args: &[String],
        log_name: &str,
        authority: &str,
    ) -> anyhow::Result<Endpoint> {
        let envoy = self
            .setup
            .envoy
            .as_ref()
            .map_err(|reason| anyhow!("{reason}"))?;
        let [listen, admin] = free_ports()?;
        let mut values = values.to_vec();
        values.push(("admin_port", admin.to_string()));
        values.push(("listen_port", listen.to_string()));
        let config = render(template, &values)?;
        let config_path = self.write(&config, "envoy.yaml")?;
        let mut command = pinned(PROXY_CPU, envoy);
        command
            .arg("-c")
            .arg(&config_path)
            .args(["--concurrency", "1", "--log-level", "warn"])
            .args(args);
        let pid = self.spawn(processes, "envoy", log_name, &mut command)?;
        let admin = loopback(admin);
        wait_for_200(processes, admin, &admin.to_string(), "/ready")
            .map_err(|e| self.with_logs(e))?;
        let listen = loopback(listen);
        Ok(Endpoint {
            pids: vec![pid],
            http1: listen,
            http2: listen,
            authority: authority.into(),
            handshakes: None,
        })
    }

    /// Apart from every other Envoy on the machine: ours by pid, and each
    /// of ours by its position (a pair's two by `which`, 0 or 1).
    fn envoy_base_id(&self, which: u64) -> u64 {
        u64::from(std::process::id()) * 32 + self.index as u64 * 2 + which
    }

    fn nginx(&self, processes: &mut Processes) -> anyhow::Result<Endpoint> {
        let [http1, http2] = free_ports()?;
        let prefix = path_text(self.dir)?;
        let config = render(
            NGINX_TEMPLATE,
            &[
                ("prefix", prefix.clone()),
                ("listen_port", http1.to_string()),
                ("h2_port", http2.to_string()),
                ("upstream_port", self.app().port().to_string()),
            ],
        )?;
        let config_path = self.write(&config, "nginx.conf")?;
        let mut command = pinned(PROXY_CPU, "nginx");
        command
            .args(["-p", &prefix, "-e", &format!("{prefix}/error.log"), "-c"])
            .arg(&config_path);
        let pid = self.spawn(processes, "nginx", "nginx", &mut command)?;
        Ok(Endpoint {
            pids: vec![pid],
            http1: loopback(http1),
            http2: loopback(http2),
            authority: AUTHORITY.into(),
            handshakes: None,
        })
    }

    fn haproxy(&self, processes: &mut Processes) -> anyhow::Result<Endpoint> {
        let upstream = [("upstream_port", self.app().port().to_string())];
        self.haproxy_with(processes, HAPROXY_TEMPLATE, &upstream, AUTHORITY)
    }

    /// HAProxy from `template`: `values` and its two listen ports filled in.
    fn haproxy_with(
        &self,
        processes: &mut Processes,
        template: &str,
        values: &[(&str, String)],
        authority: &str,
    ) -> anyhow::Result<Endpoint> {
        let [http1, http2] = free_ports()?;
        let mut values = values.to_vec();
        values.push(("listen_port", http1.to_string()));
        values.push(("h2_port", http2.to_string()));
        let config = render(template, &values)?;
        let config_path = self.write(&config, "haproxy.cfg")?;
        let mut command = pinned(PROXY_CPU, "haproxy");
        // -db: stay in the foreground, one process.
        command.arg("-db").arg("-f").arg(&config_path);
        let pid = self.spawn(processes, "haproxy", "haproxy", &mut command)?;
        Ok(Endpoint {
            pids: vec![pid],
            http1: loopback(http1),
            http2: loopback(http2),
            authority: authority.into(),
            handshakes: None,
        })
    }

    fn write(&self, text: &str, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Starts `command` with its output in `log`.log in the target's
    /// directory; returns its pid.
    fn spawn(
        &self,
        processes: &mut Processes,
        name: &'static str,
        log: &str,
        command: &mut Command,
    ) -> anyhow::Result<u32> {
        let log_path = self.dir.join(format!("{log}.log"));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        command.stdout(log.try_clone()?).stderr(log);
        Ok(processes.spawn(name, command)?.id())
    }
}

fn path_text(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// `template` with each `{{name}}` replaced by its value; a placeholder left
/// unfilled is a mistake in the template or here.
pub(super) fn render(template: &str, values: &[(&str, String)]) -> anyhow::Result<String> {
    let mut text = template.to_string();
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    if let Some(start) = text.find("{{") {
        let rest = &text[start..];
        let end = rest.find("}}").map_or(rest.len(), |end| end + 2);
        bail!("the template leaves {} unfilled", &rest[..end]);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_in_templates() {
        let text = render(
            "a {{x}} b {{y}} {{x}}",
            &[("x", "1".into()), ("y", "2".into())],
        );
        assert_eq!(text.unwrap(), "a 1 b 2 1");
        let error = render("a {{x}} {{z}}", &[("x", "1".into())]).unwrap_err();
        assert_eq!(error.to_string(), "the template leaves {{z}} unfilled");
    }

    #[test]
    fn fills_every_placeholder_of_the_shipped_templates() {
        let port = || "1".to_string();
        let templates = [
            (
                NGINX_TEMPLATE,
                vec!["prefix", "listen_port", "h2_port", "upstream_port"],
            ),
            (
                HAPROXY_TEMPLATE,
                vec!["listen_port", "h2_port", "upstream_port"],
            ),
            (ENVOY_WASM_FILTER, vec!["filter_path"]),
            (
                ENVOY_TEMPLATE,
                vec!["admin_port", "listen_port", "upstream_port", "wasm_filter"],
            ),
            (
                envoy_pair::CLIENT_TEMPLATE,
                vec![
                    "admin_port",
                    "listen_port",
                    "server_port",
                    "server_name",
                    "cert_dir",
                ],
            ),
            (
                envoy_pair::SERVER_TEMPLATE,
                vec!["admin_port", "listen_port", "upstream_port", "cert_dir"],
            ),
            (
                weft_pair::MESH_TEMPLATE,
                vec!["client_inbound_port", "server_inbound_port"],
            ),
            (
                balanced::HAPROXY_TEMPLATE,
                vec!["listen_port", "h2_port", "port_1", "port_2", "port_3"],
            ),
            (
                balanced::ENVOY_TEMPLATE,
                vec!["admin_port", "listen_port", "port_1", "port_2", "port_3"],
            ),
            (
                weft_balanced::MESH_TEMPLATE,
                vec!["port_1", "port_2", "port_3"],
            ),
        ];
        for (template, names) in templates {
            let values: Vec<(&str, String)> = names.into_iter().map(|n| (n, port())).collect();
            render(template, &values).unwrap();
        }
    }
}
