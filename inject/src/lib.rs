//! Adds Weft's sidecar to pods: one pure function, [`inject`], behind both
//! the controller's mutating admission webhook ([`admission_review`]) and
//! `weft inject` ([`inject_documents`]). Nothing here talks to a cluster;
//! what a caller knows about the namespace comes in as arguments.
//!
//! What a pod gets, and the annotations that change it, are in the crate's
//! README.

mod admission;
pub mod annotations;
mod documents;
mod inject;
mod owner;
mod patch;
mod refusal;
pub mod settings;
mod sidecar;
mod yaml;

pub use admission::{API_VERSION, Answer, KIND, ReviewError, admission_review};
pub use annotations::Annotations;
pub use documents::{DocumentError, Outcome, Output, Report, inject_documents};
pub use inject::{
    CONTROL_PLANE_NS_LABEL, DEFAULT_CONTAINER_ANNOTATION, Injected, OWNER_LABEL_PREFIX,
    PROXY_VERSION_ANNOTATION, PodContext, WORKLOAD_NS_LABEL, inject,
};
pub use owner::Owner;
pub use refusal::Refusal;
pub use settings::{Resources, Settings};
