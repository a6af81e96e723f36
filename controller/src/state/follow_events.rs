//! Published states from a stream of index events (the Kubernetes
//! watches). Events apply to the index as they arrive; a state is built at
//! most once per `DEBOUNCE`, so a burst (a rollout, a relist) costs one
//! build, and on a blocking thread, since module checks compile. Nothing is
//! published until every kind has been listed once: a mesh whose pods are
//! known but whose WasmPlugins are not yet would strip proxies' chains, and
//! one whose Services are not would tell proxies they do not exist.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use weft_plugins::Runtime;

use super::State;
use crate::fetch::Fetcher;
use crate::index::{Event, Index, Objects};
use crate::linkerd::TrafficKind;

/// The least time between two builds, and the longest an event waits.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Applies `events` to the index of the last published state and publishes
/// new states until `events` closes or `publish` has no receivers left.
pub async fn follow_events(
    mut events: mpsc::Receiver<Event>,
    runtime: Arc<Runtime>,
    fetcher: Arc<Fetcher>,
    publish: watch::Sender<Arc<State>>,
) {
    let mut index = publish.borrow().index.clone();
    let mut listed = Listed::default();
    let mut due: Option<Instant> = None;
    let mut building: Option<JoinHandle<State>> = None;
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                let was_listed = listed.all();
                listed.note(&event);
                let changed = index.apply(event);
                if (changed || listed.all() != was_listed) && due.is_none() {
                    due = Some(Instant::now() + DEBOUNCE);
                }
            }
            () = sleep_until(due.unwrap_or_else(Instant::now)),
                if due.is_some() && building.is_none() && listed.all() =>
            {
                due = None;
                let index = index.clone();
                let previous = publish.borrow().modules.clone();
                let (runtime, fetcher) = (runtime.clone(), fetcher.clone());
                building = Some(tokio::task::spawn_blocking(move || {
                    State::build(index, &runtime, &fetcher, &previous)
                }));
            }
            built = join(&mut building), if building.is_some() => {
                building = None;
                match built {
                    Ok(state) => {
                        warn_new_service_problems(&publish.borrow().index, &state.index);
                        tracing::info!(
                            revision = state.index.revision(),
                            workloads = state.index.workloads().count(),
                            "desired state built"
                        );
                        if publish.send(Arc::new(state)).is_err() {
                            return;
                        }
                    }
                    Err(error) => tracing::error!(%error, "building the desired state failed"),
                }
            }
        }
    }
}

/// Each Service and traffic resource problem once, when it appears.
fn warn_new_service_problems(before: &Index, now: &Index) {
    let known = before.traffic_problems();
    for (resource, problem) in now.traffic_problems() {
        if !known.contains(&(resource.clone(), problem.clone())) {
            tracing::warn!(%resource, %problem, "traffic resource not applied in full");
        }
    }
    for (service, problem) in now.service_problems() {
        if !before
            .service_problems()
            .any(|old| old == (service, problem))
        {
            tracing::warn!(%service, %problem, "Service annotation ignored");
        }
    }
}

async fn join(building: &mut Option<JoinHandle<State>>) -> Result<State, tokio::task::JoinError> {
    match building {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// Which kinds have been listed whole at least once.
#[derive(Default)]
struct Listed {
    namespaces: bool,
    pods: bool,
    plugins: bool,
    services: bool,
    slices: bool,
    /// Linkerd's policy kinds listed, or reported missing (their CRD is
    /// not installed): a first state without a Server would run its pods
    /// with less authorization than they were given.
    policy: BTreeSet<TrafficKind>,
}

impl Listed {
    fn note(&mut self, event: &Event) {
        match event {
            Event::Reset(Objects::Namespaces(_)) => self.namespaces = true,
            Event::Reset(Objects::Pods(_)) => self.pods = true,
            Event::Reset(Objects::WasmPlugins(_)) => self.plugins = true,
            Event::Reset(Objects::Services(_)) => self.services = true,
            Event::Reset(Objects::EndpointSlices(_)) => self.slices = true,
            Event::Reset(Objects::Traffic(kind, _)) if kind.is_policy() => {
                self.policy.insert(*kind);
            }
            // Traffic kinds only add routes: their CRDs may not be
            // installed, so they never hold a state back.
            Event::Reset(Objects::Traffic(..)) => {}
            Event::Applied(_) | Event::Deleted(_) => {}
        }
    }

    fn all(&self) -> bool {
        self.namespaces
            && self.pods
            && self.plugins
            && self.services
            && self.slices
            && TrafficKind::ALL
                .iter()
                .filter(|kind| kind.is_policy())
                .all(|kind| self.policy.contains(kind))
    }
}

#[cfg(test)]
mod tests;
