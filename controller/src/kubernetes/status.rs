//! The status each WasmPlugin should show, from a published state: rejected
//! by the index (a bad spec, saying so when an earlier version keeps
//! serving) or by the module check (with the check's reason), else
//! accepted. Pure, so the writer only patches what differs and its own
//! patch, seen again by the watch, writes nothing.

use crate::index::PluginRef;
use crate::resources::{WasmPlugin, WasmPluginStatus};
use crate::state::State;
use crate::validate::{RejectReason, Rejection};

/// The status to write for `plugin` as last observed, or `None` when there
/// is nothing to write: the state has not seen this generation of it yet,
/// or its status already says what the state does. `now` (RFC 3339) is the
/// transition time should the verdict have changed.
pub fn status_update(state: &State, plugin: &WasmPlugin, now: &str) -> Option<WasmPluginStatus> {
    let key = PluginRef::of(plugin)?;
    let known = state.index.plugin(&key)?;
    if known.generation != plugin.metadata.generation {
        return None;
    }
    let refused = match (&known.rejection, state.modules.of_resource(&key)) {
        (Some(rejection), _) => Some(Rejection {
            reason: rejection.reason,
            message: known.rejection_message().unwrap_or_default(),
        }),
        (None, Some(Err(reason))) => Some(Rejection {
            reason: RejectReason::ModuleRefused,
            message: reason.to_string(),
        }),
        // A module no workload runs is not checked: the spec is fine.
        (None, Some(Ok(_)) | None) => None,
    };
    let verdict = refused.as_ref().map_or(Ok(()), Err);
    let observed = plugin.status.as_ref();
    let desired = WasmPluginStatus::for_verdict(verdict, known.generation, now, observed);
    (observed != Some(&desired)).then_some(desired)
}
