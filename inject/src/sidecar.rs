//! The containers and volumes injection adds, built as typed Kubernetes
//! objects so every field is one the API server knows.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, ObjectFieldSelector, Probe, ProjectedVolumeSource,
    ResourceRequirements, SeccompProfile, SecurityContext, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::annotations::PodConfig;
use crate::settings::*;

pub const TOKEN_VOLUME: &str = "weft-identity-token";
const TOKEN_DIR: &str = "/var/run/weft/identity-token";
const TOKEN_FILE: &str = "token";
const TRUST_ROOTS_DIR: &str = "/var/run/weft/identity-trust-roots";
/// Compiled plugins and the controller's last chain: the root filesystem is
/// read-only, and the proxy wants a directory of its own it can write.
pub const CACHE_VOLUME: &str = "weft-proxy-cache";
const CACHE_DIR: &str = "/var/cache/weft";
/// `iptables -w` takes its lock in /run, read-only otherwise.
pub const XTABLES_LOCK_VOLUME: &str = "weft-init-xtables-lock";

/// What one pod gets.
pub struct Sidecar {
    /// `None` in CNI mode.
    pub init: Option<Container>,
    pub proxy: Container,
    pub volumes: Vec<Volume>,
}

impl Sidecar {
    pub fn new(config: &PodConfig, settings: &Settings) -> Self {
        let mut volumes = vec![
            Volume {
                name: TOKEN_VOLUME.into(),
                projected: Some(ProjectedVolumeSource {
                    sources: Some(vec![VolumeProjection {
                        service_account_token: Some(ServiceAccountTokenProjection {
                            audience: Some(TOKEN_AUDIENCE.into()),
                            expiration_seconds: Some(TOKEN_EXPIRATION_SECONDS),
                            path: TOKEN_FILE.into(),
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: TRUST_ROOTS_CONFIG_MAP.into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: TRUST_ROOTS_CONFIG_MAP.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            empty_dir(CACHE_VOLUME),
        ];
        let init = (!settings.cni).then(|| {
            volumes.push(empty_dir(XTABLES_LOCK_VOLUME));
            init_container(config, settings)
        });
        Self {
            init,
            proxy: proxy_container(config, settings),
            volumes,
        }
    }
}

/// `weft-proxy init`, as root with only the capabilities iptables needs.
fn init_container(config: &PodConfig, settings: &Settings) -> Container {
    // The proxy's own servers, which the app does not serve.
    let mut ignore_inbound = format!("{TAP_PORT},{ADMIN_PORT}");
    if !config.skip_inbound_ports.is_empty() {
        ignore_inbound = format!("{ignore_inbound},{}", config.skip_inbound_ports);
    }
    let mut args: Vec<String> = [
        "init",
        "--proxy-uid",
        &PROXY_UID.to_string(),
        "--inbound-port",
        &INBOUND_PORT.to_string(),
        "--outbound-port",
        &OUTBOUND_PORT.to_string(),
        "--inbound-ports-to-ignore",
        &ignore_inbound,
    ]
    .map(String::from)
    .into();
    if !config.skip_outbound_ports.is_empty() {
        args.extend([
            "--outbound-ports-to-ignore".into(),
            config.skip_outbound_ports.clone(),
        ]);
    }
    let small = [("cpu", "100m"), ("memory", "20Mi")];
    Container {
        name: INIT_CONTAINER.into(),
        image: Some(format!("{}:{}", config.image, config.version)),
        image_pull_policy: Some(settings.image_pull_policy.clone()),
        args: Some(args),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(small)),
            limits: Some(quantities(small)),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_ADMIN".into(), "NET_RAW".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            privileged: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(false),
            run_as_user: Some(0),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(vec![mount(XTABLES_LOCK_VOLUME, "/run", false)]),
        ..Default::default()
    }
}

fn proxy_container(config: &PodConfig, settings: &Settings) -> Container {
    let mut env = vec![
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
        field("POD_SERVICE_ACCOUNT", "spec.serviceAccountName"),
        value(
            "WEFT_PROXY_OUTBOUND_LISTEN_ADDR",
            format!("127.0.0.1:{OUTBOUND_PORT}"),
        ),
        value(
            "WEFT_PROXY_INBOUND_LISTEN_ADDR",
            format!("0.0.0.0:{INBOUND_PORT}"),
        ),
        value(
            "WEFT_PROXY_ADMIN_LISTEN_ADDR",
            format!("0.0.0.0:{ADMIN_PORT}"),
        ),
        value("WEFT_PROXY_TAP_LISTEN", format!("0.0.0.0:{TAP_PORT}")),
        value("WEFT_PROXY_CONTROLLER_ADDR", settings.controller_addr()),
        value("WEFT_PROXY_WORKLOAD", "$(POD_NAMESPACE)/$(POD_NAME)".into()),
        value(
            "WEFT_PROXY_DESTINATION_SUFFIXES",
            format!("svc.{}.", settings.cluster_domain),
        ),
        value(
            "WEFT_PROXY_PLUGIN_CACHE_DIR",
            format!("{CACHE_DIR}/plugins"),
        ),
        value("WEFT_PROXY_OPAQUE_PORTS", config.opaque_ports.clone()),
    ];
    if !config.require_identity_ports.is_empty() {
        env.push(value(
            "WEFT_PROXY_INBOUND_PORTS_REQUIRE_IDENTITY",
            config.require_identity_ports.clone(),
        ));
    }
    if let Some(collector) = &config.trace_collector {
        env.push(value("WEFT_PROXY_TRACE_COLLECTOR", collector.clone()));
    }
    env.extend([
        // Not read by the proxy yet: recorded for the authz plugin and the
        // proxy's own inbound policy to take up, as Linkerd's
        // LINKERD2_PROXY_INBOUND_DEFAULT_POLICY.
        value(
            "WEFT_PROXY_DEFAULT_INBOUND_POLICY",
            config.default_inbound_policy.clone(),
        ),
        value("WEFT_LOG", config.log_level.clone()),
        value(
            "WEFT_PROXY_IDENTITY_LOCAL_NAME",
            format!(
                "$(POD_SERVICE_ACCOUNT).$(POD_NAMESPACE).serviceaccount.identity.{}.{}",
                settings.control_plane_namespace, settings.trust_domain
            ),
        ),
        value(
            "WEFT_PROXY_IDENTITY_TOKEN_FILE",
            format!("{TOKEN_DIR}/{TOKEN_FILE}"),
        ),
        value(
            "WEFT_PROXY_IDENTITY_TRUST_ANCHORS",
            format!("{TRUST_ROOTS_DIR}/{TRUST_ROOTS_KEY}"),
        ),
        value("WEFT_PROXY_IDENTITY_SVC_ADDR", settings.identity_addr()),
    ]);
    let probe = |path: &str, initial_delay_seconds| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(ADMIN_PORT.into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay_seconds),
        timeout_seconds: Some(1),
        ..Default::default()
    };
    Container {
        name: PROXY_CONTAINER.into(),
        image: Some(format!("{}:{}", config.image, config.version)),
        image_pull_policy: Some(settings.image_pull_policy.clone()),
        env: Some(env),
        ports: Some(vec![
            port(INBOUND_PORT_NAME, INBOUND_PORT),
            port(ADMIN_PORT_NAME, ADMIN_PORT),
            port(TAP_PORT_NAME, TAP_PORT),
        ]),
        liveness_probe: Some(probe("/live", 10)),
        readiness_probe: Some(probe("/ready", 2)),
        // A native sidecar: the kubelet starts the app once this probe
        // passes (the proxy holds its certificate and chain), and stops
        // the proxy after the app, so a Job's pod completes.
        restart_policy: config.native_sidecar.then(|| "Always".into()),
        startup_probe: config.native_sidecar.then(|| Probe {
            period_seconds: Some(1),
            failure_threshold: Some(120),
            ..probe("/ready", 0)
        }),
        resources: resources(config),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            run_as_user: Some(PROXY_UID),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        volume_mounts: Some(vec![
            mount(TOKEN_VOLUME, TOKEN_DIR, true),
            mount(TRUST_ROOTS_CONFIG_MAP, TRUST_ROOTS_DIR, true),
            mount(CACHE_VOLUME, CACHE_DIR, false),
        ]),
        ..Default::default()
    }
}

fn resources(config: &PodConfig) -> Option<ResourceRequirements> {
    let r = &config.resources;
    let pick = |cpu: &Option<String>, memory: &Option<String>| {
        let set: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .filter_map(|(name, q)| Some((name.to_string(), Quantity(q.clone()?))))
            .collect();
        (!set.is_empty()).then_some(set)
    };
    let requests = pick(&r.cpu_request, &r.memory_request);
    let limits = pick(&r.cpu_limit, &r.memory_limit);
    (requests.is_some() || limits.is_some()).then(|| ResourceRequirements {
        requests,
        limits,
        ..Default::default()
    })
}

fn quantities(pairs: [(&str, &str); 2]) -> BTreeMap<String, Quantity> {
    pairs
        .into_iter()
        .map(|(name, q)| (name.to_string(), Quantity(q.to_string())))
        .collect()
}

fn field(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn value(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        ..Default::default()
    }
}

fn port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port.into(),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..Default::default()
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..Default::default()
    }
}
