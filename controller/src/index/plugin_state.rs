//! What the index keeps of each WasmPlugin: the version workloads run and,
//! beside it, why a later version was refused. A refused edit never takes a
//! plugin away: only a deletion does, so a typo in an `authz` spec leaves
//! workloads protected by the last version that was accepted.

use super::event::UnreadablePlugin;
use crate::resources::WasmPlugin;
use crate::validate::{RejectReason, Rejection, ValidPlugin, validate};

#[derive(Clone, Debug, PartialEq)]
pub struct PluginState {
    /// `metadata.generation` of the version last seen, accepted or not:
    /// the status's `observedGeneration`.
    pub generation: Option<i64>,
    /// The last version accepted, which workloads run. `None` when no
    /// version was accepted since the index started: it only knows the
    /// versions it was fed.
    pub serving: Option<Serving>,
    /// Why the version last seen was refused; `None` when it is `serving`.
    pub rejection: Option<Rejection>,
}

/// An accepted version of a WasmPlugin.
#[derive(Clone, Debug, PartialEq)]
pub struct Serving {
    pub generation: Option<i64>,
    pub plugin: ValidPlugin,
}

impl PluginState {
    /// `plugin` as it arrived, after `previous` (the state of the same
    /// resource before it, if any).
    pub(super) fn applied(plugin: &WasmPlugin, name: &str, previous: Option<&Self>) -> Self {
        let generation = plugin.metadata.generation;
        match validate(name, &plugin.spec) {
            Ok(valid) => PluginState {
                generation,
                serving: Some(Serving {
                    generation,
                    plugin: valid,
                }),
                rejection: None,
            },
            Err(rejection) => Self::refused(generation, rejection, previous),
        }
    }

    /// A version the source could name but not read.
    pub(super) fn unreadable(plugin: &UnreadablePlugin, previous: Option<&Self>) -> Self {
        let rejection = Rejection {
            reason: RejectReason::InvalidSpec,
            message: plugin.message.clone(),
        };
        Self::refused(plugin.generation, rejection, previous)
    }

    fn refused(generation: Option<i64>, rejection: Rejection, previous: Option<&Self>) -> Self {
        PluginState {
            generation,
            serving: previous.and_then(|p| p.serving.clone()),
            rejection: Some(rejection),
        }
    }

    /// Whether the version last seen is the one workloads run.
    pub fn is_accepted(&self) -> bool {
        self.rejection.is_none()
    }

    /// Why the version last seen was refused, and which accepted version,
    /// if any, serves in its place (the one this index last accepted).
    pub fn rejection_message(&self) -> Option<String> {
        let message = &self.rejection.as_ref()?.message;
        Some(match &self.serving {
            None => message.clone(),
            Some(Serving {
                generation: Some(generation),
                ..
            }) => format!("{message}; generation {generation}, the last accepted, keeps serving"),
            Some(Serving {
                generation: None, ..
            }) => format!("{message}; the last accepted version keeps serving"),
        })
    }
}
