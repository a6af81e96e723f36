//! The controller against real files: the Helm charts (real helm), the CRDs,
//! the example mesh and fixtures of real Kubernetes objects. One binary, so
//! the controller links once.

mod chart;
mod crds;
mod example_mesh;
mod fixtures;
