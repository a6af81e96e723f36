//! The dashboard: a web page served on the stats listener beside the JSON
//! it reads. The page, its stylesheet and its script are plain files built
//! into the binary (no build step, nothing fetched from elsewhere); the
//! script polls `/api/v1/stat`, `/api/v1/edges` and `/api/v1/workloads` and
//! streams `/api/v1/tap` for the workload the user picks.
//!
//! - `tap`: a resource's live requests as server-sent events, from the
//!   controller's tap relay, bounded in rate and count;
//! - `cli`: `weft dashboard`.

pub mod cli;
pub mod tap;

use serde_json::{Value, json};

use crate::index::WorkloadRef;
use crate::state::State;

/// `(content type, body)` of a static file of the page, by its path.
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" | "/index.html" => Some((
            "text/html; charset=utf-8",
            include_str!("dashboard/index.html"),
        )),
        "/dashboard.css" => Some((
            "text/css; charset=utf-8",
            include_str!("dashboard/dashboard.css"),
        )),
        "/dashboard.js" => Some((
            "text/javascript; charset=utf-8",
            include_str!("dashboard/dashboard.js"),
        )),
        _ => None,
    }
}

/// Whether a request's `Host` names this machine: an IP address or
/// `localhost`, with any port. A web page elsewhere that rebinds its own
/// name to 127.0.0.1 then cannot read the dashboard's answers (and tap)
/// through the user's browser; `kubectl port-forward` reaches it as
/// `localhost`.
pub fn local_host(host: Option<&str>) -> bool {
    let Some(host) = host else {
        // HTTP/1.0 without a Host, or HTTP/2 without an authority: not a
        // browser's request.
        return true;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.parse::<u16>().is_ok() {
                name
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::Ipv4Addr>().is_ok()
}

/// Each pod's plugin chain and the verdict on every WasmPlugin, for
/// `GET /api/v1/workloads[?namespace=NS]`: what `weft workloads` and `weft
/// plugins` print, with each pod's owner so the page can group pods.
pub fn workloads(state: &State, namespace: &str) -> Value {
    let listed = crate::inspect::workloads(state, namespace);
    let verdicts = crate::inspect::plugins(state, namespace);
    let workloads: Vec<Value> = listed
        .workloads
        .iter()
        .map(|workload| {
            let pod = WorkloadRef {
                namespace: workload.namespace.clone(),
                name: workload.pod.clone(),
            };
            let owner = state
                .index
                .owner(&pod)
                .map(|owner| json!({ "kind": owner.kind.label(), "name": owner.name }));
            let plugins: Vec<Value> = workload
                .plugins
                .iter()
                .map(|plugin| {
                    json!({
                        "name": plugin.name,
                        "resource": plugin.resource,
                        "sha256": plugin.sha256,
                        "configSource": plugin.config_source,
                    })
                })
                .collect();
            json!({
                "namespace": workload.namespace,
                "pod": workload.pod,
                "owner": owner,
                "version": workload.version,
                "pluginsFrom": workload.plugins_from,
                "plugins": plugins,
                "problems": workload.problems,
            })
        })
        .collect();
    let plugins: Vec<Value> = verdicts
        .plugins
        .iter()
        .map(|plugin| {
            json!({
                "namespace": plugin.namespace,
                "name": plugin.name,
                "accepted": plugin.accepted,
                "reason": plugin.reason,
                "message": plugin.message,
                "sha256": plugin.sha256,
            })
        })
        .collect();
    json!({ "workloads": workloads, "plugins": plugins })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_served_and_nothing_else() {
        let (kind, page) = asset("/").unwrap();
        assert!(kind.starts_with("text/html"));
        // Every file the page names is one served here.
        for file in ["/dashboard.css", "/dashboard.js"] {
            assert!(page.contains(&format!("\"{file}\"")), "{file}");
            assert!(asset(file).is_some(), "{file}");
        }
        assert!(asset("/etc/passwd").is_none());
        assert!(asset("/../Cargo.toml").is_none());
    }

    #[test]
    fn only_hosts_naming_this_machine_are_served() {
        for host in [
            "127.0.0.1:8085",
            "localhost:8085",
            "LOCALHOST",
            "10.0.0.7:8085",
            "[::1]:8085",
            "[::1]",
        ] {
            assert!(local_host(Some(host)), "{host}");
        }
        for host in [
            "evil.example:8085",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.evil.example:80",
            "[::1.evil]:80",
        ] {
            assert!(!local_host(Some(host)), "{host}");
        }
        assert!(local_host(None));
    }
}
