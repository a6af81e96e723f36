//! What the API serves: the index and the checked modules, published as one
//! snapshot whenever the source changes. Proxies' streams wake on each new
//! snapshot and send their chain only if its version changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use weft_plugins::Runtime;

use crate::index::{Index, ROOT_NAMESPACE, ResolvedPlugin};
use crate::local::{DirectoryWatch, read_dir};
use crate::module_source::ModuleSource;
use crate::modules::Modules;

mod follow_events;

pub use follow_events::{DEBOUNCE, follow_events};

/// How often the directory and module files are checked for changes.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Clone, Debug)]
pub struct State {
    pub index: Index,
    pub modules: Modules,
}

impl State {
    /// The state for `index`: its modules checked, or the checks of
    /// `previous` kept when the same modules run.
    pub fn build(index: Index, runtime: &Runtime, previous: &Modules) -> Self {
        let plugins = Self::resolved_plugins(&index);
        let modules = if previous.is_current_for(&plugins) {
            previous.clone()
        } else {
            Modules::check(runtime, &plugins, previous)
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
/// changes, and publishes it. Runs on its own thread until `publish` has no
/// receivers left.
pub fn follow_directory(dir: PathBuf, runtime: Runtime, publish: watch::Sender<Arc<State>>) {
    let mut watch = DirectoryWatch::new(&dir);
    let mut module_times: BTreeMap<PathBuf, Option<SystemTime>> = BTreeMap::new();
    loop {
        let modules_changed = module_times
            .iter()
            .any(|(path, time)| modified(path) != *time);
        if watch.changed() || modules_changed {
            let previous = publish.borrow().clone();
            let state = read_state(&dir, &runtime, &previous.modules);
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
pub fn read_state(dir: &Path, runtime: &Runtime, previous: &Modules) -> State {
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
    let modules = Modules::check(runtime, &plugins, previous);
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
