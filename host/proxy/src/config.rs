//! Every setting of the proxy, read in one place: each is a flag and a
//! `WEFT_PROXY_*` environment variable, with defaults that work unconfigured.
//! Bad values are typed errors; the binary exits with code 64 on them.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

/// Exit code for bad configuration (`EX_USAGE`), as Linkerd's proxy uses.
pub const EXIT_CONFIG: i32 = 64;

/// Settings of the running proxy (`weft-proxy run`).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Where the app's outgoing traffic arrives (iptables redirects it here).
    #[arg(
        long,
        env = "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
        default_value = "127.0.0.1:4140"
    )]
    pub outbound_listen_addr: SocketAddr,

    /// Where traffic for the app arrives (iptables redirects it here).
    #[arg(
        long,
        env = "WEFT_PROXY_INBOUND_LISTEN_ADDR",
        default_value = "0.0.0.0:4143"
    )]
    pub inbound_listen_addr: SocketAddr,

    /// The admin server: /live, /ready, /metrics.
    #[arg(
        long,
        env = "WEFT_PROXY_ADMIN_LISTEN_ADDR",
        default_value = "0.0.0.0:4191"
    )]
    pub admin_listen_addr: SocketAddr,

    /// The tap server (`weft tap`), over mTLS and only for the controller's
    /// identity; not started without an identity.
    #[arg(long, env = "WEFT_PROXY_TAP_LISTEN", default_value = "127.0.0.1:4190")]
    pub tap_listen_addr: SocketAddr,

    /// The identity that may tap this proxy; by default the identity
    /// service's (the controller's).
    #[arg(long, env = "WEFT_PROXY_TAP_CLIENT_IDENTITY")]
    pub tap_client_identity: Option<String>,

    /// Forward inbound traffic here instead of to the connection's original
    /// destination (for running without iptables).
    #[arg(long, env = "WEFT_PROXY_INBOUND_APP_ADDR")]
    pub inbound_app_addr: Option<SocketAddr>,

    /// Ports whose traffic skips protocol detection and is forwarded as
    /// opaque TCP, e.g. `25,3306,5000-5010`.
    #[arg(long, env = "WEFT_PROXY_OPAQUE_PORTS", default_value = "", value_parser = parse_ports)]
    pub opaque_ports: PortSet,

    /// Inbound ports that take only mTLS from meshed proxies with an
    /// identity: plaintext HTTP gets 403, other plaintext is closed (the
    /// `config.weft.io/proxy-require-identity-on-inbound-ports` annotation).
    #[arg(long, env = "WEFT_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY", default_value = "", value_parser = parse_ports)]
    pub inbound_ports_require_identity: PortSet,

    /// How long to wait for a client's first bytes before treating the
    /// connection as opaque TCP (server-speaks-first protocols).
    #[arg(long, env = "WEFT_PROXY_DETECT_PROTOCOL_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub detect_protocol_timeout: Duration,

    /// Names under these domains (and IPs) are looked up as services in the
    /// controller's Destination API and balanced across their endpoints;
    /// others resolve with DNS. Comma-separated.
    #[arg(
        long,
        env = "WEFT_PROXY_DESTINATION_SUFFIXES",
        default_value = "svc.cluster.local.",
        value_delimiter = ','
    )]
    pub destination_suffixes: Vec<String>,

    /// How long to wait for an upstream TCP connection (504 past it).
    #[arg(long, env = "WEFT_PROXY_CONNECT_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// How long to wait for an upstream's response headers (504 past it);
    /// `0s` waits forever.
    #[arg(long, env = "WEFT_PROXY_HTTP_RESPONSE_TIMEOUT", default_value = "0s", value_parser = parse_duration)]
    pub http_response_timeout: Duration,

    /// How long a client may take to send an HTTP/1 request head (slowloris):
    /// on a kept-alive connection counted from the end of the previous
    /// response, so it also closes connections idle that long; `0s` waits
    /// forever. A first head is mostly read during protocol detection, and
    /// one still partial when that times out gets this much more.
    #[arg(long, env = "WEFT_PROXY_HTTP_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub http_header_read_timeout: Duration,

    /// How long an HTTP/1 request body may go without a byte arriving while
    /// the proxy waits for it (a body trickled forever); past it the
    /// connection is closed and the request aborted upstream. `0s` waits
    /// forever. Envoy's `stream_idle_timeout` default.
    #[arg(long, env = "WEFT_PROXY_HTTP_BODY_READ_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub http_body_read_timeout: Duration,

    /// How long an HTTP/2 connection may stay open with no request in
    /// flight once it has sent one; past it the proxy sends `GOAWAY` and
    /// closes it. Before its first request a connection gets the header
    /// read timeout instead. `0s` keeps idle connections. Envoy's
    /// `idle_timeout` default.
    #[arg(long, env = "WEFT_PROXY_HTTP2_IDLE_TIMEOUT", default_value = "1h", value_parser = parse_duration)]
    pub http2_idle_timeout: Duration,

    /// Requests in flight through the proxy, both directions together; past
    /// it, requests get 503 at once instead of queueing (load shedding).
    #[arg(long, env = "WEFT_PROXY_MAX_IN_FLIGHT_REQUESTS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight_requests: u32,

    /// Largest request head (request line and headers) accepted; larger ones get 431.
    #[arg(long, env = "WEFT_PROXY_MAX_HEADER_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1024..=1024 * 1024))]
    pub max_header_bytes: u32,

    /// How long in-flight requests and connections may run after SIGTERM.
    #[arg(long, env = "WEFT_PROXY_SHUTDOWN_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_grace_period: Duration,

    /// Worker threads; 1 runs everything on a single thread.
    #[arg(long, env = "WEFT_PROXY_CORES", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub cores: u16,

    /// The plugin chain (a JSON file); watched and reloaded when it changes.
    #[arg(long, env = "WEFT_PROXY_PLUGINS_CONFIG")]
    pub plugins_config: Option<std::path::PathBuf>,

    /// The controller to take the plugin chain from, e.g. `http://weft-controller:8090`.
    #[arg(
        long,
        env = "WEFT_PROXY_CONTROLLER_ADDR",
        conflicts_with = "plugins_config",
        requires = "workload"
    )]
    pub controller_addr: Option<String>,

    /// This proxy's workload as `namespace/pod`, which names its chain to the controller.
    #[arg(long, env = "WEFT_PROXY_WORKLOAD")]
    pub workload: Option<crate::plugins::controller::Workload>,

    /// Where compiled plugins are kept between runs (by module sha256): a
    /// directory private to the proxy's user, created 0700. Empty keeps them
    /// in memory only, as does a directory another user owns or may write.
    #[arg(long, env = "WEFT_PROXY_PLUGIN_CACHE_DIR", default_value_os_t = default_plugin_cache_dir(|name| std::env::var_os(name)), value_parser = parse_cache_dir)]
    pub plugin_cache_dir: std::path::PathBuf,

    /// The OTLP/gRPC trace collector, `host:port` (the
    /// `config.weft.io/trace-collector` annotation). Unset, the proxy
    /// neither reads nor emits trace context; the headers pass untouched.
    #[arg(long, env = "WEFT_PROXY_TRACE_COLLECTOR", value_parser = parse_collector)]
    pub trace_collector: Option<String>,

    /// Log filter in `tracing` syntax, e.g. `info` or `weft_proxy=debug`.
    #[arg(long, env = "WEFT_LOG", default_value = "info")]
    pub log: String,

    #[command(flatten)]
    pub identity: IdentityConfig,
}

/// The proxy's identity (none of it set: no identity, plaintext only).
#[derive(Debug, Clone, Args)]
pub struct IdentityConfig {
    /// This proxy's identity, e.g.
    /// `app.demo.serviceaccount.identity.weft-system.cluster.local`.
    #[arg(
        long,
        env = "WEFT_PROXY_IDENTITY_LOCAL_NAME",
        requires_all = ["identity_token_file", "identity_trust_anchors", "identity_svc_addr"]
    )]
    pub identity_local_name: Option<String>,

    /// The token that proves the workload's service account (a projected
    /// ServiceAccount token in Kubernetes); read again on every renewal.
    #[arg(long, env = "WEFT_PROXY_IDENTITY_TOKEN_FILE")]
    pub identity_token_file: Option<std::path::PathBuf>,

    /// The mesh's trust anchors, a PEM file.
    #[arg(long, env = "WEFT_PROXY_IDENTITY_TRUST_ANCHORS")]
    pub identity_trust_anchors: Option<std::path::PathBuf>,

    /// The identity service, `host:port`.
    #[arg(long, env = "WEFT_PROXY_IDENTITY_SVC_ADDR")]
    pub identity_svc_addr: Option<String>,

    /// The identity service's own identity; by default the controller's in
    /// this proxy's trust domain.
    #[arg(long, env = "WEFT_PROXY_IDENTITY_SVC_NAME")]
    pub identity_svc_name: Option<String>,
}

impl Config {
    /// `None` means no response timeout.
    pub fn response_timeout(&self) -> Option<Duration> {
        (!self.http_response_timeout.is_zero()).then_some(self.http_response_timeout)
    }

    /// `None` means no limit on reading a request head.
    pub fn header_read_timeout(&self) -> Option<Duration> {
        (!self.http_header_read_timeout.is_zero()).then_some(self.http_header_read_timeout)
    }

    /// `None` means no limit on waiting for a request body's next bytes.
    pub fn body_read_timeout(&self) -> Option<Duration> {
        (!self.http_body_read_timeout.is_zero()).then_some(self.http_body_read_timeout)
    }

    /// `None` means idle HTTP/2 connections stay open.
    pub fn http2_idle_timeout(&self) -> Option<Duration> {
        (!self.http2_idle_timeout.is_zero()).then_some(self.http2_idle_timeout)
    }
}

/// The user's cache directory (`$XDG_CACHE_HOME`, else `~/.cache`), or a
/// per-user directory under the temporary one: a shared path there could be
/// created first by another user.
fn default_plugin_cache_dir(
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> std::path::PathBuf {
    let absolute = |name| {
        env(name)
            .map(std::path::PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    if let Some(cache) = absolute("XDG_CACHE_HOME") {
        return cache.join("weft/plugins");
    }
    if let Some(home) = absolute("HOME") {
        return home.join(".cache/weft/plugins");
    }
    std::env::temp_dir().join(format!(
        "weft-plugin-cache-{}",
        nix::unistd::geteuid().as_raw()
    ))
}

/// A set of TCP ports, written as a comma list of ports and `lo-hi` ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSet(Vec<(u16, u16)>);

impl PortSet {
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&port))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ranges, for iptables' `multiport` syntax (`lo:hi`).
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("`{0}` is not a port or a port range like 5000-5010")]
    Port(String),
    #[error("`{0}` is not a duration like 500ms, 10s, 2m or 1h")]
    Duration(String),
    #[error("`{0}` is not a collector address like otel-collector.tracing:4317")]
    Collector(String),
}

pub fn parse_ports(s: &str) -> Result<PortSet, ParseError> {
    let port = |p: &str| {
        p.trim()
            .parse::<u16>()
            .map_err(|_| ParseError::Port(s.to_string()))
    };
    let mut ranges = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (lo, hi) = match item.split_once('-') {
            Some((lo, hi)) => (port(lo)?, port(hi)?),
            None => (port(item)?, port(item)?),
        };
        if lo == 0 || lo > hi {
            return Err(ParseError::Port(item.to_string()));
        }
        ranges.push((lo, hi));
    }
    Ok(PortSet(ranges))
}

/// A directory, or nothing: clap's own path parser refuses an empty value,
/// which here means "in memory only".
fn parse_cache_dir(s: &str) -> Result<std::path::PathBuf, std::convert::Infallible> {
    Ok(std::path::PathBuf::from(s))
}

/// `host:port`, both required: an OTLP/gRPC endpoint has no default port
/// that a mesh could assume.
pub fn parse_collector(s: &str) -> Result<String, ParseError> {
    let err = || ParseError::Collector(s.to_string());
    let authority: http::uri::Authority = s.trim().parse().map_err(|_| err())?;
    if authority.host().is_empty()
        || authority.port_u16().is_none()
        || authority.as_str().contains('@')
    {
        return Err(err());
    }
    Ok(authority.to_string())
}

pub fn parse_duration(s: &str) -> Result<Duration, ParseError> {
    let err = || ParseError::Duration(s.to_string());
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| err())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(err()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_plugin_cache_dir_keeps_compiled_plugins_in_memory() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: Config,
        }
        let cli = <Cli as clap::Parser>::try_parse_from(["weft-proxy", "--plugin-cache-dir", ""])
            .expect("an empty cache directory is accepted");
        assert!(cli.config.plugin_cache_dir.as_os_str().is_empty());
    }

    #[test]
    fn ports_parse_lists_and_ranges() {
        let set = parse_ports("25, 3306,5000-5010").unwrap();
        assert!(set.contains(25) && set.contains(3306) && set.contains(5005));
        assert!(!set.contains(26) && !set.contains(5011));
        assert!(parse_ports("").unwrap().is_empty());
        assert_eq!(parse_ports("80-70"), Err(ParseError::Port("80-70".into())));
        assert!(parse_ports("http").is_err());
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("70000").is_err());
    }

    #[test]
    fn the_plugin_cache_defaults_to_the_users_cache_directory() {
        let env = |vars: &'static [(&str, &str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.into())
            }
        };
        assert_eq!(
            default_plugin_cache_dir(env(&[("XDG_CACHE_HOME", "/x/cache"), ("HOME", "/home/w")])),
            std::path::Path::new("/x/cache/weft/plugins")
        );
        assert_eq!(
            default_plugin_cache_dir(env(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/home/w")])),
            std::path::Path::new("/home/w/.cache/weft/plugins")
        );
        let uid = nix::unistd::geteuid().as_raw();
        assert_eq!(
            default_plugin_cache_dir(env(&[])),
            std::env::temp_dir().join(format!("weft-plugin-cache-{uid}"))
        );
    }

    #[test]
    fn a_trace_collector_is_a_host_and_a_port() {
        assert_eq!(
            parse_collector("collector.tracing:4317"),
            Ok("collector.tracing:4317".into())
        );
        assert_eq!(
            parse_collector("127.0.0.1:4317"),
            Ok("127.0.0.1:4317".into())
        );
        for bad in [
            "collector",
            "collector:",
            ":4317",
            "http://c:4317",
            "u@c:4317",
            "c:99999",
            "",
        ] {
            assert_eq!(
                parse_collector(bad),
                Err(ParseError::Collector(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ten s").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
