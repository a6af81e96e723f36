//! The trust anchors in every meshed namespace. An injected proxy reads
//! them from the ConfigMap `weft-identity-trust-roots` mounted from its own
//! pod's namespace (a ConfigMap volume cannot name another namespace), so
//! the controller keeps one, labelled as its own, in each namespace that
//! has injected pods, and rewrites them all when the anchors change (the
//! kubelet refreshes the mounted file, which a proxy reads again every 5 s,
//! so a rotation needs no restart). The control plane's own copy is the
//! chart's.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ObjectMeta, PartialObjectMeta, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::{Notify, watch};
use weft_inject::CONTROL_PLANE_NS_LABEL;
use weft_inject::settings::{TRUST_ROOTS_CONFIG_MAP, TRUST_ROOTS_KEY};

use super::FIELD_MANAGER;

/// Marks the ConfigMaps this module writes.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
const MANAGED_BY: &str = "weft-controller";

/// Writes again what may have been edited or deleted by hand.
const RESYNC: Duration = Duration::from_secs(300);
/// Between attempts when the anchors cannot be read or a write failed.
const RETRY: Duration = Duration::from_secs(10);

/// The namespaces that need the anchors: those of the injected pods of
/// `control_plane` (their `weft.io/control-plane-ns` label), except the
/// control plane's own.
pub fn namespaces_needing_roots<'a>(
    pods: impl IntoIterator<Item = &'a ObjectMeta>,
    control_plane: &str,
) -> BTreeSet<String> {
    pods.into_iter()
        .filter(|pod| {
            pod.labels
                .as_ref()
                .and_then(|labels| labels.get(CONTROL_PLANE_NS_LABEL))
                .is_some_and(|ns| ns == control_plane)
        })
        .filter_map(|pod| pod.namespace.clone())
        .filter(|ns| ns != control_plane)
        .collect()
}

/// The ConfigMap holding `anchors` (PEM) in `namespace`.
pub fn config_map(namespace: &str, anchors: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(TRUST_ROOTS_CONFIG_MAP.into()),
            namespace: Some(namespace.into()),
            labels: Some(BTreeMap::from([
                (MANAGED_BY_LABEL.into(), MANAGED_BY.into()),
                ("app.kubernetes.io/part-of".into(), "weft".into()),
            ])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(TRUST_ROOTS_KEY.into(), anchors.into())])),
        ..ConfigMap::default()
    }
}

/// Keeps the anchors read from `anchors_file` in every namespace with
/// injected pods, while `leading` says this replica writes.
pub async fn keep_trust_roots(
    client: Client,
    anchors_file: PathBuf,
    control_plane: String,
    mut leading: watch::Receiver<bool>,
) {
    let (pods, writer) = reflector::store::<PartialObjectMeta<Pod>>();
    let changed = Arc::new(Notify::new());
    let selector = format!("{CONTROL_PLANE_NS_LABEL}={control_plane}");
    // Metadata only: labels and namespaces are all this needs.
    let watch = watcher(
        Api::<PartialObjectMeta<Pod>>::all(client.clone()),
        watcher::Config::default().labels(&selector),
    )
    .default_backoff()
    .reflect(writer);
    tokio::spawn({
        let changed = changed.clone();
        async move {
            let mut watch = pin!(watch);
            while let Some(event) = watch.next().await {
                match event {
                    Ok(_) => changed.notify_one(),
                    Err(error) => tracing::warn!(%error, "watch of injected pods failed; retrying"),
                }
            }
        }
    });

    // What each namespace was last given, so only changes are written.
    let mut written: BTreeMap<String, String> = BTreeMap::new();
    let mut resync = tokio::time::interval(RESYNC);
    let mut retry = tokio::time::interval(RETRY);
    loop {
        tokio::select! {
            _ = changed.notified() => {}
            _ = resync.tick() => written.clear(),
            _ = retry.tick() => {}
            lead = leading.changed() => if lead.is_err() { return },
        }
        if !*leading.borrow() {
            written.clear();
            continue;
        }
        let anchors = match std::fs::read_to_string(&anchors_file) {
            Ok(anchors) => anchors,
            Err(error) => {
                tracing::warn!(file = %anchors_file.display(), %error, "cannot read the trust anchors");
                continue;
            }
        };
        write_missing(&client, &pods, &control_plane, &anchors, &mut written).await;
    }
}

async fn write_missing(
    client: &Client,
    pods: &Store<PartialObjectMeta<Pod>>,
    control_plane: &str,
    anchors: &str,
    written: &mut BTreeMap<String, String>,
) {
    let metas: Vec<_> = pods.state();
    let wanted = namespaces_needing_roots(metas.iter().map(|pod| &pod.metadata), control_plane);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for namespace in wanted {
        if written.get(&namespace).is_some_and(|was| was == anchors) {
            continue;
        }
        let api = Api::<ConfigMap>::namespaced(client.clone(), &namespace);
        let object = config_map(&namespace, anchors);
        match api
            .patch(&object.name_any(), &params, &Patch::Apply(&object))
            .await
        {
            Ok(_) => {
                tracing::info!(%namespace, config_map = TRUST_ROOTS_CONFIG_MAP, "trust anchors written");
                written.insert(namespace, anchors.to_string());
            }
            Err(error) => tracing::warn!(%namespace, %error, "cannot write the trust anchors"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(namespace: &str, control_plane: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some("web-0".into()),
            namespace: Some(namespace.into()),
            labels: control_plane
                .map(|cp| BTreeMap::from([(CONTROL_PLANE_NS_LABEL.to_string(), cp.to_string())])),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn namespaces_with_injected_pods_of_this_control_plane_need_the_anchors() {
        let pods = [
            pod("shop", Some("weft-system")),
            pod("shop", Some("weft-system")),
            pod("billing", Some("weft-system")),
            pod("legacy", None),
            pod("other-mesh", Some("weft-canary")),
            pod("weft-system", Some("weft-system")),
        ];
        let wanted = namespaces_needing_roots(&pods, "weft-system");
        assert_eq!(wanted.into_iter().collect::<Vec<_>>(), ["billing", "shop"]);
    }

    #[test]
    fn the_config_map_is_what_an_injected_pod_mounts() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let map = config_map("shop", pem);
        // The volume the injector adds names this ConfigMap and key.
        let mut pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "shop",
                         "annotations": {"weft.io/inject": "enabled"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]},
        });
        let context = weft_inject::PodContext {
            owner: None,
            namespace: Some("shop"),
            namespace_annotations: &weft_inject::Annotations::default(),
            require_annotation: true,
        };
        weft_inject::inject(&mut pod, &context, &weft_inject::Settings::default())
            .expect("injected");
        let mounted = pod["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|volume| volume.get("configMap"))
            .expect("a ConfigMap volume");
        assert_eq!(mounted["name"], map.metadata.name.clone().unwrap());
        let key = mounted["items"]
            .as_array()
            .map(|items| items[0]["key"].as_str().unwrap().to_string())
            .unwrap_or_else(|| TRUST_ROOTS_KEY.to_string());
        assert_eq!(map.data.as_ref().unwrap()[&key], pem);
        assert_eq!(map.metadata.namespace.as_deref(), Some("shop"));
        // And the pod carries the label these ConfigMaps are kept by.
        assert_eq!(
            pod["metadata"]["labels"][CONTROL_PLANE_NS_LABEL],
            "weft-system"
        );
    }
}
