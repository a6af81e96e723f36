//! `weft check` on recorded API responses (`fixtures/`, a healthy control
//! plane of Kubernetes 1.33 with two meshed pods), each failure made by
//! changing one object, and certificates made with rcgen where a case needs
//! its own.

mod pki;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;

use super::report::Outcome;
use super::{Category, Options, Snapshot, Unreached, checks, render_json, render_text, success};

fn load<T: DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/src/check/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The items of a `*List` response.
fn items<T: DeserializeOwned>(name: &str) -> Vec<T> {
    #[derive(Deserialize)]
    struct List<T> {
        items: Vec<T>,
    }
    load::<List<T>>(name).items
}

/// When the tests run the checks: the fixtures' certificates were made in
/// 2026 for a hundred years.
fn now() -> OffsetDateTime {
    time::Date::from_calendar_date(2026, time::Month::December, 1)
        .unwrap()
        .midnight()
        .assume_utc()
}

fn options() -> Options {
    Options {
        pre: false,
        proxy: false,
        namespace: None,
        cli_version: "0.1.0".into(),
    }
}

fn with_proxy() -> Options {
    Options {
        proxy: true,
        ..options()
    }
}

fn healthy() -> Snapshot {
    Snapshot {
        namespace: Ok(Some(load("namespace.json"))),
        crds: Ok(items("crds.json")),
        deployments: Ok(items("deployments.json")),
        pods: Ok(items("pods.json")),
        trust_roots: Ok(Some(load("trust-roots.json"))),
        issuer: Ok(Some(load("issuer.json"))),
        webhook_tls: Ok(Some(load("webhook-tls.json"))),
        webhook: Ok(Some(load("webhook.json"))),
        data_plane_pods: Ok(items("meshed-pods.json")),
        ..Snapshot::reached(load("version.json"))
    }
}

/// Every check that did not pass, as its line of text.
fn problems(categories: &[Category]) -> Vec<String> {
    let mut lines = Vec::new();
    for check in categories.iter().flat_map(|c| &c.checks) {
        let mark = match check.result {
            Outcome::Success => continue,
            Outcome::Warning => '‼',
            Outcome::Error => '×',
        };
        assert!(!check.error.is_empty(), "{check:?} says what is wrong");
        assert!(!check.hint.is_empty(), "{check:?} says what to do");
        lines.push(format!("{mark} {}", check.description));
    }
    lines
}

/// The one problem `snapshot` has, its error text, and whether the run
/// passes anyway.
fn only_problem(snapshot: &Snapshot, options: &Options) -> (String, String, bool) {
    let categories = checks(snapshot, options, now());
    let lines = problems(&categories);
    assert_eq!(lines.len(), 1, "{}", render_text(&categories));
    let check = categories
        .iter()
        .flat_map(|c| &c.checks)
        .find(|c| c.result != Outcome::Success)
        .unwrap();
    (lines[0].clone(), check.error.clone(), success(&categories))
}

fn set_pem(secret: &mut Secret, key: &str, pem: &str) {
    let data = secret.data.get_or_insert_default();
    data.insert(key.into(), ByteString(pem.as_bytes().to_vec()));
}

/// The control plane's anchors and issuer replaced by `anchor`'s and
/// `issuer`'s.
fn with_identity(mut snapshot: Snapshot, anchor: &pki::Pki, issuer: &pki::Pki) -> Snapshot {
    let mut roots: ConfigMap = load("trust-roots.json");
    roots
        .data
        .get_or_insert_default()
        .insert("ca-bundle.crt".into(), anchor.cert_pem.clone());
    let mut secret: Secret = load("issuer.json");
    set_pem(&mut secret, "tls.crt", &issuer.cert_pem);
    set_pem(&mut secret, "tls.key", &issuer.key_pem);
    snapshot.trust_roots = Ok(Some(roots));
    snapshot.issuer = Ok(Some(secret));
    snapshot
}

#[test]
fn a_healthy_control_plane_and_its_proxies_pass_every_check() {
    let categories = checks(&healthy(), &with_proxy(), now());
    assert_eq!(problems(&categories), Vec::<String>::new());
    assert!(success(&categories));
    let names: Vec<&str> = categories
        .iter()
        .map(|c| c.category_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "kubernetes-api",
            "kubernetes-version",
            "weft-existence",
            "weft-identity",
            "weft-webhooks-and-apisvc-tls",
            "weft-data-plane"
        ]
    );
}

#[test]
fn a_missing_crd_fails_its_check_only() {
    let snapshot = Snapshot {
        crds: Ok(Vec::new()),
        ..healthy()
    };
    let (line, error, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "× control plane CustomResourceDefinitions exist");
    assert_eq!(error, "CRD wasmplugins.weft.io is not installed");
    assert!(!passed);
}

#[test]
fn a_controller_pod_not_ready_fails_the_pods_check() {
    let mut pods: Vec<Pod> = items("pods.json");
    let status = pods[0].status.as_mut().unwrap();
    for condition in status.conditions.iter_mut().flatten() {
        if condition.type_ == "Ready" {
            condition.status = "False".into();
        }
    }
    let snapshot = Snapshot {
        pods: Ok(pods),
        ..healthy()
    };
    let (line, error, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "× control plane pods are ready");
    assert_eq!(
        error,
        "0 of 1 weft-controller pods are ready\n\
         pod weft-system/weft-controller-6c9f7d8b5-x7k2p is not ready (Running)"
    );
    assert!(!passed);
}

#[test]
fn expired_trust_anchors_fail_and_warn() {
    let anchor = pki::ca("root.weft-system.cluster.local", now(), -1, None);
    let issuer = pki::ca(
        "identity.weft-system.cluster.local",
        now(),
        365,
        Some(&anchor),
    );
    let snapshot = with_identity(healthy(), &anchor, &issuer);
    let categories = checks(&snapshot, &options(), now());
    assert_eq!(
        problems(&categories),
        [
            "× trust anchors are within their validity period",
            "‼ trust anchors are valid for at least 60 days",
        ]
    );
    assert!(!success(&categories));
    let text = render_text(&categories);
    assert!(
        text.contains(
            "    trust anchor CN=root.weft-system.cluster.local expired on 2026-11-30T00:00:00Z\n"
        ),
        "{text}"
    );
}

#[test]
fn an_issuer_not_signed_by_the_anchors_fails() {
    let stranger = pki::ca("stranger", now(), 3650, None);
    let issuer = pki::ca(
        "identity.weft-system.cluster.local",
        now(),
        365,
        Some(&stranger),
    );
    let mut snapshot = healthy();
    let mut secret: Secret = load("issuer.json");
    set_pem(&mut secret, "tls.crt", &issuer.cert_pem);
    set_pem(&mut secret, "tls.key", &issuer.key_pem);
    snapshot.issuer = Ok(Some(secret));
    let (line, error, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "× issuer cert is issued by the trust anchor");
    assert_eq!(
        error,
        "issuer CN=identity.weft-system.cluster.local is not signed by any trust anchor \
         (issuer CN=stranger)"
    );
    assert!(!passed);
}

#[test]
fn an_issuer_expiring_in_30_days_warns_and_passes() {
    let anchor = pki::ca("root.weft-system.cluster.local", now(), 3650, None);
    let issuer = pki::ca(
        "identity.weft-system.cluster.local",
        now(),
        30,
        Some(&anchor),
    );
    let snapshot = with_identity(healthy(), &anchor, &issuer);
    let (line, error, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "‼ issuer cert is valid for at least 60 days");
    assert_eq!(
        error,
        "issuer CN=identity.weft-system.cluster.local will expire on 2026-12-31T00:00:00Z"
    );
    assert!(passed, "a warning does not fail the run");
}

#[test]
fn an_issuer_key_that_is_not_its_certificates_fails() {
    let other = pki::ca("other", now(), 365, None);
    let mut secret: Secret = load("issuer.json");
    set_pem(&mut secret, "tls.key", &other.key_pem);
    let snapshot = Snapshot {
        issuer: Ok(Some(secret)),
        ..healthy()
    };
    let (line, _, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "× issuer key matches the issuer cert");
    assert!(!passed);
}

#[test]
fn a_missing_issuer_secret_stops_the_identity_checks() {
    let snapshot = Snapshot {
        issuer: Ok(None),
        ..healthy()
    };
    let categories = checks(&snapshot, &options(), now());
    let identity = &categories[3];
    assert_eq!(identity.checks.len(), 1, "{}", render_text(&categories));
    let (line, error, _) = only_problem(&snapshot, &options());
    assert_eq!(line, "× certificate config is valid");
    assert_eq!(
        error,
        "Secret weft-identity-issuer does not exist in weft-system"
    );
}

#[test]
fn a_webhook_ca_bundle_that_did_not_sign_the_cert_fails() {
    let other = pki::ca("weft-webhook-ca", now(), 3650, None);
    let mut webhook: MutatingWebhookConfiguration = load("webhook.json");
    let hooks = webhook.webhooks.as_mut().unwrap();
    hooks[0].client_config.ca_bundle = Some(ByteString(other.cert_pem.into_bytes()));
    let snapshot = Snapshot {
        webhook: Ok(Some(webhook)),
        ..healthy()
    };
    let (line, error, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "× proxy-injector caBundle verifies the webhook cert");
    assert_eq!(
        error,
        "webhook weft-proxy-injector.weft.io has a caBundle that did not sign \
         webhook certificate CN=weft-webhook.weft-system.svc"
    );
    assert!(!passed);
}

#[test]
fn a_webhook_cert_for_another_name_fails() {
    let ca = pki::ca("weft-webhook-ca", now(), 3650, None);
    let spec = pki::Spec {
        name: "weft-webhook",
        not_before: now(),
        not_after: now() + time::Duration::days(365),
        ca: false,
        dns_names: &["weft-webhook.default.svc"],
    };
    let cert = pki::make(&spec, Some(&ca));
    let mut secret: Secret = load("webhook-tls.json");
    set_pem(&mut secret, "tls.crt", &cert.cert_pem);
    let mut webhook: MutatingWebhookConfiguration = load("webhook.json");
    webhook.webhooks.as_mut().unwrap()[0]
        .client_config
        .ca_bundle = Some(ByteString(ca.cert_pem.into_bytes()));
    let snapshot = Snapshot {
        webhook_tls: Ok(Some(secret)),
        webhook: Ok(Some(webhook)),
        ..healthy()
    };
    let (line, _, _) = only_problem(&snapshot, &options());
    assert_eq!(line, "× proxy-injector webhook has valid cert");
}

#[test]
fn kubernetes_1_27_is_too_old() {
    let snapshot = Snapshot {
        api: Ok(load("version-1.27.json")),
        ..healthy()
    };
    let (line, error, passed) = only_problem(&snapshot, &options());
    assert_eq!(line, "× is running the minimum Kubernetes API version");
    assert_eq!(
        error,
        "Kubernetes is on version v1.27.16, but Weft needs at least 1.29"
    );
    assert!(!passed);
}

#[test]
fn a_control_plane_at_another_version_warns() {
    let options = Options {
        cli_version: "0.2.0".into(),
        ..options()
    };
    let (line, error, passed) = only_problem(&healthy(), &options);
    assert_eq!(line, "‼ control plane and cli versions match");
    assert_eq!(error, "control plane running 0.1.0 but cli running 0.2.0");
    assert!(passed);
}

#[test]
fn a_proxy_at_another_version_warns_naming_its_pod() {
    let mut pods: Vec<Pod> = items("meshed-pods.json");
    let annotations = pods[1].metadata.annotations.as_mut().unwrap();
    annotations.insert("weft.io/proxy-version".into(), "0.0.9".into());
    let snapshot = Snapshot {
        data_plane_pods: Ok(pods),
        ..healthy()
    };
    let (line, error, passed) = only_problem(&snapshot, &with_proxy());
    assert_eq!(line, "‼ data plane and control plane versions match");
    assert_eq!(
        error,
        "some proxies are not running the control plane's version 0.1.0:\n\
         pod shop/orders-7b6c5d4e8-m2n3p runs proxy 0.0.9"
    );
    assert!(passed);
}

#[test]
fn a_proxy_not_ready_fails() {
    let mut pods: Vec<Pod> = items("meshed-pods.json");
    let statuses = pods[0].status.as_mut().unwrap().container_statuses.as_mut();
    statuses.unwrap()[0].ready = false;
    let snapshot = Snapshot {
        data_plane_pods: Ok(pods),
        ..healthy()
    };
    let (line, error, passed) = only_problem(&snapshot, &with_proxy());
    assert_eq!(line, "× data plane proxies are ready");
    assert_eq!(
        error,
        "pod shop/web-5d8f7c6b9-q4w7e: container weft-proxy is not ready"
    );
    assert!(!passed);
}

#[test]
fn no_meshed_pods_warns() {
    let snapshot = Snapshot {
        data_plane_pods: Ok(Vec::new()),
        ..healthy()
    };
    let options = Options {
        namespace: Some("shop".into()),
        ..with_proxy()
    };
    let snapshot = Snapshot {
        data_plane_namespace: Ok(Some(Namespace::default())),
        ..snapshot
    };
    let (line, error, passed) = only_problem(&snapshot, &options);
    assert_eq!(line, "‼ data plane proxies are ready");
    assert_eq!(error, "no meshed pods in namespace shop");
    assert!(passed);
}

fn pre() -> Options {
    Options {
        pre: true,
        ..options()
    }
}

fn empty_cluster() -> Snapshot {
    Snapshot {
        access: Ok(load("selfsubjectaccessreviews.json")),
        ..Snapshot::reached(load("version.json"))
    }
}

#[test]
fn pre_on_an_empty_cluster_passes_and_lists_the_access_checks() {
    let categories = checks(&empty_cluster(), &pre(), now());
    assert!(success(&categories));
    assert_eq!(problems(&categories), Vec::<String>::new());
    let setup = &categories[2];
    assert_eq!(setup.category_name, "pre-kubernetes-setup");
    let descriptions: Vec<&str> = setup
        .checks
        .iter()
        .map(|c| c.description.as_str())
        .collect();
    assert_eq!(
        descriptions,
        [
            "control plane namespace does not already exist",
            "can create Namespaces",
            "can create ClusterRoles",
            "can create ClusterRoleBindings",
            "can create CustomResourceDefinitions",
            "can create MutatingWebhookConfigurations",
            "can create ServiceAccounts",
            "can create Deployments",
            "can create Services",
            "can create Secrets",
            "can create ConfigMaps",
        ]
    );
}

#[test]
fn pre_without_the_right_to_create_crds_fails_that_check() {
    let mut reviews: Vec<SelfSubjectAccessReview> = load("selfsubjectaccessreviews.json");
    let status = reviews[3].status.as_mut().unwrap();
    status.allowed = false;
    let snapshot = Snapshot {
        access: Ok(reviews),
        ..empty_cluster()
    };
    let (line, error, passed) = only_problem(&snapshot, &pre());
    assert_eq!(line, "× can create CustomResourceDefinitions");
    assert_eq!(error, "not allowed to create customresourcedefinitions");
    assert!(!passed);
}

#[test]
fn pre_warns_when_the_namespace_exists() {
    let snapshot = Snapshot {
        namespace: Ok(Some(load("namespace.json"))),
        ..empty_cluster()
    };
    let (line, _, passed) = only_problem(&snapshot, &pre());
    assert_eq!(line, "‼ control plane namespace does not already exist");
    assert!(passed);
}

#[test]
fn an_unreachable_api_fails_the_first_category_and_runs_no_other() {
    let snapshot = Snapshot {
        api: Err(Unreached::Api(
            "error trying to connect: Connection refused".into(),
        )),
        ..healthy()
    };
    let categories = checks(&snapshot, &with_proxy(), now());
    assert_eq!(categories.len(), 1);
    assert_eq!(problems(&categories), ["× can query the Kubernetes API"]);
    let snapshot = Snapshot {
        api: Err(Unreached::Client("no kubeconfig".into())),
        ..healthy()
    };
    let categories = checks(&snapshot, &with_proxy(), now());
    assert_eq!(
        render_text(&categories),
        "kubernetes-api\n\
         --------------\n\
         × can initialize the client\n    \
             no kubeconfig\n    \
             hint: weft check uses kubectl's configuration: KUBECONFIG, ~/.kube/config or the \
             in-cluster service account; try `kubectl version`\n\
         \n\
         Status check results are ×\n"
    );
}

/// The whole text of a run, pinned: the format is what users and scripts read.
#[test]
fn the_text_output_is_linkerds() {
    let anchor = pki::ca("root.weft-system.cluster.local", now(), 3650, None);
    let issuer = pki::ca(
        "identity.weft-system.cluster.local",
        now(),
        30,
        Some(&anchor),
    );
    let mut snapshot = with_identity(healthy(), &anchor, &issuer);
    snapshot.crds = Ok(Vec::new());
    let categories = checks(&snapshot, &with_proxy(), now());
    assert_eq!(
        render_text(&categories),
        include_str!("fixtures/golden.txt")
    );
}

#[test]
fn the_json_output_is_linkerds() {
    let snapshot = Snapshot {
        crds: Ok(Vec::new()),
        ..healthy()
    };
    let categories = checks(&snapshot, &options(), now());
    let json: serde_json::Value = serde_json::from_str(&render_json(&categories)).unwrap();
    assert_eq!(json["success"], false);
    assert_eq!(json["categories"][0]["categoryName"], "kubernetes-api");
    assert_eq!(
        json["categories"][0]["checks"][0],
        serde_json::json!({"description": "can initialize the client", "result": "success"})
    );
    let crd = &json["categories"][2]["checks"][0];
    assert_eq!(
        crd["description"],
        "control plane CustomResourceDefinitions exist"
    );
    assert_eq!(crd["result"], "error");
    assert_eq!(crd["error"], "CRD wasmplugins.weft.io is not installed");
    assert_eq!(
        crd["hint"],
        "install the CRDs: weft install --crds | kubectl apply -f -"
    );
}

#[test]
fn flags_are_refused_where_they_mean_nothing() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: super::CheckArgs,
    }
    let parse = |args: &[&str]| Cli::try_parse_from([&["check"], args].concat());
    assert!(parse(&["--pre", "--proxy"]).is_err());
    assert!(parse(&["-n", "shop"]).is_err(), "-n is --proxy's");
    let cli = parse(&["--proxy", "-n", "shop", "-o", "json"]).unwrap();
    assert_eq!(cli.args.namespace.as_deref(), Some("shop"));
    assert!(matches!(cli.args.output, super::Format::Json));
    assert!(parse(&["-o", "yaml"]).is_err());
}

#[test]
fn a_proxy_as_a_native_sidecar_counts_as_meshed() {
    let mut pods: Vec<Pod> = items("meshed-pods.json");
    let pod = &mut pods[0];
    let spec = pod.spec.as_mut().unwrap();
    let proxy = spec.containers.remove(0);
    spec.init_containers.get_or_insert_default().push(proxy);
    let status = pod.status.as_mut().unwrap();
    let proxy_status = status.container_statuses.as_mut().unwrap().remove(0);
    let mut unready = proxy_status.clone();
    status
        .init_container_statuses
        .get_or_insert_default()
        .push(proxy_status);
    let snapshot = Snapshot {
        data_plane_pods: Ok(pods.clone()),
        ..healthy()
    };
    let categories = checks(&snapshot, &with_proxy(), now());
    assert_eq!(problems(&categories), Vec::<String>::new());
    unready.ready = false;
    let statuses = pods[0]
        .status
        .as_mut()
        .unwrap()
        .init_container_statuses
        .as_mut();
    *statuses.unwrap().last_mut().unwrap() = unready;
    let snapshot = Snapshot {
        data_plane_pods: Ok(pods),
        ..healthy()
    };
    let (line, _, _) = only_problem(&snapshot, &with_proxy());
    assert_eq!(line, "× data plane proxies are ready");
}
