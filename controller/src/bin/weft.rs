//! `weft`: asks the controller what the mesh runs. `weft workloads` lists
//! each workload's plugins and versions; `weft plugins` lists every
//! WasmPlugin and, for one that was rejected, why; `weft endpoint` says what
//! a proxy connecting to an address would be told.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tonic::transport::Channel;
use weft_api::destination::destination_client::DestinationClient;
use weft_api::destination::{Endpoint, GetEndpointRequest, ProtocolHint};
use weft_api::inspect::inspect_client::InspectClient;
use weft_api::inspect::{ListPluginsRequest, ListWorkloadsRequest, Plugins, Workloads};

#[derive(Parser)]
#[command(name = "weft", version, about)]
struct Cli {
    /// The controller's address.
    #[arg(long, env = "WEFT_CONTROLLER", default_value = "http://127.0.0.1:8090")]
    controller: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Each workload's plugins, in the order its proxy runs them, with the
    /// chain's version and any problem.
    Workloads {
        /// Only this namespace.
        #[arg(long, short)]
        namespace: Option<String>,
    },
    /// Every WasmPlugin: accepted with its module's sha256, or rejected and why.
    Plugins {
        /// Only this namespace.
        #[arg(long, short)]
        namespace: Option<String>,
    },
    /// Whether a meshed workload receives at an address, and the identity
    /// its proxy presents there.
    Endpoint {
        /// `ip:port` (`[ip]:port` for IPv6).
        address: SocketAddr,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let controller = Channel::from_shared(cli.controller.clone())
        .with_context(|| format!("{} is not a URL", cli.controller))?
        .connect()
        .await
        .with_context(|| format!("cannot reach the controller at {}", cli.controller))?;
    let mut client = InspectClient::new(controller.clone());
    match cli.command {
        Command::Workloads { namespace } => {
            let request = ListWorkloadsRequest {
                namespace: namespace.unwrap_or_default(),
            };
            let workloads = client.list_workloads(request).await?.into_inner();
            print!("{}", render_workloads(&workloads));
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugins { namespace } => {
            let request = ListPluginsRequest {
                namespace: namespace.unwrap_or_default(),
            };
            let plugins = client.list_plugins(request).await?.into_inner();
            print!("{}", render_plugins(&plugins));
            // Scripts can tell a mesh with rejected plugins apart.
            let all_accepted = plugins.plugins.iter().all(|p| p.accepted);
            Ok(if all_accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Endpoint { address } => {
            let request = GetEndpointRequest {
                address: address.to_string(),
            };
            let mut destination = DestinationClient::new(controller);
            let endpoint = destination.get_endpoint(request).await?.into_inner();
            print!("{}", render_endpoint(&endpoint));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn render_workloads(workloads: &Workloads) -> String {
    let mut out = format!("{:<28} {:<17} PLUGINS\n", "WORKLOAD", "VERSION");
    for w in &workloads.workloads {
        let plugins: Vec<String> = w
            .plugins
            .iter()
            .map(|p| format!("{}@{}", p.name, short(&p.sha256)))
            .collect();
        let plugins = if plugins.is_empty() {
            "(none)".to_string()
        } else {
            plugins.join(" ")
        };
        let workload = format!("{}/{}", w.namespace, w.pod);
        out += &format!("{workload:<28} {:<17} {plugins}\n", w.version);
        for problem in &w.problems {
            out += &format!("  problem: {problem}\n");
        }
    }
    out
}

fn render_plugins(plugins: &Plugins) -> String {
    let mut out = format!("{:<32} {:<9} DETAIL\n", "WASMPLUGIN", "STATUS");
    for p in &plugins.plugins {
        let name = format!("{}/{}", p.namespace, p.name);
        let (status, detail) = if p.accepted {
            let detail = if p.sha256.is_empty() {
                p.message.clone()
            } else {
                format!("sha256 {}", p.sha256)
            };
            ("accepted", detail)
        } else {
            ("rejected", format!("{}: {}", p.reason, p.message))
        };
        out += &format!("{name:<32} {status:<9} {detail}\n");
    }
    out
}

fn render_endpoint(endpoint: &Endpoint) -> String {
    let identity = match endpoint.identity.as_str() {
        "" => "not meshed",
        identity => identity,
    };
    let protocol = match ProtocolHint::try_from(endpoint.protocol_hint) {
        Ok(ProtocolHint::H2) => "h2".to_string(),
        Ok(ProtocolHint::Unspecified) => "as the app speaks".to_string(),
        Err(_) => format!("unknown ({})", endpoint.protocol_hint),
    };
    let mut labels: Vec<String> = endpoint
        .metric_labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    labels.sort();
    let labels = if labels.is_empty() {
        "(none)".to_string()
    } else {
        labels.join(" ")
    };
    format!(
        "address:  {}\nidentity: {identity}\nprotocol: {protocol}\nlabels:   {labels}\n",
        endpoint.address
    )
}

fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::inspect::{PluginStatus, Workload, WorkloadPlugin};

    #[test]
    fn workloads_render_one_line_each_with_their_problems() {
        let workloads = Workloads {
            workloads: vec![Workload {
                namespace: "demo".into(),
                pod: "app".into(),
                version: "f3e32948792d4b29".into(),
                plugins: vec![WorkloadPlugin {
                    name: "authz".into(),
                    resource: "weft-system/authz".into(),
                    sha256: "0123456789abcdef".into(),
                    config_source: "wasmPlugin".into(),
                }],
                problems: vec!["plugin retry refused: bad".into()],
                plugins_from: "pod".into(),
            }],
        };
        let text = render_workloads(&workloads);
        assert!(text.contains("demo/app"), "{text}");
        assert!(text.contains("authz@0123456789ab\n"), "{text}");
        assert!(
            text.contains("  problem: plugin retry refused: bad"),
            "{text}"
        );
    }

    #[test]
    fn rejected_plugins_say_why() {
        let plugins = Plugins {
            plugins: vec![PluginStatus {
                namespace: "demo".into(),
                name: "stamp".into(),
                accepted: false,
                reason: "InvalidSha256".into(),
                message: "not hex".into(),
                sha256: String::new(),
            }],
        };
        let text = render_plugins(&plugins);
        assert!(text.contains("demo/stamp"), "{text}");
        assert!(text.contains("rejected  InvalidSha256: not hex"), "{text}");
    }

    #[test]
    fn an_endpoint_names_its_identity_or_says_it_is_not_meshed() {
        let meshed = Endpoint {
            address: "127.0.0.1:4243".into(),
            identity: "backend.demo.serviceaccount.identity.weft-system.cluster.local".into(),
            protocol_hint: ProtocolHint::H2.into(),
            metric_labels: [("pod", "backend"), ("namespace", "demo")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        };
        assert_eq!(
            render_endpoint(&meshed),
            "address:  127.0.0.1:4243\n\
             identity: backend.demo.serviceaccount.identity.weft-system.cluster.local\n\
             protocol: h2\n\
             labels:   namespace=demo pod=backend\n"
        );
        let plain = Endpoint {
            address: "127.0.0.1:9".into(),
            ..Endpoint::default()
        };
        let text = render_endpoint(&plain);
        assert!(text.contains("identity: not meshed\n"), "{text}");
        assert!(text.contains("labels:   (none)\n"), "{text}");
    }
}
