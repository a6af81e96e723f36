//! The per-field matchers of a rule that are neither networks nor path
//! prefixes (the SDK's [`PathPrefix`](weft_plugin_sdk::path::PathPrefix)):
//! identity patterns.

/// A pattern for a client's mesh identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityPattern {
    /// `*`: any authenticated client.
    Any,
    /// `*.prod.serviceaccount...`: one or more leading labels, then this
    /// suffix (stored with its leading dot).
    Suffix(String),
    Exact(String),
}

impl IdentityPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(IdentityPattern::Any);
        }
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if name.is_empty() {
            return Err(format!("identity `{text}` names nothing"));
        }
        if name.contains('*') {
            return Err(format!(
                "identity `{text}`: `*` may only be the whole pattern or its first label (`*.`)"
            ));
        }
        if name.split('.').any(str::is_empty) {
            return Err(format!("identity `{text}` has an empty label"));
        }
        Ok(match wildcard {
            true => IdentityPattern::Suffix(format!(".{name}")),
            false => IdentityPattern::Exact(name.to_string()),
        })
    }

    pub fn matches(&self, identity: &str) -> bool {
        match self {
            IdentityPattern::Any => true,
            IdentityPattern::Exact(name) => identity == name,
            // The labels before the suffix must be non-empty: `*.b` matches
            // `a.b` but neither `b` nor `.b`.
            IdentityPattern::Suffix(suffix) => identity
                .strip_suffix(suffix.as_str())
                .is_some_and(|labels| !labels.is_empty() && !labels.ends_with('.')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(pattern: &str) -> IdentityPattern {
        IdentityPattern::parse(pattern).unwrap()
    }

    const WEB: &str = "web.prod.serviceaccount.identity.weft.cluster.local";

    #[test]
    fn exact_identities_match_only_themselves() {
        let pattern = identity(WEB);
        assert!(pattern.matches(WEB));
        assert!(!pattern.matches("api.prod.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches("x.web.prod.serviceaccount.identity.weft.cluster.local"));
    }

    #[test]
    fn a_star_matches_any_identity() {
        assert!(identity("*").matches(WEB));
    }

    #[test]
    fn a_leading_wildcard_matches_one_or_more_labels() {
        let pattern = identity("*.prod.serviceaccount.identity.weft.cluster.local");
        assert!(pattern.matches(WEB));
        assert!(pattern.matches("a.b.prod.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches("prod.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches(".prod.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches("web..prod.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches("web.staging.serviceaccount.identity.weft.cluster.local"));
        assert!(!pattern.matches("webprod.serviceaccount.identity.weft.cluster.local"));
    }

    #[test]
    fn malformed_identity_patterns_are_refused() {
        for (text, reason) in [
            ("", "names nothing"),
            ("*.", "names nothing"),
            ("web.*.cluster.local", "may only be"),
            ("**.cluster.local", "may only be"),
            ("*web.cluster.local", "may only be"),
            ("web..cluster.local", "empty label"),
            ("web.cluster.local.", "empty label"),
        ] {
            let err = IdentityPattern::parse(text).unwrap_err();
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }
}
