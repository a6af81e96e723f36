//! Watch events into index events. A watch's relist (`Init`, `InitApply`…,
//! `InitDone`) is buffered and becomes one `Reset` at `InitDone`, so the
//! index never sees half a list, and objects that vanished while the watch
//! was down are dropped exactly then. A watch error is no event at all: the
//! index keeps what it has until the next list.

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::watcher;

use crate::index::{
    EndpointSliceRef, Event, Objects, PluginRef, Resource, ResourceKey, ServiceRef, WorkloadRef,
};
use crate::linkerd::{TrafficKind, TrafficObject};
use crate::resources::WasmPlugin;

/// A kind the index is fed: how one object, its key and a full list of it
/// become index events.
pub trait Watched: Sized {
    /// What names the kind beyond the type: `()` for a typed kind, the
    /// `TrafficKind` of a traffic object (one type for several kinds).
    type Kind: Copy + std::fmt::Debug;
    fn applied(self) -> Event;
    /// `None` for an object without a name (or namespace, for namespaced
    /// kinds): the index never held it.
    fn key(&self) -> Option<ResourceKey>;
    fn reset(kind: Self::Kind, all: Vec<Self>) -> Objects;
}

/// Translates one kind's watch events, holding a relist until it is whole.
#[derive(Debug)]
pub struct Translator<K: Watched> {
    kind: K::Kind,
    /// `Some` between `Init` and `InitDone`.
    relist: Option<Vec<K>>,
}

impl<K: Watched<Kind = ()>> Default for Translator<K> {
    fn default() -> Self {
        Self::new(())
    }
}

impl<K: Watched> Translator<K> {
    pub fn new(kind: K::Kind) -> Self {
        Self { kind, relist: None }
    }

    /// The index event for `event`, if any yet.
    pub fn translate(&mut self, event: watcher::Event<K>) -> Option<Event> {
        match event {
            watcher::Event::Apply(object) => Some(object.applied()),
            watcher::Event::Delete(object) => object.key().map(Event::Deleted),
            // A restart mid-list starts the list over.
            watcher::Event::Init => {
                self.relist = Some(Vec::new());
                None
            }
            watcher::Event::InitApply(object) => {
                self.relist.get_or_insert_default().push(object);
                None
            }
            watcher::Event::InitDone => {
                let all = self.relist.take().unwrap_or_default();
                Some(Event::Reset(K::reset(self.kind, all)))
            }
        }
    }
}

// === impl Watched ===

impl Watched for Namespace {
    type Kind = ();

    fn applied(self) -> Event {
        Event::Applied(Resource::Namespace(Box::new(self)))
    }

    fn key(&self) -> Option<ResourceKey> {
        self.metadata.name.clone().map(ResourceKey::Namespace)
    }

    fn reset((): (), all: Vec<Self>) -> Objects {
        Objects::Namespaces(all)
    }
}

impl Watched for Pod {
    type Kind = ();

    fn applied(self) -> Event {
        Event::Applied(Resource::Pod(Box::new(self)))
    }

    fn key(&self) -> Option<ResourceKey> {
        WorkloadRef::of(self).map(ResourceKey::Pod)
    }

    fn reset((): (), all: Vec<Self>) -> Objects {
        Objects::Pods(all)
    }
}

impl Watched for WasmPlugin {
    type Kind = ();

    fn applied(self) -> Event {
        Event::Applied(Resource::WasmPlugin(Box::new(self)))
    }

    fn key(&self) -> Option<ResourceKey> {
        PluginRef::of(self).map(ResourceKey::WasmPlugin)
    }

    fn reset((): (), all: Vec<Self>) -> Objects {
        Objects::WasmPlugins(all)
    }
}

impl Watched for Service {
    type Kind = ();

    fn applied(self) -> Event {
        Event::Applied(Resource::Service(Box::new(self)))
    }

    fn key(&self) -> Option<ResourceKey> {
        ServiceRef::of(self).map(ResourceKey::Service)
    }

    fn reset((): (), all: Vec<Self>) -> Objects {
        Objects::Services(all)
    }
}

impl Watched for EndpointSlice {
    type Kind = ();

    fn applied(self) -> Event {
        Event::Applied(Resource::EndpointSlice(Box::new(self)))
    }

    fn key(&self) -> Option<ResourceKey> {
        EndpointSliceRef::of(self).map(ResourceKey::EndpointSlice)
    }

    fn reset((): (), all: Vec<Self>) -> Objects {
        Objects::EndpointSlices(all)
    }
}

impl Watched for TrafficObject {
    type Kind = TrafficKind;

    fn applied(self) -> Event {
        Event::Applied(Resource::Traffic(Box::new(self)))
    }

    fn key(&self) -> Option<ResourceKey> {
        TrafficObject::key(self).map(ResourceKey::Traffic)
    }

    fn reset(kind: TrafficKind, all: Vec<Self>) -> Objects {
        Objects::Traffic(kind, all)
    }
}
