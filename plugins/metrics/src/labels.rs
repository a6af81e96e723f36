//! What a completed request is counted under; the other labels derive from
//! these. The authority comes from the client, so it is counted in the
//! series cache's label-text bound (with the other free-text labels).

use weft_plugin_sdk::metrics::LabelSet;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Labels {
    pub direction: &'static str,
    pub authority: String,
    pub tls: bool,
    pub client_id: String,
    pub backend: String,
    pub destination: Destination,
    pub status: Option<u16>,
    /// The `classification`: by the route's response classes, or by 5xx.
    pub failure: bool,
}

/// What a request that took a configured route is counted under in the
/// `route_*` families.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteLabels {
    pub direction: &'static str,
    /// `dst`: the request's authority.
    pub dst: String,
    /// The route's index in the configuration.
    pub route: usize,
    pub status: Option<u16>,
    pub failure: bool,
}

/// `dst_namespace`, `dst_service`, `dst_pod`, `dst_deployment` and
/// `dst_serviceaccount` of the endpoint that answered, empty when unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination(pub [String; 5]);

impl Destination {
    const NAMES: [&str; 5] = [
        "dst_namespace",
        "dst_service",
        "dst_pod",
        "dst_deployment",
        "dst_serviceaccount",
    ];

    /// Picks the five from the labels the proxy knows of the endpoint.
    pub fn from_labels(labels: Vec<(String, String)>) -> Self {
        let mut destination = Self::default();
        for (name, value) in labels {
            if let Some(i) = Self::NAMES.iter().position(|n| *n == name) {
                destination.0[i] = value;
            }
        }
        destination
    }
}

impl LabelSet for Labels {
    fn label_bytes(&self) -> usize {
        let destination: usize = self.destination.0.iter().map(String::len).sum();
        self.authority.len() + self.client_id.len() + self.backend.len() + destination
    }
}

impl LabelSet for RouteLabels {
    /// Route names are configured text; the authority is the client's.
    fn label_bytes(&self) -> usize {
        self.dst.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_controlled_text_is_what_counts() {
        let labels = Labels {
            direction: "inbound",
            authority: "web.default:8080".to_string(),
            tls: true,
            client_id: "web.default.serviceaccount.identity.weft-system.cluster.local".to_string(),
            backend: "web-v2:8080".to_string(),
            destination: Destination::from_labels(vec![
                ("dst_pod".to_string(), "web-v2-6f7d9".to_string()),
                ("dst_statefulset".to_string(), "ignored".to_string()),
            ]),
            status: Some(200),
            failure: false,
        };
        assert_eq!(labels.destination.0[2], "web-v2-6f7d9");
        assert_eq!(labels.label_bytes(), 16 + 61 + 11 + 12);
    }
}
