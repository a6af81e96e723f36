//! `weft check --pre` on a cluster without Weft.

use super::*;

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
