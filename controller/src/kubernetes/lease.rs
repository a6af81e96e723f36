//! One writer among the controller's replicas. Every replica watches the
//! cluster and serves the read APIs; only the holder of the Lease
//! `weft-controller-status` writes (WasmPlugins' status, trust-root
//! ConfigMaps), so replicas never undo each other's writes. The Lease is
//! kept by `kube-lease-manager` (server-side apply, so two replicas cannot
//! both take it).

use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

use super::FIELD_MANAGER;

pub const LEASE_NAME: &str = "weft-controller-status";
/// How long a holder that stopped renewing keeps the Lease: a new writer
/// takes over within this after a replica dies.
const LEASE_SECONDS: u64 = 15;
/// How long before expiry the holder renews.
const RENEW_BEFORE_SECONDS: u64 = 5;
/// Between attempts to reach the Lease at all (no namespace, no RBAC yet).
const RETRY: Duration = Duration::from_secs(5);

/// This replica, as the Lease names its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub namespace: String,
    pub identity: String,
}

impl Candidate {
    /// `POD_NAME` and `POD_NAMESPACE` (the chart sets both from the
    /// downward API); outside a pod, the host and process, in `namespace`.
    pub fn from_env(namespace: &str) -> Self {
        Self::from_vars(namespace, |name| std::env::var(name).ok())
    }

    fn from_vars(namespace: &str, var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name| var(name).filter(|value| !value.is_empty());
        let identity = var("POD_NAME").unwrap_or_else(|| {
            let host = var("HOSTNAME").unwrap_or_else(|| "localhost".into());
            format!("{host}-{}", std::process::id())
        });
        Self {
            namespace: var("POD_NAMESPACE").unwrap_or_else(|| namespace.to_string()),
            identity,
        }
    }
}

/// Whether this replica holds the Lease, as it changes; false until it
/// does, and again whenever the Lease cannot be renewed.
pub fn lead(client: Client, candidate: Candidate) -> watch::Receiver<bool> {
    let (leading, receiver) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            let built = LeaseManagerBuilder::new(client.clone(), LEASE_NAME)
                .with_namespace(&candidate.namespace)
                .with_identity(&candidate.identity)
                .with_duration(LEASE_SECONDS)
                .with_grace(RENEW_BEFORE_SECONDS)
                .with_field_manager(FIELD_MANAGER)
                .build()
                .await;
            match built {
                Ok(manager) => {
                    let (mut held, _task) = manager.watch().await;
                    loop {
                        let now = *held.borrow_and_update();
                        if leading.send_replace(now) != now {
                            tracing::info!(
                                identity = %candidate.identity,
                                leading = now,
                                "{}",
                                if now { "writing status: this replica holds the lease" }
                                else { "not writing status: another replica holds the lease" }
                            );
                        }
                        if held.changed().await.is_err() {
                            break;
                        }
                    }
                    // The manager gave up (it logs why): write nothing
                    // until the Lease is ours again.
                    leading.send_replace(false);
                }
                Err(error) => tracing::warn!(
                    namespace = %candidate.namespace,
                    lease = LEASE_NAME,
                    %error,
                    "cannot reach the status lease; retrying"
                ),
            }
            if leading.is_closed() {
                return;
            }
            tokio::time::sleep(RETRY).await;
        }
    });
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_candidate_is_named_by_its_pod_or_else_its_host_and_process() {
        let outside = Candidate::from_vars("weft-system", |name| {
            (name == "HOSTNAME").then(|| "laptop".to_string())
        });
        assert_eq!(outside.namespace, "weft-system");
        assert_eq!(outside.identity, format!("laptop-{}", std::process::id()));
        let inside = Candidate::from_vars("weft-system", |name| match name {
            "POD_NAME" => Some("weft-controller-7d9f-abcde".into()),
            "POD_NAMESPACE" => Some("mesh".into()),
            _ => Some(String::new()),
        });
        assert_eq!(
            inside,
            Candidate {
                namespace: "mesh".into(),
                identity: "weft-controller-7d9f-abcde".into()
            }
        );
    }
}
