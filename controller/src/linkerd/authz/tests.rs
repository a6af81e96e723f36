//! The manifests in `tests/fixtures/linkerd-policy/` (Linkerd's emojivoto,
//! with Servers, a ServerAuthorization, AuthorizationPolicies and both
//! authentications as Linkerd's documentation writes them), read by the
//! local source and compiled by the index: the `authz` config each
//! workload gets, what is reported, and what is refused.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::index::{
    ConfigSource, Event, Index, Origin, ResolvedPlugin, WorkloadProblem, WorkloadRef,
};
use crate::linkerd::{TrafficKind, TrafficObject, TrafficRef};
use crate::local::read_dir;
use crate::resources::Direction;

const VOTING: (&str, &str) = ("emojivoto", "voting-5f5b9c4d8-x2x7q");
const WEB: (&str, &str) = ("emojivoto", "web-7b6d9f4c5-k8j2m");
const EMOJI: (&str, &str) = ("emojivoto", "emoji-6d6f8c7b9-q4w5e");
const VAULT: (&str, &str) = ("vault", "vault-0");

fn emojivoto(index: Index) -> Index {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/linkerd-policy");
    let directory = read_dir(&dir).unwrap();
    assert_eq!(directory.errors, [], "the fixtures read");
    let mut index = index;
    for event in directory.events() {
        index.apply(event);
    }
    index
}

fn chain(
    index: &Index,
    (namespace, pod): (&str, &str),
) -> (Vec<ResolvedPlugin>, Vec<WorkloadProblem>) {
    let chain = index.plugin_set(&WorkloadRef::new(namespace, pod)).unwrap();
    (chain.plugins, chain.problems)
}

/// The workload's authz, which must be compiled and run inbound.
fn authz(index: &Index, workload: (&str, &str)) -> Value {
    let (plugins, problems) = chain(index, workload);
    assert_eq!(problems, [], "{workload:?}");
    let authz = plugins
        .iter()
        .find(|p| p.name == "authz")
        .expect("authz runs");
    assert_eq!(authz.config_source, ConfigSource::Compiled);
    assert_eq!(authz.directions, [Direction::Inbound]);
    authz.config.clone()
}

fn identity(namespace: &str, account: &str) -> String {
    format!("{account}.{namespace}.serviceaccount.identity.weft-system.cluster.local")
}

fn object(yaml: &str) -> TrafficObject {
    let value: Value = serde_norway::from_str(yaml).unwrap();
    TrafficObject::from_value(value).unwrap().unwrap()
}

#[test]
fn a_server_and_its_server_authorization_admit_only_the_named_service_account() {
    let index = emojivoto(Index::default());
    assert_eq!(
        authz(&index, VOTING),
        json!({
            "defaultPolicy": "all-unauthenticated",
            // The port named grpc, and the metrics port by number.
            "portPolicies": {"8080": "deny", "8801": "deny"},
            "rules": [
                {"name": "serverauthorization/voting-grpc:8080", "ports": [8080],
                 "identities": [identity("emojivoto", "web")]},
                {"name": "authorizationpolicy/voting-metrics:8801/0", "ports": [8801],
                 "clientCidrs": ["10.0.0.0/8"], "clientCidrsExcept": ["10.0.42.0/24"]},
                {"name": "authorizationpolicy/voting-metrics:8801/1", "ports": [8801],
                 "clientCidrs": ["192.168.0.0/16"]},
                {"name": "authorizationpolicy/voting-metrics:8801/2", "ports": [8801],
                 "clientCidrs": ["fd00::/8"]},
            ]
        })
    );
}

#[test]
fn an_authorization_policy_with_mesh_tls_authentication_names_identities_as_linkerd_does() {
    let index = emojivoto(Index::default());
    assert_eq!(
        authz(&index, WEB),
        json!({
            "defaultPolicy": "all-unauthenticated",
            "portPolicies": {"8080": "deny"},
            "rules": [
                {"name": "authorizationpolicy/web-http:8080", "ports": [8080],
                 "identities": [
                     identity("emojivoto", "vote-bot"),
                     "*.ingress.serviceaccount.identity.weft-system.cluster.local",
                 ]},
            ]
        })
    );
}

#[test]
fn the_trust_domain_names_the_identities() {
    let trust = weft_identity::TrustDomain::new("weft-system", "corp.example").unwrap();
    let index = emojivoto(Index::default().with_trust_domain(trust));
    let config = authz(&index, VOTING);
    assert_eq!(
        config["rules"][0]["identities"],
        json!(["web.emojivoto.serviceaccount.identity.weft-system.corp.example"])
    );
}

#[test]
fn without_a_server_or_a_default_policy_the_chain_is_as_it_was() {
    let index = emojivoto(Index::default());
    let (plugins, problems) = chain(&index, EMOJI);
    assert_eq!(problems, []);
    assert!(plugins.is_empty(), "{plugins:?}");
}

#[test]
fn the_default_inbound_policy_comes_from_the_pod_the_namespace_or_the_cluster() {
    // The namespace's annotation.
    let index = emojivoto(Index::default());
    assert_eq!(authz(&index, VAULT), json!({"defaultPolicy": "deny"}));

    // The cluster's, for pods with neither.
    let index = emojivoto(Index::default().with_default_inbound_policy("cluster-authenticated"));
    assert_eq!(
        authz(&index, EMOJI),
        json!({"defaultPolicy": "cluster-authenticated"})
    );
    assert_eq!(authz(&index, VAULT), json!({"defaultPolicy": "deny"}));
    assert_eq!(
        authz(&index, WEB)["defaultPolicy"],
        "cluster-authenticated",
        "a Server's port keeps its own policy; the rest is the default"
    );

    // The pod's, the Weft name before Linkerd's.
    let mut index = emojivoto(Index::default());
    index.apply(Event::Applied(crate::index::Resource::Pod(
        serde_norway::from_str(
            "metadata:\n  name: vault-1\n  namespace: vault\n  annotations:\n    \
             config.weft.io/default-inbound-policy: all-authenticated\n    \
             config.linkerd.io/default-inbound-policy: audit\n",
        )
        .unwrap(),
    )));
    assert_eq!(
        authz(&index, ("vault", "vault-1")),
        json!({"defaultPolicy": "all-authenticated"})
    );
}

#[test]
fn a_default_policy_that_is_none_of_linkerds_is_reported_and_denies() {
    let mut index = emojivoto(Index::default());
    index.apply(Event::Applied(crate::index::Resource::Pod(
        serde_norway::from_str(
            "metadata:\n  name: typo\n  namespace: emojivoto\n  annotations:\n    \
             config.linkerd.io/default-inbound-policy: allow-all\n",
        )
        .unwrap(),
    )));
    let (plugins, problems) = chain(&index, ("emojivoto", "typo"));
    assert_eq!(
        problems,
        [WorkloadProblem::InvalidDefaultInboundPolicy {
            origin: Origin::Pod,
            annotation: "config.linkerd.io/default-inbound-policy".into(),
            value: "allow-all".into(),
        }]
    );
    assert_eq!(
        problems[0].to_string(),
        "pod annotation config.linkerd.io/default-inbound-policy: \"allow-all\" is not a default \
         inbound policy (all-unauthenticated, all-authenticated, cluster-unauthenticated, \
         cluster-authenticated, deny, audit); deny applies"
    );
    assert_eq!(plugins[0].config, json!({"defaultPolicy": "deny"}));
}

#[test]
fn the_workloads_own_authz_config_wins_and_the_conflict_is_reported() {
    let mut index = emojivoto(Index::default());
    index.apply(Event::Applied(crate::index::Resource::Pod(
        serde_norway::from_str(
            "metadata:\n  name: voting-5f5b9c4d8-x2x7q\n  namespace: emojivoto\n  \
             labels: {app: voting-svc}\n  annotations:\n    weft.io/plugins: authz\n    \
             weft.io/plugin-config.authz: '{\"defaultPolicy\": \"audit\"}'\n\
             spec:\n  serviceAccountName: voting\n  containers:\n  - name: voting-svc\n    \
             ports: [{name: grpc, containerPort: 8080}]\n",
        )
        .unwrap(),
    )));
    let (plugins, problems) = chain(&index, VOTING);
    assert_eq!(plugins.len(), 1);
    assert_eq!(plugins[0].config, json!({"defaultPolicy": "audit"}));
    assert_eq!(plugins[0].config_source, ConfigSource::PodAnnotation);
    let [WorkloadProblem::CompiledConfigNotApplied { name, from, .. }] = &problems[..] else {
        panic!("{problems:?}");
    };
    assert_eq!(name, "authz");
    let from: Vec<String> = from.iter().map(ToString::to_string).collect();
    assert_eq!(
        from,
        [
            "Server emojivoto/voting-grpc",
            "Server emojivoto/voting-metrics",
            "ServerAuthorization emojivoto/voting-grpc",
            "AuthorizationPolicy emojivoto/voting-metrics",
            "NetworkAuthentication emojivoto/cluster-networks",
        ]
    );
}

#[test]
fn servers_and_authorizations_that_match_nothing_are_reported() {
    let index = emojivoto(Index::default());
    let problems: Vec<String> = index
        .traffic_problems()
        .into_iter()
        .map(|(key, problem)| format!("{key}: {problem}"))
        .collect();
    assert_eq!(
        problems,
        [
            "Server emojivoto/books-http: spec.podSelector selects no pod: the Server applies \
             to nothing",
            "ServerAuthorization emojivoto/emoji-grpc: spec.server.name: no Server \
             emojivoto/emoji-grpc: the authorization applies to nothing",
        ]
    );
}

#[test]
fn a_policy_whose_authentication_is_missing_authorizes_no_one() {
    let mut index = emojivoto(Index::default());
    let key = TrafficRef::new(
        TrafficKind::NetworkAuthentication,
        "emojivoto",
        "cluster-networks",
    );
    index.apply(Event::Deleted(crate::index::ResourceKey::Traffic(key)));
    let config = authz(&index, VOTING);
    assert_eq!(config["rules"].as_array().unwrap().len(), 1, "{config}");
    assert_eq!(config["portPolicies"]["8801"], "deny");
    let problems: Vec<String> = index
        .traffic_problems()
        .into_iter()
        .map(|(_, problem)| problem)
        .collect();
    assert!(
        problems.contains(
            &"spec.requiredAuthenticationRefs: no NetworkAuthentication \
              emojivoto/cluster-networks: the policy authorizes no one, as in Linkerd"
                .to_string()
        ),
        "{problems:?}"
    );
}

#[test]
fn a_refused_version_keeps_the_last_good_one() {
    let mut index = emojivoto(Index::default());
    let before = authz(&index, VOTING);
    for (yaml, refusal) in [
        (
            "apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata:\n  \
             name: voting-grpc\n  namespace: emojivoto\nspec:\n  server:\n    name: voting-grpc\n  \
             client:\n    meshTLS:\n      serviceAcounts:\n      - name: web\n",
            "unsupported field spec.client.meshTLS.serviceAcounts (Weft does not apply it)",
        ),
        (
            "apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata:\n  \
             name: voting-grpc\n  namespace: emojivoto\nspec:\n  server:\n    name: voting-grpc\n  \
             client:\n    networks:\n    - cidr: 10.0.0.0/33\n    unauthenticated: true\n",
            "spec.client.networks[0].cidr \"10.0.0.0/33\": the prefix length must be 0 to 32",
        ),
        (
            "apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata:\n  \
             name: voting-grpc\n  namespace: emojivoto\nspec:\n  server:\n    name: voting-grpc\n  \
             client:\n    meshTLS:\n      unauthenticatedTLS: true\n",
            "spec.client.meshTLS.unauthenticatedTLS is not supported: Weft's proxies tell only \
             mesh identities from plaintext",
        ),
        (
            "apiVersion: policy.linkerd.io/v1beta1\nkind: ServerAuthorization\nmetadata:\n  \
             name: voting-grpc\n  namespace: emojivoto\nspec:\n  server:\n    name: voting-grpc\n  \
             client:\n    meshTLS:\n      identities: ['web.*.local']\n",
            "spec.client.meshTLS.identities[0] \"web.*.local\": an identity is a name, `*`, or \
             `*.` and a suffix",
        ),
    ] {
        let object = Box::new(object(yaml));
        index.apply(Event::Applied(crate::index::Resource::Traffic(object)));
        let key = TrafficRef::new(TrafficKind::ServerAuthorization, "emojivoto", "voting-grpc");
        let state = index.traffic().find(|(k, _)| **k == key).unwrap().1;
        assert_eq!(state.rejection.as_deref(), Some(refusal));
        assert_eq!(
            authz(&index, VOTING),
            before,
            "the last good version applies"
        );
    }
}

#[test]
fn specs_weft_cannot_honour_are_refused_naming_the_field() {
    for (yaml, refusal) in [
        (
            "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata:\n  name: s\n  \
             namespace: n\nspec:\n  podSelector: {}\n  port: 8080\n  accessPolicy: open\n",
            "spec.accessPolicy \"open\": expected one of all-unauthenticated, all-authenticated, \
             cluster-unauthenticated, cluster-authenticated, deny, audit",
        ),
        (
            "apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata:\n  name: s\n  \
             namespace: n\nspec:\n  podSelector: {matchExpressions: [{key: app, operator: Has}]}\n  \
             port: 8080\n",
            "spec.podSelector.matchExpressions[0].operator \"Has\": expected In, NotIn, Exists or \
             DoesNotExist",
        ),
        (
            "apiVersion: policy.linkerd.io/v1beta2\nkind: Server\nmetadata:\n  name: s\n  \
             namespace: n\nspec:\n  externalWorkloadSelector: {}\n  podSelector: {}\n  port: 80\n",
            "spec.externalWorkloadSelector is not supported: Weft meshes pods only",
        ),
        (
            "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  \
             name: p\n  namespace: n\nspec:\n  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, \
             name: r}\n  requiredAuthenticationRefs: []\n",
            "spec.targetRef: a HTTPRoute is not supported as a target yet: target its Server",
        ),
        (
            "apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata:\n  \
             name: p\n  namespace: n\nspec:\n  targetRef: {group: policy.linkerd.io, kind: Server, \
             name: s}\n  requiredAuthenticationRefs:\n  - {kind: ServiceAccount, name: a}\n  \
             - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: m}\n",
            "spec.requiredAuthenticationRefs: at most one identity authentication \
             (MeshTLSAuthentication or ServiceAccount) and one NetworkAuthentication; a client \
             must satisfy all of them, which Weft cannot express for two",
        ),
        (
            "apiVersion: policy.linkerd.io/v1alpha1\nkind: NetworkAuthentication\nmetadata:\n  \
             name: a\n  namespace: n\nspec:\n  networks:\n  - cidr: 10.0.0.0/8\n    except: \
             ['fd00::/8']\n",
            "spec.networks[0].except[0] \"fd00::/8\": not the same address family as 10.0.0.0/8",
        ),
        (
            "apiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata:\n  \
             name: a\n  namespace: n\nspec:\n  identityRefs:\n  - {kind: Deployment, name: web}\n",
            "spec.identityRefs[0]: kind \"Deployment\" of group \"\" is not a ServiceAccount or \
             Namespace",
        ),
    ] {
        let object = object(yaml);
        assert_eq!(crate::linkerd::read(&object).unwrap_err(), refusal);
    }
}
