//! `weft edges`: who talks to whom, as whom, and whether over mTLS.
//!
//! A client's proxy names where each request went (`dst_*` labels on its
//! outbound series); the server's proxy names who proved what identity
//! (`client_id` on its inbound series, with `tls="true"`). An edge is the
//! first, secured when the second shows the client's identity, which is
//! Linkerd's form `<serviceaccount>.<namespace>.serviceaccount.identity.…`:
//! its service account and namespace are the client pod's. The server's
//! identity is the same form, from its `dst_serviceaccount`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Matcher, MetricsSource, ResourceKind, Selector, SourceError};

#[derive(Clone, Debug)]
pub struct EdgesQuery {
    pub kind: ResourceKind,
    /// The clients' namespace; `None` for every namespace.
    pub namespace: Option<String>,
    pub window: Duration,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    pub src_namespace: String,
    pub src: String,
    pub dst_namespace: String,
    pub dst: String,
    /// The identity the client proved; empty when it proved none.
    pub client_id: String,
    /// The identity the server presented; empty without mTLS.
    pub server_id: String,
    /// Whether the server saw the client's identity over mTLS.
    pub secured: bool,
    /// Requests per second over the window.
    pub rps: f64,
}

pub async fn edges(
    source: &dyn MetricsSource,
    query: &EdgesQuery,
) -> Result<Vec<Edge>, SourceError> {
    let kind = query.kind.label();
    let dst_kind = format!("dst_{kind}");
    let mut outbound = vec![Matcher::eq("direction", "outbound")];
    if let Some(namespace) = &query.namespace {
        outbound.push(Matcher::eq("namespace", namespace));
    }
    let sent = source
        .rate(
            &Selector::new("response_total", outbound),
            &[
                "namespace",
                kind,
                "serviceaccount",
                "dst_namespace",
                &dst_kind,
                "dst_serviceaccount",
            ],
            query.window,
        )
        .await?;
    let inbound = vec![
        Matcher::eq("direction", "inbound"),
        Matcher::eq("tls", "true"),
        Matcher::ne("client_id", ""),
    ];
    let received = source
        .rate(
            &Selector::new("response_total", inbound),
            &["namespace", kind, "client_id"],
            query.window,
        )
        .await?;

    let mut edges: BTreeMap<(String, String, String, String), Edge> = BTreeMap::new();
    for series in sent {
        let label = |name: &str| series.labels.get(name).cloned().unwrap_or_default();
        let (src_namespace, src, dst_namespace, dst) = (
            label("namespace"),
            label(kind),
            label("dst_namespace"),
            label(&dst_kind),
        );
        if src.is_empty() || dst.is_empty() {
            continue;
        }
        let client_prefix = format!("{}.{src_namespace}.", label("serviceaccount"));
        let client_id = received.iter().find_map(|inbound| {
            let at = |name: &str| inbound.labels.get(name).map(String::as_str);
            let client_id = at("client_id")?;
            (at("namespace") == Some(&dst_namespace)
                && at(kind) == Some(&dst)
                && client_id.starts_with(&client_prefix))
            .then(|| client_id.to_string())
        });
        let server_id = client_id.as_ref().map(|client_id| {
            let suffix = &client_id[client_prefix.len()..];
            format!("{}.{dst_namespace}.{suffix}", label("dst_serviceaccount"))
        });
        let key = (
            src_namespace.clone(),
            src.clone(),
            dst_namespace.clone(),
            dst.clone(),
        );
        let edge = edges.entry(key).or_insert_with(|| Edge {
            src_namespace,
            src,
            dst_namespace,
            dst,
            client_id: String::new(),
            server_id: String::new(),
            secured: false,
            rps: 0.0,
        });
        edge.rps += series.value;
        if let (Some(client_id), Some(server_id)) = (client_id, server_id) {
            edge.client_id = client_id;
            edge.server_id = server_id;
            edge.secured = true;
        }
    }
    Ok(edges.into_values().collect())
}
