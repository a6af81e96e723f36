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
use crate::index::{Index, ROOT_NAMESPACE, ResolvedPlugin};
use crate::local::{DirectoryWatch, read_dir};
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
/// changes, or a module fetch failed a while ago, and publishes it. Runs on
/// its own thread (fetches block it, not the API) until `publish` has no
/// receivers left.
pub fn follow_directory(
    dir: PathBuf,
    runtime: Runtime,
    fetcher: Fetcher,
    publish: watch::Sender<Arc<State>>,
) {
    let mut watch = DirectoryWatch::new(&dir);
    let mut module_times: BTreeMap<PathBuf, Option<SystemTime>> = BTreeMap::new();
    let mut last_read = Instant::now();
    loop {
        let modules_changed = module_times
            .iter()
            .any(|(path, time)| modified(path) != *time);
        let refetch = last_read.elapsed() >= REFETCH_INTERVAL
            && publish.borrow().modules.any_remote_refused();
        if watch.changed() || modules_changed || refetch {
            let previous = publish.borrow().clone();
            let state = read_state(&dir, &runtime, &fetcher, &previous.modules);
            last_read = Instant::now();
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

/// One read of `dir`: the index and its checked modules.
pub fn read_state(dir: &Path, runtime: &Runtime, fetcher: &Fetcher, previous: &Modules) -> State {
    let mut index = Index::new(ROOT_NAMESPACE);
    match read_dir(dir) {
        Ok(directory) => {
            for error in &directory.errors {
                tracing::warn!(%error, "resource skipped");
            }
            for event in directory.events() {
                index.apply(event);
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read the resource directory"),
    }
    for (plugin, rejection) in index.rejected_plugins() {
        tracing::warn!(%plugin, %rejection, "WasmPlugin rejected");
    }
    // Files are read again: a module rewritten in place is a change here.
    let plugins = State::resolved_plugins(&index);
    let modules = Modules::check(runtime, fetcher, &plugins, previous);
    State { index, modules }
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
