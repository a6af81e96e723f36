use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::runtime::watcher::Event as Watch;

use crate::fixtures::{self, namespaces, plugins, pods};
use crate::index::{ChainError, Event, Index, Objects, PluginRef, ResourceKey, WorkloadRef};
use crate::kubernetes::Translator;
use crate::resources::WasmPlugin;

const WEB: &str = "web-7d4b9c6f8-x2k9p";
const CANARY: &str = "web-canary-5f8c7d9b4-7hr2n";

fn shop(pod: &str) -> WorkloadRef {
    WorkloadRef::new("shop", pod)
}

/// A first list of `objects`, as the watcher delivers it.
fn relist<K>(objects: Vec<K>) -> Vec<Watch<K>> {
    let mut events = vec![Watch::Init];
    events.extend(objects.into_iter().map(Watch::InitApply));
    events.push(Watch::InitDone);
    events
}

/// Translates `watch` and applies what comes out to `index`; returns
/// whether the index changed.
fn feed<K>(translator: &mut Translator<K>, index: &mut Index, watch: Vec<Watch<K>>) -> bool
where
    K: crate::kubernetes::Watched,
{
    let mut changed = false;
    for event in watch {
        if let Some(event) = translator.translate(event) {
            changed |= index.apply(event);
        }
    }
    changed
}

struct Cluster {
    index: Index,
    namespaces: Translator<Namespace>,
    pods: Translator<Pod>,
    plugins: Translator<WasmPlugin>,
}

/// The fixtures' cluster, listed through the watchers.
fn listed() -> Cluster {
    let mut cluster = Cluster {
        index: Index::default(),
        namespaces: Translator::default(),
        pods: Translator::default(),
        plugins: Translator::default(),
    };
    feed(
        &mut cluster.namespaces,
        &mut cluster.index,
        relist(namespaces()),
    );
    feed(&mut cluster.plugins, &mut cluster.index, relist(plugins()));
    feed(&mut cluster.pods, &mut cluster.index, relist(pods()));
    cluster
}

#[test]
fn a_first_list_answers_as_the_same_objects_read_at_once() {
    let cluster = listed();
    let read = fixtures::cluster();
    for pod in pods() {
        let workload = WorkloadRef::of(&pod).unwrap();
        assert_eq!(
            cluster.index.plugin_set(&workload),
            read.plugin_set(&workload),
            "{workload}"
        );
    }
    let rejected: Vec<_> = cluster.index.rejected_plugins().map(|(p, _)| p).collect();
    assert_eq!(rejected, [&PluginRef::new("shop", "broken")]);
}

#[test]
fn a_list_reaches_the_index_only_when_done() {
    let mut index = Index::default();
    let mut translator = Translator::default();
    let mut events = relist(pods());
    let done = events.pop().unwrap();
    for event in events {
        assert_eq!(translator.translate(event), None);
    }
    assert_eq!(index.workloads().count(), 0);
    let reset = translator.translate(done).unwrap();
    assert!(matches!(&reset, Event::Reset(Objects::Pods(all)) if all.len() == 4));
    assert!(index.apply(reset));
    assert_eq!(index.workloads().count(), 4);
}

#[test]
fn applies_and_deletes_change_the_answers() {
    let mut cluster = listed();
    let before = cluster.index.plugin_set(&shop(CANARY)).unwrap();

    // canary-header's selector now also matches the stable track.
    let mut canary_header = fixtures::plugin("canary-header");
    canary_header.spec.selector = None;
    canary_header.metadata.generation = Some(2);
    let mut web = fixtures::pod(WEB);
    web.metadata
        .annotations
        .get_or_insert_default()
        .insert("weft.io/plugins".into(), "metrics,canary-header".into());
    assert!(feed(
        &mut cluster.plugins,
        &mut cluster.index,
        vec![Watch::Apply(canary_header.clone())]
    ));
    assert!(feed(
        &mut cluster.pods,
        &mut cluster.index,
        vec![Watch::Apply(web)]
    ));
    let web = cluster.index.plugin_set(&shop(WEB)).unwrap();
    let names: Vec<_> = web.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["metrics", "canary-header"]);

    assert!(feed(
        &mut cluster.plugins,
        &mut cluster.index,
        vec![Watch::Delete(canary_header)]
    ));
    let after = cluster.index.plugin_set(&shop(CANARY)).unwrap();
    assert_eq!(after.plugins.len(), before.plugins.len() - 1);
    assert_ne!(after.version, before.version);

    assert!(feed(
        &mut cluster.pods,
        &mut cluster.index,
        vec![Watch::Delete(fixtures::pod(CANARY))]
    ));
    assert_eq!(
        cluster.index.plugin_set(&shop(CANARY)),
        Err(ChainError::UnknownWorkload(shop(CANARY)))
    );

    let mut shop_namespace = namespaces();
    shop_namespace.retain(|ns| ns.metadata.name.as_deref() == Some("shop"));
    let shop_namespace = shop_namespace.pop().unwrap();
    assert!(feed(
        &mut cluster.namespaces,
        &mut cluster.index,
        vec![Watch::Delete(shop_namespace)]
    ));
    assert!(matches!(
        cluster.index.plugin_set(&shop(WEB)),
        Err(ChainError::UnknownNamespace { .. })
    ));
}

#[test]
fn a_relist_drops_objects_that_vanished_while_the_watch_was_down() {
    let mut cluster = listed();
    let mut remaining = pods();
    remaining.retain(|p| p.metadata.name.as_deref() != Some(CANARY));
    let mut remaining_plugins = plugins();
    remaining_plugins.retain(|p| p.metadata.name.as_deref() != Some("broken"));

    assert!(feed(
        &mut cluster.pods,
        &mut cluster.index,
        relist(remaining)
    ));
    assert!(feed(
        &mut cluster.plugins,
        &mut cluster.index,
        relist(remaining_plugins)
    ));
    assert_eq!(
        cluster.index.plugin_set(&shop(CANARY)),
        Err(ChainError::UnknownWorkload(shop(CANARY)))
    );
    assert!(cluster.index.plugin_set(&shop(WEB)).is_ok());
    assert_eq!(cluster.index.rejected_plugins().count(), 0);
    assert_eq!(cluster.index.workloads().count(), 3);
}

#[test]
fn a_relist_cut_short_and_started_again_keeps_only_the_second_list() {
    let mut cluster = listed();
    let revision = cluster.index.revision();
    // The connection drops mid-list: the index still answers as before.
    let mut cut = relist(pods());
    cut.truncate(3);
    assert!(!feed(&mut cluster.pods, &mut cluster.index, cut));
    assert_eq!(cluster.index.revision(), revision);
    assert_eq!(cluster.index.workloads().count(), 4);

    // The watch starts over and lists one pod only.
    let again = relist(vec![fixtures::pod(WEB)]);
    assert!(feed(&mut cluster.pods, &mut cluster.index, again));
    let workloads: Vec<_> = cluster.index.workloads().cloned().collect();
    assert_eq!(workloads, [shop(WEB)]);
}

#[test]
fn an_unchanged_relist_and_status_churn_change_nothing() {
    let mut cluster = listed();
    let revision = cluster.index.revision();
    assert!(!feed(&mut cluster.pods, &mut cluster.index, relist(pods())));
    assert!(!feed(
        &mut cluster.plugins,
        &mut cluster.index,
        relist(plugins())
    ));

    // The controller's own status write comes back as an Apply.
    let mut retry = fixtures::plugin("retry");
    retry.status.get_or_insert_default().conditions[0].last_transition_time =
        Some("2026-04-01T00:00:00Z".into());
    retry.metadata.resource_version = Some("7000".into());
    assert!(!feed(
        &mut cluster.plugins,
        &mut cluster.index,
        vec![Watch::Apply(retry)]
    ));
    assert_eq!(cluster.index.revision(), revision);
}

#[test]
fn objects_without_names_are_ignored() {
    let mut pod = fixtures::pod(WEB);
    pod.metadata.namespace = None;
    let mut translator = Translator::default();
    assert_eq!(translator.translate(Watch::Delete(pod)), None);
    let mut index = Index::default();
    assert!(!feed(
        &mut Translator::default(),
        &mut index,
        vec![Watch::Apply(Namespace::default())]
    ));
    assert_eq!(
        Translator::<WasmPlugin>::default().translate(Watch::Delete(fixtures::plugin("retry"))),
        Some(Event::Deleted(ResourceKey::WasmPlugin(PluginRef::new(
            "weft-system",
            "retry"
        ))))
    );
}
