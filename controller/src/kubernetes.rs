//! The Kubernetes source: watches on Namespaces, Pods, WasmPlugins,
//! Services, EndpointSlices and the traffic resources (`crate::linkerd`)
//! feed the index through `state::follow_events`, and each WasmPlugin's status
//! (and each HTTPRoute's and GRPCRoute's, `route_status`)
//! is written back by the replica that holds the status Lease (`lease`),
//! which also keeps the trust anchors in meshed namespaces (`trust_roots`). The decisions live in `events` (watch events into
//! index events) and `status` (what a plugin's status should say), pure and
//! tested with real objects; the glue below talks to the API server, which
//! no test here can run, so it stays this short.

pub mod events;
pub mod lease;
pub mod route_status;
pub mod status;
#[cfg(test)]
mod tests;
pub mod trust_roots;

use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::{Timestamp, Unit};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::{mpsc, watch};
use weft_plugins::Runtime;

pub use events::{Translator, Watched};
pub use status::status_update;

use crate::fetch::Fetcher;
use crate::index::{Event, Objects, ROOT_NAMESPACE};
use crate::linkerd::{TrafficKind, TrafficObject};
use crate::resources::WasmPlugin;
use crate::state::{State, follow_events};

/// The field manager of the statuses the controller writes.
pub const FIELD_MANAGER: &str = "weft-controller";

/// How often every status is compared again, besides on each new state:
/// retries failed writes and undoes edits by hand.
const STATUS_RESYNC: Duration = Duration::from_secs(60);

/// Follows the cluster `client` reaches, publishing each new state, until
/// `publish` has no receivers left. While this replica holds the status
/// Lease, it writes WasmPlugins' statuses and copies the trust anchors in
/// `anchors_file` to every meshed namespace. A lost connection changes
/// nothing: watches retry with kube's default backoff and the last state
/// keeps being served.
pub async fn follow_cluster(
    client: Client,
    runtime: Arc<Runtime>,
    fetcher: Arc<Fetcher>,
    publish: watch::Sender<Arc<State>>,
    anchors_file: PathBuf,
) {
    let leading = lease::lead(client.clone(), lease::Candidate::from_env(ROOT_NAMESPACE));
    tokio::spawn(trust_roots::keep_trust_roots(
        client.clone(),
        anchors_file,
        ROOT_NAMESPACE.to_string(),
        leading.clone(),
    ));
    let (events, rx) = mpsc::channel(1024);
    let (plugins, writer) = reflector::store();
    tokio::spawn(forward(
        watcher(
            Api::<Namespace>::all(client.clone()),
            watcher::Config::default(),
        ),
        events.clone(),
    ));
    tokio::spawn(forward(
        watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
        events.clone(),
    ));
    tokio::spawn(forward(
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
        events.clone(),
    ));
    tokio::spawn(forward(
        watcher(
            Api::<EndpointSlice>::all(client.clone()),
            watcher::Config::default(),
        ),
        events.clone(),
    ));
    // The store keeps each WasmPlugin's observed status for the writer.
    tokio::spawn(forward(
        watcher(
            Api::<WasmPlugin>::all(client.clone()),
            watcher::Config::default(),
        )
        .reflect(writer),
        events.clone(),
    ));
    // Linkerd's and the Gateway API's traffic resources, when their CRDs
    // are installed: a missing one only logs, and never holds a state back.
    // The first state waits for Linkerd's policy kinds, so pods never run
    // without the authorization their Servers give them; a policy kind
    // whose CRD is missing has none, and says so.
    // Routes' stores keep each one's observed status for the writer.
    let mut routes = Vec::new();
    for kind in TrafficKind::ALL {
        let gvk = GroupVersionKind::gvk(kind.group(), kind.watched_version(), kind.kind());
        let resource = ApiResource::from_gvk_with_plural(&gvk, kind.plural());
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let writer = reflector::store::Writer::new(resource.clone());
        if route_status::has_route_status(kind) {
            routes.push((kind, resource.clone(), writer.as_reader()));
        }
        let watch = watcher(api, watcher::Config::default())
            .reflect(writer)
            .try_filter_map(move |event| std::future::ready(Ok(traffic_event(kind, event))));
        let missing = kind
            .is_policy()
            .then(|| Event::Reset(Objects::Traffic(kind, Vec::new())));
        tokio::spawn(forward_with(
            kind.to_string(),
            Translator::<TrafficObject>::new(kind),
            watch,
            events.clone(),
            missing,
        ));
    }
    drop(events);
    tokio::spawn(write_statuses(
        client,
        plugins,
        routes,
        publish.subscribe(),
        leading,
    ));
    follow_events(rx, runtime, fetcher, publish).await;
}

async fn forward<K>(
    watch: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    events: mpsc::Sender<Event>,
) where
    K: Watched<Kind = ()> + Resource<DynamicType = ()>,
{
    forward_with(
        K::kind(&()).into_owned(),
        Translator::default(),
        watch,
        events,
        None,
    )
    .await;
}

/// Forwards `watch`'s events; `missing` is sent when the kind's API is not
/// there (its CRD is not installed), each time its list fails for that.
async fn forward_with<K: Watched>(
    kind: String,
    mut translator: Translator<K>,
    watch: impl Stream<Item = Result<watcher::Event<K>, watcher::Error>>,
    events: mpsc::Sender<Event>,
    missing: Option<Event>,
) {
    let mut watch = pin!(watch.default_backoff());
    while let Some(event) = watch.next().await {
        match event.map(|event| translator.translate(event)) {
            Ok(Some(event)) => {
                if events.send(event).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%kind, %error, "watch failed; retrying");
                if let Some(event) = missing.clone().filter(|_| is_not_installed(&error))
                    && events.send(event).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

/// Whether a watch failed because its kind is not served at all.
fn is_not_installed(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::InitialListFailed(kube::Error::Api(status)) if status.is_not_found())
}

/// A route kind with a status, and its store.
type RouteStore = (TrafficKind, ApiResource, Store<DynamicObject>);

async fn write_statuses(
    client: Client,
    plugins: Store<WasmPlugin>,
    routes: Vec<RouteStore>,
    mut state: watch::Receiver<Arc<State>>,
    mut leading: watch::Receiver<bool>,
) {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let mut resync = tokio::time::interval(STATUS_RESYNC);
    loop {
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            lead = leading.changed() => if lead.is_err() { return },
            _ = resync.tick() => {}
        }
        if !*leading.borrow_and_update() {
            continue;
        }
        let current = state.borrow_and_update().clone();
        let now = now();
        for plugin in plugins.state() {
            let (Some(status), Some(namespace)) =
                (status_update(&current, &plugin, &now), plugin.namespace())
            else {
                continue;
            };
            let name = plugin.name_any();
            let patch = Patch::Merge(serde_json::json!({ "status": status }));
            let api = Api::<WasmPlugin>::namespaced(client.clone(), &namespace);
            match api.patch_status(&name, &params, &patch).await {
                Ok(_) => {
                    tracing::info!(%namespace, %name, accepted = status.is_accepted(), "status written")
                }
                Err(error) => tracing::warn!(%namespace, %name, %error, "cannot write status"),
            }
        }
        for (kind, resource, store) in &routes {
            for route in store.state() {
                let Ok(observed) = serde_json::to_value(&*route) else {
                    continue;
                };
                let (Some(status), Some(namespace)) = (
                    route_status::route_status_update(&current.index, *kind, &observed, &now),
                    route.namespace(),
                ) else {
                    continue;
                };
                let name = route.name_any();
                let patch = Patch::Merge(serde_json::json!({ "status": status }));
                let api =
                    Api::<DynamicObject>::namespaced_with(client.clone(), &namespace, resource);
                match api.patch_status(&name, &params, &patch).await {
                    Ok(_) => tracing::info!(%kind, %namespace, %name, "status written"),
                    Err(error) => {
                        tracing::warn!(%kind, %namespace, %name, %error, "cannot write status")
                    }
                }
            }
        }
    }
}

/// A traffic object's watch event in the index's terms; `None` for an
/// object that is not one (logged: the API server should not send it).
fn traffic_event(
    kind: TrafficKind,
    event: watcher::Event<DynamicObject>,
) -> Option<watcher::Event<TrafficObject>> {
    let convert = |object: DynamicObject| -> Option<TrafficObject> {
        let value = serde_json::to_value(&object).ok()?;
        match TrafficObject::from_value(value) {
            Some(Ok(object)) => Some(object),
            Some(Err(error)) => {
                tracing::warn!(%kind, %error, "cannot read object");
                None
            }
            None => None,
        }
    };
    Some(match event {
        watcher::Event::Apply(object) => watcher::Event::Apply(convert(object)?),
        watcher::Event::Delete(object) => watcher::Event::Delete(convert(object)?),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(object) => watcher::Event::InitApply(convert(object)?),
        watcher::Event::InitDone => watcher::Event::InitDone,
    })
}

/// RFC 3339 to the second, as Kubernetes writes times.
fn now() -> String {
    let now = Timestamp::now();
    now.round(Unit::Second).unwrap_or(now).to_string()
}
