//! The Helm charts `charts/weft` and `charts/weft-crds`, rendered and linted
//! by a real helm (`WEFT_HELM`, which `cargo xtask test` sets after
//! installing helm, else `helm` on PATH), and held to what the controller
//! needs: every rendered object passes the Kubernetes schemas, `weft install`
//! prints exactly what helm renders for the same values, the RBAC grants what
//! the controller uses and no more, and the defaults are the injector's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

use k8s_openapi::api::authentication::v1::TokenReview;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role};
use kube::Resource;
use serde::Deserialize;
use serde_json::{Value, json};
use weft_controller::WasmPlugin;
use weft_controller::identity::{Issuer, Lifetimes};
use weft_controller::install::{InstallArgs, render, to_yaml, uninstall_objects};
use weft_identity::TrustDomain;
use weft_tests::schemas::kubernetes_validate;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn chart(name: &str) -> PathBuf {
    root().join("charts").join(name)
}

fn ha_values() -> PathBuf {
    chart("weft").join("values-ha.yaml")
}

/// A directory of this test's own under the target dir, emptied.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("chart")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn helm(args: &[&str]) -> Output {
    let helm = std::env::var_os("WEFT_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| "helm".into());
    // helm's own state kept out of the user's home.
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    Command::new(&helm)
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): the chart tests need helm; `cargo xtask test` installs \
                 it and passes it as WEFT_HELM",
                helm.display()
            )
        })
}

/// `helm template` into weft-system; panics with helm's words when it fails.
fn template(chart_name: &str, values: &[&Path]) -> Vec<Value> {
    let output = try_template(chart_name, "weft-system", values);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "helm template {chart_name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    documents(&stdout)
}

fn try_template(chart_name: &str, namespace: &str, values: &[&Path]) -> Output {
    let chart = chart(chart_name);
    let mut args = vec!["template", "weft", chart.to_str().unwrap(), "-n", namespace];
    for file in values {
        args.extend(["-f", file.to_str().unwrap()]);
    }
    helm(&args)
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).unwrap())
        .filter(|document| !document.is_null())
        .collect()
}

/// PEM values fixed for a run, so helm and `weft install` differ in nothing
/// random: one self-signed certificate stands for every one.
fn fixed_values(dir: &Path) -> PathBuf {
    let certified = rcgen::generate_simple_self_signed(vec!["weft.test".into()]).unwrap();
    let (crt, key) = (certified.cert.pem(), certified.signing_key.serialize_pem());
    let values = json!({
        "identityTrustAnchorsPEM": crt,
        "identity": {"issuer": {"tls": {"crtPEM": crt, "keyPEM": key}}},
        "webhook": {"crtPEM": crt, "keyPEM": key, "caBundle": crt},
    });
    let path = dir.join("fixed-values.yaml");
    std::fs::write(&path, serde_norway::to_string(&values).unwrap()).unwrap();
    path
}

/// Identity values alone: the chart generates the webhook's certificate.
fn identity_values(dir: &Path) -> PathBuf {
    let path = fixed_values(dir);
    let mut values: Value =
        serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    values.as_object_mut().unwrap().remove("webhook");
    std::fs::write(&path, serde_norway::to_string(&values).unwrap()).unwrap();
    path
}

type Key = (String, String, String, String);

fn keyed(objects: Vec<Value>) -> BTreeMap<Key, Value> {
    let mut keyed = BTreeMap::new();
    for object in objects {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let key = (
            text(&object["apiVersion"]),
            text(&object["kind"]),
            text(&object["metadata"]["namespace"]),
            text(&object["metadata"]["name"]),
        );
        assert!(keyed.insert(key.clone(), object).is_none(), "{key:?} twice");
    }
    keyed
}

fn only<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    let found: Vec<_> = objects
        .iter()
        .filter(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} {name}");
    found[0]
}

#[test]
fn helm_lint_passes_both_charts_with_default_and_ha_values() {
    let dir = scratch("lint");
    let identity = identity_values(&dir);
    let crds = chart("weft-crds");
    let weft = chart("weft");
    let (crds, weft) = (crds.to_str().unwrap(), weft.to_str().unwrap());
    let identity = identity.to_str().unwrap();
    let ha = ha_values();
    for args in [
        vec!["lint", "--strict", crds],
        vec![
            "lint",
            "--strict",
            weft,
            "-n",
            "weft-system",
            "-f",
            identity,
        ],
        vec![
            "lint",
            "--strict",
            weft,
            "-n",
            "weft-system",
            "-f",
            identity,
            "-f",
            ha.to_str().unwrap(),
        ],
    ] {
        let output = helm(&args);
        assert!(
            output.status.success(),
            "helm {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn rendered_manifests_pass_the_kubernetes_schemas() {
    let dir = scratch("schemas");
    let identity = identity_values(&dir);
    let renders = [
        ("crds", template("weft-crds", &[])),
        ("default", template("weft", &[&identity])),
        ("ha", template("weft", &[&identity, &ha_values()])),
    ];
    let mut files = Vec::new();
    let mut objects = 0;
    for (name, documents) in renders {
        for (index, document) in documents.iter().enumerate() {
            let path = dir.join(format!("{name}.{index}.json"));
            std::fs::write(&path, document.to_string()).unwrap();
            files.push(path);
        }
        objects += documents.len();
    }
    if let Err(refused) = kubernetes_validate(&files, objects) {
        panic!("kubernetes-validate refused a rendered object: {refused}");
    }
}

#[test]
fn weft_install_prints_what_helm_renders_for_the_same_values() {
    let dir = scratch("install");
    let fixed = fixed_values(&dir);
    for ha in [false, true] {
        let mut helm_values = vec![fixed.as_path()];
        let ha_file = ha_values();
        if ha {
            helm_values.insert(0, &ha_file);
        }
        let rendered = template("weft", &helm_values);
        let args = InstallArgs {
            ha,
            values: vec![fixed.clone()],
            ..InstallArgs::default()
        };
        let mut installed = render(&args).unwrap().objects;
        // What is printed reads back as the same objects.
        assert_eq!(documents(&to_yaml(&installed).unwrap()), installed);
        let namespace = installed.remove(0);
        assert_eq!(namespace["kind"], "Namespace");
        assert_eq!(namespace["metadata"]["name"], "weft-system");
        assert_same(keyed(rendered), keyed(installed), ha);
    }
    // A Prometheus for the stats API reaches the controller's arguments,
    // and both render it alike.
    let prometheus = dir.join("prometheus-values.yaml");
    std::fs::write(
        &prometheus,
        "prometheusUrl: http://prometheus.monitoring.svc:9090\n",
    )
    .unwrap();
    let rendered = template("weft", &[fixed.as_path(), prometheus.as_path()]);
    let args = InstallArgs {
        values: vec![fixed.clone(), prometheus],
        ..InstallArgs::default()
    };
    let mut installed = render(&args).unwrap().objects;
    installed.remove(0);
    let controller = only(&installed, "Deployment", "weft-controller");
    let flag = "--prometheus-url=http://prometheus.monitoring.svc:9090";
    assert!(
        controller["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|arg| arg == flag),
        "{flag} in {controller}"
    );
    assert_same(keyed(rendered), keyed(installed), false);
    let crds = InstallArgs {
        crds: true,
        ..InstallArgs::default()
    };
    assert_same(
        keyed(template("weft-crds", &[])),
        keyed(render(&crds).unwrap().objects),
        false,
    );
}

fn assert_same(helm: BTreeMap<Key, Value>, install: BTreeMap<Key, Value>, ha: bool) {
    assert_eq!(
        helm.keys().collect::<Vec<_>>(),
        install.keys().collect::<Vec<_>>(),
        "the same objects (ha: {ha})"
    );
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap();
    for (key, rendered) in &helm {
        assert!(
            rendered == &install[key],
            "{key:?} differs (ha: {ha}); helm template:\n{}\nweft install:\n{}",
            pretty(rendered),
            pretty(&install[key])
        );
    }
}

#[test]
fn weft_install_generates_an_identity_and_webhook_certificate_that_chain() {
    let rendered = render(&InstallArgs::default()).unwrap();
    assert!(
        rendered
            .notices
            .iter()
            .any(|n| n.contains("generated an identity trust anchor")),
        "{:?}",
        rendered.notices
    );
    let objects = &rendered.objects;
    let anchors = &only(objects, "ConfigMap", "weft-identity-trust-roots")["data"]["ca-bundle.crt"];
    let issuer = &only(objects, "Secret", "weft-identity-issuer")["data"];
    let issuer = Issuer::from_pem(
        TrustDomain::default(),
        anchors.as_str().unwrap(),
        &secret_text(&issuer["tls.crt"]),
        &secret_text(&issuer["tls.key"]),
        Lifetimes::default(),
        SystemTime::now(),
    )
    .expect("the controller accepts the generated issuer");
    let days = |at: SystemTime| at.duration_since(SystemTime::now()).unwrap().as_secs() / 86_400;
    assert!((364..=365).contains(&days(issuer.not_after())));

    let serving = secret_text(&only(objects, "Secret", "weft-webhook-tls")["data"]["tls.crt"]);
    let hook = only(
        objects,
        "MutatingWebhookConfiguration",
        "weft-proxy-injector",
    );
    let ca = secret_text(&hook["webhooks"][0]["clientConfig"]["caBundle"]);
    let (serving, ca) = (der(&serving), der(&ca));
    let (_, serving) = x509_parser::parse_x509_certificate(&serving).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&ca).unwrap();
    assert!(serving.verify_signature(Some(ca.public_key())).is_ok());
    let names = serving.subject_alternative_name().unwrap().unwrap();
    assert_eq!(
        format!("{:?}", names.value.general_names),
        r#"[DNSName("weft-webhook.weft-system.svc")]"#
    );
}

fn secret_text(data: &Value) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.as_str().unwrap())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

#[test]
fn the_ha_render_spreads_three_replicas_under_a_disruption_budget() {
    let dir = scratch("ha");
    let identity = identity_values(&dir);
    let default = template("weft", &[&identity]);
    let deployment = only(&default, "Deployment", "weft-controller");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert!(deployment["spec"]["template"]["spec"]["affinity"].is_null());
    assert!(!default.iter().any(|o| o["kind"] == "PodDisruptionBudget"));

    let ha = template("weft", &[&identity, &ha_values()]);
    let deployment = only(&ha, "Deployment", "weft-controller");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let selector = &deployment["spec"]["selector"];
    let anti = &deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"];
    let required = &anti["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(required["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(&required["labelSelector"], selector);
    let budget = only(&ha, "PodDisruptionBudget", "weft-controller");
    assert_eq!(budget["apiVersion"], "policy/v1");
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    assert_eq!(&budget["spec"]["selector"], selector);
}

#[test]
fn missing_identity_values_fail_with_the_set_file_line() {
    let output = try_template("weft", "weft-system", &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    for wanted in [
        "--set-file identityTrustAnchorsPEM=",
        "--set-file identity.issuer.tls.crtPEM=",
        "--set-file identity.issuer.tls.keyPEM=",
    ] {
        assert!(stderr.contains(wanted), "{wanted} in:\n{stderr}");
    }
}

#[test]
fn a_release_namespace_other_than_weft_system_is_refused() {
    let dir = scratch("namespace");
    let identity = identity_values(&dir);
    let output = try_template("weft", "default", &[&identity]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("weft-system namespace, not \"default\""),
        "{stderr}"
    );
}

/// The RBAC objects of the default render.
fn rendered_rbac(test: &str) -> Vec<Value> {
    let dir = scratch(test);
    template("weft", &[&identity_values(&dir)])
}

fn typed<T: for<'de> Deserialize<'de>>(objects: &[Value], kind: &str, name: &str) -> T {
    serde_json::from_value(only(objects, kind, name).clone()).expect(kind)
}

fn grants(rules: &[PolicyRule], group: &str, resource: &str, verb: &str) -> bool {
    rules.iter().any(|rule| {
        let has = |list: &Option<Vec<String>>, item: &str| {
            list.iter().flatten().any(|x| x == item || x == "*")
        };
        has(&rule.api_groups, group)
            && has(&rule.resources, resource)
            && rule.verbs.iter().any(|v| v == verb || v == "*")
    })
}

#[test]
fn the_cluster_role_grants_what_the_controller_watches_and_writes() {
    let objects = rendered_rbac("cluster-role");
    let role: ClusterRole = typed(&objects, "ClusterRole", "weft-controller");
    let rules = role.rules.unwrap_or_default();
    let watched = [
        (Namespace::group(&()), Namespace::plural(&())),
        (Pod::group(&()), Pod::plural(&())),
        (WasmPlugin::group(&()), WasmPlugin::plural(&())),
        (Service::group(&()), Service::plural(&())),
        (EndpointSlice::group(&()), EndpointSlice::plural(&())),
    ];
    for (group, plural) in &watched {
        for verb in ["get", "list", "watch"] {
            assert!(
                grants(&rules, group, plural, verb),
                "{verb} {group}/{plural}"
            );
        }
    }
    let status = format!("{}/status", WasmPlugin::plural(&()));
    assert!(grants(&rules, &WasmPlugin::group(&()), &status, "patch"));
    // The identity service checks proxies' tokens.
    let (group, plural) = (TokenReview::group(&()), TokenReview::plural(&()));
    assert!(grants(&rules, &group, &plural, "create"));
    // The trust anchors, copied into each namespace with injected pods.
    for verb in ["get", "create", "update", "patch"] {
        assert!(grants(
            &rules,
            &ConfigMap::group(&()),
            &ConfigMap::plural(&()),
            verb
        ));
    }
    // Least privilege: nothing the controller does not use.
    assert!(!grants(&rules, "", "pods", "patch"));
    assert!(!grants(&rules, "", "configmaps", "delete"));
    assert!(!grants(&rules, "weft.io", "wasmplugins", "patch"));
    assert!(!grants(&rules, "", "secrets", "get"));
    assert!(!grants(
        &rules,
        &Lease::group(&()),
        &Lease::plural(&()),
        "get"
    ));
}

#[test]
fn the_status_lease_is_granted_in_weft_system_only() {
    let objects = rendered_rbac("lease");
    let role: Role = typed(&objects, "Role", "weft-controller-lease");
    assert_eq!(role.metadata.namespace.as_deref(), Some("weft-system"));
    let rules = role.rules.unwrap_or_default();
    for verb in ["get", "create", "update", "patch"] {
        assert!(
            grants(&rules, &Lease::group(&()), &Lease::plural(&()), verb),
            "{verb}"
        );
    }
    assert!(!grants(
        &rules,
        &Lease::group(&()),
        &Lease::plural(&()),
        "delete"
    ));
    let binding = only(&objects, "RoleBinding", "weft-controller-lease");
    assert_eq!(binding["roleRef"]["name"], "weft-controller-lease");
    assert_eq!(binding["subjects"][0]["name"], "weft-controller");
}

#[test]
fn the_binding_gives_the_role_to_the_controller_s_service_account() {
    let objects = rendered_rbac("binding");
    let role: ClusterRole = typed(&objects, "ClusterRole", "weft-controller");
    let binding: ClusterRoleBinding = typed(&objects, "ClusterRoleBinding", "weft-controller");
    let account = &only(&objects, "ServiceAccount", "weft-controller")["metadata"];
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let subjects = binding.subjects.unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(account["name"], subjects[0].name.as_str());
    assert_eq!(
        account["namespace"],
        subjects[0].namespace.as_deref().unwrap()
    );
    let deployment = only(&objects, "Deployment", "weft-controller");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        account["name"]
    );
}

#[test]
fn the_defaults_are_the_injector_s_and_the_pushed_images() {
    let defaults = weft_inject::Settings::default();
    let dir = scratch("defaults");
    let objects = template("weft", &[&identity_values(&dir)]);
    // The injector reads the rendered config as the chart's defaults.
    let config = &only(&objects, "ConfigMap", "weft-config")["data"]["inject.yaml"];
    let settings = weft_inject::Settings::from_yaml(config.as_str().unwrap()).unwrap();
    assert_eq!(settings, defaults);
    let deployment = only(&objects, "Deployment", "weft-controller");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["name"], "weft-controller");
    assert_eq!(
        container["image"],
        format!(
            "{}/weft-controller:{}",
            defaults.registry, defaults.proxy_version
        )
    );
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["app.kubernetes.io/version"], defaults.proxy_version);
}

#[test]
fn the_controller_pod_mounts_and_serves_what_the_contract_names() {
    let dir = scratch("contract");
    let objects = template("weft", &[&identity_values(&dir)]);
    let pod = &only(&objects, "Deployment", "weft-controller")["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for wanted in [
        "--kubernetes",
        // Proxies with an identity read only their own chain, over mTLS.
        "--plaintext-plugin-api=false",
        "--webhook-listen=0.0.0.0:8443",
        "--identity-trust-anchors=/var/run/weft/identity/trust-roots/ca-bundle.crt",
        "--identity-issuer-key=/var/run/weft/identity/issuer/tls.key",
        "--webhook-certificate=/var/run/weft/webhook/tls.crt",
        "--inject-config=/var/run/weft/config/inject.yaml",
    ] {
        assert!(args.contains(&wanted), "{wanted} in {args:?}");
    }
    // Each mount's volume is the object the contract names.
    let source = |mount_path: &str| {
        let mount = container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == mount_path)
            .unwrap_or_else(|| panic!("a mount at {mount_path}"));
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        let name = volume["configMap"]["name"].as_str();
        name.or(volume["secret"]["secretName"].as_str())
            .unwrap()
            .to_string()
    };
    assert_eq!(
        source("/var/run/weft/identity/trust-roots"),
        "weft-identity-trust-roots"
    );
    assert_eq!(
        source("/var/run/weft/identity/issuer"),
        "weft-identity-issuer"
    );
    assert_eq!(source("/var/run/weft/webhook"), "weft-webhook-tls");
    assert_eq!(source("/var/run/weft/config"), "weft-config");
    assert_eq!(container["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    let env: Vec<&str> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["POD_NAME", "POD_NAMESPACE"]);

    let controller = only(&objects, "Service", "weft-controller");
    let ports: Vec<(&str, i64)> = controller["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["port"].as_i64().unwrap()))
        .collect();
    use weft_inject::settings::{CONTROLLER_IDENTITY_PORT, CONTROLLER_PLAINTEXT_PORT};
    assert_eq!(
        ports,
        [
            ("api", i64::from(CONTROLLER_PLAINTEXT_PORT)),
            ("identity", i64::from(CONTROLLER_IDENTITY_PORT))
        ]
    );
    let hook = only(
        &objects,
        "MutatingWebhookConfiguration",
        "weft-proxy-injector",
    );
    let hook = &hook["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Ignore");
    assert_eq!(hook["timeoutSeconds"], 10);
    assert_eq!(hook["clientConfig"]["service"]["name"], "weft-webhook");
    assert_eq!(
        hook["namespaceSelector"]["matchExpressions"][0]["values"],
        json!(["kube-system", "weft-system"])
    );
    let webhook = only(&objects, "Service", "weft-webhook");
    assert_eq!(webhook["spec"]["ports"][0]["port"], 443);
    assert_eq!(webhook["spec"]["ports"][0]["targetPort"], "webhook");
}

#[test]
fn weft_uninstall_names_everything_install_creates_newest_first() {
    let listed = uninstall_objects().unwrap();
    let key = |o: &Value| (o["kind"].to_string(), o["metadata"]["name"].to_string());
    let mut created: Vec<Value> = render(&InstallArgs {
        crds: true,
        ..InstallArgs::default()
    })
    .unwrap()
    .objects;
    let ha = InstallArgs {
        ha: true,
        ..InstallArgs::default()
    };
    created.extend(render(&ha).unwrap().objects);
    let mut expected: Vec<_> = created.iter().map(key).collect();
    expected.reverse();
    assert_eq!(listed.iter().map(key).collect::<Vec<_>>(), expected);
    for object in &listed {
        let mut fields: Vec<&String> = object.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(fields, ["apiVersion", "kind", "metadata"]);
    }
    assert_eq!(listed.last().unwrap()["kind"], "CustomResourceDefinition");
}
