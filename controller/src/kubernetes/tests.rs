//! The Kubernetes source's decisions, fed the fixtures' real objects.

mod events;
mod route_status;
mod status;
