//! What the checks look at, read from the API server in one pass. The
//! reading is all this module does: every verdict is made from the
//! `Snapshot` by pure functions, which the tests feed recorded responses.

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::version::Info;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::config::KubeConfigOptions;
use kube::{Api, Client, Config};
use serde::de::DeserializeOwned;

use super::Options;
use super::cluster::INSTALLED_KINDS;
use super::names::{
    CONTROLLER_LABEL_SELECTOR, ISSUER_SECRET, TRUST_ROOTS_CONFIG_MAP, WEBHOOK_CONFIGURATION,
    WEBHOOK_SECRET,
};
use crate::index::ROOT_NAMESPACE;
use crate::linkerd::{TrafficKind, TrafficObject};
use crate::resources::WasmPlugin;

/// A read that may have been refused (RBAC) or failed; `Err` holds why.
pub type Read<T> = Result<T, String>;

/// Why the API server was never asked anything.
#[derive(Clone, Debug)]
pub enum Unreached {
    /// No usable kubeconfig or in-cluster configuration.
    Client(String),
    /// The client was made, but `/version` did not answer.
    Api(String),
}

/// The API server's answers; a field a mode does not look at stays empty.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// `/version`.
    pub api: Result<Info, Unreached>,
    /// The control plane namespace, `None` when it does not exist.
    pub namespace: Read<Option<Namespace>>,
    pub crds: Read<Vec<CustomResourceDefinition>>,
    /// Deployments in the control plane namespace.
    pub deployments: Read<Vec<Deployment>>,
    /// The controller's pods.
    pub pods: Read<Vec<Pod>>,
    pub trust_roots: Read<Option<ConfigMap>>,
    pub issuer: Read<Option<Secret>>,
    pub webhook_tls: Read<Option<Secret>>,
    pub webhook: Read<Option<MutatingWebhookConfiguration>>,
    /// One answered review per `cluster::INSTALLED_KINDS` (`--pre`).
    pub access: Read<Vec<SelfSubjectAccessReview>>,
    /// The namespace `--proxy -n` names, `None` when it does not exist.
    pub data_plane_namespace: Read<Option<Namespace>>,
    /// Pods the injector labelled (`--proxy`).
    pub data_plane_pods: Read<Vec<Pod>>,
    /// What the controller compiles Linkerd's resources from.
    pub mesh: Read<MeshObjects>,
}

/// Every object the controller's index reads to compile the traffic and
/// policy resources, cluster-wide.
#[derive(Clone, Debug, Default)]
pub struct MeshObjects {
    pub namespaces: Vec<Namespace>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub plugins: Vec<WasmPlugin>,
    /// Every kind whose CRD is installed.
    pub traffic: Vec<TrafficObject>,
}

impl Snapshot {
    /// A cluster that answered `/version` and nothing else yet.
    pub fn reached(version: Info) -> Self {
        Snapshot {
            api: Ok(version),
            namespace: Ok(None),
            crds: Ok(Vec::new()),
            deployments: Ok(Vec::new()),
            pods: Ok(Vec::new()),
            trust_roots: Ok(None),
            issuer: Ok(None),
            webhook_tls: Ok(None),
            webhook: Ok(None),
            access: Ok(Vec::new()),
            data_plane_namespace: Ok(None),
            data_plane_pods: Ok(Vec::new()),
            mesh: Ok(MeshObjects::default()),
        }
    }

    fn unreached(why: Unreached) -> Self {
        Snapshot {
            api: Err(why),
            ..Snapshot::reached(Info::default())
        }
    }
}

/// Reads what `options` asks to check. A kubeconfig `context` is chosen
/// as kubectl's `--context` does; `KUBECONFIG` is honoured by kube itself.
pub async fn gather(context: Option<&str>, options: &Options) -> Snapshot {
    let config = match context {
        Some(context) => {
            let options = KubeConfigOptions {
                context: Some(context.to_string()),
                ..KubeConfigOptions::default()
            };
            Config::from_kubeconfig(&options)
                .await
                .map_err(|e| e.to_string())
        }
        None => Config::infer().await.map_err(|e| e.to_string()),
    };
    let client = match config.and_then(|c| Client::try_from(c).map_err(|e| e.to_string())) {
        Ok(client) => client,
        Err(e) => return Snapshot::unreached(Unreached::Client(e)),
    };
    let version = match client.apiserver_version().await {
        Ok(version) => version,
        Err(e) => return Snapshot::unreached(Unreached::Api(causes(&e))),
    };
    let mut snapshot = Snapshot::reached(version);
    snapshot.namespace = get(Api::all(client.clone()), ROOT_NAMESPACE).await;
    if options.pre {
        snapshot.access = access_reviews(&client).await;
        return snapshot;
    }
    snapshot.crds = list(Api::all(client.clone()), &ListParams::default()).await;
    snapshot.deployments = list(system(&client), &ListParams::default()).await;
    let controller = ListParams::default().labels(CONTROLLER_LABEL_SELECTOR);
    snapshot.pods = list(system(&client), &controller).await;
    snapshot.trust_roots = get(system(&client), TRUST_ROOTS_CONFIG_MAP).await;
    snapshot.issuer = get(system(&client), ISSUER_SECRET).await;
    snapshot.webhook_tls = get(system(&client), WEBHOOK_SECRET).await;
    snapshot.webhook = get(Api::all(client.clone()), WEBHOOK_CONFIGURATION).await;
    snapshot.mesh = mesh_objects(&client).await;
    if options.proxy {
        let meshed = ListParams::default().labels(weft_inject::CONTROL_PLANE_NS_LABEL);
        let pods = match &options.namespace {
            Some(ns) => {
                snapshot.data_plane_namespace = get(Api::all(client.clone()), ns).await;
                Api::namespaced(client.clone(), ns)
            }
            None => Api::all(client.clone()),
        };
        snapshot.data_plane_pods = list(pods, &meshed).await;
    }
    snapshot
}

async fn mesh_objects(client: &Client) -> Read<MeshObjects> {
    let params = ListParams::default();
    let mut objects = MeshObjects {
        namespaces: list(Api::all(client.clone()), &params).await?,
        pods: list(Api::all(client.clone()), &params).await?,
        services: list(Api::all(client.clone()), &params).await?,
        plugins: list(Api::all(client.clone()), &params).await?,
        traffic: Vec::new(),
    };
    for kind in TrafficKind::ALL {
        let gvk = GroupVersionKind::gvk(kind.group(), kind.watched_version(), kind.kind());
        let resource = ApiResource::from_gvk_with_plural(&gvk, kind.plural());
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let items = match api.list(&params).await {
            Ok(list) => list.items,
            // Its CRD is not installed: there is none of the kind.
            Err(kube::Error::Api(status)) if status.is_not_found() => continue,
            Err(e) => return Err(format!("{kind}: {}", causes(&e))),
        };
        for item in items {
            let value = serde_json::to_value(item).map_err(|e| e.to_string())?;
            match TrafficObject::from_value(value) {
                Some(Ok(object)) => objects.traffic.push(object),
                Some(Err(e)) => return Err(format!("{kind}: {e}")),
                None => {}
            }
        }
    }
    Ok(objects)
}

fn system<K>(client: &Client) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    Api::namespaced(client.clone(), ROOT_NAMESPACE)
}

async fn get<K>(api: Api<K>, name: &str) -> Read<Option<K>>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(|e| causes(&e))
}

async fn list<K>(api: Api<K>, params: &ListParams) -> Read<Vec<K>>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.list(params).await {
        Ok(list) => Ok(list.items),
        Err(e) => Err(causes(&e)),
    }
}

/// An error with its causes: kube's own says only "client error (Connect)".
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text += &format!(": {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Asks whether this user may create each kind the install creates.
async fn access_reviews(client: &Client) -> Read<Vec<SelfSubjectAccessReview>> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let mut answered = Vec::new();
    for kind in &INSTALLED_KINDS {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(ResourceAttributes {
                    verb: Some("create".into()),
                    group: Some(kind.group.into()),
                    resource: Some(kind.resource.into()),
                    namespace: kind.namespaced.then(|| ROOT_NAMESPACE.into()),
                    ..ResourceAttributes::default()
                }),
                ..SelfSubjectAccessReviewSpec::default()
            },
            ..SelfSubjectAccessReview::default()
        };
        let review = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| format!("reviewing access to {}: {}", kind.resource, causes(&e)))?;
        answered.push(review);
    }
    Ok(answered)
}
