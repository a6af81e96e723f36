//! `weft`: asks the controller what the mesh runs. `weft workloads` lists
//! each workload's plugins and versions; `weft plugins` lists every
//! WasmPlugin and, for one that was rejected, why; `weft endpoint` says what
//! a proxy connecting to an address would be told, and `weft endpoints` what
//! a proxy balancing over a Service's authority would be given. `weft
//! inject` adds the sidecar to workloads' manifests, with the same function
//! as the controller's admission webhook, and needs no controller.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tonic::transport::Channel;
use weft_api::destination::destination_client::DestinationClient;
use weft_api::destination::update::Update as UpdateKind;
use weft_api::destination::{
    Endpoint, GetDestination, GetEndpointRequest, LoadBalancer, ProtocolHint, WeightedAddrSet,
};
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
    /// The endpoints behind a Service's authority, as a proxy balancing
    /// over it is first told them. Exits with 2 when no Service has it.
    Endpoints {
        /// `name.ns.svc.<cluster domain>[:port]` or `clusterIP:port`; the
        /// port defaults to 80.
        authority: String,
    },
    /// Adds the Weft sidecar to the workloads in Kubernetes manifests
    /// (YAML or JSON; Pods, Deployments, StatefulSets, DaemonSets, Jobs,
    /// CronJobs, ReplicaSets, Lists) and prints them, other objects
    /// unchanged: `kubectl get deploy -o yaml | weft inject - | kubectl
    /// apply -f -`. What was injected or skipped, and why, goes to stderr.
    Inject {
        /// Files to read; `-` or none reads standard input.
        files: Vec<PathBuf>,
        /// The control plane's injector settings (the `inject.yaml` of the
        /// ConfigMap weft-system/weft-config), so that the CLI injects what
        /// the webhook would; the chart's defaults without it.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Prints the manifests that install Weft's control plane (as the Helm
    /// chart renders them): `weft install | kubectl apply -f -`.
    Install(weft_controller::install::InstallArgs),
    /// Prints what `weft install` created, for `kubectl delete -f -`.
    Uninstall(weft_controller::install::UninstallArgs),
    /// Writes a new identity trust anchor and issuer for `helm install`'s
    /// `--set-file` lines (`weft install` makes its own when given none).
    Identity(weft_controller::install::IdentityArgs),
    /// Checks that a cluster can run Weft (`--pre`), that the control plane
    /// is healthy, and that the proxies are (`--proxy`).
    Check(weft_controller::check::CheckArgs),
    /// Live requests through the proxies of `deploy/NAME`, `pod/NAME` or
    /// `ns/NAME`, one line per event, as they happen.
    Tap(weft_controller::tap::cli::TapArgs),
    /// The same requests, grouped by source, destination, method and path,
    /// with counts, latencies and success rate, refreshed in place.
    Top(weft_controller::tap::cli::TopArgs),
    /// Golden metrics per resource: meshed pods, success rate, requests per
    /// second, latency percentiles and TCP connections, from the
    /// controller's stats API or a Prometheus.
    Stat(weft_controller::stats::cli::StatArgs),
    /// Who talks to whom, with the client's and the server's identities and
    /// whether mTLS secures it.
    Edges(weft_controller::stats::cli::EdgesArgs),
    /// Per-route success, requests per second, latency, retries and splits.
    Routes(weft_controller::stats::cli::RoutesArgs),
    /// Prints the URL of the dashboard the controller serves (`--open`
    /// opens it): workloads' golden metrics, edges, live tap and plugins.
    Dashboard(weft_controller::dashboard::cli::DashboardArgs),
    /// Writes, builds and tests filters in Rust, Python or JavaScript:
    /// `weft plugin new NAME --lang python`, `weft plugin build`, `weft
    /// plugin test` (on the proxy's plugin runtime, no proxy needed).
    Plugin(weft_controller::plugin_dev::PluginArgs),
    /// Prints a ServiceProfile for a Service: from an OpenAPI document
    /// (`--open-api SPEC`), as `linkerd profile --open-api` does, or a
    /// commented one to start from (`--template`).
    Profile(weft_controller::linkerd::open_api::ProfileArgs),
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // These need no controller.
    match &cli.command {
        Command::Inject { files, config } => return inject(files, config.as_deref()),
        Command::Identity(args) => return weft_controller::install::identity(args),
        Command::Install(args) => return weft_controller::install::install(args),
        Command::Uninstall(args) => return weft_controller::install::uninstall(args),
        Command::Check(args) => return weft_controller::check::check(args).await,
        Command::Stat(args) => return weft_controller::stats::cli::run_stat(args).await,
        Command::Edges(args) => return weft_controller::stats::cli::run_edges(args).await,
        Command::Routes(args) => return weft_controller::stats::cli::run_routes(args).await,
        Command::Dashboard(args) => return weft_controller::dashboard::cli::run(args).await,
        Command::Plugin(args) => return weft_controller::plugin_dev::run(args),
        Command::Profile(args) => return weft_controller::linkerd::open_api::run(args),
        _ => {}
    }
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
        Command::Tap(args) => weft_controller::tap::cli::tap(controller, args).await,
        Command::Top(args) => weft_controller::tap::cli::top(controller, args).await,
        Command::Endpoint { address } => {
            let request = GetEndpointRequest {
                address: address.to_string(),
            };
            let mut destination = DestinationClient::new(controller);
            let endpoint = destination.get_endpoint(request).await?.into_inner();
            print!("{}", render_endpoint(&endpoint));
            Ok(ExitCode::SUCCESS)
        }
        Command::Inject { .. }
        | Command::Install(_)
        | Command::Uninstall(_)
        | Command::Identity(_)
        | Command::Check(_)
        | Command::Stat(_)
        | Command::Edges(_)
        | Command::Routes(_)
        | Command::Dashboard(_)
        | Command::Plugin(_)
        | Command::Profile(_) => {
            unreachable!("answered without a controller")
        }
        Command::Endpoints { authority } => {
            let mut destination = DestinationClient::new(controller);
            let mut updates = destination
                .get(GetDestination { authority })
                .await?
                .into_inner();
            let first = updates
                .message()
                .await?
                .and_then(|update| update.update)
                .context("the controller ended the stream without an update")?;
            let (text, exists) = render_first_update(first)?;
            print!("{text}");
            Ok(if exists {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
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
    let labels = labels(&endpoint.metric_labels);
    format!(
        "address:  {}\nidentity: {identity}\nprotocol: {protocol}\nlabels:   {labels}\n",
        endpoint.address
    )
}

/// What a proxy is first told of an authority, and whether a Service has it.
fn render_first_update(first: UpdateKind) -> anyhow::Result<(String, bool)> {
    Ok(match first {
        UpdateKind::Add(set) => (render_endpoints(&set), true),
        UpdateKind::NoEndpoints(none) if none.exists => ("no endpoints\n".to_string(), true),
        UpdateKind::NoEndpoints(_) => ("no such service\n".to_string(), false),
        UpdateKind::Remove(_) => anyhow::bail!("the controller's first update removes endpoints"),
    })
}

/// One line for the set (balancer, labels), then a table of endpoints.
fn render_endpoints(set: &WeightedAddrSet) -> String {
    let balancer = match LoadBalancer::try_from(set.load_balancer) {
        Ok(LoadBalancer::Unspecified | LoadBalancer::Ewma) => "ewma".to_string(),
        Ok(LoadBalancer::P2c) => "p2c".to_string(),
        Ok(LoadBalancer::RoundRobin) => "round-robin".to_string(),
        Err(_) => format!("unknown ({})", set.load_balancer),
    };
    let mut rows: Vec<[String; 4]> = set
        .addrs
        .iter()
        .map(|addr| {
            let identity = match addr.identity.as_str() {
                "" => "(not meshed)".to_string(),
                identity => identity.to_string(),
            };
            [
                addr.address.clone(),
                addr.weight.to_string(),
                identity,
                labels(&addr.metric_labels),
            ]
        })
        .collect();
    rows.sort();
    let header = ["ADDRESS", "WEIGHT", "IDENTITY", "LABELS"].map(String::from);
    let width = |column: usize| {
        rows.iter()
            .chain([&header])
            .map(|row| row[column].len())
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    let mut out = format!(
        "load balancer: {balancer}\nlabels:        {}\n",
        labels(&set.metric_labels)
    );
    for row in [&header].into_iter().chain(&rows) {
        out += &format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        );
    }
    out
}

/// `key=value`, sorted, space-separated; `(none)` when there are none.
fn labels(labels: &std::collections::HashMap<String, String>) -> String {
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "(none)".to_string()
    } else {
        pairs.join(" ")
    }
}

fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// Injects every file's workloads (standard input for `-` or none). A
/// workload skipped is reported on stderr with why, as Linkerd's inject
/// does, and the output keeps it unchanged.
fn inject(files: &[PathBuf], config: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let mut input = String::new();
    if files.is_empty() || files.iter().any(|f| f.as_os_str() == "-") {
        std::io::stdin()
            .read_to_string(&mut input)
            .context("reading standard input")?;
    }
    for file in files.iter().filter(|f| f.as_os_str() != "-") {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        // Documents of each file stay apart from the next file's.
        if !input.is_empty() && !input.ends_with('\n') {
            input.push('\n');
        }
        if !input.is_empty() {
            input.push_str("---\n");
        }
        input.push_str(&text);
    }
    let settings = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            weft_inject::Settings::from_yaml(&text)
                .with_context(|| format!("{} is not an inject config", path.display()))?
        }
        None => weft_inject::Settings::default(),
    };
    let output = weft_inject::inject_documents(&input, &settings, false)?;
    print!("{}", output.yaml);
    for report in &output.reports {
        eprintln!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::destination::{AddrSet, NoEndpoints, WeightedAddr};
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
            ..Endpoint::default()
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

    #[test]
    fn endpoints_are_a_table_or_say_there_are_none() {
        let set = WeightedAddrSet {
            addrs: vec![
                WeightedAddr {
                    address: "127.0.0.1:4243".into(),
                    weight: 10000,
                    identity: "backend.demo.serviceaccount.identity.weft-system.cluster.local"
                        .into(),
                    protocol_hint: ProtocolHint::H2.into(),
                    metric_labels: [("pod", "backend"), ("serviceaccount", "backend")]
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .into(),
                },
                WeightedAddr {
                    address: "10.0.0.7:8081".into(),
                    weight: 10000,
                    ..WeightedAddr::default()
                },
            ],
            metric_labels: [("service", "backend"), ("namespace", "demo")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
            load_balancer: LoadBalancer::Ewma.into(),
        };
        let (text, exists) = render_first_update(UpdateKind::Add(set)).unwrap();
        assert!(exists);
        assert_eq!(
            text,
            "load balancer: ewma\n\
             labels:        namespace=demo service=backend\n\
             ADDRESS         WEIGHT  IDENTITY                                                        LABELS\n\
             10.0.0.7:8081   10000   (not meshed)                                                    (none)\n\
             127.0.0.1:4243  10000   backend.demo.serviceaccount.identity.weft-system.cluster.local  pod=backend serviceaccount=backend\n"
        );

        let none = |exists| UpdateKind::NoEndpoints(NoEndpoints { exists });
        let (text, exists) = render_first_update(none(true)).unwrap();
        assert_eq!((text.as_str(), exists), ("no endpoints\n", true));
        let (text, exists) = render_first_update(none(false)).unwrap();
        assert_eq!((text.as_str(), exists), ("no such service\n", false));
        assert!(render_first_update(UpdateKind::Remove(AddrSet::default())).is_err());
    }
}
