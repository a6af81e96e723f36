//! The wire API between `weft-controller` and `weft-proxy`, generated from
//! `proto/`. One crate owns the generated code; both sides use it.

pub mod tls;

/// `weft.plugins.v1alpha1`: plugin chains per workload, modules by sha256.
pub mod plugins {
    tonic::include_proto!("weft.plugins.v1alpha1");
}

/// `weft.inspect.v1alpha1`: what the controller knows, for the `weft` CLI.
pub mod inspect {
    tonic::include_proto!("weft.inspect.v1alpha1");
}

/// `weft.identity.v1alpha1`: certificates for proxies' identities.
pub mod identity {
    tonic::include_proto!("weft.identity.v1alpha1");
}

/// `weft.destination.v1alpha1`: who receives at an address, and how to
/// speak to it.
pub mod destination {
    tonic::include_proto!("weft.destination.v1alpha1");

    /// An endpoint's weight when nothing says otherwise (Linkerd's): a
    /// balancer divides each endpoint's load by its weight relative to this.
    /// Kubernetes says nothing of relative capacity, so the controller sends
    /// it for every endpoint, and a proxy reads an unset weight (0) as it.
    pub const DEFAULT_WEIGHT: u32 = 10_000;
}

/// `weft.tap.v1alpha1`: live requests from the proxies, relayed by the
/// controller.
pub mod tap {
    tonic::include_proto!("weft.tap.v1alpha1");
}
