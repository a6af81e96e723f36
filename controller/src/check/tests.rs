//! `weft check` on recorded API responses (`fixtures/`, a healthy control
//! plane of Kubernetes 1.33 with two meshed pods), each failure made by
//! changing one object, and certificates made with rcgen where a case needs
//! its own.

mod certificates;
mod data_plane;
mod linkerd_resources;
mod pki;
mod pre;

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
            "weft-data-plane",
            "weft-linkerd-resources",
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
