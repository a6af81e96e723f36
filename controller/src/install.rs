//! `weft install` and `weft uninstall`: the objects the Helm charts
//! `charts/weft` and `charts/weft-crds` render, built here from the chart's
//! own values files, so `weft install | kubectl apply -f -` needs no helm
//! and installs what `helm install` would. The tests hold the two equal.

mod certificates;
mod controller;
mod rbac;
pub mod values;
mod webhook;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use serde_json::{Value, json};
use weft_identity::TrustDomain;

pub use values::Values;

use certificates::{IdentityPems, WebhookPems};

/// The control plane's namespace; the chart refuses any other.
pub const NAMESPACE: &str = crate::index::ROOT_NAMESPACE;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct InstallArgs {
    /// High availability: the chart's values-ha.yaml over its defaults
    /// (three replicas on distinct nodes, a PodDisruptionBudget).
    #[arg(long)]
    pub ha: bool,
    /// Only the CustomResourceDefinitions (the weft-crds chart), to apply
    /// first: `weft install --crds | kubectl apply -f -`.
    #[arg(long)]
    pub crds: bool,
    /// Values files over the chart's defaults, in order, as `helm -f`.
    #[arg(long = "values", short = 'f', value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// The identity trust anchors (PEM), instead of generating them; with
    /// the issuer's certificate and key.
    #[arg(
        long,
        value_name = "FILE",
        requires_all = ["identity_issuer_certificate_file", "identity_issuer_key_file"]
    )]
    pub identity_trust_anchors_file: Option<PathBuf>,
    /// The issuer's certificate (PEM), signed by a trust anchor.
    #[arg(long, value_name = "FILE", requires = "identity_trust_anchors_file")]
    pub identity_issuer_certificate_file: Option<PathBuf>,
    /// The issuer's key (PEM, PKCS#8).
    #[arg(long, value_name = "FILE", requires = "identity_trust_anchors_file")]
    pub identity_issuer_key_file: Option<PathBuf>,
}

#[derive(clap::Args, Clone, Debug, Default)]
pub struct UninstallArgs {}

/// `weft identity`: the files Helm's `--set-file` lines read.
#[derive(clap::Args, Clone, Debug)]
pub struct IdentityArgs {
    /// Where to write `ca.crt`, `issuer.crt` and `issuer.key` (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The trust domain, as the chart's `identityTrustDomain`.
    #[arg(long, default_value = "cluster.local")]
    pub trust_domain: String,
}

/// Generates what `weft install` generates when given no identity, as
/// files: a trust anchor (its key is not kept), and the issuer it signed.
pub fn identity(args: &IdentityArgs) -> anyhow::Result<ExitCode> {
    let trust = TrustDomain::new(NAMESPACE, &args.trust_domain)?;
    let pems = certificates::identity(&trust).context("generating the trust anchor and issuer")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let write = |name: &str, pem: &str, mode: u32| -> anyhow::Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = args.out.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
            .and_then(|mut file| file.write_all(pem.as_bytes()))
            .with_context(|| format!("cannot write {} (it must not exist yet)", path.display()))?;
        Ok(path)
    };
    let anchors = write("ca.crt", &pems.trust_anchors, 0o644)?;
    let certificate = write("issuer.crt", &pems.issuer_certificate, 0o644)?;
    let key = write("issuer.key", &pems.issuer_key, 0o600)?;
    println!(
        "--set-file identityTrustAnchorsPEM={} \\\n  --set-file identity.issuer.tls.crtPEM={} \\\n  --set-file identity.issuer.tls.keyPEM={}",
        anchors.display(),
        certificate.display(),
        key.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `weft install` prints, and what it tells the operator besides.
pub struct Rendered {
    pub objects: Vec<Value>,
    pub notices: Vec<String>,
}

pub fn install(args: &InstallArgs) -> anyhow::Result<ExitCode> {
    let rendered = render(args)?;
    for notice in &rendered.notices {
        eprintln!("{notice}");
    }
    print!("{}", to_yaml(&rendered.objects)?);
    Ok(ExitCode::SUCCESS)
}

/// Every object `weft install` and `weft install --crds` create (the PDB of
/// `--ha` too), newest first, by name only: `weft uninstall | kubectl
/// delete --ignore-not-found -f -`. The trust anchors ConfigMaps the
/// controller wrote into meshed namespaces are left to those namespaces.
pub fn uninstall(_args: &UninstallArgs) -> anyhow::Result<ExitCode> {
    print!("{}", to_yaml(&uninstall_objects()?)?);
    Ok(ExitCode::SUCCESS)
}

pub fn uninstall_objects() -> anyhow::Result<Vec<Value>> {
    let values = Values::load(true, &[] as &[&Path])?;
    let unused = IdentityPems {
        trust_anchors: String::new(),
        issuer_certificate: String::new(),
        issuer_key: String::new(),
    };
    let no_webhook = WebhookPems {
        certificate: String::new(),
        key: String::new(),
        ca_bundle: String::new(),
    };
    let mut objects = crds()?;
    objects.push(namespace());
    objects.extend(control_plane(&values, &unused, &no_webhook));
    Ok(objects
        .iter()
        .rev()
        .map(|object| {
            let mut metadata = json!({"name": object["metadata"]["name"]});
            if let Some(namespace) = object["metadata"].get("namespace") {
                metadata["namespace"] = namespace.clone();
            }
            json!({
                "apiVersion": object["apiVersion"],
                "kind": object["kind"],
                "metadata": metadata,
            })
        })
        .collect())
}

/// The objects `weft install` prints for these arguments: with `--crds`
/// the CRDs alone; otherwise the `weft-system` Namespace, then what
/// `helm template --namespace weft-system` renders for the same values.
pub fn render(args: &InstallArgs) -> anyhow::Result<Rendered> {
    if args.crds {
        return Ok(Rendered {
            objects: crds()?,
            notices: Vec::new(),
        });
    }
    let values = Values::load(args.ha, &args.values)?;
    let mut notices = Vec::new();
    let identity = identity_pems(args, &values, &mut notices)?;
    let webhook = webhook_pems(&values)?;
    let mut objects = vec![namespace()];
    objects.extend(control_plane(&values, &identity, &webhook));
    Ok(Rendered { objects, notices })
}

/// The chart's objects in helm's install order.
fn control_plane(values: &Values, identity: &IdentityPems, hook: &WebhookPems) -> Vec<Value> {
    let mut objects = rbac::objects(values);
    objects.push(controller::config(values));
    objects.extend(webhook::identity(values, identity));
    objects.extend(webhook::webhook(values, hook));
    objects.push(controller::deployment(values));
    objects.push(controller::service(values));
    objects.extend(controller::disruption_budget(values));
    objects.sort_by_key(|object| install_order(object["kind"].as_str().unwrap_or_default()));
    objects
}

fn crds() -> anyhow::Result<Vec<Value>> {
    let crd = serde_norway::from_str(&crate::crd::wasm_plugin_crd_yaml())?;
    Ok(vec![crd])
}

fn namespace() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE},
    })
}

/// The files given, else the values', else fresh ones (said on stderr).
fn identity_pems(
    args: &InstallArgs,
    values: &Values,
    notices: &mut Vec<String>,
) -> anyhow::Result<IdentityPems> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    if let (Some(anchors), Some(certificate), Some(key)) = (
        &args.identity_trust_anchors_file,
        &args.identity_issuer_certificate_file,
        &args.identity_issuer_key_file,
    ) {
        return Ok(IdentityPems {
            trust_anchors: read(anchors)?,
            issuer_certificate: read(certificate)?,
            issuer_key: read(key)?,
        });
    }
    let tls = &values.identity.issuer.tls;
    let given = [
        (
            "identityTrustAnchorsPEM",
            &values.identity_trust_anchors_pem,
        ),
        ("identity.issuer.tls.crtPEM", &tls.crt_pem),
        ("identity.issuer.tls.keyPEM", &tls.key_pem),
    ];
    let missing: Vec<&str> = given
        .iter()
        .filter(|(_, pem)| pem.trim().is_empty())
        .map(|(name, _)| *name)
        .collect();
    match missing.len() {
        0 => Ok(IdentityPems {
            trust_anchors: values.identity_trust_anchors_pem.clone(),
            issuer_certificate: tls.crt_pem.clone(),
            issuer_key: tls.key_pem.clone(),
        }),
        3 => {
            let trust = TrustDomain::new(NAMESPACE, &values.identity_trust_domain)?;
            let pems = certificates::identity(&trust)
                .context("generating the identity trust anchor and issuer")?;
            notices.push(format!(
                "weft install: generated an identity trust anchor (10 years) and an issuer \
                 (1 year) for {}. The anchor's key is not kept; its certificate is in the \
                 ConfigMap {NAMESPACE}/{}: to rotate the issuer or share the anchor with \
                 another cluster, give your own with --identity-trust-anchors-file, \
                 --identity-issuer-certificate-file and --identity-issuer-key-file.",
                values.identity_trust_domain,
                weft_inject::settings::TRUST_ROOTS_CONFIG_MAP,
            ));
            Ok(pems)
        }
        _ => bail!(
            "the values give part of the identity but not {}: give all three, or none \
             for weft install to generate them",
            missing.join(", ")
        ),
    }
}

/// As the chart: the values' certificate (its CA bundle defaulting to
/// itself), else a fresh CA and certificate.
fn webhook_pems(values: &Values) -> anyhow::Result<WebhookPems> {
    let hook = &values.webhook;
    if hook.crt_pem.is_empty() {
        return certificates::webhook(&webhook::host())
            .context("generating the webhook's serving certificate");
    }
    if hook.key_pem.is_empty() {
        bail!("webhook.keyPEM is required with webhook.crtPEM");
    }
    let ca_bundle = if hook.ca_bundle.is_empty() {
        &hook.crt_pem
    } else {
        &hook.ca_bundle
    };
    Ok(WebhookPems {
        certificate: hook.crt_pem.clone(),
        key: hook.key_pem.clone(),
        ca_bundle: ca_bundle.clone(),
    })
}

/// Labels of every object (`weft.labels`).
fn labels(values: &Values) -> Value {
    let mut labels = selector_labels();
    labels["app.kubernetes.io/version"] = values.image.tag.clone().into();
    labels
}

/// The Deployment's selector (`weft.selectorLabels`): no version, which
/// changes on upgrade while a selector may not.
fn selector_labels() -> Value {
    json!({
        "app.kubernetes.io/name": "weft-controller",
        "app.kubernetes.io/part-of": "weft",
    })
}

fn namespaced(name: &str, values: &Values) -> Value {
    json!({"name": name, "namespace": NAMESPACE, "labels": labels(values)})
}

/// A PEM value in a Secret (`weft.pem | b64enc`): trimmed, one final newline.
fn pem_data(pem: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{}\n", pem.trim()))
}

/// Helm's install order (`releaseutil.InstallOrder`) for the kinds here.
fn install_order(kind: &str) -> usize {
    const ORDER: [&str; 14] = [
        "Namespace",
        "PodDisruptionBudget",
        "ServiceAccount",
        "Secret",
        "ConfigMap",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    ];
    ORDER.iter().position(|k| *k == kind).unwrap_or(ORDER.len())
}

/// Multi-document YAML, each object led by its apiVersion, kind and
/// metadata as kubectl writes them.
pub fn to_yaml(objects: &[Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for object in objects {
        let mut ordered = serde_norway::Mapping::new();
        let fields = object.as_object().context("an object")?;
        let first = ["apiVersion", "kind", "type", "metadata"];
        for key in first {
            if let Some(value) = fields.get(key) {
                ordered.insert(key.into(), serde_norway::to_value(value)?);
            }
        }
        for (key, value) in fields.iter().filter(|(k, _)| !first.contains(&k.as_str())) {
            ordered.insert(key.as_str().into(), serde_norway::to_value(value)?);
        }
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&ordered)?);
    }
    Ok(out)
}
