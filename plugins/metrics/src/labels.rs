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
    pub status: Option<u16>,
}

impl LabelSet for Labels {
    fn label_bytes(&self) -> usize {
        self.authority.len() + self.client_id.len() + self.backend.len()
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
            status: Some(200),
        };
        assert_eq!(labels.label_bytes(), 16 + 61 + 11);
    }
}
