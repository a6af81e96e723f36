//! Time is paused: it only moves when every task waits, so "not yet
//! published" is checked at exact instants.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::sleep;
use weft_plugins::Runtime;

use super::*;
use crate::fetch::Fetcher;
use crate::fixtures::{self, listed};
use crate::index::{Event, WorkloadRef};
use crate::modules::Modules;

const WEB: &str = "web-7d4b9c6f8-x2k9p";

struct Follower {
    events: mpsc::Sender<Event>,
    state: watch::Receiver<Arc<State>>,
}

fn follow() -> Follower {
    let runtime = Arc::new(Runtime::new().unwrap());
    let empty = State {
        index: crate::Index::default(),
        modules: Modules::default(),
    };
    let (publish, state) = watch::channel(Arc::new(empty));
    let (events, rx) = mpsc::channel(1024);
    let fetcher = Arc::new(Fetcher::offline());
    tokio::spawn(follow_events(rx, runtime, fetcher, publish));
    Follower { events, state }
}

impl Follower {
    async fn send(&self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            self.events.send(event).await.unwrap();
        }
    }

    /// Waits for the next published state.
    async fn next(&mut self) -> Arc<State> {
        self.state.changed().await.unwrap();
        self.state.borrow_and_update().clone()
    }

    /// Whether a state was published since the last `next`, after letting
    /// plenty of (paused) time pass.
    async fn published_within_a_second(&mut self) -> bool {
        sleep(Duration::from_secs(1)).await;
        self.state.has_changed().unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_is_published_until_every_kind_is_listed() {
    let mut follower = follow();
    let mut events = listed();
    let pods = events.pop().unwrap();
    follower.send(events).await;
    assert!(
        !follower.published_within_a_second().await,
        "namespaces and plugins alone are half a mesh"
    );

    follower.send([pods]).await;
    let state = follower.next().await;
    assert_eq!(state.index.workloads().count(), 4);
    let web = state
        .index
        .plugin_set(&WorkloadRef::new("shop", WEB))
        .unwrap();
    assert_eq!(web.plugins.len(), 2, "metrics and retry from the namespace");
}

#[tokio::test(start_paused = true)]
async fn the_first_state_waits_for_linkerds_policy_kinds() {
    let mut follower = follow();
    let policy = fixtures::policy_listed();
    let rest: Vec<Event> = listed()
        .into_iter()
        .filter(|event| !policy.contains(event))
        .collect();
    follower.send(rest).await;
    assert!(
        !follower.published_within_a_second().await,
        "pods without their Servers would run with less authorization"
    );
    follower.send(policy).await;
    let state = follower.next().await;
    assert_eq!(state.index.workloads().count(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_events_is_built_once_after_the_debounce() {
    let mut follower = follow();
    follower.send(listed()).await;
    let first = follower.next().await;

    let burst: Vec<Event> = (0..50)
        .map(|i| {
            let mut pod = fixtures::pod(WEB);
            pod.metadata.name = Some(format!("web-{i}"));
            Event::from(pod)
        })
        .collect();
    follower.send(burst).await;
    sleep(DEBOUNCE / 2).await;
    assert!(
        !follower.state.has_changed().unwrap(),
        "built before the debounce"
    );

    let state = follower.next().await;
    assert_eq!(
        state.index.workloads().count(),
        54,
        "every event of the burst"
    );
    assert!(state.index.revision() > first.index.revision());
    assert!(
        !follower.published_within_a_second().await,
        "one build for the whole burst"
    );
}

#[tokio::test(start_paused = true)]
async fn events_that_change_nothing_publish_nothing() {
    let mut follower = follow();
    follower.send(listed()).await;
    follower.next().await;

    // A pod's status churns; a relist returns what is already known.
    let mut web = fixtures::pod(WEB);
    web.status.get_or_insert_default().phase = Some("Succeeded".into());
    web.metadata.resource_version = Some("99999".into());
    follower.send([Event::from(web)]).await;
    follower.send(listed()).await;
    assert!(!follower.published_within_a_second().await);
}

#[tokio::test(start_paused = true)]
async fn a_relist_drops_what_vanished() {
    let mut follower = follow();
    follower.send(listed()).await;
    follower.next().await;

    let mut events = listed();
    for event in &mut events {
        if let Event::Reset(crate::index::Objects::Pods(pods)) = event {
            pods.retain(|p| p.metadata.name.as_deref() != Some(WEB));
        }
    }
    follower.send(events).await;
    let state = follower.next().await;
    assert_eq!(state.index.workloads().count(), 3);
    assert!(
        state
            .index
            .plugin_set(&WorkloadRef::new("shop", WEB))
            .is_err()
    );

    drop(follower.events);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(follower.state.borrow().index.workloads().count(), 3);
}
