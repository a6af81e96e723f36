//! What the API serves: the index and the checked modules, published as one
//! snapshot whenever the source changes. Proxies' streams wake on each new
//! snapshot and send their chain only if its version changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use weft_plugins::Runtime;

use crate::fetch::Fetcher;
use crate::index::{Index, ResolvedPlugin};
use crate::local::{DirectorySource, DirectoryWatch};
use crate::module_source::ModuleSource;
use crate::modules::Modules;

mod follow_events;

pub use follow_events::{DEBOUNCE, follow_events};

/// How often the directory and module files are checked for changes.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often a module that could not be fetched is tried again when
/// nothing else changed: its server may be back.
const REFETCH_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct State {
    pub index: Index,
    pub modules: Modules,
}

impl State {
    /// The state for `index`: its modules checked, or the checks of
    /// `previous` kept when the same modules run.
    pub fn build(index: Index, runtime: &Runtime, fetcher: &Fetcher, previous: &Modules) -> Self {
        let plugins = Self::resolved_plugins(&index);
        let modules = if previous.is_current_for(&plugins) {
            previous.clone()
        } else {
            Modules::check(runtime, fetcher, &plugins, previous)
        };
        State { index, modules }
    }

    /// Every plugin some workload runs.
    pub fn resolved_plugins(index: &Index) -> Vec<ResolvedPlugin> {
        index
            .workloads()
            .filter_map(|workload| index.plugin_set(workload).ok())
            .flat_map(|chain| chain.plugins)
            .collect()
    }
}

/// Reads `dir` into a new state whenever it or a module file it names
/// changes, or a module fetch failed a while ago, and publishes it. Each
/// read updates the index last published, so a refused version of a
/// WasmPlugin keeps the last good one serving, and one `DirectorySource`
/// keeps what unreadable or briefly missing files held. Runs on its own
/// thread (fetches block it, not the API) until `publish` has no receivers
/// left.
pub fn follow_directory(
    dir: PathBuf,
    runtime: Runtime,
    fetcher: Fetcher,
    publish: watch::Sender<Arc<State>>,
) {
    let mut watch = DirectoryWatch::new(&dir);
    let mut source = DirectorySource::new(&dir);
    let mut module_times: BTreeMap<PathBuf, Option<SystemTime>> = BTreeMap::new();
    let mut last_read = Instant::now();
    loop {
        let modules_changed = module_times
            .iter()
            .any(|(path, time)| modified(path) != *time);
        let refetch = last_read.elapsed() >= REFETCH_INTERVAL
            && publish.borrow().modules.any_remote_refused();
        if watch.changed() || modules_changed || refetch || source.settling() {
            let previous = publish.borrow().clone();
            last_read = Instant::now();
            let Some(index) = read_index(&mut source, previous.index.clone()) else {
                std::thread::sleep(POLL_INTERVAL);
                continue;
            };
            let plugins = State::resolved_plugins(&index);
            let modules = Modules::check(&runtime, &fetcher, &plugins, &previous.modules);
            let state = State { index, modules };
            module_times = module_files(&state.index)
                .into_iter()
                .map(|path| {
                    let time = modified(&path);
                    (path, time)
                })
                .collect();
            tracing::info!(
                revision = state.index.revision(),
                workloads = state.index.workloads().count(),
                "desired state loaded"
            );
            if publish.send(Arc::new(state)).is_err() {
                return;
            }
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A first read of `dir` into `empty` (an index with the cluster's
/// settings and no objects): the index and its checked modules.
pub fn read_state(
    dir: &Path,
    empty: Index,
    runtime: &Runtime,
    fetcher: &Fetcher,
    previous: &Modules,
) -> State {
    let index = read_index(&mut DirectorySource::new(dir), empty.clone()).unwrap_or(empty);
    // Files are read again: a module rewritten in place is a change here.
    let plugins = State::resolved_plugins(&index);
    let modules = Modules::check(runtime, fetcher, &plugins, previous);
    State { index, modules }
}

/// `index` with the next read of `source` applied; `None` when the
/// directory cannot be read at all, so the caller keeps what it serves.
fn read_index(source: &mut DirectorySource, mut index: Index) -> Option<Index> {
    let directory = match source.read() {
        Ok(directory) => directory,
        Err(error) => {
            tracing::warn!(%error, "cannot read the resource directory; the last state keeps serving");
            return None;
        }
    };
    for error in &directory.errors {
        tracing::warn!(%error, "resource skipped");
    }
    for kept in &directory.kept {
        tracing::warn!(%kept, "resources kept from the last read");
    }
    for event in directory.events() {
        index.apply(event);
    }
    for (plugin, state) in index.plugins() {
        if let Some(rejection) = state.rejection_message() {
            tracing::warn!(%plugin, %rejection, "WasmPlugin rejected");
        }
    }
    for (service, problem) in index.service_problems() {
        tracing::warn!(%service, %problem, "Service annotation ignored");
    }
    for (resource, problem) in index.traffic_problems() {
        tracing::warn!(%resource, %problem, "traffic resource not applied in full");
    }
    Some(index)
}

fn module_files(index: &Index) -> Vec<PathBuf> {
    State::resolved_plugins(index)
        .into_iter()
        .filter_map(|plugin| match plugin.module {
            ModuleSource::File(path) => Some(path),
            ModuleSource::Http(_) | ModuleSource::Oci(_) => None,
        })
        .collect()
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
