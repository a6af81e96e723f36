//! `weft-controller`: serves the plugin and destination APIs to proxies
//! from a directory of resources (Namespaces, Pods, WasmPlugins, Services
//! and EndpointSlices as YAML),
//! following its changes, or from a Kubernetes cluster's watches; and, with
//! `--webhook-listen`, the mutating admission webhook that injects proxies.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Parser};
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tracing_subscriber::EnvFilter;
use weft_controller::api::PluginApi;
use weft_controller::destination::DestinationApi;
use weft_controller::fetch::Fetcher;
use weft_controller::identity::{
    CONTROLLER_ACCOUNT, IdentityService, Issuer, IssuerFiles, Lifetimes, LocalTokens, SharedIssuer,
    TokenVerifier, accept_tls, keep_certified, write_pod_tokens,
};
use weft_controller::index::{ClusterDomain, Index};
use weft_controller::inspect::InspectApi;
use weft_controller::kubernetes::follow_cluster;
use weft_controller::modules::Modules;
use weft_controller::state::{State, follow_directory, read_state};
use weft_controller::stats::http::StatsApi;
use weft_controller::stats::{Embedded, MetricsSource, Prometheus};
use weft_controller::tap::TapRelayApi;
use weft_controller::webhook::{CertificateFiles, ServingCertificate, Webhook};
use weft_identity::{Credentials, NameError, ServiceAccount, TrustDomain};

/// Exit code for bad configuration (`EX_USAGE`), as the proxy's.
const EXIT_CONFIG: i32 = 64;

#[derive(Parser)]
#[command(name = "weft-controller", version, about)]
#[command(group(ArgGroup::new("source").required(true).args(["dir", "kubernetes"])))]
struct Args {
    /// The directory of resources to serve (YAML or JSON, read recursively).
    #[arg(long, env = "WEFT_CONTROLLER_DIR")]
    dir: Option<PathBuf>,
    /// Watch the cluster instead: in-cluster config, else the kubeconfig
    /// (`KUBECONFIG`, `~/.kube/config`). Writes WasmPlugins' status.
    #[arg(long)]
    kubernetes: bool,
    /// Where proxies connect.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_LISTEN_ADDR",
        default_value = "127.0.0.1:8090"
    )]
    listen: SocketAddr,
    /// Serve proxies' chains and modules on the plaintext listener too, to
    /// proxies without an identity. `false` leaves them only behind mTLS,
    /// where a proxy may read only its own workload's chain.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_PLAINTEXT_PLUGIN_API",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    plaintext_plugin_api: bool,
    /// The DNS suffix of the cluster's Services: the Destination API
    /// answers for `name.ns.svc.<domain>`.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    cluster_domain: ClusterDomain,
    /// Log filter in `tracing` syntax.
    #[arg(long, env = "WEFT_LOG", default_value = "info")]
    log: String,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    webhook: WebhookArgs,
    #[command(flatten)]
    stats: StatsArgs,
}

/// The stats API (`weft stat`, `edges`, `routes`).
#[derive(clap::Args)]
struct StatsArgs {
    /// Serve the stats API (JSON over HTTP) here.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_STATS_LISTEN_ADDR",
        default_value = "127.0.0.1:8085"
    )]
    stats_listen: SocketAddr,
    /// Take the figures from this Prometheus instead of scraping the
    /// proxies.
    #[arg(long, env = "WEFT_CONTROLLER_PROMETHEUS_URL")]
    prometheus_url: Option<String>,
    /// Without a Prometheus: how often each meshed pod's proxy is scraped.
    #[arg(long, env = "WEFT_CONTROLLER_SCRAPE_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    scrape_interval: Duration,
    /// Without a Prometheus: how much of the samples is kept, the longest
    /// window (`-t`) a query may ask for.
    #[arg(long, env = "WEFT_CONTROLLER_SCRAPE_RETENTION", default_value = "5m", value_parser = parse_duration)]
    scrape_retention: Duration,
}

/// The mutating admission webhook (HTTPS), off unless given an address.
#[derive(clap::Args)]
struct WebhookArgs {
    /// Serve the webhook here (`POST /inject`, `GET /live`, `GET /ready`).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_WEBHOOK_LISTEN_ADDR",
        requires_all = ["webhook_certificate", "webhook_key"]
    )]
    webhook_listen: Option<SocketAddr>,
    /// The webhook's serving certificate (PEM, its chain after it;
    /// `tls.crt`). Reloaded on change.
    #[arg(long, env = "WEFT_CONTROLLER_WEBHOOK_CERTIFICATE")]
    webhook_certificate: Option<PathBuf>,
    /// The webhook's key (PEM; `tls.key`). Reloaded on change.
    #[arg(long, env = "WEFT_CONTROLLER_WEBHOOK_KEY")]
    webhook_key: Option<PathBuf>,
    /// What injection adds (YAML, `weft_inject::Settings` in camelCase;
    /// the chart's `inject.yaml`). Without it, the chart's defaults.
    #[arg(long, env = "WEFT_CONTROLLER_INJECT_CONFIG")]
    inject_config: Option<PathBuf>,
}

/// How often the webhook's certificate files are checked for a rotation.
const WEBHOOK_CERTIFICATE_POLL: Duration = Duration::from_secs(1);

/// The identity service (TLS, on its own port, as Linkerd's).
#[derive(clap::Args)]
struct IdentityArgs {
    /// Where proxies ask for certificates.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_LISTEN_ADDR",
        default_value = "127.0.0.1:8091"
    )]
    identity_listen: SocketAddr,
    /// The controller's own state: with `--dir`, the generated trust
    /// anchor and issuer (when no files are given), the token key and each
    /// pod's token under `tokens/<namespace>/<pod>`.
    #[arg(long, env = "WEFT_CONTROLLER_STATE_DIR", default_value_os_t = default_state_dir())]
    state_dir: PathBuf,
    /// The trust domain identities are issued and named in.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_TRUST_DOMAIN",
        default_value = "cluster.local",
        value_parser = parse_trust_domain
    )]
    trust_domain: TrustDomain,
    /// The trust anchors (PEM; Linkerd's `ca.crt`); with the issuer's
    /// certificate and key, instead of generating them. Reloaded on change.
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_TRUST_ANCHORS",
        requires_all = ["identity_issuer_certificate", "identity_issuer_key"]
    )]
    identity_trust_anchors: Option<PathBuf>,
    /// The issuer's certificate (PEM; `tls.crt`).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_ISSUER_CERTIFICATE",
        requires = "identity_trust_anchors"
    )]
    identity_issuer_certificate: Option<PathBuf>,
    /// The issuer's key (PEM, PKCS#8; `tls.key`).
    #[arg(
        long,
        env = "WEFT_CONTROLLER_IDENTITY_ISSUER_KEY",
        requires = "identity_trust_anchors"
    )]
    identity_issuer_key: Option<PathBuf>,
    /// How long a proxy's certificate lives.
    #[arg(long, env = "WEFT_CONTROLLER_IDENTITY_ISSUANCE_LIFETIME", default_value = "24h", value_parser = parse_duration)]
    identity_issuance_lifetime: Duration,
    /// How far back a certificate's validity starts, for lagging clocks.
    #[arg(long, env = "WEFT_CONTROLLER_IDENTITY_CLOCK_SKEW", default_value = "20s", value_parser = parse_duration)]
    identity_clock_skew: Duration,
}

fn main() -> anyhow::Result<()> {
    let args = Args::try_parse().unwrap_or_else(|e| {
        let code = if e.use_stderr() { EXIT_CONFIG } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    });
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log).context("WEFT_LOG")?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let inject_settings = read_inject_config(&args.webhook).unwrap_or_else(|message| {
        eprintln!("weft-controller: {message}");
        std::process::exit(EXIT_CONFIG)
    });
    // What the compiled plugins name: Services' DNS names, identities, and
    // the default inbound policy of workloads without the annotation.
    let empty = Index::new(weft_controller::index::ROOT_NAMESPACE)
        .with_cluster_domain(args.cluster_domain.clone())
        .with_trust_domain(args.identity.trust_domain.clone())
        .with_default_inbound_policy(inject_settings.default_inbound_policy.clone());
    let runtime = weft_plugins::Runtime::new().context("starting the plugin runtime")?;
    let fetcher = Fetcher::new().context("starting the module fetcher")?;
    // Read before listening, so the first proxies find their workloads; and
    // before the API's runtime starts, since module fetches block.
    let directory = args.dir.clone().map(|dir| {
        let first = read_state(&dir, empty.clone(), &runtime, &fetcher, &Modules::default());
        (dir, first)
    });
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the API's runtime")?
        .block_on(async {
            let state = match directory {
                Some((dir, first)) => {
                    let (publish, state) = watch::channel(Arc::new(first));
                    std::thread::spawn(move || follow_directory(dir, runtime, fetcher, publish));
                    state
                }
                None => {
                    let client = kube::Client::try_default()
                        .await
                        .context("connecting to Kubernetes (in-cluster config or kubeconfig)")?;
                    // Until every kind is listed no workload is known:
                    // proxies keep the chains they have.
                    let empty = State {
                        index: empty,
                        modules: Modules::default(),
                    };
                    let (publish, state) = watch::channel(Arc::new(empty));
                    let (runtime, fetcher) = (Arc::new(runtime), Arc::new(fetcher));
                    // Copied to meshed namespaces, whose proxies mount them.
                    let anchors = args.identity.identity_trust_anchors.clone().context(
                        "--kubernetes needs --identity-trust-anchors (the chart mounts them)",
                    )?;
                    tokio::spawn(follow_cluster(client, runtime, fetcher, publish, anchors));
                    state
                }
            };
            let (identity, tap) = start_identity(&args, state.clone()).await?;
            start_webhook(&args, inject_settings, state.clone()).await?;
            start_stats(&args.stats, state.clone(), tap.clone()).await?;
            tokio::select! {
                served = serve(&args, state, tap) => served,
                served = identity => served,
            }
        })
}

/// Loads (or, for the local mesh, makes) the issuer, keeps the controller's
/// own certificate fresh, and serves over TLS `Certify` and, to proxies
/// that prove an identity, the plugin and destination APIs. With `--dir`,
/// it also writes each pod's token. Also returns the tap relay, which taps
/// proxies as the controller's identity.
async fn start_identity(
    args: &Args,
    state: watch::Receiver<Arc<State>>,
) -> anyhow::Result<(
    impl std::future::Future<Output = anyhow::Result<()>> + use<>,
    TapRelayApi,
)> {
    let id = &args.identity;
    let trust = id.trust_domain.clone();
    let lifetimes = Lifetimes {
        leaf: id.identity_issuance_lifetime,
        clock_skew: id.identity_clock_skew,
    };
    let (issuer, files) = match (
        &id.identity_trust_anchors,
        &id.identity_issuer_certificate,
        &id.identity_issuer_key,
    ) {
        (Some(anchors), Some(certificate), Some(key)) => {
            let files = IssuerFiles {
                trust_anchors: anchors.clone(),
                certificate: certificate.clone(),
                key: key.clone(),
            };
            (Issuer::load(trust.clone(), &files, lifetimes)?, files)
        }
        _ if args.kubernetes => anyhow::bail!(
            "--kubernetes needs the identity issuer: --identity-trust-anchors, \
             --identity-issuer-certificate and --identity-issuer-key (the chart mounts them)"
        ),
        _ => Issuer::local(trust.clone(), &id.state_dir.join("identity"), lifetimes)?,
    };
    tracing::info!(trust_anchors = %files.trust_anchors.display(), "identity issuer loaded");
    let issuer = SharedIssuer::new(issuer)?;
    tokio::spawn(
        issuer
            .clone()
            .follow(files, lifetimes, Duration::from_secs(5)),
    );

    let credentials = Credentials::default();
    let own = ServiceAccount::new(weft_controller::index::ROOT_NAMESPACE, CONTROLLER_ACCOUNT)?;
    tokio::spawn(keep_certified(issuer.clone(), own, credentials.clone()));
    let tls = weft_identity::server_config(credentials.clone(), issuer.anchors(), &[b"h2"])?;
    let tap = TapRelayApi::new(state.clone(), credentials, issuer.clone(), trust.clone());

    let tokens = if args.kubernetes {
        TokenVerifier::Kubernetes(kube::Client::try_default().await?)
    } else {
        let dir = id.state_dir.clone();
        let tokens = LocalTokens::open(&dir.join("identity"))
            .with_context(|| format!("the token key in {}", dir.display()))?;
        tokio::spawn(keep_pod_tokens(dir, tokens.clone(), state.clone()));
        TokenVerifier::Local(tokens)
    };
    let listener = tokio::net::TcpListener::bind(id.identity_listen)
        .await
        .with_context(|| format!("binding {}", id.identity_listen))?;
    tracing::info!(identity_addr = %listener.local_addr()?, "serving identity");
    let cluster_domain = args.cluster_domain.clone();
    let serving = async move {
        tonic::transport::Server::builder()
            .add_service(IdentityService::new(issuer, tokens).into_service())
            // Proxies with an identity take their chain and ask about
            // endpoints here, proving who they are.
            .add_service(
                PluginApi::new(state.clone())
                    .authenticated(trust.clone())
                    .into_service(),
            )
            .add_service(
                DestinationApi::new(state, trust)
                    .cluster_domain(cluster_domain)
                    .into_service(),
            )
            .serve_with_incoming(accept_tls(listener, tls))
            .await
            .context("serving the identity service")
    };
    Ok((serving, tap))
}

/// `--inject-config`, or the chart's defaults without it; the message names
/// the file and what is wrong in it.
fn read_inject_config(args: &WebhookArgs) -> Result<weft_inject::Settings, String> {
    let Some(path) = &args.inject_config else {
        return Ok(weft_inject::Settings::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--inject-config {}: {e}", path.display()))?;
    weft_inject::Settings::from_yaml(&text)
        .map_err(|e| format!("--inject-config {}: {e}", path.display()))
}

/// With `--webhook-listen`: loads the serving certificate (following its
/// files), binds, and serves the webhook on its own task. With
/// `--kubernetes` it is ready once the watches have listed everything.
async fn start_webhook(
    args: &Args,
    settings: weft_inject::Settings,
    state: watch::Receiver<Arc<State>>,
) -> anyhow::Result<()> {
    let (Some(listen), Some(certificate), Some(key)) = (
        args.webhook.webhook_listen,
        &args.webhook.webhook_certificate,
        &args.webhook.webhook_key,
    ) else {
        return Ok(());
    };
    let files = CertificateFiles {
        certificate: certificate.clone(),
        key: key.clone(),
    };
    let serving = ServingCertificate::load(&files).context("the webhook certificate")?;
    let tls = serving
        .server_config()
        .context("the webhook's TLS configuration")?;
    tokio::spawn(serving.follow(files, WEBHOOK_CERTIFICATE_POLL));
    let mut webhook = Webhook::new(settings, state);
    if args.kubernetes {
        webhook = webhook.ready_after_first_publish();
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(webhook_addr = %listener.local_addr()?, "serving the admission webhook");
    tokio::spawn(webhook.serve(listener, tls));
    Ok(())
}

/// Binds and serves the stats API and the dashboard on their own task, from
/// a Prometheus or from the proxies the controller scrapes itself; the
/// dashboard's live tap goes through `tap`.
async fn start_stats(
    args: &StatsArgs,
    state: watch::Receiver<Arc<State>>,
    tap: TapRelayApi,
) -> anyhow::Result<()> {
    let source: Arc<dyn MetricsSource> = match &args.prometheus_url {
        Some(url) => Arc::new(Prometheus::new(url)?),
        None => Arc::new(Embedded::start(
            state.clone(),
            args.scrape_interval,
            args.scrape_retention,
        )?),
    };
    let listener = tokio::net::TcpListener::bind(args.stats_listen)
        .await
        .with_context(|| format!("binding {}", args.stats_listen))?;
    let from = args.prometheus_url.as_deref().unwrap_or("the proxies");
    tracing::info!(stats_addr = %listener.local_addr()?, %from, "serving the stats API");
    tokio::spawn(StatsApi::new(source, state).with_tap(tap).serve(listener));
    Ok(())
}

/// Writes every pod's token whenever the pods change.
async fn keep_pod_tokens(
    dir: PathBuf,
    tokens: LocalTokens,
    mut state: watch::Receiver<Arc<State>>,
) {
    loop {
        let index = state.borrow_and_update().index.clone();
        match write_pod_tokens(&dir, &tokens, &index) {
            Ok(0) => {}
            Ok(written) => {
                tracing::info!(written, dir = %dir.join("tokens").display(), "pod tokens written")
            }
            Err(error) => tracing::error!(%error, "cannot write pod tokens"),
        }
        if state.changed().await.is_err() {
            return;
        }
    }
}

/// `$XDG_STATE_HOME/weft-controller`, else `~/.local/state/weft-controller`.
fn default_state_dir() -> PathBuf {
    let absolute = |name| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(state) = absolute("XDG_STATE_HOME") {
        return state.join("weft-controller");
    }
    match absolute("HOME") {
        Some(home) => home.join(".local/state/weft-controller"),
        None => std::env::temp_dir().join("weft-controller-state"),
    }
}

/// Identities are issued from the controller's own namespace.
fn parse_trust_domain(domain: &str) -> Result<TrustDomain, NameError> {
    TrustDomain::new(weft_controller::index::ROOT_NAMESPACE, domain)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 20s, 10m or 24h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{s}` is not a duration like 20s, 10m or 24h")),
    }
}

async fn serve(
    args: &Args,
    state: watch::Receiver<Arc<State>>,
    tap: TapRelayApi,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let source = match &args.dir {
        Some(dir) => dir.display().to_string(),
        None => "kubernetes".to_string(),
    };
    tracing::info!(addr = %listener.local_addr()?, %source, "listening");
    tonic::transport::Server::builder()
        .add_optional_service(
            args.plaintext_plugin_api
                .then(|| PluginApi::new(state.clone()).into_service()),
        )
        .add_service(
            DestinationApi::new(state.clone(), args.identity.trust_domain.clone())
                .cluster_domain(args.cluster_domain.clone())
                .into_service(),
        )
        .add_service(InspectApi::new(state).into_service())
        .add_service(tap.into_service())
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown())
        .await
        .context("serving the plugin and destination APIs")
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
