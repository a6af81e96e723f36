//! The checks of the cluster itself: whether its API answers, whether it is
//! recent enough, and (`--pre`) whether this user may install Weft there.

use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::apimachinery::pkg::version::Info;

use super::report::{Category, Check, Problem, fail, warn};
use super::snapshot::{Snapshot, Unreached};
use crate::index::ROOT_NAMESPACE;

/// Kubernetes 1.29 is the oldest Weft runs on: native sidecars (init
/// containers with `restartPolicy: Always`, on by default since 1.29) let the
/// proxy start before and stop after the app, and bound projected
/// ServiceAccount tokens (the identity's proof) are signed per pod there.
pub const MINIMUM_VERSION: (u32, u32) = (1, 29);

/// A kind the install creates, as a SelfSubjectAccessReview names it.
pub struct InstalledKind {
    pub kind: &'static str,
    pub group: &'static str,
    pub resource: &'static str,
    /// Reviewed in the control plane's namespace when namespaced.
    pub namespaced: bool,
}

const fn kind(
    kind: &'static str,
    group: &'static str,
    resource: &'static str,
    namespaced: bool,
) -> InstalledKind {
    InstalledKind {
        kind,
        group,
        resource,
        namespaced,
    }
}

/// What `weft install` (and the chart) creates, in that order.
pub const INSTALLED_KINDS: [InstalledKind; 10] = [
    kind("Namespaces", "", "namespaces", false),
    kind(
        "ClusterRoles",
        "rbac.authorization.k8s.io",
        "clusterroles",
        false,
    ),
    kind(
        "ClusterRoleBindings",
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        false,
    ),
    kind(
        "CustomResourceDefinitions",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        false,
    ),
    kind(
        "MutatingWebhookConfigurations",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        false,
    ),
    kind("ServiceAccounts", "", "serviceaccounts", true),
    kind("Deployments", "apps", "deployments", true),
    kind("Services", "", "services", true),
    kind("Secrets", "", "secrets", true),
    kind("ConfigMaps", "", "configmaps", true),
];

const KUBECONFIG_HINT: &str = "weft check uses kubectl's configuration: KUBECONFIG, \
     ~/.kube/config or the in-cluster service account; try `kubectl version`";

pub fn kubernetes_api(snapshot: &Snapshot) -> Category {
    let mut checks = Vec::new();
    let client = match &snapshot.api {
        Err(Unreached::Client(why)) => Err(fail(why.as_str(), KUBECONFIG_HINT)),
        _ => Ok(()),
    };
    checks.push(Check::new("can initialize the client", client));
    match &snapshot.api {
        Err(Unreached::Client(_)) => {}
        Err(Unreached::Api(why)) => checks.push(Check::new(
            "can query the Kubernetes API",
            Err(fail(why.as_str(), KUBECONFIG_HINT)),
        )),
        Ok(_) => checks.push(Check::new("can query the Kubernetes API", Ok(()))),
    }
    Category::new("kubernetes-api", checks)
}

pub fn kubernetes_version(version: &Info) -> Category {
    let (major, minor) = MINIMUM_VERSION;
    let verdict = match parse_version(version) {
        Some(running) if running >= MINIMUM_VERSION => Ok(()),
        Some(_) => Err(fail(
            format!(
                "Kubernetes is on version {}, but Weft needs at least {major}.{minor}",
                version.git_version
            ),
            format!(
                "upgrade the cluster to Kubernetes {major}.{minor} or later \
                 (native sidecars, bound ServiceAccount tokens)"
            ),
        )),
        None => Err(fail(
            format!(
                "cannot read the API server's version (major {:?}, minor {:?}, gitVersion {:?})",
                version.major, version.minor, version.git_version
            ),
            "`kubectl version` shows what the API server says",
        )),
    };
    Category::new(
        "kubernetes-version",
        vec![Check::new(
            "is running the minimum Kubernetes API version",
            verdict,
        )],
    )
}

/// `major` and `minor` as numbers; managed clusters append `+` to `minor`.
fn parse_version(version: &Info) -> Option<(u32, u32)> {
    let number = |s: &str| {
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    Some((number(&version.major)?, number(&version.minor)?))
}

pub fn pre_kubernetes_setup(snapshot: &Snapshot) -> Category {
    let mut checks = vec![Check::new(
        "control plane namespace does not already exist",
        match &snapshot.namespace {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err(warn(
                format!("namespace {ROOT_NAMESPACE} already exists"),
                "an install there would update what it holds; \
                 `weft check` tells whether a control plane already runs",
            )),
            Err(why) => Err(fail(
                format!("cannot read namespace {ROOT_NAMESPACE}: {why}"),
                "",
            )),
        },
    )];
    for kind in &INSTALLED_KINDS {
        let verdict = match &snapshot.access {
            Err(why) => Err(fail(why.as_str(), "")),
            Ok(reviews) => may_create(reviews, kind),
        };
        checks.push(Check::new(format!("can create {}", kind.kind), verdict));
    }
    Category::new("pre-kubernetes-setup", checks)
}

/// Reads the review of `kind` among the answered ones.
fn may_create(reviews: &[SelfSubjectAccessReview], kind: &InstalledKind) -> Result<(), Problem> {
    let review = reviews.iter().find(|r| {
        r.spec.resource_attributes.as_ref().is_some_and(|a| {
            a.resource.as_deref() == Some(kind.resource)
                && a.group.as_deref().unwrap_or("") == kind.group
        })
    });
    let Some(status) = review.and_then(|r| r.status.as_ref()) else {
        return Err(fail(
            format!(
                "the API server did not answer whether {} may be created",
                kind.resource
            ),
            "",
        ));
    };
    if status.allowed {
        return Ok(());
    }
    let reason = match status.reason.as_deref() {
        Some(reason) if !reason.is_empty() => format!(": {reason}"),
        _ => String::new(),
    };
    let scope = if kind.namespaced {
        format!(" in namespace {ROOT_NAMESPACE}")
    } else {
        String::new()
    };
    Err(fail(
        format!("not allowed to create {}{scope}{reason}", kind.resource),
        "install as a user with cluster-admin rights",
    ))
}
