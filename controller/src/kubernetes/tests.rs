//! The Kubernetes source's decisions, fed the fixtures' real objects.

mod events;
mod status;
